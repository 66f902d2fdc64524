"""``explain``: a dry run of the federated-assertion check, step by step, with the fix.

Given an assertion and an application's federated identity credentials (live, from an ``az``
export, or from a trust file), ``explain_assertion`` shows what the token endpoint would do: the
token's header and claims with human times, the algorithm, the signature and ``kid`` against the
issuer's keys, issuer / subject / audience against *every* credential (exact matches and near
misses: case, trailing slash, scheme, whitespace, ``-`` vs ``_``, GitHub's subject formats), the
time window with deltas; then the AADSTS code the endpoint (and Entra) would answer, and the
concrete fix. Pure functions: the caller fetches the issuer's keys (only when the issuer is
registered on the application, as the token endpoint does) and passes the clock in.

The code is predicted with the token endpoint's own functions and order (``_client_auth``):
format -> claims -> own issuer -> issuer registered -> signature -> subject and audience -> time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from keyless._time import human_time
from keyless.authority.explain.fixes import suggest_fixes
from keyless.authority.explain.github import github_subject_mismatch
from keyless.authority.explain.report import Comparison, Explanation, Fix, Step
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, FederatedIdentityCredential
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.matching import fics_for_issuer, match_fic, near_miss, refuse_issuer
from keyless.errors import (
    ClaimError,
    InvalidSignature,
    MalformedToken,
    OAuthError,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
    UnsupportedAlgorithm,
)
from keyless.jose import KeySet, ParsedJWS, decode_unverified, parse_compact, verify_signature
from keyless.trust import check_time_window, entra_time

__all__ = [
    "Comparison",
    "Explanation",
    "Fix",
    "Step",
    "explain_assertion",
    "issuer_to_fetch",
]

# -- small helpers ------------------------------------------------------------------------------------


def issuer_to_fetch(assertion: str, credentials: Sequence[FederatedIdentityCredential]) -> str | None:
    """The issuer whose keys a dry run may fetch: the token's ``iss`` if a credential names it
    exactly (the token endpoint never fetches keys of an issuer nobody registered)."""
    try:
        _, claims = decode_unverified(assertion)
    except MalformedToken:
        return None
    iss = claims.get("iss")
    return iss if isinstance(iss, str) and fics_for_issuer(credentials, iss) else None


# -- comparisons --------------------------------------------------------------------------------------


def _compare(
    credential: str, name: Literal["issuer", "subject", "audience"], presented: str, configured: str
) -> Comparison:
    if presented == configured:
        return Comparison(credential, name, configured, presented, "match")
    why = near_miss(presented, configured)
    if why is None and name == "subject":
        why = github_subject_mismatch(presented, configured)
    if why is None and name == "audience" and FIC_AUDIENCE_DEFAULT in (presented, configured):
        other = configured if presented == FIC_AUDIENCE_DEFAULT else presented
        why = (
            f"Entra's federated audience is {FIC_AUDIENCE_DEFAULT!r}; {other!r} is another value"
            if other.lower().startswith("api://")
            else None
        )
    return Comparison(credential, name, configured, presented, "near miss" if why else "differs", why)


def compare_credentials(
    credentials: Sequence[FederatedIdentityCredential], iss: str, sub: str, audiences: Sequence[str]
) -> list[Comparison]:
    """Every credential's issuer, subject and audience against the token's."""
    found: list[Comparison] = []
    for fic in credentials:
        found.append(_compare(fic.name, "issuer", iss, fic.issuer))
        found.append(_compare(fic.name, "subject", sub, fic.subject))
        for configured in fic.audiences:
            options = [_compare(fic.name, "audience", aud, configured) for aud in audiences or [""]]
            rank = {"match": 0, "near miss": 1, "differs": 2}
            found.append(min(options, key=lambda c: rank[c.verdict]))
    return found


# -- the dry run --------------------------------------------------------------------------------------


@dataclass
class _Run:
    now: float
    steps: list[Step] = field(default_factory=list)
    refusal: OAuthError | None = None

    def step(self, name: str, ok: bool | None, detail: str) -> None:
        self.steps.append(Step(name, ok, detail))

    def refuse(self, error: OAuthError) -> None:
        """The first refusal in the endpoint's order is the one it would answer."""
        if self.refusal is None:
            self.refusal = error


