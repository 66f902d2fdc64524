"""/readyz: 200 when the store answers, the directory snapshot is fresh and every tenant has an
active signing key; 503 naming each failing check and why otherwise. /healthz stays liveness.
(The store check against an unreachable database is in test_database_outage.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._support.authority_server import RunningAuthority, run_authority


@pytest.fixture
def authority(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningAuthority]:
    settings: dict[str, Any] = getattr(request, "param", {})
    with run_authority(tmp_path / "authority", **settings) as running:
        yield running


def get(authority: RunningAuthority, path: str) -> httpx.Response:
    return httpx.get(f"{authority.base_url}{path}", verify=authority.ssl_context(), timeout=10)


def test_readyz_is_200_with_every_check_passing(authority: RunningAuthority) -> None:
    authority.admin.create_tenant("Contoso")
    response = get(authority, "/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "store": True,
        "directory": True,
        "signingKeys": True,
    }
    assert response.headers["cache-control"].startswith("no-store")


@pytest.mark.parametrize(
    "authority", [{"cache_poll_interval": 60, "ready_max_snapshot_age": 2.0}], indirect=True
)
def test_readyz_is_503_when_the_directory_snapshot_is_stale(authority: RunningAuthority) -> None:
    authority.authority.cache.refresh()  # confirmed now: a loaded CI machine may take a while to get here
    assert get(authority, "/readyz").status_code == 200
    time.sleep(2.5)  # no poll and no write since: the snapshot has not been confirmed for 2.5 s
    response = get(authority, "/readyz")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    checks = response.json()["checks"]
    assert checks["directory"]["ok"] is False
    assert "last confirmed" in checks["directory"]["reason"] and "bound 2 s" in checks["directory"]["reason"]
    assert checks["store"]["ok"] and checks["signingKeys"]["ok"]
    assert get(authority, "/healthz").status_code == 200  # alive all the same
    authority.authority.cache.refresh()  # a poll confirms it again
    assert get(authority, "/readyz").status_code == 200


def test_readyz_is_503_when_a_tenant_has_no_active_signing_key(authority: RunningAuthority) -> None:
    tenant = authority.admin.create_tenant("Fabrikam")
    for key in authority.authority.store.list_signing_keys(tenant.id):
        authority.authority.store.delete_signing_key(key.kid)
    authority.authority.cache.refresh()
    response = get(authority, "/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["signingKeys"]["ok"] is False
    assert checks["signingKeys"]["reason"] == f"1 tenant(s) have no active signing key: {tenant.id}"
    assert checks["store"]["ok"] and checks["directory"]["ok"]
