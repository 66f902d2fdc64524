"""The packaged Alembic migrations: they apply, re-apply, and produce exactly ``_tables``' schema."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool
from tests._services import fresh_postgres_schema, postgres_url_or_skip

from keyless.authority.store import upgrade_to_head
from keyless.authority.store._migrate import alembic_config
from keyless.authority.store._tables import metadata

HEAD = "0004"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with fresh_postgres_schema(postgres_url_or_skip()) as url:
        yield url


def _schema_differences(url: str) -> list[object]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def _current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _table_names(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_folder_ships_inside_the_package() -> None:
    migrations = importlib.resources.files("keyless.authority.store") / "migrations"
    assert (migrations / "env.py").is_file()
    assert (migrations / "script.py.mako").is_file()
    assert (migrations / "versions" / "0001_initial.py").is_file()
    assert (migrations / "versions" / "0002_refusals.py").is_file()


def test_migrations_have_a_single_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD]


def test_migrated_schema_matches_tables_metadata(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    assert _schema_differences(empty_database_url) == []


def test_migrating_twice_is_idempotent(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    upgrade_to_head(empty_database_url)
    assert _current_revision(empty_database_url) == HEAD
    assert _schema_differences(empty_database_url) == []


def test_migration_seeds_a_single_revision_row(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    upgrade_to_head(empty_database_url)
    engine = create_engine(empty_database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, revision FROM meta")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, 0)]


def test_concurrent_migrations_both_succeed(empty_database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(upgrade_to_head, empty_database_url) for _ in range(2)]
        for future in futures:
            future.result()
    assert _current_revision(empty_database_url) == HEAD


def test_downgrade_to_base_removes_every_table(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    engine = create_engine(empty_database_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
    finally:
        engine.dispose()
    assert _table_names(empty_database_url) <= {"alembic_version"}


def test_metadata_create_all_seeds_the_revision_row_like_the_migration(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'create_all.db'}", poolclass=NullPool)
    try:
        metadata.create_all(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, revision FROM meta")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, 0)]
