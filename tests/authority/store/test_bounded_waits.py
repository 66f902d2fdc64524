"""Every database wait of the store is bounded by its timeout: a statement the server runs too long
(PostgreSQL's statement_timeout), a statement on a connection the network swallowed (the client
watchdog), a pool with no free connection. Each becomes StoreUnavailable, never a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tests._services import fresh_postgres_schema, postgres_url_or_skip
from tests._support.tcp_proxy import FaultyProxy

from keyless.authority.store import SqlStore
from keyless.errors import StoreUnavailable

pytestmark = pytest.mark.postgres

TIMEOUT = 1.0


@pytest.fixture
def proxy() -> Iterator[FaultyProxy]:
    url = make_url(postgres_url_or_skip())
    with FaultyProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def store(proxy: FaultyProxy) -> Iterator[SqlStore]:
    with fresh_postgres_schema(postgres_url_or_skip()) as url:
        proxied = make_url(url).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        opened = SqlStore.from_url(proxied, timeout=TIMEOUT)
        yield opened
        opened.close()


def test_a_statement_running_past_the_timeout_is_cancelled_by_the_server(store: SqlStore) -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="statement timeout"), store._use(write=False) as conn:
        conn.execute(text("SELECT pg_sleep(10)"))
    assert time.monotonic() - start < TIMEOUT + 1
    store.ping()  # the connection pool recovers at once


def list_tenants_mid_transaction(store: SqlStore, proxy: FaultyProxy) -> None:
    """A connection already checked out, in a transaction, when the network swallows it."""
    with store.transaction(lock_timeout=5):
        proxy.blackhole()
        store.list_tenants()


def test_a_statement_on_a_swallowed_connection_is_cut_by_the_watchdog(
    store: SqlStore, proxy: FaultyProxy
) -> None:
    store.ping()
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"no answer within {TIMEOUT:g} s"):
        list_tenants_mid_transaction(store, proxy)
    assert time.monotonic() - start < TIMEOUT + 2.5
    proxy.restore()
    store.ping()


def test_waiting_for_a_free_pooled_connection_is_bounded(store: SqlStore) -> None:
    pool_size = store.engine.pool.size() + store.engine.pool._max_overflow  # type: ignore[attr-defined]
    release = threading.Event()
    holding = threading.Barrier(pool_size + 1)

    def hold() -> None:
        with store._use(write=False) as conn:
            conn.execute(text("SELECT 1"))
            holding.wait(10)
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(pool_size)]
    for thread in threads:
        thread.start()
    try:
        holding.wait(10)
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="no database connection free"):
            store.ping()
        assert TIMEOUT * 0.9 <= time.monotonic() - start < TIMEOUT + 1
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    store.ping()
