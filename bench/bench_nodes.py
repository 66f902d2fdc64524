"""Several authority nodes on one PostgreSQL: token throughput with the load spread over them, and
what each node costs the database at idle and when the trust changes.

    .venv/bin/python -m bench.bench_nodes --nodes 1 2 4 --seconds 8

Each node is ``keyless serve --workers 1`` on its own port, sharing one database (a fresh one,
``keyless_bench_nodes``, so PostgreSQL's per-database counters count only the nodes). The load is
one ``wrk`` per node (same federated token request, keep-alive). Database cost is read from
``pg_stat_database`` (transactions and rows read per second). A trust change is one admin write;
"visible" is the time until every node's ``/healthz`` reports the new revision.

On one 2-core machine the nodes share the CPU with each other and with wrk, so throughput cannot
grow with nodes here; the database figures are what carry over to a real cluster.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from tests._services import postgres_url_or_skip
from tests._support.authority_server import seed_federation
from tests._support.oidc_issuer import TestIssuer

from bench.bench_authority import SUBJECT, _form, _free_port, _server, _wrk
from keyless.authority._service import Authority
from keyless.config import load_authority_settings

DATABASE = "keyless_bench_nodes"


@contextlib.contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    admin = create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
    try:
        yield make_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.dispose()


def _db_counters(url: str) -> tuple[float, float, float]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            text(
                "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched FROM pg_stat_database"
                " WHERE datname = :name"
            ),
            {"name": DATABASE},
        ).one()
    engine.dispose()
    return time.monotonic(), float(row[0]), float(row[1])


def _rate(url: str, seconds: float) -> tuple[float, float]:
    """Transactions and rows read per second in ``url``'s database over ``seconds`` (the
    statistics collector publishes about every 0.5 s, so windows are a few seconds long)."""
    t0, x0, r0 = _db_counters(url)
    time.sleep(seconds)
    t1, x1, r1 = _db_counters(url)
    return (x1 - x0) / (t1 - t0), (r1 - r0) / (t1 - t0)


def _revision(base: str) -> int:
    return int(httpx.get(f"{base}/healthz", verify=False, timeout=2).json()["revision"])


def run_nodes(count: int, seconds: float, connections: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        TestIssuer() as issuer,
        _fresh_database(postgres_url_or_skip()) as url,
    ):
        os.environ["KEYLESS_DATABASE_URL"] = url
        os.environ["KEYLESS_KEK"] = base64.b64encode(os.urandom(32)).decode()  # one for every node
        try:
            ports = [_free_port() for _ in range(count)]
            settings = load_authority_settings(
                data_dir=Path(tmp) / "seed", port=ports[0], dev_mode=True, allow_http_loopback_issuers=True
            )
            authority = Authority.open(settings)
            federation = seed_federation(authority.admin, issuer=issuer.url, subject=SUBJECT)
            authority.store.close()
            body = urlencode(_form(federation, issuer.mint(sub=SUBJECT, lifetime=3600)))
            with contextlib.ExitStack() as stack:
                bases = [stack.enter_context(_server(Path(tmp) / f"n{i}", p, 1)) for i, p in enumerate(ports)]
                urls = [f"{b}/{federation.tenant_id}/oauth2/v2.0/token" for b in bases]
                time.sleep(2)
                idle_tx, idle_rows = _rate(url, 5)
                # one trust change; visible when every node's revision moved
                before = max(_revision(b) for b in bases)
                writer = Authority.open(settings)
                started = time.monotonic()
                writer.admin.create_application(federation.tenant_id, "bench-change")
                while min(_revision(b) for b in bases) <= before:
                    time.sleep(0.01)
                visible = time.monotonic() - started
                writer.store.close()
                result: dict[str, Any] = {
                    "nodes": count,
                    "idle_tx_per_s": idle_tx,
                    "idle_rows_per_s": idle_rows,
                    "write_visible_s": visible,
                }
                if shutil.which("wrk") is not None:
                    per_node = max(1, connections // count)
                    with ThreadPoolExecutor(count) as pool:
                        list(pool.map(lambda u: _wrk(u, body, 2, per_node), urls))  # warm-up
                        runs = list(pool.map(lambda u: _wrk(u, body, seconds, per_node), urls))
                    result["rps"] = sum(r["rps"] for r in runs)
                    result["p99_ms"] = max(r["p99_ms"] for r in runs)
                    result["errors"] = sum(r["errors"] for r in runs)
                return result
        finally:
            os.environ.pop("KEYLESS_DATABASE_URL", None)
            os.environ.pop("KEYLESS_KEK", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    print(
        "| nodes | tokens/s (all nodes) | p99 ms (worst node) | errors | DB tx/s idle | DB rows read/s idle"
        " | trust change visible on all nodes |"
    )
    print("|---|---|---|---|---|---|---|")
    for count in args.nodes:
        r = run_nodes(count, args.seconds, args.connections)
        print(
            f"| {count} | {r.get('rps', float('nan')):,.0f} | {r.get('p99_ms', float('nan')):.1f} |"
            f" {r.get('errors', 0):.0f} | {r['idle_tx_per_s']:.1f} | {r['idle_rows_per_s']:.0f} |"
            f" {r['write_visible_s'] * 1000:.0f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
