"""Entra-shaped error responses: ``error``, ``error_description`` (``AADSTSnnn: ...`` plus trace,
correlation and timestamp), ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``,
``error_uri`` — and an audit line for admins with the exact reason, never the token."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from keyless.authority.model import Refusal
from keyless.errors import OAuthError

__all__ = ["NO_STORE", "correlation_id", "json_response", "oauth_error_response"]

audit = logging.getLogger("keyless.audit")

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
_GUID = re.compile(r"^[0-9a-fA-F-]{36}$")


def json_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
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


def oauth_error_response(
    exc: OAuthError,
    request: Request,
    *,
    detailed: bool = False,
    context: str = "",
    client_id: str | None = None,
) -> Response:
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
    audit.warning(
        "refused AADSTS%s %s %s trace_id=%s correlation_id=%s reason=%s",
        exc.aadsts,
        request.url.path,
        context,
        trace,
        corr,
        reason,
    )
    tenant = request.path_params.get("tenant", "")
    request.app.state.authority.refusals.record(
        Refusal(
            now.timestamp(), exc.aadsts, exc.error, tenant, client_id, reason, trace, corr, request.url.path
        )
    )
    headers = {**NO_STORE, "x-ms-request-id": trace}
    return json_response(body, exc.status, headers)
