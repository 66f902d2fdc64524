"""Client authentication at the token endpoint: secret, certificate assertion, federated assertion.

``authenticate`` returns ``appidacr`` ("1" secret, "2" assertion) or raises the Entra refusal.
Which method was presented is decided here, once: a secret (in the body or HTTP Basic) or a client
assertion, never both. A federated assertion runs the steps of ``federated.FEDERATED_CHECKS``,
which decide that the issuer is registered on the application *before* fetching any key.
The issuer keys come from a ``KeyLookup`` and replayed ``jti`` values are caught by a
``OneTimeUse`` store, both passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import anyio.to_thread

from keyless.authority.directory.secrets import secret_matches
from keyless.authority.directory.snapshot import AppView, TenantView
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.federated import (
    FederatedAssertion,
    FederatedPolicy,
    is_certificate_assertion,
    parse_assertion,
    run_federated,
)
from keyless.errors import (
    ClaimError,
    TokenExpired,
    TokenNotYetValid,
    VerificationError,
)
from keyless.jose import KeySet, ParsedJWS, PublicKey, verify_signature
from keyless.trust import check_time_window, entra_time

__all__ = [
    "ClientAuthPolicy",
    "ClientAuthenticator",
    "KeyLookup",
    "MatchedCredential",
    "OneTimeUse",
    "Presented",
    "presented_credentials",
    "token_endpoint_audiences",
]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CERT_ASSERTION_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})

ClientAuth = Literal["1", "2"]


@dataclass(frozen=True, slots=True)
class MatchedCredential:
    """Which of the client's credentials proved its identity (for the audit event; never a value).

    ``kind`` is ``secret``, ``certificate`` or ``federated``; ``id`` the credential's key id or
    object id; for a federated credential also the assertion's ``issuer`` and ``subject`` (values
    the credential names, so registered ones) and a development ``override`` if one applied."""

    kind: Literal["secret", "certificate", "federated"]
    id: str
    name: str
    issuer: str | None = None
    subject: str | None = None
    override: str | None = None

    @property
    def client_auth(self) -> ClientAuth:
        return "1" if self.kind == "secret" else "2"


class KeyLookup(Protocol):
    """A remote issuer's key set, refetched when ``kid`` is unknown (``keyless.trust.IssuerKeyCache``)."""

    async def get(self, issuer: str, kid: str | None, *, discovery_url: str | None = None) -> KeySet: ...


