"""Credential costs, next to the raw crypto ceiling measured in the same run:

* a cached ``get_token`` / ``get_token_info`` (sync) and ``await get_token`` (async): ns per call,
  the median of several batches (target: under 5 us);
* a refresh round trip: a token request on the wire through the credential (HTTPS POST, kept-alive
  connection, to ``keyless serve`` in its own process on loopback, which verifies the assertion and
  signs the access token), in ms.

    .venv/bin/python -m bench.bench_credential --refreshes 200
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests._support.oidc_issuer import TestIssuer

from bench._ceiling import Ceiling, measure_ceiling
from bench.bench_authority import _free_port, _seed, _server
from keyless.credential import ClientAssertionCredential, aio

SUBJECT = "112233445566778899001"


def _ns_per_call(call: Callable[[], object], batch: int, batches: int) -> float:
    """Median over ``batches`` of the mean cost of ``batch`` calls, in ns."""
    results = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(batch):
            call()
        results.append((time.perf_counter_ns() - start) / batch)
    return statistics.median(results)


async def _async_ns_per_call(
    credential: aio.ClientAssertionCredential, scope: str, batch: int, batches: int
) -> float:
    results = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(batch):
            await credential.get_token(scope)
        results.append((time.perf_counter_ns() - start) / batch)
    return statistics.median(results)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(refreshes: int = 200, batch: int = 100_000, batches: int = 7, seconds: float = 2.0) -> dict[str, Any]:
    ceiling: Ceiling = measure_ceiling(seconds)
    results: dict[str, Any] = {"ceiling": ceiling}
    with tempfile.TemporaryDirectory() as tmp, TestIssuer() as issuer:
        data_dir, port = Path(tmp), _free_port()
        federation = _seed(data_dir, issuer, port)
        assertion = issuer.mint(sub=SUBJECT, lifetime=3600)  # one assertion: its signing is not ours to count
        scope = federation.scope
        # The authority in its own process (``keyless serve``), as a real deployment runs it.
        with _server(data_dir, port, workers=1) as base:
            context = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
            credential = ClientAssertionCredential(
                federation.tenant_id,
                federation.client.app_id,
                lambda: assertion,
                authority=base,
                verify=context,
            )
            with credential:
                credential.get_token(scope)  # warm: connection open, issuer keys fetched by the authority
                results["cached_get_token_ns"] = _ns_per_call(
                    lambda: credential.get_token(scope), batch, batches
                )
                results["cached_get_token_info_ns"] = _ns_per_call(
                    lambda: credential.get_token_info(scope), batch, batches
                )
                timings = []
                for _ in range(refreshes):
                    credential._cache.clear()  # the next call goes to the authority, as at refresh time
                    start = time.perf_counter()
                    credential.get_token(scope)
                    timings.append((time.perf_counter() - start) * 1000)

            async def measure_async() -> float:
                async with aio.ClientAssertionCredential(
                    federation.tenant_id,
                    federation.client.app_id,
                    lambda: assertion,
                    authority=base,
                    verify=context,
                ) as async_credential:
                    await async_credential.get_token(scope)
                    return await _async_ns_per_call(async_credential, scope, batch, batches)

            results["cached_async_get_token_ns"] = asyncio.run(measure_async())
    results["refresh_ms"] = {
        "median": statistics.median(timings),
        "p90": _percentile(timings, 0.9),
        "min": min(timings),
    }
    results["refreshes"] = refreshes
    return results


def report(results: dict[str, Any]) -> str:
    ceiling: Ceiling = results["ceiling"]
    verify_ns = 1e9 / ceiling.verify_per_s
    refresh = results["refresh_ms"]
    per_core = ceiling.sign_and_verify_per_s
    refresh_per_s = 1000 / refresh["median"]
    lines = [
        "credential (keyless.credential)",
        f"  raw cryptography, one core:  RS256 sign {ceiling.sign_per_s:,.0f}/s  verify {ceiling.verify_per_s:,.0f}/s"
        f"  -> 1 sign + 1 verify {per_core:,.0f}/s",
    ]
    for name, key in (
        ("cached get_token", "cached_get_token_ns"),
        ("cached get_token_info", "cached_get_token_info_ns"),
        ("cached await get_token (aio)", "cached_async_get_token_ns"),
    ):
        ns = results[key]
        lines.append(
            f"  {name + ':':31} {ns:8,.0f} ns/call  ({ns / 1000:.2f} us; target < 5 us; "
            f"{ns / verify_ns:.1%} of one RS256 verify)"
        )
    lines.append(
        f"  refresh round trip (HTTPS POST to `keyless serve` on loopback, {results['refreshes']} requests, one at a time): "
        f"median {refresh['median']:.2f} ms, p90 {refresh['p90']:.2f} ms, min {refresh['min']:.2f} ms "
        f"= {refresh_per_s:,.0f}/s sequential, {refresh_per_s / per_core:.0%} of one core's sign+verify ceiling"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per ceiling measurement")
    args = parser.parse_args()
    print(report(run(args.refreshes, args.batch, args.batches, args.seconds)))


if __name__ == "__main__":
    main()
