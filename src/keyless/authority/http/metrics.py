"""``/metrics``: the Prometheus exposition of the authority (every worker's figures in one set).

Mounted behind the admin gate, so a scrape needs the admin key (``Authorization: Bearer <key>``);
operators who prefer an unauthenticated scrape on a private address set ``KEYLESS_METRICS_ADDRESS``
and the CLI starts a listener there instead (``keyless._metrics.serve_metrics``).
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from keyless._metrics import CONTENT_TYPE, render

__all__ = ["metrics_app"]


async def metrics_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        await _answer(send, 405, b"GET only\n", [(b"allow", b"GET, HEAD")])
        return
    body = render()
    await _answer(send, 200, b"" if scope["method"] == "HEAD" else body, [], length=len(body))


async def _answer(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]], *, length: int | None = None
) -> None:
    headers = [
        (b"content-type", CONTENT_TYPE.encode() if status == 200 else b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body) if length is None else length).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
