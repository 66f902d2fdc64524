"""``keyless guard``: an ASGI reverse proxy that lets only verified, allowed callers reach an upstream.

Per request: the gate decides (see ``_gate``); a refusal is answered here and never forwarded.
An allowed request goes to the upstream with

* hop-by-hop headers removed (RFC 9110 §7.6.1, plus any named in ``Connection``);
* every header whose name folds (case, and ``_``/``.`` as ``-``) to ``X-Keyless-*`` removed, and
  the verified identity added:
  ``X-Keyless-Subject``, ``-Object-Id``, ``-App-Id``, ``-Tenant-Id``, ``-Roles`` (comma-separated),
  ``-Scopes`` (space-separated), ``-Issuer``, ``-Email`` (each only when the token has it; values
  outside visible ASCII, and commas inside a role, are percent-encoded);
* ``X-Serverless-Authorization`` removed, and ``Authorization`` too when it carried the token or
  the path is anonymous (unless its rule says ``forward_authorization``);
* override headers (``Forwarded``, ``X-Original-URL``, ``X-HTTP-Method-Override``, ``X-Real-IP``,
  ...: ``_request_safety.OVERRIDE_HEADERS``) removed unless ``forward_override_headers`` allows them;
* a special header spelled other than its canonical way (``content_length``, ``X_Serverless_
  Authorization``) removed and never read;
* ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` set by the proxy itself.

Bodies stream both ways over pooled keep-alive connections (see ``_upstream``). An upstream that
refuses connections is 502, one that does not answer in time 504. Each request writes one line to
the ``keyless.guard.access`` logger with the decision and its reason (never the token, never the
query string).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, urlsplit

from keyless._metrics import metrics
from keyless.guard._config import GuardConfig, load_config
from keyless.guard._gate import AUTHORIZATION, SERVERLESS_AUTHORIZATION, Gate, Outcome, log_access, refusal
from keyless.guard._identity import Identity
from keyless.guard._ops import OPS_PREFIX, ops_endpoint, sync_cache_counts
from keyless.guard._policy import Policy
from keyless.guard._request_safety import (
    FORWARDING_HEADERS,
    HEADER_FOLD,
    HOP_BY_HOP,
    IDENTITY_HEADERS,
    IDENTITY_PREFIX,
    OVERRIDE_HEADERS,
)
from keyless.guard._upstream import Body, UpstreamError, UpstreamPool, UpstreamResponse
from keyless.guard._verifier import Verifier, ssl_context_for

__all__ = ["IDENTITY_HEADERS", "GuardProxy", "identity_headers", "proxy_from_file"]

logger = logging.getLogger("keyless.guard")

CACHE_COUNT_SYNC_SECONDS = 5.0
RACE_DISCONNECT_ABOVE = 256 * 1024  # bytes of declared body past which the client's leaving is watched

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# What the proxy does with a request header, by its folded name (``header_key``). A name not in the
# table is forwarded unless it folds to ``x-keyless-*``; a name in the table spelled any other way
# than its folded form (``X_Keyless_Roles``, ``content_length``) is dropped and never read.
_DROP, _KEEP, _AUTHORIZATION, _HOST, _LENGTH, _FORWARDED_FOR = range(6)
_ACTIONS: dict[bytes, int] = {
    **dict.fromkeys(HOP_BY_HOP | OVERRIDE_HEADERS | FORWARDING_HEADERS, _DROP),
    **{name.lower().encode("ascii"): _DROP for name in IDENTITY_HEADERS},
    b"expect": _DROP,
    SERVERLESS_AUTHORIZATION: _DROP,
    AUTHORIZATION: _AUTHORIZATION,
    b"host": _HOST,
    b"content-length": _LENGTH,
    b"x-forwarded-for": _FORWARDED_FOR,
}
_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%") + " "


def _header_value(text: str, *, also: str = "") -> bytes:
    """``text`` as a header value: visible ASCII as is, anything else (and ``also``) percent-encoded."""
    if text.isascii() and text.isprintable() and not (also and any(map(text.__contains__, also))):
        return text.encode("ascii")
    safe = "".join(c for c in _VISIBLE if c not in also)
    return quote(text, safe=safe).encode("ascii")


def identity_headers(identity: Identity) -> list[tuple[bytes, bytes]]:
    """The ``X-Keyless-*`` headers the upstream receives for ``identity``."""
    headers = [(b"x-keyless-subject", _header_value(identity.subject))]
    for name, value in (
        (b"x-keyless-object-id", identity.object_id),
        (b"x-keyless-app-id", identity.app_id),
        (b"x-keyless-tenant-id", identity.tenant_id),
    ):
        if value:
            headers.append((name, _header_value(value)))
    if identity.roles:
        headers.append((b"x-keyless-roles", b",".join(_header_value(r, also=", ") for r in identity.roles)))
    if identity.scopes:
        headers.append((b"x-keyless-scopes", b" ".join(_header_value(s, also=" ") for s in identity.scopes)))
    headers.append((b"x-keyless-issuer", _header_value(identity.issuer)))
    if identity.email:
        headers.append((b"x-keyless-email", _header_value(identity.email)))
    return headers


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a ``Connection`` header lists (hop-by-hop for this connection only), folded."""
    named: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            named.update(t.strip().translate(HEADER_FOLD) for t in value.split(b",") if t.strip())
    return frozenset(named)


