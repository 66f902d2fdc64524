"""``keyless apply`` of a big trust file: how long one transaction takes to write it.

    .venv/bin/python -m bench.bench_apply [--apps 500] [--postgres URL]

Applies a document of ``--apps`` applications (each with two app roles, two federated credentials
and two role assignments; see ``tests/_support/trust_docs.py``) to an empty directory, then again
(nothing to change), on SQLite (a temporary file) and, when reachable, PostgreSQL (a throwaway
schema). Counts the SQL statements of the first apply. Absolute times: there is no crypto in an
apply beyond the new tenant's signing key.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from tests._services import POSTGRES_URL_DEFAULT, fresh_postgres_schema
from tests._support.trust_docs import big_trust_document

from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.directory.signing import KeyManager
from keyless.authority.directory.snapshot import DirectoryCache
from keyless.authority.store import SqlStore
from keyless.authority.trustfile.reconcile import apply, parse_trust_document
from keyless.jose import KeyEncryptionKey


@contextlib.contextmanager
def _sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def measure(url: str, apps: int) -> dict[str, Any]:
    store = SqlStore.from_url(url)
    keys = KeyManager(store, KeyEncryptionKey.generate(), max_token_lifetime=5400)
    admin = DirectoryAdmin(store, keys, DirectoryCache(store, keys), key_publish_delay=0)
    doc = parse_trust_document(big_trust_document(apps))
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(store.engine, "before_cursor_execute", count)
    start = time.perf_counter()
    changes = len(apply(admin, doc))
    first = time.perf_counter() - start
    event.remove(store.engine, "before_cursor_execute", count)
    start = time.perf_counter()
    again = len(apply(admin, doc))
    second = time.perf_counter() - start
    store.close()
    return {"first_s": first, "again_s": second, "changes": changes, "again": again, "statements": statements}


def _line(name: str, apps: int, found: dict[str, Any]) -> str:
    return (
        f"{name:<11} {apps:>5} apps  apply {found['first_s']:6.2f} s ({found['changes']} changes, "
        f"{found['statements']} statements)  re-apply {found['again_s']:6.2f} s ({found['again']} changes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=500, help="Applications in the trust file.")
    parser.add_argument("--postgres", default=POSTGRES_URL_DEFAULT, help="PostgreSQL server URL.")
    args = parser.parse_args()
    with _sqlite_url() as url:
        print(_line("SQLite", args.apps, measure(url, args.apps)))
    try:
        with fresh_postgres_schema(args.postgres) as url:
            print(_line("PostgreSQL", args.apps, measure(url, args.apps)))
    except Exception as exc:  # a bench without PostgreSQL still reports SQLite
        print(f"PostgreSQL  skipped: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
