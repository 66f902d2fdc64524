"""The checks of a federated client assertion (workload identity federation), as an ordered tuple
of named steps that the token endpoint and ``explain`` both run.

Each step reads and extends one ``FederatedAssertion`` and either passes (returning a short
description) or raises the ``OAuthError`` the endpoint answers. The endpoint stops at the first
refusal (``run_federated``); the dry run (``keyless.authority.explain``) runs every step whose
inputs are known, records each verdict, and predicts the endpoint's answer as the first refusal.
Adding a step to ``FEDERATED_CHECKS`` adds it to both.

The order is Entra's: format -> claims -> own issuer -> issuer registered -> signature ->
subject and audience -> time window. The issuer is known to be registered on the application
*before* its keys are fetched, so nobody can make keyless fetch an issuer nobody registered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.fic_index import FicIndex, IssuerIndex
from keyless.authority.token.matching import match_fic, refuse_issuer
from keyless.errors import (
    ClaimError,
    InvalidSignature,
    MalformedToken,
    OAuthError,
    TokenExpired,
    TokenNotYetValid,
    TransportError,
    UnknownKey,
    UnsupportedAlgorithm,
)
from keyless.jose import KeySet, ParsedJWS, PublicKey, parse_compact, verify_signature
from keyless.trust import check_time_window, entra_time

__all__ = [
    "FEDERATED_CHECKS",
    "Check",
    "FederatedAssertion",
    "FederatedPolicy",
    "KeyFetch",
    "is_certificate_assertion",
    "parse_assertion",
    "run_federated",
]

KeyFetch = Callable[[str, str | None, str | None], Awaitable[KeySet]]  # (issuer, kid, discovery URL)


@dataclass(frozen=True, slots=True)
class FederatedPolicy:
    leeway: float
    algorithms: Collection[str]
    own_issuer_prefix: str | None  # tokens from this authority itself are refused (700222)
    issuer_overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass
class FederatedAssertion:
    """What the steps have learned about one assertion so far."""

    token: str
    rules: FicIndex  # the application's federated credentials
    policy: FederatedPolicy
    now: float
    parsed: ParsedJWS | None = None
    claims: Mapping[str, Any] | None = None
    iss: str = ""
    sub: str = ""
    audiences: list[str] = field(default_factory=list)
    claim_problems: list[str] = field(default_factory=list)
    issuer_index: IssuerIndex | None = None  # the credentials of the token's issuer
    keys: KeySet | None = None
    key: PublicKey | None = None  # the issuer's key that verified the signature
    fic: FederatedIdentityCredential | None = None
    expires: float | None = None
    time_problem: str | None = None  # why the time window failed, in words

    @property
    def credentials(self) -> Sequence[FederatedIdentityCredential]:
        return self.rules.all

    @property
    def candidates(self) -> list[FederatedIdentityCredential]:
        """The credentials with the token's issuer (empty until the issuer step has run)."""
        return [c.fic for c in self.issuer_index.credentials] if self.issuer_index else []

    @property
    def override(self) -> str | None:
        """A development discovery URL standing in for the issuer's own, if configured."""
        return self.policy.issuer_overrides.get(self.iss)


@dataclass(frozen=True, slots=True)
class Check:
    """One named step: ``ready`` says whether its inputs are known, ``run`` passes or refuses."""

    name: str
    ready: Callable[[FederatedAssertion], bool]
    run: Callable[[FederatedAssertion], str]
    needs_keys: bool = False  # the issuer's keys are fetched (or given) before this step


# -- the steps ------------------------------------------------------------------------------------------


def parse_assertion(token: str) -> ParsedJWS:
    """A compact JWS with an allowed algorithm, or the refusal (700027, or 50027 when malformed)."""
    try:
        return parse_compact(token)
    except UnsupportedAlgorithm as exc:
        raise refuse(700027, detail=exc.reason) from None
    except MalformedToken as exc:
        raise refuse(50027, detail=exc.reason) from None


def check_format(a: FederatedAssertion) -> str:
    if a.parsed is None:
        a.parsed = parse_assertion(a.token)
    a.claims = a.parsed.payload
    return "a well-formed compact JWS (signed JWT)"


