"""The HTTP face of the emulator: the GCE / Cloud Run metadata paths that google-auth and other
clients call, and the issuer's OIDC discovery document and keys.

A metadata request (``/`` and everything under ``/computeMetadata/``) is checked in this order:

1. ``X-Forwarded-For`` present           -> 403 (the real server refuses proxied requests)
2. ``Metadata-Flavor: Google`` missing   -> 403 (not required on ``/``, google-auth's ping)
3. a method other than GET               -> 405, ``Allow: GET``
4. the path: unknown -> 404 (Google's wording, as ``text/plain``); a directory without its slash -> 301
5. the query: ``alt`` is ``json`` or ``text``; identity needs a non-empty ``audience`` -> else 400

Before any of these, every request (the issuer endpoints too) must carry a ``Host`` naming the
emulator (see :mod:`keyless.metadata._hosts`): 400 without one, 403 for another name.

Content types are the real server's, except the 404 page: Google serves it as HTML, the emulator as
``text/plain`` with ``X-Content-Type-Options: nosniff``, so a path it echoes is never markup. Leaves
are ``application/text``, ``?recursive=true`` and
``/token`` ``application/json``, the identity token (a bare JWT) ``text/html``. Every response
carries ``Metadata-Flavor: Google``, ``Server: Metadata Server for VM``, ``X-XSS-Protection: 0``
and ``X-Frame-Options: SAMEORIGIN``. The issuer endpoints (``/.well-known/openid-configuration``,
``/oauth2/v3/certs``, ``/oauth2/v1/certs``) need no header: verifiers fetch them like any issuer's.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyless.metadata._config import MetadataConfig, ServiceAccount
from keyless.metadata._hosts import HostCheck, emulator_hosts
from keyless.metadata._issuer import MetadataIssuer

__all__ = ["COMMON_HEADERS", "create_app"]

log = logging.getLogger("keyless.metadata")

COMMON_HEADERS = {
    "Metadata-Flavor": "Google",
    "Server": "Metadata Server for VM",
    "X-XSS-Protection": "0",
    "X-Frame-Options": "SAMEORIGIN",
}
_RAW_COMMON = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in COMMON_HEADERS.items()]

TEXT = "application/text"
JSON = "application/json"
HTML = "text/html; charset=UTF-8"
IDENTITY = "text/html"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_PREFIX = "/computeMetadata"

# Google's 404 page in words; a plain-text body with the path escaped, so that it cannot become
# markup even for a client that ignores the content type.
_NOT_FOUND_PAGE = """Error 404 (Not Found)!!1
404. That\u2019s an error.
The requested URL {path} was not found on this server.  That\u2019s all we know.
"""
PLAIN = "text/plain; charset=utf-8"


# -- the metadata tree --------------------------------------------------------------------------

Leaf = str | int | list[str]


@dataclass(frozen=True, slots=True)
class _Dynamic:
    """A value computed per request (``identity``, ``token``); never part of a recursive listing."""

    kind: Literal["identity", "token"]
    account: ServiceAccount


class _Dir(dict[str, Any]):
    """A metadata directory; names are listed and, in recursive JSON, written in camelCase."""

    camel = True
    hidden: dict[str, Any]

    def __init__(self, entries: Mapping[str, Any], hidden: Mapping[str, Any] | None = None) -> None:
        super().__init__(entries)
        self.hidden = dict(hidden or {})

    def child(self, name: str) -> Any:
        return self.get(name, self.hidden.get(name))


class _AccountsDir(_Dir):
    """``service-accounts/``: keys are ``default`` and emails, kept as they are in JSON."""

    camel = False


def _account_dir(account: ServiceAccount, aliases: list[str]) -> _Dir:
    return _Dir(
        {
            "aliases": aliases,
            "email": account.email,
            "identity": _Dynamic("identity", account),
            "scopes": list(account.scopes),
            "token": _Dynamic("token", account),
        }
    )


def build_tree(config: MetadataConfig) -> _Dir:
    """The ``/computeMetadata/v1/`` directory for this configuration."""
    number = config.numeric_project_id
    default = config.default_account
    accounts: dict[str, Any] = {"default": _account_dir(default, ["default", *default.aliases])}
    hidden: dict[str, Any] = {}
    for account in config.service_accounts:
        aliases = ["default", *account.aliases] if account is default else list(account.aliases)
        node = _account_dir(account, aliases)
        accounts[account.email] = node
        hidden.update(dict.fromkeys(account.aliases, node))
    instance = _Dir(
        {
            "hostname": f"{config.instance_name}.{config.zone}.c.{config.project_id}.internal",
            "id": int(config.instance_id),
            "name": config.instance_name,
            "region": f"projects/{number}/regions/{config.effective_region}",
            "service-accounts": _AccountsDir(accounts, hidden),
            "zone": f"projects/{number}/zones/{config.zone}",
        }
    )
    project = _Dir({"numeric-project-id": number, "project-id": config.project_id})
    universe = _Dir({"universe-domain": config.universe_domain})
    return _Dir({"instance": instance, "project": project, "universe": universe})


_CAMEL = re.compile(r"-([a-z0-9])")


def _json_value(node: Any) -> Any:
    if isinstance(node, _Dir):
        return {
            (_CAMEL.sub(lambda m: m.group(1).upper(), k) if node.camel else k): _json_value(v)
            for k, v in node.items()
            if not isinstance(v, _Dynamic)
        }
    return node


def _text_lines(node: Any, prefix: str) -> list[str]:
    """The ``?recursive=true&alt=text`` form: one ``path value`` line per leaf value."""
    if isinstance(node, _Dir):
        lines: list[str] = []
        for name, child in node.items():
            if not isinstance(child, _Dynamic):
                lines.extend(
                    _text_lines(child, f"{prefix}{name}/" if isinstance(child, _Dir) else prefix + name)
                )
        return lines
    if isinstance(node, list):
        return [f"{prefix}/{i} {item}" for i, item in enumerate(node)]
    return [f"{prefix} {node}"]


def _leaf_text(value: Leaf) -> str:
    if isinstance(value, list):
        return "".join(f"{item}\n" for item in value)
    return str(value)


def _listing(node: _Dir) -> str:
    return "".join(f"{name}/\n" if isinstance(child, _Dir) else f"{name}\n" for name, child in node.items())


# -- responses ----------------------------------------------------------------------------------


def _respond(
    body: str | bytes,
    content_type: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    etag: bool = False,
) -> Response:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    all_headers = {"content-type": content_type, **(headers or {})}
    if etag:
        all_headers["etag"] = hashlib.md5(raw, usedforsecurity=False).hexdigest()[16:]
    return Response(raw, status_code=status, headers=all_headers)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return _respond(message + "\n", HTML, status, headers)


def _not_found(path: str) -> Response:
    shown = html.escape(path.encode("unicode_escape").decode("ascii"))  # no markup, no control characters
    return _respond(_NOT_FOUND_PAGE.format(path=shown), PLAIN, 404, {"X-Content-Type-Options": "nosniff"})


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class _GuardHeaders:
    """Pure ASGI middleware that adds the metadata server's headers to every response (and, if
    asked, records ``METHOD path?query`` of each request: tests check what clients called)."""

    def __init__(self, app: ASGIApp, request_log: deque[str] | None) -> None:
        self.app = app
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.request_log is not None:
            query = scope.get("query_string", b"").decode("latin-1")
            self.request_log.append(f"{scope['method']} {scope['path']}" + (f"?{query}" if query else ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_RAW_COMMON]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- the application ----------------------------------------------------------------------------


class _Endpoints:
    def __init__(self, issuer: MetadataIssuer) -> None:
        self.issuer = issuer
        self.tree = build_tree(issuer.config)
        self.top = _Dir({"v1": self.tree})

    # Steps 1-3, shared by every metadata path.
    @staticmethod
    def _refusal(request: Request, *, flavor_required: bool = True) -> Response | None:
        if "x-forwarded-for" in request.headers:
            return _error(403, "Forbidden")
        if flavor_required and not _has_flavor(request):
            return _error(403, 'Missing required header "Metadata-Flavor": "Google"')
        if request.method != "GET":
            return _error(405, "Method Not Allowed", {"Allow": "GET"})
        return None

    async def root(self, request: Request) -> Response:
        refused = self._refusal(request, flavor_required=False)
        if refused is not None:
            return refused
        return _respond("computeMetadata/\n", TEXT)

    async def metadata(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        path = request.url.path
        if path == _PREFIX:
            return _respond(f"{path}/\n", "text/html", 301, {"Location": f"{path}/"})
        parts = path[len(_PREFIX) :].split("/")
        if parts[0] != "":  # /computeMetadataX
            return _not_found(path)
        node: Any = self.top
        for segment in parts[1:-1]:
            node = node.child(segment) if isinstance(node, _Dir) else None
            if node is None:
                return _not_found(path)
        last = parts[-1]
        if last == "":  # a directory path ("/computeMetadata/", ".../default/")
            if not isinstance(node, _Dir):
                return _not_found(path)
            return self._directory(request, node)
        child = node.child(last) if isinstance(node, _Dir) and len(parts) > 1 else None
        if child is None:
            return _not_found(path)
        if isinstance(child, _Dir):
            query = f"?{request.url.query}" if request.url.query else ""
            return _respond(f"{path}/\n", "text/html", 301, {"Location": f"{path}/{query}"})
        if isinstance(child, _Dynamic):
            if child.kind == "identity":
                return self._identity(request, child.account)
            return self._token(request, child.account)
        return self._leaf(request, child)

    def _alt(self, request: Request, default: str) -> str | Response:
        alt = request.query_params.get("alt", default)
        if alt not in ("json", "text"):
            return _error(400, "alt must be json or text")
        return alt

    def _directory(self, request: Request, node: _Dir) -> Response:
        recursive = request.query_params.get("recursive", "").lower() == "true"
        alt = self._alt(request, "json" if recursive else "text")
        if isinstance(alt, Response):
            return alt
        if recursive and alt == "json":
            return _respond(_json(_json_value(node)), JSON, etag=True)
        if recursive:
            return _respond("".join(line + "\n" for line in _text_lines(node, "")), TEXT, etag=True)
        if alt == "json":
            return _respond(_json(_listing(node).splitlines()), JSON, etag=True)
        return _respond(_listing(node), TEXT, etag=True)

    def _leaf(self, request: Request, value: Leaf) -> Response:
        alt = self._alt(request, "text")
        if isinstance(alt, Response):
            return alt
        if alt == "json":
            return _respond(_json(value), JSON, etag=True)
        return _respond(_leaf_text(value), TEXT, etag=True)

    def _identity(self, request: Request, account: ServiceAccount) -> Response:
        query = request.query_params
        audience = query.get("audience", "")
        if not audience:
            return _error(400, "non-empty audience parameter required")
        format = query.get("format", "standard")
        if format not in ("standard", "full"):
            return _error(400, "format must be standard or full")
        licenses = query.get("licenses", "false").lower()
        if licenses not in ("true", "false"):
            return _error(400, "licenses must be TRUE or FALSE")
        token = self.issuer.identity_token(
            account,
            audience,
            format="full" if format == "full" else "standard",
            licenses=licenses == "true",
        )
        return _respond(token, IDENTITY)

    def _token(self, request: Request, account: ServiceAccount) -> Response:
        raw = request.query_params.get("scopes")
        scopes: list[str] | None = None
        if raw is not None:
            scopes = [s.strip() for s in raw.split(",")]
            if not all(scopes) or any(" " in s for s in scopes):
                return _error(400, "scopes must be a comma-separated list of scopes")
        token = self.issuer.access_token(account, scopes)
        body = {
            "access_token": token.token,
            "expires_in": token.expires_in(self.issuer.clock()),
            "token_type": "Bearer",
        }
        return _respond(_json(body), JSON)

    # -- issuer endpoints (no Metadata-Flavor needed) --------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return _respond(_json(self.issuer.discovery_document()), JSON)

    async def jwks(self, request: Request) -> Response:
        return _respond(_json(self.issuer.jwks()), JSON)

    async def pem_certs(self, request: Request) -> Response:
        return _respond(_json(self.issuer.pem_certificates()), JSON)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return _error(405, "Method Not Allowed", {"Allow": "GET"})
        return _not_found(request.url.path)


def _has_flavor(request: Request) -> bool:
    if request.headers.get("metadata-flavor") == "Google":
        return True
    # The legacy header the real server still accepts.
    return request.headers.get("x-google-metadata-request", "").lower() == "true"


def create_app(
    issuer: MetadataIssuer,
    *,
    request_log: deque[str] | None = None,
    allowed_hosts: Collection[str] | None = None,
) -> ASGIApp:
    """The emulator's ASGI application around ``issuer`` (which holds the configuration).

    ``request_log``, if given, receives ``"GET /path?query"`` for every request. Only requests
    whose ``Host`` is in ``allowed_hosts`` are served (default: the host of the issuer's URL,
    ``localhost`` and ``metadata.google.internal``).
    """
    if allowed_hosts is None:
        allowed_hosts = emulator_hosts(urlsplit(issuer.base_url).hostname or "")
    endpoints = _Endpoints(issuer)
    app = Starlette(
        routes=[
            Route("/", endpoints.root, methods=_ALL_METHODS),
            Route(_PREFIX + "{rest:path}", endpoints.metadata, methods=_ALL_METHODS),
            Route("/.well-known/openid-configuration", endpoints.discovery, methods=["GET"]),
            Route("/oauth2/v3/certs", endpoints.jwks, methods=["GET"]),
            Route("/oauth2/v1/certs", endpoints.pem_certs, methods=["GET"]),
        ],
        exception_handlers={404: endpoints.not_found, 405: endpoints.not_found},
    )
    return _GuardHeaders(HostCheck(app, allowed_hosts), request_log)
