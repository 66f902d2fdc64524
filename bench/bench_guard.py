"""Guard throughput: token verification against the raw `cryptography` ceiling, and the reverse
proxy's overhead against calling the upstream directly, under load from a second process.

    .venv/bin/python -m bench.bench_guard [--seconds 2] [--connections 32] [--no-proxy] [--workers 1]

Verification figures come from interleaved rounds of about 50 ms (raw, guard uncached, guard cached,
PyJWT, raw, ...) and keep each one's median round, so that noise from other processes hits all of
them alike. The token is an Entra v2-shaped access token (about 1.4 KB) signed RS256 by a local
issuer; the issuer is stopped before measuring (see ``verification``).

The proxy figures: an upstream (a minimal ASGI app) and ``keyless guard`` each run under uvicorn in
their own process; a load generator in a third process keeps N keep-alive connections busy for a
bounded time, first against the upstream, then through the guard, with the same request (token
included). The generator speaks HTTP/1.1 on raw asyncio streams: an httpx client would itself be the
bottleneck long before the upstream is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from tests._support.oidc_issuer import TestIssuer

from keyless.guard import Verifier, config_from_mapping
from keyless.jose import parse_compact

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RESOURCE = "6f2f3a1e-52a5-4c1e-9d1f-0b5b6c2d9e11"
ROOT = Path(__file__).resolve().parent.parent


def _claims(issuer: TestIssuer) -> dict[str, Any]:
    """An Entra v2 app-only access token's claims, with the test issuer's iss."""
    return {
        "aud": RESOURCE,
        "iss": issuer.url,
        "aio": "E2RgYJg" + "x" * 70,
        "azp": str(uuid.uuid4()),
        "azpacr": "2",
        "idtyp": "app",
        "oid": str(uuid.uuid4()),
        "rh": "0." + "A" * 90 + ".",
        "roles": ["Blob.Read", "Blob.Write"],
        "sub": str(uuid.uuid4()),
        "tid": TENANT,
        "uti": "y" * 22,
        "ver": "2.0",
        "xms_ftd": "z" * 60,
        "xms_idrel": "7 12",
    }


def _config(issuer: TestIssuer, *, cache: int) -> Any:
    return config_from_mapping(
        {
            "issuers": [{"kind": "oidc", "issuer": issuer.url}],
            "audiences": [RESOURCE],
            "allow_http_loopback_issuers": True,
            "token_cache_size": cache,
            "upstream": "http://127.0.0.1:1",
        }
    )


# -- verification ----------------------------------------------------------------------------------


ROUND_SECONDS = 0.05


def _interleaved(runners: dict[str, Callable[[int], None]], seconds: float) -> dict[str, float]:
    """Operations per second of each runner, from rounds of about 50 ms taken in turn.

    Taking turns lets every runner see the same machine (other processes, clock speed); the median
    round is kept. Rounds are long enough that the caches a runner finds cold after another one ran
    (a few hundred microseconds of refilling) do not count: with 3 ms rounds the guard, whose Python
    code has a larger footprint than a raw ``verify`` loop, measured 8-10% below its steady speed.
    """
    batches: dict[str, int] = {}
    for name, fn in runners.items():  # warm up, and size each runner's batch to one round
        batch = 8
        while True:
            started = time.perf_counter()
            fn(batch)
            elapsed = time.perf_counter() - started
            if elapsed >= ROUND_SECONDS / 4:
                batches[name] = max(1, round(batch * ROUND_SECONDS / elapsed))
                break
            batch *= 2
    rates: dict[str, list[float]] = {name: [] for name in runners}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or min(len(found) for found in rates.values()) < 3:
        for name, fn in runners.items():
            batch = batches[name]
            started = time.perf_counter()
            fn(batch)
            rates[name].append(batch / (time.perf_counter() - started))
    return {name: statistics.median(found) for name, found in rates.items()}


def verification(seconds: float) -> dict[str, float]:
    """Operations per second: raw RS256 verify, the guard uncached and cached, PyJWT (interleaved).

    The test issuer serves the keys once and is stopped before measuring: its server thread wakes
    every 20 ms and takes the GIL, which would tax every figure (a guard process has no such
    thread). The verifiers keep the fetched key set for its max age (an hour).
    """
    with TestIssuer() as issuer:
        token = issuer.mint(_claims(issuer), lifetime=3600)
        public = issuer.signer.public_key().key
        issuer_url = issuer.url
        loop = asyncio.new_event_loop()
        uncached = Verifier(_config(issuer, cache=0))
        cached = Verifier(_config(issuer, cache=1000))
        loop.run_until_complete(uncached.verify(token))  # fetch the keys once
        loop.run_until_complete(cached.verify(token))
    parsed = parse_compact(token)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    try:

        def raw(n: int) -> None:
            for _ in range(n):
                public.verify(parsed.signature, parsed.signing_input, pkcs1, sha256)

        def through(verifier: Verifier) -> Callable[[int], None]:
            async def many(n: int) -> None:
                verify = verifier.verify
                for _ in range(n):
                    await verify(token)

            return lambda n: loop.run_until_complete(many(n))

        def pyjwt(n: int) -> None:
            for _ in range(n):
                jwt.decode(token, public, algorithms=["RS256"], audience=RESOURCE, issuer=issuer_url)

        return _interleaved(
            {
                "raw": raw,
                "guard_uncached": through(uncached),
                "guard_cached": through(cached),
                "pyjwt": pyjwt,
            },
            seconds,
        )
    finally:
        loop.run_until_complete(uncached.aclose())
        loop.run_until_complete(cached.aclose())
        loop.close()


# -- proxy overhead --------------------------------------------------------------------------------

_BODY = b'{"ok":true}'


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The protected service: a fixed small JSON answer."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _BODY})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def _server(args: list[str], port: int) -> Iterator[None]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(port, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


def _proxied_request(port: int, token: str) -> bytes:
    return (
        f"GET /items/1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


def _authz_request(port: int, token: str) -> bytes:
    """What Traefik or Caddy send to ``keyless guard authz`` for ``GET /items/1``."""
    return (
        f"GET /_keyless/authz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /items/1\r\nX-Forwarded-Host: api.example\r\n"
        "X-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"
    ).encode()


async def _load(
    port: int, token: str, connections: int, seconds: float, request: bytes | None = None
) -> dict[str, Any]:
    request = request or _proxied_request(port, token)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "statuses": statuses,
    }


def _load_process(
    port: int, token: str, connections: int, seconds: float, out: Any, request: bytes | None = None
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    out.send(asyncio.run(_load(port, token, connections, seconds, request)))


def _measure_load(
    port: int, token: str, connections: int, seconds: float, request: bytes | None = None
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(
        target=_load_process, args=(port, token, connections, seconds, sending, request)
    )
    process.start()
    result: dict[str, Any] = receiving.recv()
    process.join()
    return result


def proxy_overhead(seconds: float, connections: int, workers: int = 1) -> dict[str, Any]:
    """Upstream direct vs. through ``keyless guard --workers N``: throughput ratio and added latency,
    with one connection (latency) and with ``connections`` (throughput under load)."""
    upstream_port, guard_port = _free_port(), _free_port()
    with TestIssuer() as issuer, tempfile.TemporaryDirectory() as tmp:
        token = issuer.mint(_claims(issuer), lifetime=3600)
        config = Path(tmp) / "guard.yaml"
        config.write_text(
            json.dumps(
                {
                    "issuers": [{"kind": "oidc", "issuer": issuer.url}],
                    "audiences": [RESOURCE],
                    "allow_http_loopback_issuers": True,
                    "policy": {
                        "anonymous": ["/healthz"],
                        "rules": [{"path": "/items/**", "any_of": ["Blob.Read"]}],
                    },
                }
            )
        )
        upstream = [
            "-m", "uvicorn", "bench.bench_guard:upstream_app", "--port", str(upstream_port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        guard = [
            "-c", "from keyless.cli import main; main()",
            "guard", "run", "--upstream", f"http://127.0.0.1:{upstream_port}",
            "--config", str(config), "--port", str(guard_port), "--log-level", "warning",
            "--workers", str(workers),
        ]  # fmt: skip
        with _server(upstream, upstream_port), _server(guard, guard_port):
            _measure_load(upstream_port, token, connections, min(1.0, seconds / 2))  # warm-up
            _measure_load(guard_port, token, connections, min(1.0, seconds / 2))
            result: dict[str, Any] = {}
            for label, count in (("one_connection", 1), ("loaded", connections)):
                direct = _measure_load(upstream_port, token, count, seconds)
                guarded = _measure_load(guard_port, token, count, seconds)
                result[label] = {
                    "connections": count,
                    "direct": direct,
                    "guarded": guarded,
                    "throughput_ratio": guarded["requests_per_s"] / direct["requests_per_s"],
                    "added_p50_ms": guarded["p50_ms"] - direct["p50_ms"],
                    "added_p99_ms": guarded["p99_ms"] - direct["p99_ms"],
                }
    return result


def forward_auth(seconds: float, connections: int) -> dict[str, Any]:
    """``keyless guard authz`` (one process) answering Traefik/Caddy-shaped questions over
    keep-alive: decisions per second with the verified-token cache, and with it off (every
    decision verifies the RS256 signature and every claim)."""
    result: dict[str, Any] = {}
    with TestIssuer() as issuer, tempfile.TemporaryDirectory() as tmp:
        token = issuer.mint(_claims(issuer), lifetime=3600)
        for label, cache in (("cached", 10_000), ("uncached", 0)):
            port = _free_port()
            config = Path(tmp) / f"{label}.yaml"
            config.write_text(
                json.dumps(
                    {
                        "issuers": [{"kind": "oidc", "issuer": issuer.url}],
                        "audiences": [RESOURCE],
                        "allow_http_loopback_issuers": True,
                        "token_cache_size": cache,
                        "policy": {"rules": [{"path": "/items/**", "any_of": ["Blob.Read"]}]},
                    }
                )
            )
            authz = [
                "-c", "from keyless.cli import main; main()",
                "guard", "authz", "--config", str(config), "--port", str(port), "--log-level", "warning",
            ]  # fmt: skip
            request = _authz_request(port, token)
            with _server(authz, port):
                _measure_load(port, token, connections, min(1.0, seconds / 2), request)  # warm-up
                result[label] = _measure_load(port, token, connections, seconds, request)
    return result


# -- report ----------------------------------------------------------------------------------------


def run(
    seconds: float = 2.0, *, connections: int = 32, proxy: bool = True, workers: int = 1
) -> dict[str, Any]:
    """Every figure of this benchmark, as a dict (``__main__`` prints it as a table)."""
    rates = verification(seconds * 2)
    ceiling = rates["raw"]
    result: dict[str, Any] = {
        "ceiling_rs256_verify_per_s": ceiling,
        "guard_uncached_per_s": rates["guard_uncached"],
        "guard_uncached_pct_of_ceiling": 100 * rates["guard_uncached"] / ceiling,
        "guard_cached_per_s": rates["guard_cached"],
        "guard_cached_x_ceiling": rates["guard_cached"] / ceiling,
        "pyjwt_per_s": rates["pyjwt"],
        "pyjwt_pct_of_ceiling": 100 * rates["pyjwt"] / ceiling,
    }
    if proxy:
        result["proxy"] = proxy_overhead(seconds, connections, workers)
        result["authz"] = forward_auth(seconds, connections)
    return result


def _table(result: dict[str, Any]) -> str:
    ceiling = result["ceiling_rs256_verify_per_s"]
    rows = [
        ("raw cryptography RS256 verify (ceiling)", f"{ceiling:>12,.0f} /s", "100%"),
        (
            "guard verify, uncached",
            f"{result['guard_uncached_per_s']:>12,.0f} /s",
            f"{result['guard_uncached_pct_of_ceiling']:.1f}% of ceiling (target >= 70%)",
        ),
        (
            "guard verify, cached",
            f"{result['guard_cached_per_s']:>12,.0f} /s",
            f"{result['guard_cached_x_ceiling']:.1f}x ceiling (target >= 10x)",
        ),
        (
            "PyJWT decode (reference)",
            f"{result['pyjwt_per_s']:>12,.0f} /s",
            f"{result['pyjwt_pct_of_ceiling']:.0f}% of ceiling",
        ),
    ]
    for run in (result.get("proxy") or {}).values():
        direct, guarded = run["direct"], run["guarded"]
        count = run["connections"]
        rows += [
            (
                f"upstream direct, {count} connection(s)",
                f"{direct['requests_per_s']:>12,.0f} /s",
                f"p50 {direct['p50_ms']:.2f} ms, p99 {direct['p99_ms']:.2f} ms",
            ),
            (
                f"through keyless guard, {count} connection(s)",
                f"{guarded['requests_per_s']:>12,.0f} /s",
                f"p50 {guarded['p50_ms']:.2f} ms, p99 {guarded['p99_ms']:.2f} ms",
            ),
            (
                f"proxy overhead, {count} connection(s)",
                f"{run['throughput_ratio']:>12.3f} x",
                f"added p50 {run['added_p50_ms']:.2f} ms, p99 {run['added_p99_ms']:.2f} ms",
            ),
        ]
    authz = result.get("authz") or {}
    if authz:
        cached, uncached = authz["cached"], authz["uncached"]
        rows += [
            (
                "forward-auth decisions, cached token",
                f"{cached['requests_per_s']:>12,.0f} /s",
                f"p50 {cached['p50_ms']:.2f} ms (target >= 20,000/s)",
            ),
            (
                "forward-auth decisions, uncached",
                f"{uncached['requests_per_s']:>12,.0f} /s",
                f"{100 * uncached['requests_per_s'] / ceiling:.0f}% of the verify ceiling (target >= 70%)",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {rate}  {note}" for name, rate, note in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="Measuring time per figure.")
    parser.add_argument("--connections", type=int, default=32, help="Load generator connections.")
    parser.add_argument("--no-proxy", action="store_true", help="Only the verification figures.")
    parser.add_argument(
        "--workers", type=int, default=1, help="keyless guard --workers for the proxy figures."
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    result = run(args.seconds, connections=args.connections, proxy=not args.no_proxy, workers=args.workers)
    print(json.dumps(result, indent=2) if args.json else _table(result))


if __name__ == "__main__":
    main()
