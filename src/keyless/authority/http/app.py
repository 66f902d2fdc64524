"""The ASGI application of the authority: protocol routes, the admin API under ``/admin``, and a
lifespan that runs the background refresh. Bad input never becomes a 500 with a stack trace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from keyless._logging import configure_logging
from keyless._metrics import observe_request
from keyless.authority._service import Authority
from keyless.authority.audit import configure_audit_file
from keyless.authority.directory.recordable import MAX_PATH, printable
from keyless.authority.http.errors import json_response
from keyless.authority.http.metrics import metrics_app
from keyless.authority.http.protocol import protocol_routes, token_v1, token_v2
from keyless.config import load_authority_settings

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("keyless.http")


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_response(
        {"error": "not_found", "error_description": f"No endpoint at {request.url.path}"}, 404
    )


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return json_response({"error": "invalid_request", "error_description": "Method not allowed."}, 405)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The path is the client's: escaped and bounded so it cannot forge or flood log lines.
    log.exception(
        "unhandled error on %s %s",
        printable(request.method, limit=16),
        printable(request.scope["path"], limit=MAX_PATH),
    )
    return json_response(
        {"error": "server_error", "error_description": "Internal error; see the server log."}, 500
    )


_TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2(/v2\.0)?/token$")
_TOKEN_V2 = "/{tenant}/oauth2/v2.0/token"
_TOKEN_V1 = "/{tenant}/oauth2/token"


class TokenFastPath:
    """ASGI: token requests (the hot path) go straight to their handler; everything else through
    Starlette's router and middleware. Saves the router and two middleware layers per token."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if scope["method"] == "POST":
            match = _TOKEN_PATH.match(scope["path"])
            if match is not None:
                scope["app"] = self.app
                scope["path_params"] = {"tenant": match.group(1)}
                request = Request(scope, receive)
                try:
                    response = await (token_v2 if match.group(2) else token_v1)(request)
                except Exception as exc:
                    response = await _server_error(request, exc)
                await response(scope, receive, send)
                endpoint = _TOKEN_V2 if match.group(2) else _TOKEN_V1
                observe_request("authority", endpoint, response.status_code, time.perf_counter() - started)
                return
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"  # a template, never the raw path
            observe_request("authority", endpoint, status, time.perf_counter() - started)

    @property
    def state(self) -> Any:
        return self.app.state


def create_app(authority: Authority, *, background: bool = True) -> TokenFastPath:
    from keyless.authority.http.admin import create_admin_api, graph_error
    from keyless.authority.http.admin.gate import AdminGate
    from keyless.authority.http.console.app import create_console

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(authority.run_background()) if background else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await authority.aclose()

    settings = authority.settings
    configure_audit_file(
        settings.audit_file, max_bytes=settings.audit_file_max_bytes, backups=settings.audit_file_backups
    )
    admin = AdminGate(
        create_admin_api(authority),
        check_key=authority.check_admin_key,
        max_body_bytes=authority.settings.admin_max_body_bytes,
        error=graph_error,
    )
    app = Starlette(
        routes=[
            Mount("/admin", app=admin),
            Mount("/console", app=create_console(authority)),
            Route(
                "/metrics",
                AdminGate(
                    metrics_app, check_key=authority.check_admin_key, max_body_bytes=0, error=graph_error
                ),
            ),
            *protocol_routes(),
        ],
        exception_handlers={404: _not_found, 405: _method_not_allowed, 500: _server_error},
        lifespan=lifespan,
    )
    app.state.authority = authority
    return TokenFastPath(app)


def app_from_env() -> TokenFastPath:
    """Factory for ``uvicorn --factory`` (one per worker process): settings from the environment."""
    settings = load_authority_settings()
    configure_logging(settings.log_level)
    return create_app(Authority.open(settings))
