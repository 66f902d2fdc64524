"""Directory rebuilds reuse loaded signing keys: a write reloads none of them, a rotation loads only
the new key, and a key deleted from the store is forgotten. (Loading an RSA key costs 10-40 ms;
with every key reloaded, one admin write with 32 tenants stalled token serving for over a second.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keyless.authority import Authority
from keyless.config import load_authority_settings
from keyless.jose import Signer


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every real ``Signer.from_pkcs8`` call, counted (the real loader still runs)."""
    seen: list[str] = []
    real = Signer.from_pkcs8

    def counting(*args: object, **kwargs: object) -> Signer:
        signer = real(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(signer.kid)
        return signer

    monkeypatch.setattr(Signer, "from_pkcs8", staticmethod(counting))
    return seen


def test_a_write_reloads_no_signer_and_a_rotation_loads_only_the_new_key(
    tmp_path: Path, loads: list[str]
) -> None:
    authority = Authority.open(load_authority_settings(data_dir=tmp_path / "data", port=0))
    try:
        tenants = [authority.admin.create_tenant(f"t{i}") for i in range(6)]
        assert len(set(loads)) == len(loads)  # each key loaded once while the tenants were made
        loads.clear()
        authority.admin.create_application(tenants[0].id, "another")
        authority.cache.refresh(force=True)
        assert loads == []
        new = authority.admin.rotate_keys(tenants[1].id, publish_delay=0)
        assert loads == [new.kid]
        view = authority.directory().tenant(tenants[1].id)
        assert view is not None and view.signer(time.time() + 1) is not None
    finally:
        authority.store.close()
