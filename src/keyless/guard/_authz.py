"""Forward-auth: the guard's decision as a service the data plane asks, ``keyless guard authz``.

The proxy in front of the service (nginx, Traefik, Caddy, Envoy) sends each request's headers
here, with the original method and URI, and passes the request on only on a 2xx; the decision is
the reverse proxy's own (:class:`~keyless.guard.Gate`: path safety, policy, token verification),
so both modes behave alike.

Where the original request is read from:

* ``/_keyless/authz/nginx``: ``X-Original-Method`` and ``X-Original-URI`` (nginx ``auth_request``);
* ``/_keyless/authz``: ``X-Forwarded-Method`` and ``X-Forwarded-Uri`` (Traefik ``ForwardAuth``,
  Caddy ``forward_auth``);
* ``/_keyless/envoy/<original path>`` with the original method (Envoy ``ext_authz`` HTTP service,
  ``path_prefix: /_keyless/envoy``).

The endpoint, not the headers present, says which headers carry the original request: a header
the data plane does not set itself (``X-Original-URI`` through Traefik) may come from the client,
and must not choose the path that is checked. A header given twice is refused.

Answers: 200 with the ``X-Keyless-*`` identity headers (none on an anonymous path), 401 with the
RFC 6750 challenge, 403 ``insufficient_scope``, 400 for an unsafe path (403 to nginx, which relays
only 401 and 403), 503 when an issuer's keys cannot be had. ``/_keyless/healthz``,
``/_keyless/readyz`` and ``/_keyless/metrics`` are the same as the proxy's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from keyless._metrics import metrics
from keyless.guard._config import GuardConfig, load_config
from keyless.guard._gate import Gate, Outcome, log_access, refusal
from keyless.guard._ops import OPS_PREFIX, answer, ops_endpoint
from keyless.guard._policy import Policy
from keyless.guard._proxy import identity_headers
from keyless.guard._request_safety import IDENTITY_HEADERS
from keyless.guard._verifier import Verifier

__all__ = ["AUTHZ_PATH", "ENVOY_PREFIX", "NGINX_AUTHZ_PATH", "ForwardAuth", "forward_auth_from_file"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

AUTHZ_PATH = "/_keyless/authz"
NGINX_AUTHZ_PATH = "/_keyless/authz/nginx"
ENVOY_PREFIX = "/_keyless/envoy"
# endpoint -> (method header, URI header, data plane)
_ORIGINAL = {
    NGINX_AUTHZ_PATH: (b"x-original-method", b"x-original-uri", "nginx"),
    AUTHZ_PATH: (b"x-forwarded-method", b"x-forwarded-uri", "forwarded"),
}
_MAX_URI = 8192
_IDENTITY_NAMES = tuple(h.lower().encode() for h in IDENTITY_HEADERS)


class ForwardAuth:
    """The forward-auth decision service as an ASGI app (serve it with uvicorn)."""

    def __init__(
        self,
        config: GuardConfig | None = None,
        *,
        verifier: Verifier | None = None,
        policy: Policy | None = None,
        realm: str = "keyless",
    ) -> None:
        if verifier is None:
            if config is None:
                raise ValueError("ForwardAuth needs a config or a verifier")
            verifier = Verifier(config)
            self._owns_verifier = True
        else:
            self._owns_verifier = False
        self.verifier = verifier
        self.gate = Gate(verifier, policy, realm=realm)
        self.realm = realm
        self._m = metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.verifier.warm()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._owns_verifier:
                        await self.verifier.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if path.startswith(OPS_PREFIX) and path not in _ORIGINAL and not path.startswith(ENVOY_PREFIX):
            await ops_endpoint(scope, send, self.verifier, upstream=None)
            return
        original = _original_request(scope, path, headers)
        if isinstance(original, str):  # a data plane configured wrong: say what is missing
            await answer(send, 400, original.encode() + b"\n")
            return
        method, raw_path, via = original
        decoded = _decode(raw_path)
        if decoded is None:
            outcome = Outcome(False, 400, "bad_path", "the path is not ASCII", error="invalid_request")
        else:
            outcome = await self.gate.check(method, decoded, headers, raw_path)
        if outcome.allowed:
            out = identity_headers(outcome.identity) if outcome.identity is not None else []
            if via != "nginx":
                # Envoy overwrites only the headers an answer has, and Caddy 2.6 sets a header the
                # answer lacks to its placeholder's text: answer every one, empty when absent
                # (nginx drops a header set to an empty value, so it gets only those present).
                present = {name for name, _ in out}
                out += [(h, b"") for h in _IDENTITY_NAMES if h not in present]
            out.append((b"content-length", b"0"))
            status = 200
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": b""})
        else:
            status, out, body = refusal(outcome, self.realm)
            if via == "nginx" and status == 400:
                status = 403  # nginx's auth_request relays 401 and 403; anything else becomes a 500
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": body})
        seconds = time.perf_counter() - started
        shown = decoded if decoded is not None else raw_path.decode("latin-1")
        log_access(method, shown, status, outcome, seconds, upstream=f"authz:{via}")
        self._m.guard_decisions.labels("allow" if outcome.allowed else "deny", outcome.code).inc()
        self._m.request_duration.labels("guard", f"authz:{via}", str(status)).observe(seconds)


def _original_request(
    scope: Scope, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[str, bytes, str] | str:
    """(method, raw path, data plane) of the request being asked about, or what is missing."""
    if path.startswith(ENVOY_PREFIX + "/") or path == ENVOY_PREFIX:
        raw: bytes = scope.get("raw_path") or path.encode()
        if not raw.startswith(ENVOY_PREFIX.encode()):
            return f"the path prefix must be {ENVOY_PREFIX} exactly, unencoded"
        return scope["method"], raw[len(ENVOY_PREFIX) :] or b"/", "envoy"
    if path not in _ORIGINAL:
        return (
            f"not a forward-auth path: ask {AUTHZ_PATH} (Traefik, Caddy), {NGINX_AUTHZ_PATH} (nginx)"
            f" or {ENVOY_PREFIX}/... (Envoy)"
        )
    method_header, uri_header, via = _ORIGINAL[path]
    methods = [v for n, v in headers if n == method_header]
    uris = [v for n, v in headers if n == uri_header]
    if len(uris) != 1 or len(methods) != 1:
        return f"{path} needs exactly one {method_header.decode()} and one {uri_header.decode()} header"
    if len(uris[0]) > _MAX_URI:
        return f"{uri_header.decode()} is longer than {_MAX_URI} bytes"
    return methods[0].decode("latin-1").upper(), uris[0].split(b"?", 1)[0] or b"/", via


def _decode(raw_path: bytes) -> str | None:
    """The path as an ASGI server would give it (percent-decoded), or None if it is not ASCII."""
    try:
        return unquote(raw_path.decode("ascii"))
    except UnicodeDecodeError:
        return None


def forward_auth_from_file(config_path: str) -> ForwardAuth:
    """The service for a configuration file: what each ``keyless guard authz --workers N`` process builds."""
    return ForwardAuth(load_config(config_path))
