"""The ASGI application of the authority: protocol routes, the admin API under ``/admin``, and a
lifespan that runs the background refresh. Bad input never becomes a 500 with a stack trace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from keyless._logging import configure_logging
from keyless.authority._runtime import Authority
from keyless.authority.http._errors import json_response
from keyless.authority.http._protocol import protocol_routes
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
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response(
        {"error": "server_error", "error_description": "Internal error; see the server log."}, 500
    )


def create_app(authority: Authority, *, background: bool = True) -> Starlette:
    from keyless.authority.http._admin_api import create_admin_api

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

    app = Starlette(
        routes=[Mount("/admin", app=create_admin_api(authority)), *protocol_routes()],
        exception_handlers={404: _not_found, 405: _method_not_allowed, 500: _server_error},
        lifespan=lifespan,
    )
    app.state.authority = authority
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (one per worker process): settings from the environment."""
    settings = load_authority_settings()
    configure_logging(settings.log_level)
    return create_app(Authority.open(settings))
