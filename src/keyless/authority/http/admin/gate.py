"""The admin API's front gate (pure ASGI): the admin key is checked before a byte of the body is
read, and a body is read only up to ``admin_max_body_bytes``.

FastAPI parses a JSON body before it runs a route's dependencies, so a check made as a dependency
comes after an attacker's 200 MB body was buffered and parsed. This gate runs first:

1. paths that describe the API (the OpenAPI document and its pages) are public and pass through;
2. everything else needs ``Authorization: Bearer <admin key>``: 401 (Graph's error shape, with
   ``WWW-Authenticate``) without reading the body; keys live in the store, so while the database
   does not answer the gate says 503 with ``Retry-After`` (never a 500);
3. a declared ``Content-Length`` over the cap is refused at once (413); an undeclared (chunked) body
   is read up to the cap and refused as soon as it passes it, so at most ``cap`` bytes are held;
4. the accepted body is handed to the API as it was received.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyless.errors import StoreUnavailable

__all__ = ["ADMIN_API_HEADER", "PUBLIC_PATHS", "AdminGate"]

log = logging.getLogger("keyless.admin")

# On every answer of the admin API, so a client can tell a keyless authority from whatever else
# answers at a URL (the CLI refuses to read answers without it).
ADMIN_API_HEADER = (b"x-keyless-admin", b"v1.0")

PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

KeyCheck = Callable[[str], bool]


class ErrorResponse(Protocol):
    def __call__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> ASGIApp: ...


class _TooLarge(Exception):
    pass


class AdminGate:
    """Authenticate, then bound the body, then hand the request to the admin API."""

    def __init__(
        self, app: ASGIApp, *, check_key: KeyCheck, max_body_bytes: int, error: ErrorResponse
    ) -> None:
        self.app = app
        self.check_key = check_key
        self.max_body_bytes = max_body_bytes
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            send = _marked(send)
        if scope["type"] != "http" or _route_path(scope) in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            refusal = await self._authenticate(headers, scope)
        except StoreUnavailable as exc:
            message = "The directory store is temporarily unavailable; retry after the Retry-After delay."
            retry = {"Retry-After": str(exc.retry_after)}
            await self.error(503, "serviceNotAvailable", message, headers=retry)(scope, receive, send)
            return
        if refusal is not None:
            await self.error(401, "InvalidAuthenticationToken", refusal)(scope, receive, send)
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(scope, receive, send)
            return
        try:
            body = await self._read_body(receive)
        except _TooLarge:
            await self._too_large(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _authenticate(self, headers: Headers, scope: Scope) -> str | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            return "Authentication required: send Authorization: Bearer <admin key>."
        if len(value) > 512 or not await anyio.to_thread.run_sync(self.check_key, value):
            client = scope.get("client")
            log.warning("admin API: refused a bad admin key from %s", client[0] if client else "?")
            return "The admin key is not valid."
        return None

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _TooLarge  # the client left; nothing will be answered anyway
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body is larger than {self.max_body_bytes} bytes."
        response = self.error(413, "RequestEntityTooLarge", message)
        await response(scope, receive, _closing(send))


def _route_path(scope: Scope) -> str:
    """The path below the mount point (``/admin``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _marked(send: Send) -> Callable[[Message], Awaitable[None]]:
    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), ADMIN_API_HEADER]}
        await send(message)

    return marked


def _closing(send: Send) -> Callable[[Message], Awaitable[None]]:
    """Ask the server to close the connection after the refusal: the rest of the body is unread."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await send(message)

    return closing
