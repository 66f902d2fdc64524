"""Authority throughput: in-process issuance of a federated token, and the HTTPS token endpoint
under load from a second process (wrk), each as a ratio to the raw crypto ceiling.

    make bench            # or: .venv/bin/python -m bench.bench_authority --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from tests._support.authority_server import Federation, seed_federation
from tests._support.oidc_issuer import TestIssuer

from bench._ceiling import Ceiling, measure_ceiling
from bench._wrk import parse_wrk
from keyless.authority._service import Authority
from keyless.authority.token.client_credentials import TokenRequest
from keyless.authority.token.tenants import resolve_tenant
from keyless.config import load_authority_settings

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SUBJECT = "112233445566778899001"


def _form(federation: Federation, assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": federation.scope,
    }


def _settings(data_dir: Path, port: int) -> dict[str, Any]:
    return {"data_dir": data_dir, "port": port, "dev_mode": True, "allow_http_loopback_issuers": True}


def _seed(data_dir: Path, issuer: TestIssuer, port: int) -> Federation:
    authority = Authority.open(load_authority_settings(**_settings(data_dir, port)))
    federation = seed_federation(authority.admin, issuer=issuer.url, subject=SUBJECT)
    authority.store.close()
    return federation


def in_process_issuance(data_dir: Path, issuer: TestIssuer, federation: Federation, seconds: float) -> float:
    """Token requests per second through the token service itself (no HTTP), one core."""
    authority = Authority.open(load_authority_settings(**_settings(data_dir, 8443)))
    form = _form(federation, issuer.mint(sub=SUBJECT, lifetime=3600))
    tenant = resolve_tenant(authority.directory(), federation.tenant_id)
    request = TokenRequest(tenant, 2, form, None)

    async def loop() -> float:
        await authority.tokens.issue(request)  # warm the issuer key cache
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(20):
                await authority.tokens.issue(request)
            count += 20
        await authority.aclose()
        return count / elapsed

    return asyncio.run(loop())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(data_dir: Path, port: int, workers: int) -> Iterator[str]:
    env = {
        **os.environ,
        "KEYLESS_DEV_MODE": "true",
        "KEYLESS_ALLOW_HTTP_LOOPBACK_ISSUERS": "true",
        "KEYLESS_LOG_LEVEL": "warning",
    }
    command = [
        sys.executable,
        "-m",
        "keyless",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally; a file, not a pipe that could fill
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"https://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", verify=False, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError("server did not start: " + log.read().decode()) from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def _wrk(url: str, body: str, seconds: float, connections: int) -> dict[str, Any]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body}]]\n"
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()

    return parse_wrk(out)


def run(seconds: float = 10, connections: int = 64, workers: int = 2) -> dict[str, Any]:
    ceiling: Ceiling = measure_ceiling()
    results: dict[str, Any] = {"ceiling": ceiling}
    with tempfile.TemporaryDirectory() as tmp, TestIssuer() as issuer:
        data_dir = Path(tmp)
        port = _free_port()
        federation = _seed(data_dir, issuer, port)
        results["in_process_rps"] = in_process_issuance(data_dir, issuer, federation, min(seconds, 5))
        if shutil.which("wrk") is None:
            results["http"] = None
            return results
        body = urlencode(_form(federation, issuer.mint(sub=SUBJECT, lifetime=3600)))
        with _server(data_dir, port, workers) as base:
            url = f"{base}/{federation.tenant_id}/oauth2/v2.0/token"
            _wrk(url, body, 2, connections)  # warm-up: keys fetched, connections open
            results["http"] = _wrk(url, body, seconds, connections)
        results["workers"] = workers
        results["connections"] = connections
    return results


def report(results: dict[str, Any]) -> str:
    ceiling: Ceiling = results["ceiling"]
    per_core = ceiling.sign_and_verify_per_s
    lines = [
        "authority (RS256 federated client_credentials)",
        f"  raw cryptography, one core:  sign {ceiling.sign_per_s:,.0f}/s  verify {ceiling.verify_per_s:,.0f}/s"
        f"  -> 1 sign + 1 verify {per_core:,.0f}/s",
        f"  in-process issuance (1 core): {results['in_process_rps']:,.0f}/s = {results['in_process_rps'] / per_core:.0%} of one core's ceiling",
    ]
    http = results.get("http")
    if http is None:
        lines.append("  HTTPS endpoint: skipped (install wrk: apt-get install wrk)")
    else:
        cores = os.cpu_count() or 1
        lines.append(
            f"  HTTPS endpoint ({results['workers']} workers, {results['connections']} connections, wrk on the same host): "
            f"{http['rps']:,.0f} req/s, p50 {http['p50_ms']:.1f} ms, p99 {http['p99_ms']:.1f} ms, "
            f"non-2xx {http['errors']:.0f}; = {http['rps'] / (cores * per_core):.0%} of the {cores}-core ceiling "
            f"({cores * per_core:,.0f}/s)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(report(run(args.seconds, args.connections, args.workers)))


if __name__ == "__main__":
    main()
