"""Engines set up the way the store needs them: the PostgreSQL driver keyless depends on, and for
SQLite foreign keys, WAL and a busy timeout on every connection.

Every database wait is bounded by one ``timeout`` (``KEYLESS_DATABASE_TIMEOUT``):

- connecting: libpq's ``connect_timeout`` (PostgreSQL), opening the file (SQLite);
- each statement: PostgreSQL's ``statement_timeout`` on the server, and a client-side watchdog a
  second later that shuts the connection's socket, for a server that no longer answers at all (a
  blackholed network: the server-side timeout never gets to run); SQLite's busy timeout;
- waiting for a free pooled connection: the pool's checkout timeout;
- a pooled connection is pinged (under the watchdog, ``timeout``) before it is handed out, so a
  connection the database dropped is replaced instead of failing the request.

So a request waits at most about ``timeout`` (a dead pooled connection's ping) plus
``max(timeout, 2)`` (a new connection's attempt; 2 s is libpq's smallest connect timeout).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, StaticPool

__all__ = [
    "DEFAULT_DATABASE_TIMEOUT",
    "SQLITE_BUSY_TIMEOUT_MS",
    "UNBOUNDED",
    "create_store_engine",
    "enable_sqlite_pragmas",
    "engine_timeout",
    "statement_timed_out",
]

DEFAULT_DATABASE_TIMEOUT = 5.0
SQLITE_BUSY_TIMEOUT_MS = int(DEFAULT_DATABASE_TIMEOUT * 1000)
WATCHDOG_GRACE = 1.0  # the server's own statement_timeout answers first when it can
_TIMEOUT_ATTRIBUTE = "_keyless_timeout"


def create_store_engine(url: str, *, timeout: float = DEFAULT_DATABASE_TIMEOUT) -> Engine:
    """An engine for ``url`` set up the way ``SqlStore`` needs (SQLite pragmas, bounded waits)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver keyless depends on
    if parsed.get_backend_name() != "sqlite":
        # Keep the URL's own server options (a search_path, say) and add the statement timeout.
        given = parsed.query.get("options", "")
        options = " ".join([*([given] if isinstance(given, str) else given), _statement_timeout(timeout)])
        parsed = parsed.difference_update_query(["options"])
        engine = create_engine(
            parsed,
            pool_timeout=timeout,
            connect_args={
                "connect_timeout": max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
                "options": options.strip(),
            },
        )
        _bound_postgresql(engine, timeout)
        return engine
    in_memory = parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed)
    if not in_memory and parsed.database is not None and not parsed.database.startswith("file:"):
        _private_sqlite_files(Path(parsed.database))
    engine = create_engine(
        parsed,
        # ``timeout`` is sqlite3's busy timeout: how long a write waits for another one's lock.
        connect_args={"check_same_thread": False, "timeout": timeout},
        # One shared connection, or every checkout would see its own empty in-memory database.
        poolclass=StaticPool if in_memory else None,
        pool_timeout=timeout,
    )
    setattr(engine, _TIMEOUT_ATTRIBUTE, timeout)
    enable_sqlite_pragmas(engine)
    return engine


def _statement_timeout(timeout: float) -> str:
    return f"-c statement_timeout={int(timeout * 1000)}"


def engine_timeout(engine: Engine) -> float:
    """The bound ``create_store_engine`` gave ``engine`` (the default for other engines)."""
    value = getattr(engine, _TIMEOUT_ATTRIBUTE, DEFAULT_DATABASE_TIMEOUT)
    return float(value)


# -- PostgreSQL: statement watchdog and checkout ping ------------------------------------------------


