"""ASGI middleware (Starlette, FastAPI, any ASGI app) that lets only verified, allowed callers through.

Pure ASGI, not ``BaseHTTPMiddleware``: a passing request costs one verification (usually a cache
hit) and the identity lands in ``scope["state"]["identity"]``, which Starlette and FastAPI show as
``request.state.identity`` (``None`` on anonymous paths). A refused request gets 400/401/403/503
with an RFC 6750 ``WWW-Authenticate`` challenge and a small JSON body, and never reaches the app::

    app = FastAPI()
    app.add_middleware(GuardMiddleware, config=load_config("guard.yaml"))

Before the app sees a request, the same header rules as the proxy's apply
(``_request_safety.HeaderFilter``): headers that fold to ``X-Keyless-*`` and override headers
(``X-Original-URL``, ``X-HTTP-Method-Override``, ``Forwarded``, ... unless the configuration's
``forward_override_headers`` allows them) are removed, and on an anonymous path so are
``Authorization`` and ``X-Serverless-Authorization`` unless the rule says ``forward_authorization``.

The middleware closes a verifier it made itself when the app's lifespan shuts down.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from keyless.guard._config import GuardConfig, load_config
from keyless.guard._gate import Gate, log_access, refusal
from keyless.guard._policy import Policy
from keyless.guard._request_safety import HeaderFilter
from keyless.guard._verifier import Verifier

__all__ = ["GuardMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GuardMiddleware:
    """Verify the bearer token and apply the policy before the wrapped app sees a request.

    Give a ready ``verifier`` (shared, closed by its owner) or a ``config`` / ``config_file`` (the
    middleware makes the verifier). ``policy`` overrides the configuration's. ``access_log`` writes
    a line per request to the ``keyless.guard.access`` logger.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier | None = None,
        config: GuardConfig | None = None,
        config_file: str | None = None,
        policy: Policy | None = None,
        realm: str = "keyless",
        access_log: bool = False,
    ) -> None:
        self.app = app
        self._owns_verifier = verifier is None
        if verifier is None:
            if config is None:
                if config_file is None:
                    raise ValueError("GuardMiddleware needs a verifier, a config or a config_file")
                config = load_config(config_file)
            verifier = Verifier(config)
        self.verifier = verifier
        self.gate = Gate(verifier, policy, realm=realm)
        self.realm = realm
        self.access_log = access_log
        self.headers = HeaderFilter(verifier.config.forward_override_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope.get("method", "GET") if kind == "http" else "GET"
        path = scope["path"]
        outcome = await self.gate.check(method, path, scope["headers"], scope.get("raw_path"))
        if self.access_log:
            log_access(method, path, outcome.status, outcome, time.perf_counter() - started)
        if outcome.allowed:
            cleaned = self.headers.clean(scope["headers"], strip_tokens=outcome.strips_tokens)
            if cleaned is not None:
                scope = {**scope, "headers": cleaned}
            state = scope.get("state")
            if state is None:
                state = scope["state"] = {}
            state["identity"] = outcome.identity
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": outcome.code})
            return
        status, headers, body = refusal(outcome, self.realm)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.shutdown" and self._owns_verifier:
                await self.verifier.aclose()
            return message

        return wrapped
