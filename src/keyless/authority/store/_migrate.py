"""Bring a database's schema up to date by running the packaged Alembic migrations.

No ``alembic.ini`` is involved: the configuration is built here, pointing at the ``migrations``
folder shipped inside this package (it sits next to this file in a wheel and in an editable
install alike). Concurrent starters are serialised: a PostgreSQL advisory lock, or SQLite's write
lock taken up front with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from keyless.authority.store._engine import UNBOUNDED, create_store_engine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade_to_head"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# An arbitrary constant naming keyless' migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x6B65796C657373


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(url_or_engine: str | Engine) -> None:
    """Apply every migration not yet applied to the database at ``url_or_engine``."""
    if isinstance(url_or_engine, Engine):
        _upgrade(url_or_engine)
        return
    engine = create_store_engine(url_or_engine)
    try:
        _upgrade(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Engine) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # A migration may rewrite a big table, and waits for another node's: no statement bound.
            connection.execution_options(**{UNBOUNDED: True})
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        _lock_out_other_migrators(connection)
        command.upgrade(alembic_config(connection), "head")


def _lock_out_other_migrators(connection: Connection) -> None:
    """Hold a lock until this transaction ends, so two starters never migrate at once."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    elif dialect == "sqlite":
        # pysqlite opens no transaction for DDL on its own; this one makes the migration atomic.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