class _Watchdog:
    """One daemon thread that shuts the socket of a statement still running past its deadline.

    Shutting the socket (not closing the descriptor, which the driver still owns) wakes the driver
    at once with a broken connection, which the pool then discards.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, int, list[bool]]] = {}
        self._tokens = itertools.count()
        self._wake_at = math.inf
        self._owner = 0  # the pid whose thread runs (a forked worker starts its own)
        # keyless serve forks its workers from a process that has used the store: the watchdog
        # thread is not copied, and its lock may be, held. The child starts afresh.
        os.register_at_fork(after_in_child=self._forget_parent)

    def _forget_parent(self) -> None:
        self._cond = threading.Condition()
        self._armed = {}
        self._wake_at = math.inf
        self._owner = 0

    def arm(self, seconds: float, fd: int, fired: list[bool]) -> int:
        """Shut ``fd``'s socket in ``seconds`` unless disarmed first (and set ``fired[0]``)."""
        deadline = time.monotonic() + seconds
        with self._cond:
            if self._owner != os.getpid():
                self._owner = os.getpid()
                self._armed.clear()
                self._wake_at = math.inf
                threading.Thread(target=self._run, name="keyless-db-watchdog", daemon=True).start()
            token = next(self._tokens)
            self._armed[token] = (deadline, fd, fired)
            if deadline < self._wake_at:
                self._cond.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.pop(token, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token in [t for t, (deadline, _, _) in self._armed.items() if deadline <= now]:
                    _, fd, fired = self._armed.pop(token)
                    fired[0] = True
                    _shutdown(fd)
                self._wake_at = min((d for d, _, _ in self._armed.values()), default=now + 60.0)
                self._cond.wait(max(0.01, self._wake_at - now))


def _shutdown(fd: int) -> None:
    with contextlib.suppress(OSError):
        dup = socket.socket(fileno=os.dup(fd))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()


_WATCHDOG = _Watchdog()
_statement = threading.local()  # this thread's last watched statement: did the watchdog cut it?


def statement_timed_out() -> bool:
    """Whether the watchdog cut this thread's last statement (read once: it resets)."""
    fired: list[bool] | None = getattr(_statement, "fired", None)
    _statement.fired = None
    return bool(fired and fired[0])


def _watch(seconds: float, fd: int) -> int:
    fired = [False]
    _statement.fired = fired
    return _WATCHDOG.arm(seconds, fd, fired)


_WATCH = "keyless_watch"
UNBOUNDED = "keyless_unbounded"  # an execution option: no watchdog for this connection (migrations)
_FRESH = "keyless_fresh"


def _socket_of(dbapi_connection: Any) -> int | None:
    pgconn = getattr(dbapi_connection, "pgconn", None)
    fd = getattr(pgconn, "socket", None) if pgconn is not None else None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _bound_postgresql(engine: Engine, timeout: float) -> None:
    setattr(engine, _TIMEOUT_ATTRIBUTE, timeout)
    limit = timeout + WATCHDOG_GRACE

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: bool) -> None:
        if conn.get_execution_options().get(UNBOUNDED):
            return
        fd = _socket_of(conn.connection.dbapi_connection)
        if fd is not None:
            conn.info[_WATCH] = _watch(limit, fd)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: bool) -> None:
        token = conn.info.pop(_WATCH, None)
        if token is not None:
            _WATCHDOG.disarm(token)

    @event.listens_for(engine, "handle_error")
    def _disarm_on_error(context: Any) -> None:
        conn = context.connection
        token = conn.info.pop(_WATCH, None) if conn is not None else None
        if token is not None:
            _WATCHDOG.disarm(token)

    @event.listens_for(engine, "connect")
    def _mark_fresh(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info[_FRESH] = True

    @event.listens_for(engine, "checkout")
    def _ping(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        """Ping a pooled connection before use (a fresh one needs none), bounded by the watchdog;
        a dead one makes the pool connect anew (which ``connect_timeout`` bounds)."""
        if record.info.pop(_FRESH, False):
            return
        fd = _socket_of(dbapi_connection)
        token = _watch(timeout, fd) if fd is not None else None
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()  # end the transaction the ping began
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is dead: {exc}") from exc
        finally:
            if token is not None:
                _WATCHDOG.disarm(token)


# -- SQLite --------------------------------------------------------------------------------------------


def _private_sqlite_files(database: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its -wal and -shm files the
    database file's mode), and tighten an existing database and its companions to 0600."""
    if not database.exists() and database.parent.is_dir():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    ):
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)


def _on_sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Foreign keys and WAL. The busy timeout is sqlite3's ``timeout`` (``create_store_engine``
    sets it; sqlite3's own default is 5 s)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        _switch_to_wal(cursor)
    finally:
        cursor.close()


def _switch_to_wal(cursor: DBAPICursor) -> None:
    """Enter WAL mode (persistent in the file). The switch ignores busy_timeout, so retry it."""
    cursor.execute("PRAGMA busy_timeout")
    row = cursor.fetchone()
    busy_ms = int(row[0]) if row and row[0] else SQLITE_BUSY_TIMEOUT_MS
    deadline = time.monotonic() + busy_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def enable_sqlite_pragmas(engine: Engine) -> None:
    """Turn on foreign keys and WAL for every new connection of ``engine``."""
    if not event.contains(engine, "connect", _on_sqlite_connect):
        event.listen(engine, "connect", _on_sqlite_connect)