def check_claims(a: FederatedAssertion) -> str:
    claims = a.claims or {}
    problems: list[str] = []
    for name in ("iss", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            setattr(a, name, value)
        else:
            problems.append(f"The assertion has no '{name}' claim.")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
    if not audiences or not all(isinstance(x, str) for x in audiences):
        problems.append("The assertion has no usable 'aud' claim.")
    a.audiences = [x for x in audiences if isinstance(x, str)]
    a.claim_problems = problems
    if problems:
        raise refuse(50027, detail=problems[0])
    return "iss, sub and aud are present"


def check_own_issuer(a: FederatedAssertion) -> str:
    prefix = a.policy.own_issuer_prefix
    if prefix and a.iss.startswith(prefix):
        raise refuse(700222, detail="Tokens issued by this authority cannot be federated credentials.")
    return "not issued by this authority"


def check_issuer_registered(a: FederatedAssertion) -> str:
    a.issuer_index = a.rules.issuer(a.iss)
    if a.issuer_index is None:
        raise refuse_issuer(a.rules, a.iss, a.sub, a.audiences[0] if a.audiences else "")
    every = a.issuer_index.credentials
    shown = ", ".join(c.fic.name for c in every[:5]) + (
        f" and {len(every) - 5} more" if len(every) > 5 else ""
    )
    return f"{a.iss!r} is the issuer of credential(s) {shown}"


def check_signature(a: FederatedAssertion) -> str:
    assert a.parsed is not None
    assert a.keys is not None
    try:
        a.key = verify_signature(a.parsed, a.keys, algorithms=a.policy.algorithms)
    except UnknownKey:
        raise refuse(7000272, kid=a.parsed.kid or "(none)", iss=a.iss) from None
    except (UnsupportedAlgorithm, InvalidSignature) as exc:
        raise refuse(700027, detail=exc.reason) from None
    return f"verified with the issuer's key {a.key.kid!r} ({a.parsed.alg})"


def check_subject_and_audience(a: FederatedAssertion) -> str:
    assert a.issuer_index is not None
    a.fic = match_fic(a.issuer_index, sub=a.sub, audiences=a.audiences, claims=a.claims or {})
    if a.fic.claims_matching_expression is not None:
        return f"the token's claims satisfy credential {a.fic.name}'s expression"
    return f"{a.sub!r} matches credential {a.fic.name}"


def check_time_window_of(a: FederatedAssertion) -> str:
    claims = a.claims or {}
    try:
        a.expires = check_time_window(claims, now=a.now, leeway=a.policy.leeway).expires
    except (TokenExpired, TokenNotYetValid) as exc:
        a.time_problem = exc.reason
        nbf, exp = claims.get("nbf"), claims.get("exp")
        raise refuse(
            700024,
            now=entra_time(a.now),
            nbf=entra_time(nbf if isinstance(nbf, int | float) else None),
            exp=entra_time(exp if isinstance(exp, int | float) else None),
        ) from None
    except ClaimError as exc:
        a.time_problem = exc.reason
        raise refuse(50027, detail=exc.reason) from None
    return f"valid now (leeway {a.policy.leeway:g} s)"


FEDERATED_CHECKS: tuple[Check, ...] = (
    Check("format", lambda a: True, check_format),
    Check("claims", lambda a: a.claims is not None, check_claims),
    Check("own issuer", lambda a: bool(a.iss), check_own_issuer),
    Check("issuer", lambda a: bool(a.iss), check_issuer_registered),
    Check(
        "signature",
        lambda a: a.parsed is not None and a.issuer_index is not None,
        check_signature,
        needs_keys=True,
    ),
    Check(
        "subject and audience",
        lambda a: bool(a.issuer_index is not None and a.sub and a.audiences),
        check_subject_and_audience,
    ),
    Check("time window", lambda a: a.claims is not None, check_time_window_of),
)


async def run_federated(a: FederatedAssertion, fetch_keys: KeyFetch) -> FederatedIdentityCredential:
    """The token endpoint's run: every step in order, the first refusal raised."""
    for check in FEDERATED_CHECKS:
        if check.needs_keys and a.keys is None:
            try:
                a.keys = await fetch_keys(a.iss, a.parsed.kid if a.parsed else None, a.override)
            except TransportError as exc:
                raise refuse(90061, detail=str(exc)) from None
        try:
            check.run(a)
        except OAuthError as exc:
            if a.fic is not None:  # matched, then refused (the time window): say which credential
                exc.concerning(a.fic.name, a.fic.id)
            if a.key is not None:  # verified claims only: nobody can plant values in the record
                exc.presented = {"iss": a.iss, "sub": a.sub, "aud": list(a.audiences)}
            raise
    assert a.fic is not None
    return a.fic


def is_certificate_assertion(
    header: Mapping[str, Any], claims: Mapping[str, Any], client_id: str | None
) -> bool:
    """A self-signed client assertion (private_key_jwt): a certificate thumbprint in the header and
    the application itself as issuer (``client_id`` when known, else the token's own ``sub``)."""
    has_thumbprint = "x5t" in header or "x5t#S256" in header
    iss = claims.get("iss")
    expected = client_id if client_id else claims.get("sub")
    return has_thumbprint and iss is not None and iss == expected
