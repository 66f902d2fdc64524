"""The Microsoft identity platform's protocol endpoints (token, discovery, keys, instance discovery;
see docs/authority.md) as plain Starlette routes.

FastAPI is kept for the admin API only: its form parsing halves the token endpoint's throughput.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyless._metrics import UNKNOWN, metrics
from keyless.authority import audit
from keyless.authority.directory.recordable import MAX_PATH, identifier, printable
from keyless.authority.directory.rules import is_guid
from keyless.authority.http.errors import NO_STORE, correlation_id, json_response, oauth_error_response
from keyless.authority.http.forms import read_basic_auth, read_form
from keyless.authority.http.ops import health, ready
from keyless.authority.model import Refusal
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.client_credentials import GRANT_TYPE, TokenRequest
from keyless.authority.token.minting import v1_issuer, v2_issuer
from keyless.authority.token.tenants import MULTI_TENANT, is_tenant_ref, resolve_tenant
from keyless.errors import OAuthError, StoreUnavailable

if TYPE_CHECKING:
    from keyless.authority._service import Authority

__all__ = ["protocol_routes"]


DISCOVERY_HEADERS = {"Cache-Control": "max-age=86400, private", "Access-Control-Allow-Origin": "*"}


def _authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


def _refused(
    exc: OAuthError,
    request: Request,
    *,
    detailed: bool = False,
    client_id: str | None = None,
    grant_type: str | None = None,
) -> Response:
    """The error response, with the audit line and the admins' refusal record. Nothing of the
    request is recorded verbatim (``directory.recordable``): unvalidated ids become fingerprints,
    control characters are escaped, every value is bounded. A grant type other than the one
    supported is quoted in its refusal, so it is fingerprinted too (it is read before any
    authentication, and a pasted secret or token there must not reach the log)."""
    reply = oauth_error_response(exc, request, detailed=detailed)
    raw_tenant: str = request.path_params.get("tenant", "")
    tenant_label, client_label = _known(_authority(request), raw_tenant, client_id)
    metrics().tokens_refused.labels(tenant_label, client_label, str(exc.aadsts)).inc()
    tenant = identifier(raw_tenant, is_tenant_ref) or ""
    client = identifier(client_id, is_guid)
    unvalidated = [v for v, kept in ((raw_tenant, tenant), (client_id, client)) if v and v != kept]
    if grant_type and grant_type != GRANT_TYPE:
        unvalidated.append(grant_type)
    reason = printable(reply.reason, hide=unvalidated)
    path = printable(request.url.path, hide=unvalidated, limit=MAX_PATH)
    audit.refused(
        aadsts=exc.aadsts,
        error=exc.error,
        tenant=tenant,
        client=client,
        trace_id=reply.trace_id,
        correlation_id=reply.correlation_id,
        reason=reason,
        path=path,
        credential=exc.credential,
    )
    _authority(request).refusals.record(
        Refusal(
            reply.at,
            exc.aadsts,
            exc.error,
            tenant,
            client,
            reason,
            reply.trace_id,
            reply.correlation_id,
            path,
            exc.credential,
            _presented(exc.presented, unvalidated),
        )
    )
    return reply.response


def _presented(presented: dict[str, object] | None, hide: list[str]) -> dict[str, object] | None:
    """A verified assertion's iss, sub and aud, each made recordable (one bounded line)."""
    if presented is None:
        return None
    audiences = presented.get("aud")
    return {
        "iss": printable(str(presented.get("iss", "")), hide=hide, limit=600),
        "sub": printable(str(presented.get("sub", "")), hide=hide, limit=600),
        "aud": [printable(str(a), hide=hide, limit=600) for a in audiences][:10]
        if isinstance(audiences, list)
        else [],
    }


def _known(authority: Authority, tenant_ref: str, client_id: str | None) -> tuple[str, str]:
    """Metric labels: the tenant's id and the client's appId when the directory knows them, else
    ``unknown`` (a label never takes a value only the caller chose)."""
    view = authority.directory().tenant(tenant_ref) if tenant_ref else None
    if view is None:
        return UNKNOWN, UNKNOWN
    app = view.application(client_id) if client_id else None
    return view.id, app.app.app_id if app is not None else UNKNOWN


# -- token endpoints -----------------------------------------------------------------------------------
async def _token(request: Request, version: Literal[1, 2]) -> Response:
    authority = _authority(request)
    tenant_ref = request.path_params["tenant"]
    detailed = False
    client_id: str | None = None  # for the admins' record of refusals
    grant_type: str | None = None
    try:
        if request.method != "POST":
            raise refuse(900561, method="POST", received=request.method)
        tenant = resolve_tenant(authority.directory(), tenant_ref)
        detailed = tenant.tenant.detailed_errors
        form = await read_form(request, authority.settings.max_form_bytes)
        client_id, grant_type = form.get("client_id"), form.get("grant_type")
        token_request = TokenRequest(
            tenant=tenant,
            endpoint_version=version,
            form=form,
            basic=read_basic_auth(request),
        )
        result = await authority.tokens.issue(token_request)
    except OAuthError as exc:
        return _refused(exc, request, detailed=detailed, client_id=client_id, grant_type=grant_type)
    except StoreUnavailable as exc:  # the jti replay check needs the database
        unavailable = refuse(90033, detail=exc.reason)
        response = _refused(unavailable, request, client_id=client_id, grant_type=grant_type)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    metrics().tokens_issued.labels(*_known(authority, tenant.id, client_id)).inc()
    trace_id = str(uuid.uuid4())
    audit.issued(
        tenant=result.tenant_id,
        client=result.client_id,
        credential=result.credential,
        trace_id=trace_id,
        correlation_id=correlation_id(request),
        resource=result.claims.get("aud"),
    )
    return json_response(result.body, 200, {**NO_STORE, "x-ms-request-id": trace_id})


