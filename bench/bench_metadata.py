"""Metadata emulator throughput, each figure next to the raw crypto ceiling measured in the same run:

* the identity endpoint over HTTP on loopback, with a cached token and with a fresh mint per
  request (reuse margin = lifetime), loaded by httpx (keep-alive, asyncio) from a second process;
* the seed round trip: GET identity from the emulator, then POST it as a client assertion to the
  authority's token endpoint (HTTPS, ``keyless serve`` in its own process), per second.

    .venv/bin/python -m bench.bench_metadata --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench._ceiling import Ceiling, measure_ceiling
from bench._wrk import parse_wrk
from keyless.metadata import DEFAULT_UNIQUE_ID, MetadataServer, load_metadata_config

AUDIENCE = "api://AzureADTokenExchange"
IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ROOT = Path(__file__).resolve().parent.parent
_FLAVOR_ARGS = ("-H", "Metadata-Flavor: Google")


# -- the load generator (runs in a second process) -------------------------------------------------


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """Keep ``concurrency`` requests in flight for ``seconds``; count successes and latencies.

    Each worker has its own keep-alive client: httpcore's shared pool slows down sharply with many
    concurrent requests on one client, which would measure the pool instead of the server.
    """
    concurrency, seconds = int(spec["concurrency"]), float(spec["seconds"])
    # One TLS context for every client: building one per client costs milliseconds of CPU each.
    context = ssl.create_default_context(cafile=spec.get("ca_file"))
    latencies: list[float] = []
    errors = 0
    warm_until = time.perf_counter() + min(1.0, seconds / 4)
    started = until = 0.0
    ready = asyncio.Barrier(concurrency + 1)
    go = asyncio.Event()

    async def worker() -> None:
        nonlocal errors
        async with (
            httpx.AsyncClient(timeout=30, verify=context) as metadata,
            httpx.AsyncClient(timeout=30, verify=context) as authority,
        ):
            while time.perf_counter() < warm_until:
                await _round(spec, metadata, authority)
            await ready.wait()
            await go.wait()
            while (start := time.perf_counter()) < until:
                ok = await _round(spec, metadata, authority)
                latencies.append(time.perf_counter() - start)
                errors += not ok

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await ready.wait()
    started = time.perf_counter()
    until = started + seconds
    go.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "rps": (len(latencies) - errors) / elapsed,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else float("nan"),
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000 if ordered else float("nan"),
    }


async def _round(spec: dict[str, Any], metadata: httpx.AsyncClient, authority: httpx.AsyncClient) -> bool:
    """One identity request, and (for the round trip) its exchange at the token endpoint."""
    response = await metadata.get(spec["identity_url"], headers={"Metadata-Flavor": "Google"})
    if response.status_code != 200:
        return False
    if "token_url" not in spec:
        return True
    token = await authority.post(spec["token_url"], data={**spec["form"], "client_assertion": response.text})
    return token.status_code == 200 and "access_token" in token.json()


def _run_load(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_metadata", "--load", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=float(spec["seconds"]) + 60,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _wrk(url: str, seconds: float, connections: int) -> dict[str, Any] | None:
    """The same GET from wrk (C, one thread): what the server does when the client costs ~nothing."""
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", *_FLAVOR_ARGS, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    return parse_wrk(out)


# -- the authority for the round trip (its own process) ---------------------------------------------


@contextlib.contextmanager
def _authority(data_dir: Path, issuer: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """``keyless serve --dev`` seeded with the federation; yields (token URL, CA file, form)."""
    from tests._support.authority_server import seed_federation

    from keyless._net import bind_socket
    from keyless.authority._service import Authority
    from keyless.config import load_authority_settings
    from keyless.tls import ensure_local_tls

    with contextlib.closing(bind_socket("127.0.0.1", 0)) as probe:
        port = int(probe.getsockname()[1])
    settings = load_authority_settings(
        data_dir=data_dir, port=port, dev_mode=True, allow_http_loopback_issuers=True
    )
    authority = Authority.open(settings)
    federation = seed_federation(authority.admin, issuer=issuer, subject=DEFAULT_UNIQUE_ID)
    authority.store.close()
    ca_file = ensure_local_tls(data_dir).ca_cert
    assert ca_file is not None
    env = {**os.environ, "KEYLESS_LOG_LEVEL": "warning"}
    command = [
        sys.executable,
        "-m",
        "keyless",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--dev",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"https://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        context = ssl.create_default_context(cafile=str(ca_file))
        while True:
            try:
                httpx.get(
                    f"{base}/{federation.tenant_id}/v2.0/.well-known/openid-configuration", verify=context
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"the authority did not start: {stderr}") from None
                time.sleep(0.2)
        form = {
            "grant_type": "client_credentials",
            "client_id": federation.client.app_id,
            "client_assertion_type": JWT_BEARER,
            "scope": federation.scope,
        }
        yield f"{base}/{federation.tenant_id}/oauth2/v2.0/token", str(ca_file), form
    finally:
        process.terminate()
        process.wait(15)


# -- the run ----------------------------------------------------------------------------------------


def run(seconds: float = 5, concurrency: int = 16) -> dict[str, Any]:
    """Measure everything; returns the figures (see :func:`report`)."""
    ceiling = measure_ceiling(min(2.0, max(0.5, seconds / 2)))
    results: dict[str, Any] = {"ceiling": ceiling, "concurrency": concurrency, "seconds": seconds}
    base = {"seconds": seconds, "concurrency": concurrency}
    with MetadataServer() as cached:
        url = f"{cached.url}{IDENTITY}?audience={AUDIENCE}&format=full"
        results["identity_cached"] = _run_load({**base, "identity_url": url})
        results["identity_cached_wrk"] = _wrk(url, seconds, concurrency)
        with tempfile.TemporaryDirectory() as tmp, _authority(Path(tmp), cached.url) as (token_url, ca, form):
            spec = {**base, "identity_url": url, "token_url": token_url, "ca_file": ca, "form": form}
            results["round_trip"] = _run_load(spec)
    with MetadataServer(load_metadata_config(reuse_margin=3600)) as fresh:
        url = f"{fresh.url}{IDENTITY}?audience={AUDIENCE}&format=full"
        results["identity_fresh"] = _run_load({**base, "identity_url": url})
        results["identity_fresh_wrk"] = _wrk(url, seconds, concurrency)
    return results


def report(results: dict[str, Any]) -> str:
    ceiling: Ceiling = results["ceiling"]
    sign, pair = ceiling.sign_per_s, ceiling.sign_and_verify_per_s
    rows = [
        ("identity, cached token", results["identity_cached"], sign, "sign"),
        ("identity, cached token (wrk)", results["identity_cached_wrk"], sign, "sign"),
        ("identity, fresh mint (1 sign)", results["identity_fresh"], sign, "sign"),
        ("identity, fresh mint (wrk)", results["identity_fresh_wrk"], sign, "sign"),
        ("seed round trip (metadata -> authority)", results["round_trip"], pair, "sign+verify"),
    ]
    lines = [
        f"metadata emulator (RS256; {results['concurrency']} concurrent keep-alive clients in a second process, "
        f"{results['seconds']:g} s each)",
        f"  raw cryptography, one core: sign {sign:,.0f}/s  verify {ceiling.verify_per_s:,.0f}/s"
        f"  (1 sign + 1 verify: {pair:,.0f}/s)",
        "",
        f"  {'measurement':<42}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}   vs ceiling",
    ]
    for name, figures, ceiling_rate, what in rows:
        if figures is None:
            lines.append(f"  {name:<42}{'skipped (install wrk)':>35}")
            continue
        lines.append(
            f"  {name:<42}{figures['rps']:>9,.0f}{figures['p50_ms']:>9.1f}{figures['p99_ms']:>9.1f}"
            f"{figures['errors']:>8}   {figures['rps'] / ceiling_rate:.0%} of one core's {what}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: run the load generator
    args = parser.parse_args()
    if args.load:
        # httpcore tries ``import sniffio`` on every request; without sniffio installed each failed
        # import searches sys.path again. A None entry makes that import fail at once.
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]
        print(json.dumps(asyncio.run(_load(json.loads(args.load)))))
        return
    print(report(run(args.seconds, args.concurrency)))


if __name__ == "__main__":
    main()