class OneTimeUse(Protocol):
    """True the first time ``key`` is used before ``expires_at``, False on any replay (a store)."""

    def use_once(self, key: str, expires_at: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class ClientAuthPolicy:
    leeway: float
    assertion_algorithms: frozenset[str]
    issuer_overrides: Mapping[str, str]
    own_issuer_prefix: str  # tokens from this authority itself are refused as assertions (700222)
    max_assertion_lifetime: float = 3600.0  # a certificate assertion's exp at most this far ahead


@dataclass(frozen=True, slots=True)
class Presented:
    """What the client sent to authenticate itself (at most one method: ``presented_credentials``)."""

    client_id: str | None
    client_secret: str | None
    client_assertion: str | None
    client_assertion_type: str | None
    origins: frozenset[str]  # the configured public URL(s): a certificate assertion's ``aud`` names one


def presented_credentials(
    form: Mapping[str, str], basic: tuple[str, str] | None, origins: frozenset[str]
) -> Presented:
    """Which client and which authentication the request presents, decided once: a secret in the
    body or in HTTP Basic, or a client assertion. Refused here (9002313): a body ``client_id`` that
    differs from Basic's, a secret in both places, or a secret and an assertion together."""
    client_id = form.get("client_id")
    secret = form.get("client_secret")
    if basic is not None:
        if client_id is not None and client_id != basic[0]:
            raise refuse(9002313, detail="client_id in the body differs from the one in the header.")
        if secret is not None:
            raise refuse(9002313, detail="The client secret was sent both in the body and in the header.")
        client_id, secret = basic
    assertion = form.get("client_assertion")
    if secret is not None and assertion is not None:
        raise refuse(9002313, detail="Only one client authentication method may be used.")
    return Presented(
        client_id=client_id,
        client_secret=secret,
        client_assertion=assertion,
        client_assertion_type=form.get("client_assertion_type"),
        origins=origins,
    )


class ClientAuthenticator:
    def __init__(
        self,
        policy: ClientAuthPolicy,
        keys: KeyLookup,
        once: OneTimeUse,
        clock: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._keys = keys
        self._once = once
        self._clock = clock
        self._federated = FederatedPolicy(
            leeway=policy.leeway,
            algorithms=policy.assertion_algorithms,
            own_issuer_prefix=policy.own_issuer_prefix,
            issuer_overrides=policy.issuer_overrides,
        )

    async def _fetch_keys(self, issuer: str, kid: str | None, discovery_url: str | None) -> KeySet:
        return await self._keys.get(issuer, kid, discovery_url=discovery_url)

    async def _use_once(self, key: str, expires_at: float) -> bool:
        return await anyio.to_thread.run_sync(self._once.use_once, key, expires_at)

    async def authenticate(
        self, tenant: TenantView, client: AppView, presented: Presented
    ) -> MatchedCredential:
        if presented.client_secret is not None:
            return self._check_secret(client, presented.client_secret)
        if presented.client_assertion is None:
            raise refuse(7000218)
        if presented.client_assertion_type != JWT_BEARER:
            raise refuse(9002313, detail=f"client_assertion_type must be '{JWT_BEARER}'.")
        parsed = parse_assertion(presented.client_assertion)
        if is_certificate_assertion(parsed.header, parsed.payload, client.app.app_id):
            return await self._check_certificate_assertion(tenant, client, parsed, presented)
        return await self._check_federated_assertion(tenant, client, presented.client_assertion, parsed)

    # -- client secret ------------------------------------------------------------------------
    def _check_secret(self, client: AppView, value: str) -> MatchedCredential:
        now = self._clock()
        for secret in client.secrets:
            if secret_matches(value, secret.secret_hash, secret.salt):
                if now > secret.end:
                    raise refuse(7000222, client_id=client.app.app_id)
                if now < secret.start:
                    break
                return MatchedCredential("secret", secret.key_id, secret.display_name)
        raise refuse(7000215, client_id=client.app.app_id)

    # -- certificate assertion (private_key_jwt) ------------------------------------------------
    async def _check_certificate_assertion(
        self, tenant: TenantView, client: AppView, parsed: ParsedJWS, presented: Presented
    ) -> MatchedCredential:
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
        self._bounded_lifetime(payload, now, window)
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti:
            raise refuse(50027, detail="A certificate assertion must carry a 'jti' claim.")
        if not await self._use_once(f"jti:{app_id}:{jti}", window + self._policy.leeway):
            raise refuse(700025, detail=f"jti {jti!r} was presented before.")
        return MatchedCredential("certificate", cert.key_id, cert.display_name)

    # -- federated assertion (workload identity federation) -------------------------------------
    async def _check_federated_assertion(
        self, tenant: TenantView, client: AppView, token: str, parsed: ParsedJWS
    ) -> MatchedCredential:
        checked = FederatedAssertion(token, client.fic_index, self._federated, self._clock(), parsed=parsed)
        fic = await run_federated(checked, self._fetch_keys)
        return MatchedCredential(
            "federated", fic.id, fic.name, issuer=checked.iss, subject=checked.sub, override=checked.override
        )

    def _bounded_lifetime(self, payload: Mapping[str, Any], now: float, expires: float) -> None:
        """A certificate assertion is made for one request: its ``exp`` may lie at most
        ``max_assertion_lifetime`` ahead (MSAL signs 10 minutes, azure-identity 30), and an ``iat``
        may not lie in the future. Ten-year or 2**63 expiries would otherwise be accepted and kept
        in the replay store that long."""
        limit = self._policy.max_assertion_lifetime
        if expires - now > limit + self._policy.leeway:
            raise refuse(
                50027, detail=f"The assertion expires {expires - now:.0f} s from now; at most {limit:.0f} s."
            )
        iat = payload.get("iat")
        if iat is not None:
            if not isinstance(iat, int | float) or isinstance(iat, bool):
                raise refuse(50027, detail="The 'iat' claim must be a number of seconds.")
            if iat > now + self._policy.leeway:
                raise refuse(50027, detail="The assertion's 'iat' lies in the future.")

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


def _thumbprint(value: object) -> str | None:
    """A certificate thumbprint as unpadded base64url: azure-identity sends it padded, as Entra accepts."""
    if not isinstance(value, str):
        return None
    return value.rstrip("=").replace("+", "-").replace("/", "_")


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
