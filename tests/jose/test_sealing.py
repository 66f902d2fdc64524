"""Keys encrypted at rest under the key-encryption key."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from keyless.errors import ConfigurationError
from keyless.jose import KeyEncryptionKey


def test_seal_round_trips_and_binds_associated_data() -> None:
    kek = KeyEncryptionKey.generate()
    sealed = kek.seal(b"secret", aad=b"kid-1")
    assert b"secret" not in sealed
    assert kek.open(sealed, aad=b"kid-1") == b"secret"
    with pytest.raises(ConfigurationError):
        kek.open(sealed, aad=b"kid-2")


def test_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    first = KeyEncryptionKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = first.seal(b"x", aad=b"")
    assert KeyEncryptionKey.load_or_create(path).open(sealed, aad=b"") == b"x"


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    KeyEncryptionKey.load_or_create(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        KeyEncryptionKey.load_or_create(path)


def test_kek_from_environment_must_be_32_bytes_of_base64() -> None:
    assert KeyEncryptionKey.from_base64(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(ConfigurationError):
        KeyEncryptionKey.from_base64("not base64!")
    with pytest.raises(ConfigurationError):
        KeyEncryptionKey.from_base64(base64.b64encode(b"short").decode())
