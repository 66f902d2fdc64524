"""Directory snapshot: how long the authority takes to rebuild what the token path reads.

    .venv/bin/python -m bench.bench_directory [--apps 2000] [--postgres URL]

Every directory write (and every write another node makes, seen through the revision poll)
rebuilds the in-memory snapshot from the store. This seeds one tenant with ``--apps``
applications, each with two federated credentials and a client secret, and times
``load_directory`` on SQLite (a temporary file) and, when reachable, PostgreSQL (a throwaway
schema). It also counts the SQL statements one load runs. There is no crypto in a load beyond
unsealing the signing keys, so the figures are absolute times, not ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from tests._services import POSTGRES_URL_DEFAULT, fresh_postgres_schema
from tests.authority.store.test_conformance import a_fic, a_secret, a_tenant, an_application

from keyless.authority.directory.signing import KeyManager
from keyless.authority.directory.snapshot import load_directory
from keyless.authority.store import SqlStore
from keyless.jose import KeyEncryptionKey


def _seed(store: SqlStore, apps: int) -> None:
    tenant = store.create_tenant(a_tenant(max_fics_per_app=20))
    for i in range(apps):
        app = store.create_application(an_application(tenant, identifier_uris=(f"api://app-{i}",)))
        store.create_fic(a_fic(app))
        store.create_fic(a_fic(app))
        store.add_secret(a_secret(app))


def measure(url: str, apps: int, rounds: int = 5) -> dict[str, Any]:
    store = SqlStore.from_url(url)
    try:
        _seed(store, apps)
        keys = KeyManager(store, KeyEncryptionKey.generate(), max_token_lifetime=3600)
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(store.engine, "before_cursor_execute", count)
        load_directory(store, keys)
        event.remove(store.engine, "before_cursor_execute", count)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            directory = load_directory(store, keys)
            times.append(time.perf_counter() - started)
        loaded = len(directory.all_tenants()[0].apps_by_app_id)
        return {"apps": loaded, "median_ms": 1000 * statistics.median(times), "statements": statements}
    finally:
        store.close()


@contextlib.contextmanager
def _sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=2000, help="Applications in the tenant.")
    parser.add_argument("--postgres", default=POSTGRES_URL_DEFAULT, help="PostgreSQL server URL.")
    args = parser.parse_args()
    with _sqlite_url() as url:
        found = measure(url, args.apps)
        print(
            f"SQLite      {found['apps']:>6} apps  load {found['median_ms']:7.0f} ms  {found['statements']} statements"
        )
    try:
        with fresh_postgres_schema(args.postgres) as url:
            found = measure(url, args.apps)
            print(
                f"PostgreSQL  {found['apps']:>6} apps  load {found['median_ms']:7.0f} ms  {found['statements']} statements"
            )
    except Exception as exc:  # a bench without PostgreSQL still reports SQLite
        print(f"PostgreSQL  skipped: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