def explain_assertion(
    assertion: str,
    credentials: Sequence[FederatedIdentityCredential],
    *,
    now: float,
    keys: KeySet | None = None,
    key_error: str | None = None,
    leeway: float = 300,
    algorithms: Collection[str] = ("RS256",),
    own_issuer_prefix: str | None = None,
    app: str = "",
    tenant: str = "",
) -> Explanation:
    """The dry run. ``keys``: the issuer's key set if fetched; ``key_error``: why it could not be.
    With neither, the signature is reported as not checked. ``app`` / ``tenant`` go into the fixes."""
    run = _Run(now)
    parsed = _parse(run, assertion)
    header, claims = _display(assertion, parsed)
    if not claims:
        return Explanation(header, claims, tuple(run.steps), refusal=run.refusal)
    iss, sub, audiences = _required_claims(run, claims)
    if iss and own_issuer_prefix and iss.startswith(own_issuer_prefix):
        run.step("issuer", False, "the token was issued by this authority itself")
        run.refuse(refuse(700222, detail="Tokens issued by this authority cannot be federated credentials."))
    if _looks_like_certificate_assertion(header, claims):
        run.step(
            "kind",
            None,
            "this looks like a certificate assertion (x5t header, iss = sub): the endpoint checks it "
            "against the application's certificates, not its federated credentials",
        )
    comparisons = compare_credentials(credentials, iss, sub, audiences) if iss and sub else []
    candidates = fics_for_issuer(credentials, iss) if iss else []
    _issuer_step(run, credentials, candidates, iss, sub, audiences, comparisons)
    checked = _signature_step(run, parsed, header, candidates, keys, key_error, algorithms, iss)
    matched = _subject_audience_step(run, candidates, sub, audiences, comparisons)
    _time_step(run, claims, leeway)
    fixes = suggest_fixes(
        run.refusal, credentials, comparisons, iss=iss, sub=sub, audiences=audiences, app=app, tenant=tenant
    )
    return Explanation(
        header=header,
        claims=claims,
        steps=tuple(run.steps),
        comparisons=tuple(comparisons),
        matched=matched,
        refusal=run.refusal,
        signature_checked=checked,
        fixes=tuple(fixes),
    )


def _parse(run: _Run, assertion: str) -> ParsedJWS | None:
    try:
        parsed = parse_compact(assertion.strip())
    except UnsupportedAlgorithm as exc:
        run.step("format", False, f"a signed JWT, but refused before any check: {exc.reason}")
        run.refuse(refuse(700027, detail=exc.reason))
        return None
    except MalformedToken as exc:
        run.step("format", False, f"not a well-formed signed JWT: {exc.reason}")
        run.refuse(refuse(50027, detail=exc.reason))
        return None
    run.step("format", True, "a well-formed compact JWS (signed JWT)")
    return parsed


