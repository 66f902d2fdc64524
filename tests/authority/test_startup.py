"""Starting while the database is down: PostgreSQL is retried with backoff for a bounded time and
announced in one line; giving up, or a database that is not transiently down, is one clear line
(a ConfigurationError), never a driver's traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from tests._services import fresh_postgres_schema, postgres_url_or_skip
from tests._support.net import free_port
from tests._support.processes import REPO
from tests._support.tcp_proxy import FaultyProxy

from keyless.authority import Authority
from keyless.config import load_authority_settings
from keyless.errors import ConfigurationError


@pytest.fixture
def proxied_url() -> Iterator[tuple[FaultyProxy, str]]:
    url = make_url(postgres_url_or_skip())
    with (
        FaultyProxy(url.host or "127.0.0.1", url.port or 5432) as proxy,
        fresh_postgres_schema(str(url)) as fresh,
    ):
        proxied = make_url(fresh).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        yield proxy, proxied


@pytest.mark.postgres
def test_start_up_waits_for_a_database_that_comes_back(
    proxied_url: tuple[FaultyProxy, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, url = proxied_url
    proxy.refuse()
    settings = load_authority_settings(
        data_dir=tmp_path, database_url=url, database_timeout=1.0, database_startup_timeout=30
    )
    threading.Timer(2.0, proxy.restore).start()
    caplog.set_level(logging.INFO, logger="keyless.authority")
    start = time.monotonic()
    authority = Authority.open(settings)
    try:
        assert 2.0 <= time.monotonic() - start < 15
        assert authority.store.list_admin_keys()  # bootstrapped once the database answered
    finally:
        authority.store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "keyless.authority"]
    assert sum("not reachable" in line and "retrying for up to 30 s" in line for line in lines) == 1
    assert any("reachable; starting" in line for line in lines)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.postgres
def test_start_up_gives_up_after_the_bound_with_one_clear_line(
    proxied_url: tuple[FaultyProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied_url
    proxy.refuse()
    settings = load_authority_settings(data_dir=tmp_path, database_url=url, database_startup_timeout=1.5)
    start = time.monotonic()
    with pytest.raises(ConfigurationError) as raised:
        Authority.open(settings)
    assert time.monotonic() - start < 6
    (problem,) = raised.value.problems
    assert "cannot open the database" in problem and "Connection refused" in problem
    assert "still unreachable after 1.5 s" in problem
    assert "\n" not in problem and "Traceback" not in problem


@pytest.mark.postgres
def test_start_up_without_retries_fails_at_once(proxied_url: tuple[FaultyProxy, str], tmp_path: Path) -> None:
    proxy, url = proxied_url
    proxy.blackhole()
    settings = load_authority_settings(
        data_dir=tmp_path, database_url=url, database_timeout=1.0, database_startup_timeout=0
    )
    start = time.monotonic()
    with pytest.raises(ConfigurationError, match="cannot open the database"):
        Authority.open(settings)
    assert time.monotonic() - start < 5  # the connect timeout (libpq's least: 2 s), not forever


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("user", "database", "said"),
    [
        ("nosuchrole", "test", 'role "nosuchrole" does not exist'),
        ("postgres", "nosuchdb", 'database "nosuchdb"'),
    ],
)
def test_a_server_that_refuses_the_role_or_database_is_not_retried(
    tmp_path: Path, user: str, database: str, said: str
) -> None:
    """The server answered: a missing role or database is a configuration problem, not an outage."""
    postgres_url_or_skip()
    url = f"postgresql+psycopg://{user}@127.0.0.1:5432/{database}"
    settings = load_authority_settings(data_dir=tmp_path, database_url=url, database_startup_timeout=60)
    start = time.monotonic()
    with pytest.raises(ConfigurationError, match=said):
        Authority.open(settings)
    assert time.monotonic() - start < 10


def test_a_read_only_sqlite_database_is_not_retried(tmp_path: Path) -> None:
    database = tmp_path / "ro.db"
    database.write_bytes(b"")
    url = f"sqlite:///file:{database}?mode=ro&uri=true"
    settings = load_authority_settings(data_dir=tmp_path, database_url=url, database_startup_timeout=30)
    start = time.monotonic()
    with pytest.raises(ConfigurationError, match="readonly"):
        Authority.open(settings)
    assert time.monotonic() - start < 5


@pytest.mark.postgres
def test_keyless_serve_with_the_database_down_exits_with_one_line(
    proxied_url: tuple[FaultyProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied_url
    proxy.refuse()
    env = {
        **os.environ,
        "KEYLESS_DATA_DIR": str(tmp_path),
        "KEYLESS_PORT": str(free_port()),
        "KEYLESS_DATABASE_URL": url,
        "KEYLESS_DATABASE_STARTUP_TIMEOUT": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "keyless", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output and "sqlalchemy.exc" not in output
    assert output.count("not reachable") == 1  # the retry is announced once
    assert "still unreachable after 2 s" in output
