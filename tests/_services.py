"""Find the external services tests need, or skip (locally) / fail (in CI) when they are down.

``postgres_url_or_skip()`` and ``redis_url_or_skip()`` return the URL to use. When the service
cannot be reached, the test is skipped with the reason, unless ``CI`` is set or
``KEYLESS_REQUIRE_SERVICES=1``, in which case it fails loudly: CI must never go green by
skipping. Each service is probed once per test session.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = [
    "fresh_postgres_schema",
    "postgres_url_or_skip",
    "redis_url_or_skip",
    "services_required",
]

POSTGRES_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL_DEFAULT = "redis://127.0.0.1:6379/15"
PROBE_TIMEOUT_SECONDS = 3


def services_required() -> bool:
    """True in CI (or when asked): a missing service is then a failure, not a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("KEYLESS_REQUIRE_SERVICES") == "1"


def program_or_skip(name: str, package: str) -> str:
    """The path of program ``name`` (from Debian's ``package``, which .ci/run installs)."""
    import shutil

    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (apt-get install {package})"
        if services_required():
            pytest.fail(f"{message} [required: CI or KEYLESS_REQUIRE_SERVICES=1]", pytrace=False)
        pytest.skip(message)
    return found


def _unavailable(service: str, url_env: str, problem: str) -> None:
    message = f"{service} unreachable ({problem}); set {url_env} or start it"
    if services_required():
        pytest.fail(f"{message} [required: CI or KEYLESS_REQUIRE_SERVICES=1]", pytrace=False)
    pytest.skip(message)


@functools.cache
def _postgres_problem(url: str) -> str | None:
    try:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": PROBE_TIMEOUT_SECONDS}
        )
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


@functools.cache
def _redis_problem(url: str) -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def postgres_url_or_skip() -> str:
    """The SQLAlchemy URL of the test PostgreSQL server (``KEYLESS_TEST_POSTGRES_URL``)."""
    url = os.environ.get("KEYLESS_TEST_POSTGRES_URL", POSTGRES_URL_DEFAULT)
    problem = _postgres_problem(url)
    if problem is not None:
        _unavailable("PostgreSQL", "KEYLESS_TEST_POSTGRES_URL", problem)
    return url


def redis_url_or_skip() -> str:
    """The URL of the test Redis server (``KEYLESS_TEST_REDIS_URL``)."""
    url = os.environ.get("KEYLESS_TEST_REDIS_URL", REDIS_URL_DEFAULT)
    problem = _redis_problem(url)
    if problem is not None:
        _unavailable("Redis", "KEYLESS_TEST_REDIS_URL", problem)
    return url


@contextmanager
def fresh_postgres_schema(url: str) -> Iterator[str]:
    """Create an empty schema and yield ``url`` pointed at it (via ``search_path``); drop it after.

    Each user gets its own schema, so tests stay isolated and can run in parallel.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    schema = f"test_{uuid.uuid4().hex}"
    admin = create_engine(url, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
