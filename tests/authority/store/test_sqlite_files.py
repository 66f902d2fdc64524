"""The SQLite database holds the directory and encrypted keys: it and its WAL companions are 0600,
whatever the umask, and an existing database with looser bits is tightened at open."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyless.authority._service import Authority
from keyless.config import load_authority_settings


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(data_dir: Path) -> dict[str, int]:
    return {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in data_dir.iterdir()
        if path.name.startswith("keyless.db")
    }


def test_the_database_and_its_wal_files_are_created_0600(tmp_path: Path, loose_umask: None) -> None:
    authority = Authority.open(load_authority_settings(data_dir=tmp_path, tls=False))
    try:
        modes = _modes(tmp_path)
    finally:
        authority.store.close()
    assert set(modes) >= {"keyless.db", "keyless.db-wal", "keyless.db-shm"}
    assert set(modes.values()) == {0o600}


def test_an_existing_database_with_loose_modes_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    Authority.open(load_authority_settings(data_dir=tmp_path, tls=False)).store.close()
    (tmp_path / "keyless.db").chmod(0o644)
    authority = Authority.open(load_authority_settings(data_dir=tmp_path, tls=False))
    try:
        modes = _modes(tmp_path)
    finally:
        authority.store.close()
    assert set(modes.values()) == {0o600}
