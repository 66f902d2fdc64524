"""A programmable stand-in token endpoint over HTTPS on 127.0.0.1 (uvicorn in a thread), for the
failure scenarios a real authority cannot be asked to produce: 503 then up, slow answers,
Retry-After, AADSTS70021 during propagation. It counts requests and keeps their form bodies::

    with StandIn(tls) as endpoint:
        endpoint.script(Reply(503), Reply(503))     # the next two requests; then tokens again
        endpoint.delay = 2.0                        # every request waits first
        endpoint.count                              # requests received
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from keyless.tls import TLSFiles

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | bytes | None = None  # None: a fresh token
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def entra_error(code: int, error: str = "invalid_client", message: str = "refused") -> dict[str, Any]:
    trace, correlation = "0f4ee1d4-3a3a-4a5b-9c1f-7d3c5b0a1e01", "6c2b8c41-8d6e-4a38-a0ff-2c1f5f0b7a42"
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {message}. Trace ID: {trace} Correlation ID: {correlation} "
        "Timestamp: 2026-01-02 03:04:05Z",
        "error_codes": [code],
        "timestamp": "2026-01-02 03:04:05Z",
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


class StandIn:
    """See the module documentation."""

    def __init__(self, tls: TLSFiles, *, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.delay = 0.0
        self.forms: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._script: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._issued = 0
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without
        # it every answer waits ~40 ms for a delayed ACK (Nagle).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"https://localhost:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._app,
                ssl_certfile=str(tls.cert),
                ssl_keyfile=str(tls.key),
                log_level="warning",
                lifespan="off",
                interface="asgi3",
                loop="asyncio",
                timeout_graceful_shutdown=1,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.forms)

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def token_url(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/token"

    def _next(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else Reply()

    def _token_body(self) -> bytes:
        with self._lock:
            self._issued += 1
            number = self._issued
        return json.dumps(
            {
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in,
                "access_token": f"access-token-{number}",
            }
        ).encode()

    async def _app(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        with self._lock:
            self.forms.append(dict(parse_qsl(body.decode())))
            self.paths.append(scope["path"])
        reply = self._next()
        wait = self.delay + reply.delay
        if wait:
            await asyncio.sleep(wait)
        if reply.body is None:
            content = self._token_body()
        elif isinstance(reply.body, bytes):
            content = reply.body
        else:
            content = json.dumps(reply.body).encode()
        headers = [(b"content-type", b"application/json; charset=utf-8")]
        headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        with contextlib.suppress(Exception):  # the client may have given up (timeout tests)
            await send({"type": "http.response.body", "body": content})

    def start(self) -> StandIn:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="token-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the stand-in token endpoint did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving: connections are then refused (the 'authority down' scenario)."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