async def token_v2(request: Request) -> Response:
    return await _token(request, 2)


async def token_v1(request: Request) -> Response:
    return await _token(request, 1)


# -- discovery and keys ---------------------------------------------------------------------------------
def _tenant_for_metadata(request: Request) -> str:
    """The tenant GUID for a metadata request, or the ``{tenantid}`` template for /common & co."""
    ref = request.path_params["tenant"]
    if not is_tenant_ref(ref):
        raise refuse(900023, tenant=ref)
    if ref.lower() in MULTI_TENANT:
        return "{tenantid}"
    return resolve_tenant(_authority(request).directory(), ref).id


def _discovery_document(base: str, tid: str, version: Literal[1, 2]) -> dict[str, Any]:
    v = "/v2.0" if version == 2 else ""
    issuer = v2_issuer(base, tid) if version == 2 else v1_issuer(base, tid)
    return {
        "token_endpoint": f"{base}/{tid}/oauth2{v}/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/{tid}/discovery{v}/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{base}/{tid}/oauth2{v}/authorize",
        "device_authorization_endpoint": f"{base}/{tid}/oauth2{v}/devicecode",
        "end_session_endpoint": f"{base}/{tid}/oauth2{v}/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "tid",
            "ver",
            "roles",
            "appid",
            "azp",
            "oid",
        ],
        "tenant_region_scope": "WW",
        "cloud_instance_name": urlsplit(base).netloc,
        "grant_types_supported": ["client_credentials"],
    }


async def _discovery(request: Request, version: Literal[1, 2]) -> Response:
    try:
        tid = _tenant_for_metadata(request)
    except OAuthError as exc:
        return _refused(exc, request)
    base = _authority(request).settings.base_url
    return json_response(_discovery_document(base, tid, version), 200, DISCOVERY_HEADERS)


async def discovery_v2(request: Request) -> Response:
    return await _discovery(request, 2)


async def discovery_v1(request: Request) -> Response:
    return await _discovery(request, 1)


async def _keys(request: Request, version: Literal[1, 2]) -> Response:
    authority = _authority(request)
    ref = request.path_params["tenant"]
    try:
        if (
            ref.lower() in MULTI_TENANT
        ):  # Entra publishes one key set for all tenants; keyless has one per tenant
            raise refuse(90002, tenant=ref)
        tenant = resolve_tenant(authority.directory(), ref)
    except OAuthError as exc:
        return _refused(exc, request)
    base = authority.settings.base_url
    issuer = v2_issuer(base, tenant.id) if version == 2 else v1_issuer(base, tenant.id)
    max_age = max(60, min(3600, authority.settings.key_publish_delay))
    headers = {"Cache-Control": f"max-age={max_age}, private", "Access-Control-Allow-Origin": "*"}
    return json_response(tenant.key_set(issuer).to_jwks(), 200, headers)


async def keys_v2(request: Request) -> Response:
    return await _keys(request, 2)


async def keys_v1(request: Request) -> Response:
    return await _keys(request, 1)


async def instance_discovery(request: Request) -> Response:
    """MSAL's instance discovery, for clients given this URL instead of switching discovery off.

    MSAL Python names the authority by host name only (no port), so hosts are compared by name and
    the answer carries the host and port this server is reached at.
    """
    endpoint = urlsplit(request.query_params.get("authorization_endpoint", ""))
    served = {urlsplit(_authority(request).settings.base_url).netloc, request.headers.get("host") or ""}
    by_name = {urlsplit(f"https://{netloc}").hostname: netloc for netloc in served if netloc}
    tenant = endpoint.path.strip("/").split("/")[0]
    netloc = by_name.get(endpoint.hostname)
    if endpoint.scheme != "https" or netloc is None or not tenant:
        return _refused(refuse(50049), request)
    body = {
        "tenant_discovery_endpoint": f"https://{netloc}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": request.query_params.get("api-version", "1.1"),
        "metadata": [{"preferred_network": netloc, "preferred_cache": netloc, "aliases": [netloc]}],
    }
    return json_response(body, 200, DISCOVERY_HEADERS)


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def protocol_routes() -> list[Route]:
    return [
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/common/discovery/instance", instance_discovery, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token_v2, methods=ALL_METHODS),
        Route("/{tenant}/oauth2/token", token_v1, methods=ALL_METHODS),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery_v2, methods=["GET"]),
        Route("/{tenant}/.well-known/openid-configuration", discovery_v1, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", keys_v2, methods=["GET"]),
        Route("/{tenant}/discovery/keys", keys_v1, methods=["GET"]),
    ]
