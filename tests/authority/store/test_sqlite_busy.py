"""SQLite held by another writer: an admin write waits KEYLESS_DATABASE_TIMEOUT, then answers 503
with Retry-After in Graph's shape (not a 500), logs no outage (the database is busy, not down),
and goes through once the lock is released."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from tests._support.authority_server import run_authority


def test_a_locked_sqlite_database_gives_503_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with run_authority(tmp_path / "authority", database_timeout=0.5) as authority:
        database = tmp_path / "authority" / "keyless.db"
        url = f"{authority.base_url}/admin/v1.0/tenants"
        headers = {"Authorization": f"Bearer {authority.admin_key()}"}
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
        try:
            start = time.monotonic()
            response = httpx.post(
                url,
                json={"displayName": "Contoso"},
                headers=headers,
                verify=authority.ssl_context(),
                timeout=30,
            )
            took = time.monotonic() - start
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "serviceNotAvailable"
        assert took < 3
        again = httpx.post(
            url, json={"displayName": "Contoso"}, headers=headers, verify=authority.ssl_context(), timeout=30
        )
        assert again.status_code == 201, again.text
    store_lines = [r for r in caplog.records if r.name == "keyless.store"]
    assert store_lines == []  # busy is not an outage
    assert not [r for r in caplog.records if r.exc_info]