def _display(assertion: str, parsed: ParsedJWS | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if parsed is not None:
        return dict(parsed.header), dict(parsed.payload)
    try:
        return decode_unverified(assertion)
    except MalformedToken:
        return {}, {}


def _required_claims(run: _Run, claims: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    problems: list[str] = []
    values: dict[str, str] = {}
    for name in ("iss", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            values[name] = value
        else:
            problems.append(f"The assertion has no '{name}' claim.")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
    if not audiences or not all(isinstance(a, str) for a in audiences):
        problems.append("The assertion has no usable 'aud' claim.")
        audiences = [a for a in audiences if isinstance(a, str)]
    if problems:
        run.step("claims", False, " ".join(problems))
        run.refuse(refuse(50027, detail=problems[0]))
    else:
        run.step("claims", True, "iss, sub and aud are present")
    return values.get("iss", ""), values.get("sub", ""), audiences


def _looks_like_certificate_assertion(header: Mapping[str, Any], claims: Mapping[str, Any]) -> bool:
    has_thumbprint = "x5t" in header or "x5t#S256" in header
    return has_thumbprint and claims.get("iss") is not None and claims.get("iss") == claims.get("sub")


def _issuer_step(
    run: _Run,
    credentials: Sequence[FederatedIdentityCredential],
    candidates: Sequence[FederatedIdentityCredential],
    iss: str,
    sub: str,
    audiences: Sequence[str],
    comparisons: Sequence[Comparison],
) -> None:
    if not iss:
        return
    if candidates:
        names = ", ".join(f.name for f in candidates)
        run.step("issuer", True, f"{iss!r} is the issuer of credential(s) {names}")
        return
    if not credentials:
        run.step("issuer", False, "the application has no federated identity credentials")
    else:
        near = [c for c in comparisons if c.field == "issuer" and c.verdict == "near miss"]
        detail = f"no credential has issuer {iss!r}"
        if near:
            detail += f"; near miss: {near[0].credential} has {near[0].configured!r} ({near[0].why})"
        if iss != iss.strip():
            detail += "; the token's issuer has leading or trailing whitespace, which Entra always refuses"
        run.step("issuer", False, detail)
    run.refuse(refuse_issuer(credentials, iss, sub, audiences[0] if audiences else ""))


def _signature_step(
    run: _Run,
    parsed: ParsedJWS | None,
    header: Mapping[str, Any],
    candidates: Sequence[FederatedIdentityCredential],
    keys: KeySet | None,
    key_error: str | None,
    algorithms: Collection[str],
    iss: str,
) -> bool:
    """True when the signature was actually verified."""
    alg, kid = header.get("alg"), header.get("kid")
    allowed = ", ".join(sorted(algorithms))
    if parsed is not None:
        ok = alg in algorithms
        run.step("algorithm", ok, f"{alg} ({'allowed' if ok else 'not allowed'}; allowed: {allowed})")
    if parsed is None:
        return False
    if not candidates:
        run.step(
            "signature",
            None,
            "not checked: the issuer is not registered on the application, so its keys are never fetched",
        )
        return False
    if keys is None:
        if key_error is None:
            run.step("signature", None, f"not checked: the keys of {iss} were not fetched (offline)")
            return False
        run.step("signature", False, f"the keys of {iss} could not be fetched: {key_error}")
        run.refuse(refuse(90061, detail=key_error))
        return False
    kids = sorted(k.kid or "(none)" for k in keys)
    try:
        key = verify_signature(parsed, keys, algorithms=algorithms)
    except UnknownKey:
        published = ", ".join(kids) or "none"
        run.step("signature", False, f"kid {kid!r} is not in the issuer's key set (published: {published})")
        run.refuse(refuse(7000272, kid=kid or "(none)", iss=iss))
        return True
    except (UnsupportedAlgorithm, InvalidSignature) as exc:
        run.step("signature", False, exc.reason)
        run.refuse(refuse(700027, detail=exc.reason))
        return True
    run.step("signature", True, f"verified with the issuer's key {key.kid!r} ({alg})")
    return True


def _subject_audience_step(
    run: _Run,
    candidates: Sequence[FederatedIdentityCredential],
    sub: str,
    audiences: Sequence[str],
    comparisons: Sequence[Comparison],
) -> str | None:
    if not candidates or not sub or not audiences:
        return None
    try:
        fic = match_fic(candidates, sub=sub, audiences=audiences)
    except OAuthError as exc:
        names = {f.name for f in candidates}
        field_name = "audience" if exc.aadsts == 700212 else "subject"
        if field_name == "audience":
            run.step("subject", True, f"{sub!r} matches a credential of this issuer")
        run.step(field_name, False, exc.detail or exc.error_description)
        near = [
            c
            for c in comparisons
            if c.credential in names and c.field == field_name and c.verdict == "near miss"
        ]
        for c in near:
            if c.why and c.why not in (exc.detail or ""):
                run.step(field_name, False, f"near miss: {c.credential} has {c.configured!r}: {c.why}")
        if field_name == "subject":
            _elsewhere(run, comparisons, names)
        run.refuse(exc)
        return None
    run.step("subject", True, f"{sub!r} matches credential {fic.name}")
    run.step("audience", True, f"{', '.join(audiences)} includes {', '.join(fic.audiences)}")
    return fic.name


def _elsewhere(run: _Run, comparisons: Sequence[Comparison], candidates: set[str]) -> None:
    """A credential with the token's exact subject whose issuer is only a near miss."""
    for c in comparisons:
        if c.credential in candidates or c.field != "subject" or c.verdict != "match":
            continue
        issuer = next((i for i in comparisons if i.credential == c.credential and i.field == "issuer"), None)
        if issuer is not None and issuer.verdict == "near miss":
            run.step(
                "subject",
                None,
                f"credential {c.credential} has this exact subject, but issuer "
                f"{issuer.configured!r}: {issuer.why}",
            )


def _time_step(run: _Run, claims: Mapping[str, Any], leeway: float) -> None:
    now = run.now
    shown = []
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown.append(f"{name} {human_time(float(value), now)}")
    window = "; ".join(shown) or "no time claims"
    try:
        check_time_window(claims, now=now, leeway=leeway)
    except (TokenExpired, TokenNotYetValid) as exc:
        run.step("time window", False, f"{exc.reason}. {window}")
        nbf, exp = claims.get("nbf"), claims.get("exp")
        run.refuse(
            refuse(
                700024,
                now=entra_time(now),
                nbf=entra_time(nbf if isinstance(nbf, int | float) else None),
                exp=entra_time(exp if isinstance(exp, int | float) else None),
            ).with_detail(exc.reason)
        )
        return
    except ClaimError as exc:
        run.step("time window", False, f"{exc.reason}. {window}")
        run.refuse(refuse(50027, detail=exc.reason))
        return
    run.step("time window", True, f"valid now (leeway {leeway:g} s). {window}")
