"""Token latency while the directory is being written: 100 tenants, 10 admin writes per second.

    .venv/bin/python -m bench.bench_directory_writes [--tenants 100] [--writes 10] [--seconds 8]

Starts ``keyless serve --workers 1`` (SQLite) holding ``--tenants`` tenants (one signing key each),
loads its token endpoint with wrk (federated client_credentials, keep-alive) once idle and once
while a second thread creates ``--writes`` applications per second through the admin API, and
prints p50/p99 of both and their ratio. Each write makes the server rebuild its directory snapshot;
the target is p99 under writes < 2x idle.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from tests._support.authority_server import seed_federation
from tests._support.oidc_issuer import TestIssuer

from bench.bench_authority import SUBJECT, _form, _free_port, _server, _wrk
from keyless.authority._service import Authority
from keyless.config import load_authority_settings


def _writer(base: str, key: str, tenants: list[str], per_second: float, stop: threading.Event) -> list[float]:
    took: list[float] = []
    with httpx.Client(verify=False, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        index = 0
        while not stop.is_set():
            started = time.perf_counter()
            tenant = tenants[index % len(tenants)]
            answer = client.post(
                f"{base}/admin/v1.0/tenants/{tenant}/applications", json={"displayName": f"w{index}"}
            )
            answer.raise_for_status()
            took.append(time.perf_counter() - started)
            index += 1
            stop.wait(max(0.0, 1 / per_second - (time.perf_counter() - started)))
    return took


def run(tenants: int, writes: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, TestIssuer() as issuer:
        data_dir = Path(tmp)
        port = _free_port()
        settings = load_authority_settings(
            data_dir=data_dir, port=port, dev_mode=True, allow_http_loopback_issuers=True
        )
        authority = Authority.open(settings)
        federation = seed_federation(authority.admin, issuer=issuer.url, subject=SUBJECT)
        ids = [authority.admin.create_tenant(f"bench-{i}").id for i in range(tenants - 1)]
        authority.store.close()
        body = urlencode(_form(federation, issuer.mint(sub=SUBJECT, lifetime=3600)))
        with _server(data_dir, port, 1) as base:
            key = (data_dir / "admin.key").read_text().strip()
            url = f"{base}/{federation.tenant_id}/oauth2/v2.0/token"
            _wrk(url, body, 2, 16)
            idle = _wrk(url, body, seconds, 16)
            stop = threading.Event()
            took: list[float] = []
            writer = threading.Thread(target=lambda: took.extend(_writer(base, key, ids, writes, stop)))
            writer.start()
            try:
                busy = _wrk(url, body, seconds, 16)
            finally:
                stop.set()
                writer.join()
    return {
        "idle_p50_ms": idle["p50_ms"],
        "idle_p99_ms": idle["p99_ms"],
        "busy_p50_ms": busy["p50_ms"],
        "busy_p99_ms": busy["p99_ms"],
        "ratio_p99": busy["p99_ms"] / idle["p99_ms"],
        "writes": len(took),
        "write_p50_ms": sorted(took)[len(took) // 2] * 1000 if took else float("nan"),
        "idle_rps": idle["rps"],
        "busy_rps": busy["rps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--writes", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    r = run(args.tenants, args.writes, args.seconds)
    print(
        f"{args.tenants} tenants, {args.writes:g} writes/s: token p50/p99 idle {r['idle_p50_ms']:.1f}/"
        f"{r['idle_p99_ms']:.1f} ms ({r['idle_rps']:,.0f}/s), under writes {r['busy_p50_ms']:.1f}/"
        f"{r['busy_p99_ms']:.1f} ms ({r['busy_rps']:,.0f}/s): p99 x{r['ratio_p99']:.2f};"
        f" {r['writes']:.0f} writes, median {r['write_p50_ms']:.0f} ms each"
    )


if __name__ == "__main__":
    main()
