"""The admin API (FastAPI, mounted at ``/admin``): tenants, applications and their credentials as
Microsoft Graph-shaped JSON, signing keys, and trust documents (plan / apply / export).

Every ``/v1.0`` route needs ``Authorization: Bearer <admin key>``. Errors have Graph's shape,
``{"error": {"code", "message", "details": [{"message"}], "innerError"}}``: NotFound -> 404,
AlreadyExists -> 409, a lost compare-and-swap or a stale ``If-Match`` -> 412, invalid input -> 400
(never 422, never 500), another apply holding the write lock too long -> 409, a database that
does not answer within its bound -> 503 ``serviceNotAvailable`` with ``Retry-After``. Routes are
plain functions, so FastAPI runs the store calls in its threadpool. The OpenAPI document
(``/admin/openapi.json``) and ``/admin/docs`` are public: they describe the API and hold no data.
Routes live in ``_admin_directory`` and ``_admin_federation``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyless import __version__
from keyless.authority._service import Authority
from keyless.authority.http.admin import directory as _admin_directory
from keyless.authority.http.admin import explain as _admin_explain
from keyless.authority.http.admin import federation as _admin_federation
from keyless.authority.http.admin import graph_json as gj
from keyless.authority.http.admin import trustfile as _admin_trustwire
from keyless.authority.http.admin.common import Unauthorized
from keyless.authority.http.console.docs import docs_page
from keyless.authority.trustfile.schema import TrustFileError
from keyless.errors import AlreadyExists, ConfigurationError, Conflict, Locked, NotFound, StoreUnavailable

__all__ = ["create_admin_api", "graph_error", "store_unavailable"]

REALM = 'Bearer realm="keyless-admin"'
LOCKED_CODE = "ApplyInProgress"  # 409: another apply held the directory's write lock too long


# -- errors -------------------------------------------------------------------------------------------


def graph_error(
    status: int,
    code: str,
    message: str,
    details: Sequence[str | Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Graph's error body, with a fresh request id for the server log."""
    inner = {"date": gj.iso_time(dt.datetime.now(dt.UTC).timestamp()), "request-id": str(uuid.uuid4())}
    body = {
        "code": code,
        "message": message,
        "details": [{"message": d} if isinstance(d, str) else dict(d) for d in details],
        "innerError": inner,
    }
    extra = {**(headers or {}), **({"WWW-Authenticate": REALM} if status == 401 else {})}
    return JSONResponse({"error": body}, status_code=status, headers=extra)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"Property '{where}' does not exist on this object."
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    if kind == "missing":
        return f"{where or 'body'} is required."
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _bad_request([_describe(e) for e in exc.errors()] or ["Invalid request."])


def _bad_request(problems: Sequence[str]) -> JSONResponse:
    """400 with one detail per problem; the message is the problem itself when there is one."""
    message = (
        problems[0] if len(problems) == 1 else f"The request has {len(problems)} problems (see details)."
    )
    return graph_error(400, "Request_BadRequest", message, problems)


def store_unavailable(exc: StoreUnavailable) -> JSONResponse:
    """Graph's answer while its directory is out of reach: 503, come back after ``Retry-After``."""
    return graph_error(
        503,
        "serviceNotAvailable",
        "The directory store is temporarily unavailable; retry after the Retry-After delay.",
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _on_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StoreUnavailable):
        return store_unavailable(exc)
    if isinstance(exc, Locked):
        return graph_error(409, LOCKED_CODE, str(exc))
    if isinstance(exc, Unauthorized):
        return graph_error(401, "InvalidAuthenticationToken", str(exc))
    if isinstance(exc, NotFound):
        return graph_error(404, "Request_ResourceNotFound", str(exc))
    if isinstance(exc, AlreadyExists):
        return graph_error(409, "Conflict", str(exc))
    if isinstance(exc, Conflict):
        return graph_error(412, "PreconditionFailed", str(exc))
    if isinstance(exc, TrustFileError):
        # Graph's detail ``target``: where in the document, so a client can point at its own file.
        located = [{"message": str(p), "target": p.where.path} for p in exc.found]
        message = (
            exc.problems[0]
            if len(located) == 1
            else f"The request has {len(located)} problems (see details)."
        )
        return graph_error(400, "Request_BadRequest", message, located)
    assert isinstance(exc, ConfigurationError)
    return _bad_request(exc.problems)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "Request_ResourceNotFound", 405: "MethodNotAllowed"}.get(
        exc.status_code, "Request_BadRequest"
    )
    message = f"No resource at {request.url.path}." if exc.status_code == 404 else str(exc.detail)
    return graph_error(exc.status_code, code, message, headers=exc.headers)


# -- the application ----------------------------------------------------------------------------------


def create_admin_api(authority: Authority) -> FastAPI:
    """The admin API for ``authority``; mount it at ``/admin``."""
    api = FastAPI(
        title="keyless admin API",
        version=__version__,
        description="Tenants, applications and credentials of the keyless authority, shaped like Graph.",
        openapi_url="/openapi.json",
        docs_url=None,  # served below with self-hosted assets (FastAPI's page loads a CDN)
        redoc_url=None,
        exception_handlers={
            RequestValidationError: _on_validation,
            StarletteHTTPException: _on_http,
            Unauthorized: _on_error,
            NotFound: _on_error,
            AlreadyExists: _on_error,
            Conflict: _on_error,
            ConfigurationError: _on_error,
            StoreUnavailable: _on_error,
            Locked: _on_error,
        },
    )
    api.state.authority = authority

    @api.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        mount = request.scope.get("root_path", "")  # "/admin" in the authority's app
        return docs_page(f"{mount}/openapi.json", "/console/static")

    api.include_router(_admin_directory.router)
    api.include_router(_admin_federation.router)
    api.include_router(
        _admin_federation.fics,
        prefix="/beta",
        generate_unique_id_function=lambda route: f"beta_{route.name}",
    )
    api.include_router(_admin_explain.router)
    api.include_router(_admin_trustwire.router)
    return api
