"""Access tokens in Entra's v1.0 and v2.0 app-only shapes, and the token responses.

The claim set is chosen by the *resource's* ``requestedAccessTokenVersion``; the response shape
(integers for v2, strings plus ``expires_on``/``not_before``/``resource`` for v1) by the endpoint.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from keyless.authority.model import Application
from keyless.jose import Signer, b64url, encode_jwt

__all__ = ["IssuedToken", "mint_access_token", "token_response", "v1_issuer", "v2_issuer"]

# Entra back-dates iat/nbf by five minutes to absorb clock skew at resource servers.
BACKDATE = 300


def v1_issuer(base_url: str, tenant_id: str) -> str:
    """The v1 issuer, shaped like ``https://sts.windows.net/{tid}/`` but on keyless's own host."""
    return f"{base_url}/{tenant_id}/"


def v2_issuer(base_url: str, tenant_id: str) -> str:
    return f"{base_url}/{tenant_id}/v2.0"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    claims: dict[str, Any]
    expires_in: int
    resource: str


def _opaque_values() -> tuple[str, str, str]:
    """Random ``aio``, ``rh`` and ``uti`` values (48, 40, 16 bytes) from one read of the OS's RNG."""
    raw = secrets.token_bytes(104)
    return b64url(raw[:48]), b64url(raw[48:88]), b64url(raw[88:])


def mint_access_token(
    *,
    signer: Signer,
    base_url: str,
    tenant_id: str,
    client: Application,
    resource: Application,
    requested_resource: str,
    roles: tuple[str, ...],
    client_auth: Literal["1", "2"],
    now: int,
    lifetime: int,
) -> IssuedToken:
    """Sign an app-only access token for ``client`` to call ``resource``."""
    version = resource.token_version
    aio, rh, uti = _opaque_values()
    claims: dict[str, Any] = {
        "aud": requested_resource if version == 1 else resource.app_id,
        "iss": v1_issuer(base_url, tenant_id) if version == 1 else v2_issuer(base_url, tenant_id),
        "iat": now - BACKDATE,
        "nbf": now - BACKDATE,
        "exp": now + lifetime,
        "aio": aio,
    }
    if version == 1:
        claims.update(appid=client.app_id, appidacr=client_auth, idp=claims["iss"])
    else:
        claims.update(azp=client.app_id, azpacr=client_auth)
    claims.update(idtyp="app", oid=client.service_principal_id, rh=f"0.{rh}.")
    if roles:
        claims["roles"] = list(roles)
    claims.update(
        sub=client.service_principal_id,
        tid=tenant_id,
        uti=uti,
        ver="1.0" if version == 1 else "2.0",
    )
    headers = {"x5t": signer.kid} if version == 1 and signer.algorithm.startswith("RS") else None
    token = encode_jwt(claims, signer, headers=headers)
    return IssuedToken(token, claims, lifetime, requested_resource)


def token_response(issued: IssuedToken, *, endpoint_version: Literal[1, 2], now: int) -> dict[str, Any]:
    """The JSON body of a successful token response, shaped for the endpoint that was called."""
    expires_in = issued.expires_in
    if endpoint_version == 2:
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
        }
        if expires_in >= 7200:
            body["refresh_in"] = expires_in // 2
        body["access_token"] = issued.access_token
        return body
    return {
        "token_type": "Bearer",
        "expires_in": str(expires_in),
        "ext_expires_in": str(expires_in),
        "expires_on": str(now + expires_in),
        "not_before": str(issued.claims["nbf"]),
        "resource": issued.resource,
        "access_token": issued.access_token,
    }
