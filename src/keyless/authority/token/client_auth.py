"""Client authentication at the token endpoint: secret, certificate assertion, federated assertion.

``authenticate`` returns ``appidacr`` ("1" secret, "2" assertion) or raises the Entra refusal.
The federated path decides that the issuer is registered on the application *before* fetching any
key, so nobody can make keyless fetch an issuer nobody registered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from keyless.authority.directory.secrets import secret_matches
from keyless.authority.directory.snapshot import AppView, TenantView
from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.matching import fics_for_issuer, match_fic, refuse_issuer
from keyless.errors import (
    ClaimError,
    InvalidSignature,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    TransportError,
    UnknownKey,
    UnsupportedAlgorithm,
    VerificationError,
)
from keyless.jose import KeySet, ParsedJWS, PublicKey, parse_compact, verify_signature
from keyless.trust import check_time_window, entra_time

__all__ = [
    "ClientAuthPolicy",
    "ClientAuthenticator",
    "KeyLookup",
    "OneTimeUse",
    "Presented",
    "token_endpoint_audiences",
]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CERT_ASSERTION_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})

audit = logging.getLogger("keyless.audit")

ClientAuth = Literal["1", "2"]


class KeyLookup(Protocol):
    async def __call__(self, issuer: str, kid: str | None, discovery_url: str | None) -> KeySet: ...


class OneTimeUse(Protocol):
    def use_once(self, key: str, expires_at: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class ClientAuthPolicy:
    leeway: float
    assertion_algorithms: frozenset[str]
    issuer_overrides: Mapping[str, str]
    own_issuer_prefix: str  # tokens from this authority itself are refused as assertions (700222)


@dataclass(frozen=True, slots=True)
class Presented:
    """What the client sent to authenticate itself."""

    client_secret: str | None
    client_assertion: str | None
    client_assertion_type: str | None
    origins: frozenset[str]  # scheme://host:port the server was reached at (certificate assertion ``aud``)


@dataclass(frozen=True, slots=True)
class FederatedMatch:
    fic: FederatedIdentityCredential
    issuer_override: str | None


class ClientAuthenticator:
    def __init__(
        self,
        policy: ClientAuthPolicy,
        keys: KeyLookup,
        once: Callable[[str, float], Awaitable[bool]],
        clock: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._keys = keys
        self._once = once
        self._clock = clock

    async def authenticate(self, tenant: TenantView, client: AppView, presented: Presented) -> ClientAuth:
        if presented.client_secret is not None and presented.client_assertion is not None:
            raise refuse(9002313, detail="Only one client authentication method may be used.")
        if presented.client_secret is not None:
            self._check_secret(client, presented.client_secret)
            return "1"
        if presented.client_assertion is None:
            raise refuse(7000218)
        if presented.client_assertion_type != JWT_BEARER:
            raise refuse(9002313, detail=f"client_assertion_type must be '{JWT_BEARER}'.")
        parsed = _parse_assertion(presented.client_assertion)
        if _is_certificate_assertion(parsed, client):
            await self._check_certificate_assertion(tenant, client, parsed, presented)
        else:
            await self._check_federated_assertion(tenant, client, parsed)
        return "2"

    # -- client secret ------------------------------------------------------------------------
    def _check_secret(self, client: AppView, value: str) -> None:
        now = self._clock()
        for secret in client.secrets:
            if secret_matches(value, secret.secret_hash, secret.salt):
                if now > secret.end:
                    raise refuse(7000222, client_id=client.app.app_id)
                if now < secret.start:
                    break
                return
        raise refuse(7000215, client_id=client.app.app_id)

    # -- certificate assertion (private_key_jwt) ------------------------------------------------
    async def _check_certificate_assertion(
        self, tenant: TenantView, client: AppView, parsed: ParsedJWS, presented: Presented
    ) -> None:
        header = parsed.header
        sha256 = _thumbprint(header.get("x5t#S256"))
        sha1 = _thumbprint(header.get("x5t"))
        cert = client.certificate(sha1=sha1, sha256=sha256)
        thumb = sha256 or sha1 or "none"
        if cert is None:
            raise refuse(
                700027,
                detail="The certificate with identifier used to sign the client assertion is not "
                "registered on application. [Reason - The key was not found., Thumbprint of key used by "
                f"client: '{thumb}']",
            )
        now = self._clock()
        if not cert.start <= now <= cert.end:
            raise refuse(
                700027, detail=f"[Reason - The key used is expired or not yet valid., Thumbprint: '{thumb}']"
            )
        key = PublicKey.from_certificate(cert.cert_der)
        try:
            verify_signature(parsed, KeySet([key]), algorithms=CERT_ASSERTION_ALGORITHMS)
        except VerificationError as exc:
            raise refuse(700027, detail=exc.reason) from None
        payload = parsed.payload
        app_id = client.app.app_id
        if payload.get("iss") != app_id or payload.get("sub") != app_id:
            raise refuse(700021, detail="The assertion's 'iss' and 'sub' must both be the client_id.")
        accepted = token_endpoint_audiences(presented.origins, (tenant.id, *tenant.tenant.domains))
        if not _audience_matches(payload.get("aud"), accepted):
            raise refuse(700023, detail=f"Presented audience: {_claim_text(payload.get('aud'))!r}.")
        window = self._time_window(payload, now)
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti:
            raise refuse(50027, detail="A certificate assertion must carry a 'jti' claim.")
        if not await self._once(f"jti:{app_id}:{jti}", window + self._policy.leeway):
            raise refuse(700025, detail=f"jti {jti!r} was presented before.")

    # -- federated assertion (workload identity federation) -------------------------------------
    async def _check_federated_assertion(
        self, tenant: TenantView, client: AppView, parsed: ParsedJWS
    ) -> None:
        payload = parsed.payload
        iss, sub = _string_claim(payload, "iss"), _string_claim(payload, "sub")
        audiences = _audiences(payload)
        if iss.startswith(self._policy.own_issuer_prefix):
            raise refuse(700222, detail="Tokens issued by this authority cannot be federated credentials.")
        candidates = fics_for_issuer(client.fics, iss)
        if not candidates:
            raise refuse_issuer(client.fics, iss, sub, audiences[0] if audiences else "")
        override = self._policy.issuer_overrides.get(iss)
        await self._verify_federated_signature(parsed, iss, override)
        fic = match_fic(candidates, sub=sub, audiences=audiences)
        self._time_window(payload, self._clock())
        audit.info(
            "federated assertion accepted tenant=%s client=%s fic=%s iss=%s sub=%s%s",
            tenant.id,
            client.app.app_id,
            fic.name,
            iss,
            sub,
            f" DEVELOPMENT ISSUER OVERRIDE via {override}" if override else "",
        )

    async def _verify_federated_signature(self, parsed: ParsedJWS, iss: str, override: str | None) -> None:
        try:
            keys = await self._keys(iss, parsed.kid, override)
        except TransportError as exc:
            raise refuse(90061, detail=str(exc)) from None
        try:
            verify_signature(parsed, keys, algorithms=self._policy.assertion_algorithms)
        except UnknownKey:
            raise refuse(7000272, kid=parsed.kid or "(none)", iss=iss) from None
        except (UnsupportedAlgorithm, InvalidSignature) as exc:
            raise refuse(700027, detail=exc.reason) from None

    # -- shared --------------------------------------------------------------------------------
    def _time_window(self, payload: Mapping[str, Any], now: float) -> float:
        try:
            return check_time_window(payload, now=now, leeway=self._policy.leeway).expires
        except (TokenExpired, TokenNotYetValid):
            nbf, exp = payload.get("nbf"), payload.get("exp")
            raise refuse(
                700024,
                now=entra_time(now),
                nbf=entra_time(nbf if isinstance(nbf, int | float) else None),
                exp=entra_time(exp if isinstance(exp, int | float) else None),
            ) from None
        except ClaimError as exc:
            raise refuse(50027, detail=exc.reason) from None


def _parse_assertion(assertion: str) -> ParsedJWS:
    try:
        return parse_compact(assertion)
    except UnsupportedAlgorithm as exc:
        raise refuse(700027, detail=exc.reason) from None
    except MalformedToken as exc:
        raise refuse(50027, detail=exc.reason) from None


def _is_certificate_assertion(parsed: ParsedJWS, client: AppView) -> bool:
    """A self-signed client assertion names the app as issuer and a certificate thumbprint."""
    has_thumbprint = "x5t" in parsed.header or "x5t#S256" in parsed.header
    return has_thumbprint and parsed.payload.get("iss") == client.app.app_id


def _thumbprint(value: object) -> str | None:
    """A certificate thumbprint as unpadded base64url: azure-identity sends it padded, as Entra accepts."""
    if not isinstance(value, str):
        return None
    return value.rstrip("=").replace("+", "-").replace("/", "_")


def _string_claim(payload: Mapping[str, Any], claim: str) -> str:
    value = payload.get(claim)
    if not isinstance(value, str) or not value:
        raise refuse(50027, detail=f"The assertion has no '{claim}' claim.")
    return value


def _audiences(payload: Mapping[str, Any]) -> list[str]:
    aud = payload.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return list(aud)
    raise refuse(50027, detail="The assertion has no usable 'aud' claim.")


def _claim_text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _audience_matches(aud: object, accepted: Collection[str]) -> bool:
    values: Sequence[object] = aud if isinstance(aud, list) else [aud]
    return any(isinstance(v, str) and _normalise_url(v) in accepted for v in values)


def _normalise_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/').lower()}"


def token_endpoint_audiences(origins: Collection[str], tenant_refs: Collection[str]) -> frozenset[str]:
    """Every URL a certificate assertion may name as ``aud``: v1 and v2 token endpoints of the tenant
    (by GUID or domain) on every origin the server is reachable by."""
    found = set()
    for origin in origins:
        for ref in tenant_refs:
            for path in ("oauth2/v2.0/token", "oauth2/token"):
                found.add(_normalise_url(f"{origin}/{ref}/{path}"))
    return frozenset(found)