class _ClientGone(Exception):
    pass


class GuardProxy:
    """The reverse proxy as an ASGI app (serve it with uvicorn); handles its own lifespan.

    ``verifier`` may be shared (its owner closes it); by default one is made from ``config``.
    Upstream connections use the configuration's timeouts (and its ``ca_bundle`` for ``https``).
    """

    def __init__(
        self,
        upstream: str | None = None,
        *,
        config: GuardConfig | None = None,
        verifier: Verifier | None = None,
        policy: Policy | None = None,
        realm: str = "keyless",
        max_connections: int = 512,
    ) -> None:
        if verifier is None:
            if config is None:
                raise ValueError("GuardProxy needs a config or a verifier")
            verifier = Verifier(config)
            self._owns_verifier = True
        else:
            self._owns_verifier = False
        config = verifier.config
        target = upstream or config.upstream
        if not target:
            raise ValueError("GuardProxy needs an upstream URL (argument or 'upstream' in the config)")
        parts = urlsplit(target)
        self.upstream = target.rstrip("/")
        self._prefix = parts.path.rstrip("/").encode("ascii")
        trust = ssl_context_for(config.ca_bundle)
        self.pool = UpstreamPool(
            self.upstream,
            connect_timeout=config.upstream_connect_timeout,
            read_timeout=config.upstream_timeout,
            max_connections=max_connections,
            ssl_context=trust if isinstance(trust, ssl.SSLContext) else None,
        )
        self.verifier = verifier
        self.gate = Gate(verifier, policy, realm=realm)
        self.realm = realm
        self._actions = {**_ACTIONS, **dict.fromkeys(config.forward_override_headers, _KEEP)}
        self._m = metrics()
        self._syncer: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003, "reason": "not proxied"})

    # -- one request -------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        if path.startswith(OPS_PREFIX):  # the guard's own: never forwarded
            await ops_endpoint(scope, send, self.verifier, upstream=self.upstream)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        outcome = await self.gate.check(method, path, headers, scope.get("raw_path"))
        if not outcome.allowed:
            status, out_headers, body = refusal(outcome, self.realm)
            await send({"type": "http.response.start", "status": status, "headers": out_headers})
            await send({"type": "http.response.body", "body": body})
            self._done(method, path, status, outcome, started, None)
            return
        status, upstream_note = await self._forward(scope, receive, send, outcome)
        self._done(method, path, status, outcome, started, upstream_note)

    def _done(
        self, method: str, path: str, status: int, outcome: Outcome, started: float, upstream: str | None
    ) -> None:
        seconds = time.perf_counter() - started
        log_access(method, path, status, outcome, seconds, upstream=upstream)
        m = self._m
        m.guard_decisions.labels("allow" if outcome.allowed else "deny", outcome.code).inc()
        m.request_duration.labels("guard", "proxy", str(status)).observe(seconds)

    async def _sync_cache_counts_forever(self) -> None:
        while True:
            await asyncio.sleep(CACHE_COUNT_SYNC_SECONDS)
            sync_cache_counts(self.verifier)

    def _upstream_headers(
        self, scope: Scope, outcome: Outcome
    ) -> tuple[list[tuple[bytes, bytes]], int | None]:
        """The headers the upstream gets, and the body's declared length (if the client gave one)."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        named = _connection_tokens(headers)
        actions = self._actions
        forward_authorization = not outcome.strips_tokens and outcome.token_header != AUTHORIZATION
        out: list[tuple[bytes, bytes]] = []
        forwarded_for = b""
        host = b""
        length: int | None = None
        for name, value in headers:
            key = name.translate(HEADER_FOLD)
            action = actions.get(key)
            if action is None:
                if not key.startswith(IDENTITY_PREFIX) and not (named and key in named):
                    out.append((name, value))
                continue
            if key != name:
                continue  # an odd spelling of a special header: neither read nor forwarded
            if action == _LENGTH:
                if value.strip().isdigit():
                    length = int(value)
            elif action == _FORWARDED_FOR:
                forwarded_for = value
            elif action == _HOST:
                host = value
            elif (action == _KEEP or (action == _AUTHORIZATION and forward_authorization)) and not (
                named and key in named
            ):
                out.append((name, value))
        client = scope.get("client")
        if client:
            address = str(client[0]).encode("ascii", "replace")
            forwarded_for = forwarded_for + b", " + address if forwarded_for else address
        if forwarded_for:
            out.append((b"x-forwarded-for", forwarded_for))
        out.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("ascii")))
        if host:
            out.append((b"x-forwarded-host", host))
        if outcome.identity is not None:
            out.extend(identity_headers(outcome.identity))
        return out, length

    def _target(self, scope: Scope) -> bytes:
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        query = scope.get("query_string") or b""
        return self._prefix + raw_path + (b"?" + query if query else b"")

    async def _forward(self, scope: Scope, receive: Receive, send: Send, outcome: Outcome) -> tuple[int, str]:
        first = await receive()
        if first["type"] == "http.disconnect":
            return 499, "client gone"
        headers, length = self._upstream_headers(scope, outcome)
        chunk: bytes = first.get("body", b"")
        body: Body
        if first.get("more_body", False):
            body = self._body(chunk, receive)
        elif chunk or length is not None or any(n == b"transfer-encoding" for n, _ in scope["headers"]):
            body, length = chunk, None
        else:
            body = None
        try:
            response = await self.pool.request(
                scope["method"], self._target(scope), headers, body, length=length
            )
        except _ClientGone:
            return 499, "client gone"
        except UpstreamError as exc:
            return await self._gateway_error(send, exc.status, exc.reason)
        try:
            await self._relay(response, receive, send)
        finally:
            await response.aclose()
        return response.status, str(response.status)

    @staticmethod
    async def _body(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
        if first:
            yield first
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def _relay(self, response: UpstreamResponse, receive: Receive, send: Send) -> None:
        dropped = HOP_BY_HOP | _connection_tokens(response.headers)
        headers = [(n, v) for n, v in response.headers if n not in dropped]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        declared = next((v for n, v in headers if n == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) <= RACE_DISCONNECT_ABOVE:
            await self._copy(response, send)  # small: done sooner than a watcher would notice
            return
        # A large body, or one of unknown length that may never end (event streams): stop reading
        # the upstream when the client leaves (sends to a gone client are silently dropped, so the
        # copy alone would drain the whole answer), and close that upstream connection.
        copy = asyncio.ensure_future(self._copy(response, send))
        gone = asyncio.ensure_future(self._disconnected(receive))
        try:
            await asyncio.wait({copy, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (copy, gone):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if copy.done() and not copy.cancelled():
            copy.result()

    @staticmethod
    async def _copy(response: UpstreamResponse, send: Send) -> None:
        try:
            async for chunk in response.stream():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            # The status is sent already: drop the connection rather than end a truncated body cleanly.
            logger.warning("the upstream's answer broke off: %s", exc.reason)
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _disconnected(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _gateway_error(self, send: Send, status: int, reason: str) -> tuple[int, str]:
        logger.warning("%s", reason)
        code = "upstream_unavailable" if status == 502 else "upstream_timeout"
        _, headers, body = refusal(Outcome(False, status, code, reason), self.realm)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status, reason

    # -- life cycle --------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                self._syncer = asyncio.create_task(self._sync_cache_counts_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._syncer is not None:
                    self._syncer.cancel()
                sync_cache_counts(self.verifier)
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Fetch the trusted issuers' keys ahead of the first request; problems are only logged."""
        for warning in self.verifier.config.development_warnings():
            logger.warning("%s", warning)
        for issuer, problem in (await self.verifier.warm()).items():
            if problem is not None:
                logger.warning("issuer %s: %s (will retry on demand)", issuer, problem)

    async def aclose(self) -> None:
        await self.pool.aclose()
        if self._owns_verifier:
            await self.verifier.aclose()


def proxy_from_file(upstream: str | None, config_path: str) -> GuardProxy:
    """The proxy for a configuration file: what each ``keyless guard --workers N`` process builds."""
    return GuardProxy(upstream, config=load_config(config_path))
