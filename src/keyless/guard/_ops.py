"""The guard's own endpoints under ``/_keyless/``, outside the upstream's path space (the proxy
never forwards them), for the proxy and the forward-auth service alike:

* ``/_keyless/healthz``: liveness, from memory;
* ``/_keyless/readyz``: every exactly-configured issuer has a key set at hand (fetched now if
  needed, within the key cache's cooldown and backoff) and, for the proxy, the upstream accepts a
  TCP connection; 503 with the reasons otherwise;
* ``/_keyless/metrics``: Prometheus, only for peers in ``metrics.allow_from`` (404 to others).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from keyless._metrics import CONTENT_TYPE, metrics, render
from keyless.guard._verifier import Verifier

__all__ = ["OPS_PREFIX", "answer", "ops_endpoint", "sync_cache_counts"]

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

OPS_PREFIX = "/_keyless/"
UPSTREAM_PROBE_SECONDS = 2.0


async def answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"text/plain; charset=utf-8",
    *,
    head: bool = False,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def ops_endpoint(
    scope: MutableMapping[str, Any], send: Send, verifier: Verifier, *, upstream: str | None
) -> None:
    path, method = scope["path"], scope["method"]
    head = method == "HEAD"
    if method not in ("GET", "HEAD"):
        await answer(send, 404, b"not found\n")
    elif path == "/_keyless/healthz":
        await answer(send, 200, b'{"status":"ok"}', b"application/json", head=head)
    elif path == "/_keyless/readyz":
        ready, checks = await _readiness(verifier, upstream)
        body = json.dumps({"status": "ready" if ready else "not ready", "checks": checks}).encode()
        await answer(send, 200 if ready else 503, body, b"application/json", head=head)
    elif path == "/_keyless/metrics" and _may_scrape(scope, verifier):
        sync_cache_counts(verifier)
        await answer(send, 200, render(), CONTENT_TYPE.encode(), head=head)
    else:
        await answer(send, 404, b"not found\n")


def _may_scrape(scope: MutableMapping[str, Any], verifier: Verifier) -> bool:
    client = scope.get("client")
    if not client:
        return False
    with contextlib.suppress(ValueError):
        peer = ip_address(client[0])
        return any(peer in network for network in verifier.config.metrics_allow_from)
    return False


async def _readiness(verifier: Verifier, upstream: str | None) -> tuple[bool, dict[str, Any]]:
    problems = await verifier.warm()
    checks: dict[str, Any] = {
        "issuers": {
            "ok": all(p is None for p in problems.values()),
            **({"problems": {i: p for i, p in problems.items() if p}} if any(problems.values()) else {}),
        }
    }
    if upstream is not None:
        reason = await _upstream_problem(upstream)
        checks["upstream"] = {"ok": reason is None, **({"reason": reason} if reason else {})}
    return all(c["ok"] for c in checks.values()), checks


async def _upstream_problem(upstream: str) -> str | None:
    parts = urlsplit(upstream)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), timeout=UPSTREAM_PROBE_SECONDS
        )
    except (OSError, TimeoutError) as exc:
        return f"the upstream does not accept connections ({type(exc).__name__})"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


_synced: weakref.WeakKeyDictionary[Verifier, tuple[int, int]] = weakref.WeakKeyDictionary()


def sync_cache_counts(verifier: Verifier) -> None:
    """The verified-token cache counts its own hits (a metric call would double the cost of a hit);
    its counts are copied to the metric when scraped and every few seconds."""
    cache = verifier.token_cache
    if cache is None:
        return
    done = _synced.get(verifier, (0, 0))
    hits, misses = cache.hits, cache.misses
    m = metrics()
    m.guard_token_cache.labels("hit").inc(max(0, hits - done[0]))
    m.guard_token_cache.labels("miss").inc(max(0, misses - done[1]))
    _synced[verifier] = (hits, misses)  # (hits, misses) already counted
