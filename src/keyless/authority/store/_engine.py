"""Engines set up the way the store needs them: the PostgreSQL driver keyless depends on, and for
SQLite foreign keys, WAL and a busy timeout on every connection."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "create_store_engine", "enable_sqlite_pragmas"]

SQLITE_BUSY_TIMEOUT_MS = 5000


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` set up the way ``SqlStore`` needs (SQLite pragmas, pool checks)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver keyless depends on
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed)
    if not in_memory and parsed.database is not None and not parsed.database.startswith("file:"):
        _private_sqlite_files(Path(parsed.database))
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False},
        # One shared connection, or every checkout would see its own empty in-memory database.
        poolclass=StaticPool if in_memory else None,
    )
    enable_sqlite_pragmas(engine)
    return engine


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
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        _switch_to_wal(cursor)
    finally:
        cursor.close()


def _switch_to_wal(cursor: DBAPICursor) -> None:
    """Enter WAL mode (persistent in the file). The switch ignores busy_timeout, so retry it."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def enable_sqlite_pragmas(engine: Engine) -> None:
    """Turn on foreign keys, WAL and a busy timeout for every new connection of ``engine``."""
    if not event.contains(engine, "connect", _on_sqlite_connect):
        event.listen(engine, "connect", _on_sqlite_connect)
