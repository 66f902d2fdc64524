"""Entra-shaped error responses: ``error``, ``error_description`` (``AADSTSnnn: ...`` plus trace,
correlation and timestamp), ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``,
``error_uri``. Formatting only: the routes write the audit line and the refusal record."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keyless.errors import OAuthError

__all__ = ["NO_STORE", "ErrorReply", "correlation_id", "json_response", "oauth_error_response"]

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
_GUID = re.compile(r"^[0-9a-fA-F-]{36}$")


def json_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``body`` as compact UTF-8 JSON (orjson: the token response is on the hot path)."""
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=dict(headers or {}),
    )


def correlation_id(request: Request) -> str:
    """The client's request id (MSAL, msal-node, azure-identity each send one) or a fresh GUID."""
    for value in (
        request.headers.get("client-request-id"),
        request.headers.get("x-ms-client-request-id"),
        request.query_params.get("client-request-id"),
    ):
        if value and _GUID.match(value):
            return value.lower()
    return str(uuid.uuid4())


def _timestamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An OAuth error response and the ids it carries (for the route's audit record)."""

    response: Response
    trace_id: str
    correlation_id: str
    at: float  # epoch seconds
    reason: str  # the exact reason, for admins: the refusal's detail or the first description line


def oauth_error_response(exc: OAuthError, request: Request, *, detailed: bool = False) -> ErrorReply:
    """Format ``exc`` as Entra does; what is recorded about it is the route's business."""
    trace = str(uuid.uuid4())
    corr = correlation_id(request)
    now = dt.datetime.now(dt.UTC)
    stamp = _timestamp(now)
    description = exc.error_description
    if detailed and exc.detail and exc.detail not in description:
        description = f"{description} [keyless detail: {exc.detail}]"
    description += f"\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {stamp}"
    body: dict[str, object] = {"error": exc.error, "error_description": description}
    if exc.aadsts is not None:
        body["error_codes"] = [exc.aadsts]
    body.update(timestamp=stamp, trace_id=trace, correlation_id=corr)
    if exc.aadsts is not None:
        body["error_uri"] = f"https://login.microsoftonline.com/error?code={exc.aadsts}"
    reason = exc.detail or exc.error_description.split("\r\n", 1)[0]
    headers = {**NO_STORE, "x-ms-request-id": trace}
    return ErrorReply(json_response(body, exc.status, headers), trace, corr, now.timestamp(), reason)
