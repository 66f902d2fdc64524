"""``explain``: a dry run of the federated-assertion check, step by step, with the fix.

Given an assertion and an application's federated identity credentials (live, from an ``az``
export, or from a trust file), ``explain_assertion`` shows what the token endpoint would do: the
token's header and claims with human times, the algorithm, the signature and ``kid`` against the
issuer's keys, issuer / subject / audience against *every* credential (exact matches and near
misses: case, trailing slash, scheme, whitespace, ``-`` vs ``_``, GitHub's subject formats), the
time window with deltas; then the AADSTS code the endpoint (and Entra) would answer, and the
concrete fix. Pure functions: the caller fetches the issuer's keys (only when the issuer is
registered on the application, as the token endpoint does) and passes the clock in.

The code is predicted by running the token endpoint's own steps, in its order
(``keyless.authority.token.federated.FEDERATED_CHECKS``): format -> claims -> own issuer ->
issuer registered -> signature -> subject and audience -> time window. Where the endpoint stops
at the first refusal, the dry run records it and goes on with every step whose inputs are known.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from keyless._time import human_time
from keyless.authority.explain.clauses import clause_near_miss
from keyless.authority.explain.fixes import suggest_fixes
from keyless.authority.explain.github import github_subject_mismatch
from keyless.authority.explain.report import Comparison, Explanation, Fix, Step
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, FederatedIdentityCredential
from keyless.authority.token import federated
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.conditions import compile_condition
from keyless.authority.token.expressions import parse_expression
from keyless.authority.token.federated import (
    Check,
    FederatedAssertion,
    FederatedPolicy,
    is_certificate_assertion,
)
from keyless.authority.token.fic_index import FicIndex
from keyless.authority.token.matching import near_miss
from keyless.errors import MalformedToken, OAuthError
from keyless.jose import KeySet, decode_unverified

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
    return iss if isinstance(iss, str) and any(f.issuer == iss for f in credentials) else None


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


def _compare_clauses(fic: FederatedIdentityCredential, claims: Mapping[str, Any]) -> list[Comparison]:
    """Each clause of a flexible credential's expression against the token's claim."""
    found = []
    expression = parse_expression(fic.claims_matching_expression or "")
    for result in expression.evaluate(claims):
        field_name = f"claims['{result.clause.claim}']"
        shown = "(no such claim)" if result.missing else str(result.presented)
        if result.ok:
            found.append(Comparison(fic.name, field_name, str(result.clause), shown, "match"))
            continue
        near = clause_near_miss(result.clause, result.presented)
        if near is not None:
            why = f"{near[0]}; '{near[1]}' would match"
            found.append(Comparison(fic.name, field_name, str(result.clause), shown, "near miss", why))
        else:
            reason: str | None = "the token has no such claim" if result.missing else None
            if not result.missing and not isinstance(result.presented, str):
                reason = f"the claim is a {type(result.presented).__name__}, not a string"
            found.append(Comparison(fic.name, field_name, str(result.clause), shown, "differs", reason))
    return found


def _compare_condition(fic: FederatedIdentityCredential, claims: Mapping[str, Any]) -> Comparison:
    result = compile_condition(fic.condition or "").evaluate(claims)
    verdict: Literal["match", "differs"] = "match" if result.passed else "differs"
    return Comparison(fic.name, "condition", fic.condition or "", result.describe(), verdict)


def compare_credentials(
    credentials: Sequence[FederatedIdentityCredential],
    iss: str,
    sub: str,
    audiences: Sequence[str],
    claims: Mapping[str, Any] | None = None,
) -> list[Comparison]:
    """Every credential's issuer, subject (or expression's clauses), audience and condition against
    the token's."""
    found: list[Comparison] = []
    for fic in credentials:
        found.append(_compare(fic.name, "issuer", iss, fic.issuer))
        if fic.claims_matching_expression is not None:
            found.extend(_compare_clauses(fic, claims or {"sub": sub}))
        else:
            found.append(_compare(fic.name, "subject", sub, fic.subject or ""))
        if fic.condition is not None:
            found.append(_compare_condition(fic, claims or {"sub": sub}))
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
    checks: list[str] = field(default_factory=list)  # the endpoint's steps that ran, in order
    signature_checked: bool = False
    comparisons: list[Comparison] = field(default_factory=list)

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
    policy = FederatedPolicy(leeway=leeway, algorithms=algorithms, own_issuer_prefix=own_issuer_prefix)
    a = FederatedAssertion(assertion.strip(), FicIndex.build(credentials), policy, now, keys=keys)
    header: dict[str, Any] = {}
    claims: dict[str, Any] = {}
    for check in federated.FEDERATED_CHECKS:
        if check.name == "signature" and a.parsed is not None:
            _algorithm_step(run, a)
        if not check.ready(a):
            _not_ready(run, a, check)
            continue
        if check.needs_keys and a.keys is None:
            _keys_missing(run, a, key_error)
            continue
        run.checks.append(check.name)
        try:
            detail = check.run(a)
        except OAuthError as exc:
            failed = _FAILED.get(check.name)
            run.refuse(failed(run, a, exc) if failed else _failed_plainly(run, check.name, exc))
        else:
            _PASSED.get(check.name, _passed_plainly)(run, a, check.name, detail)
        if check.name == "format":
            header, claims = _display(assertion, a)
            if not claims:
                return Explanation(
                    header, claims, tuple(run.steps), refusal=run.refusal, checks=tuple(run.checks)
                )
            a.claims = claims
        elif check.name == "claims":
            run.comparisons = (
                compare_credentials(credentials, a.iss, a.sub, a.audiences, claims) if a.iss and a.sub else []
            )
        elif check.name == "own issuer" and is_certificate_assertion(header, claims, None):
            run.step(
                "kind",
                None,
                "this looks like a certificate assertion (x5t header, iss = sub): the endpoint checks it "
                "against the application's certificates, not its federated credentials",
            )
    fixes = suggest_fixes(
        run.refusal,
        credentials,
        run.comparisons,
        iss=a.iss,
        sub=a.sub,
        audiences=a.audiences,
        claims=claims,
        app=app,
        tenant=tenant,
    )
    return Explanation(
        header=header,
        claims=claims,
        steps=tuple(run.steps),
        comparisons=tuple(run.comparisons),
        matched=a.fic.name if a.fic is not None else None,
        refusal=run.refusal,
        signature_checked=run.signature_checked,
        fixes=tuple(fixes),
        checks=tuple(run.checks),
    )


def _display(assertion: str, a: FederatedAssertion) -> tuple[dict[str, Any], dict[str, Any]]:
    if a.parsed is not None:
        return dict(a.parsed.header), dict(a.parsed.payload)
    try:
        return decode_unverified(assertion)
    except MalformedToken:
        return {}, {}


# -- what each step says, passed or failed ------------------------------------------------------------


def _passed_plainly(run: _Run, a: FederatedAssertion, name: str, detail: str) -> None:
    run.step(name, True, detail)


def _failed_plainly(run: _Run, name: str, exc: OAuthError) -> OAuthError:
    run.step(name, False, exc.detail or exc.error_description)
    return exc


def _format_failed(run: _Run, a: FederatedAssertion, exc: OAuthError) -> OAuthError:
    reason = exc.detail or exc.error_description
    if exc.aadsts == 700027:
        run.step("format", False, f"a signed JWT, but refused before any check: {reason}")
    else:
        run.step("format", False, f"not a well-formed signed JWT: {reason}")
    return exc


def _claims_failed(run: _Run, a: FederatedAssertion, exc: OAuthError) -> OAuthError:
    run.step("claims", False, " ".join(a.claim_problems))
    return exc


def _own_issuer_passed(run: _Run, a: FederatedAssertion, name: str, detail: str) -> None:
    """Nothing to say: most tokens are not this authority's own."""


def _own_issuer_failed(run: _Run, a: FederatedAssertion, exc: OAuthError) -> OAuthError:
    run.step("issuer", False, "the token was issued by this authority itself")
    return exc


def _issuer_failed(run: _Run, a: FederatedAssertion, exc: OAuthError) -> OAuthError:
    if not a.credentials:
        run.step("issuer", False, "the application has no federated identity credentials")
        return exc
    near = [c for c in run.comparisons if c.field == "issuer" and c.verdict == "near miss"]
    detail = f"no credential has issuer {a.iss!r}"
    if near:
        detail += f"; near miss: {near[0].credential} has {near[0].configured!r} ({near[0].why})"
    if a.iss != a.iss.strip():
        detail += "; the token's issuer has leading or trailing whitespace, which Entra always refuses"
    run.step("issuer", False, detail)
    return exc


def _algorithm_step(run: _Run, a: FederatedAssertion) -> None:
    """For information: the endpoint enforces the allow-list inside the signature check."""
    alg = a.parsed.alg if a.parsed is not None else None
    ok = alg in a.policy.algorithms
    allowed = ", ".join(sorted(a.policy.algorithms))
    run.step("algorithm", ok, f"{alg} ({'allowed' if ok else 'not allowed'}; allowed: {allowed})")


def _not_ready(run: _Run, a: FederatedAssertion, check: Check) -> None:
    if check.name == "signature" and a.parsed is not None:
        run.step(
            "signature",
            None,
            "not checked: the issuer is not registered on the application, so its keys are never fetched",
        )


def _keys_missing(run: _Run, a: FederatedAssertion, key_error: str | None) -> None:
    if key_error is None:
        run.step("signature", None, f"not checked: the keys of {a.iss} were not fetched (offline)")
        return
    run.step("signature", False, f"the keys of {a.iss} could not be fetched: {key_error}")
    run.refuse(refuse(90061, detail=key_error))


def _signature_passed(run: _Run, a: FederatedAssertion, name: str, detail: str) -> None:
    run.signature_checked = True
    run.step("signature", True, detail)


def _signature_failed(run: _Run, a: FederatedAssertion, exc: OAuthError) -> OAuthError:
    run.signature_checked = True
    if exc.aadsts == 7000272:
        kid = a.parsed.kid if a.parsed is not None else None
        published = ", ".join(sorted(k.kid or "(none)" for k in a.keys or ())) or "none"
        run.step("signature", False, f"kid {kid!r} is not in the issuer's key set (published: {published})")
    else:
        run.step("signature", False, exc.detail or exc.error_description)
    return exc


def _match_passed(run: _Run, a: FederatedAssertion, name: str, detail: str) -> None:
    assert a.fic is not None
    if a.fic.claims_matching_expression is not None:
        clauses = [c for c in run.comparisons if c.credential == a.fic.name and c.field.startswith("claims[")]
        shown = "; ".join(f"{c.configured} (presented {c.presented!r})" for c in clauses)
        run.step("expression", True, f"{detail}: {shown}")
    else:
        run.step("subject", True, detail)
    run.step("audience", True, f"{', '.join(a.audiences)} includes {', '.join(a.fic.audiences)}")
    if a.fic.condition is not None:
        run.step("condition", True, f"{a.fic.condition!r} evaluated to true")


def _match_failed(run: _Run, a: FederatedAssertion, exc: OAuthError) -> OAuthError:
    names = {f.name for f in a.candidates}
    field_name = "audience" if exc.aadsts == 700212 else "subject"
    if field_name == "audience":
        run.step("subject", True, f"{a.sub!r} matches a credential of this issuer")
    run.step(field_name, False, exc.detail or exc.error_description)
    near = [
        c
        for c in run.comparisons
        if c.credential in names
        and (c.field == field_name or (field_name == "subject" and c.field.startswith("claims[")))
        and c.verdict == "near miss"
    ]
    for c in near:
        if c.why and c.why not in (exc.detail or ""):
            run.step(
                field_name,
                False,
                f"near miss: {c.credential} has {c.configured!r}, the token {c.presented!r}: {c.why}",
            )
    for c in run.comparisons:
        if c.credential in names and c.field == "condition" and c.verdict != "match":
            run.step("condition", False, f"{c.credential}: {c.configured!r} {c.presented}")
    if field_name == "subject":
        _elsewhere(run, names)
    return exc


def _elsewhere(run: _Run, candidates: set[str]) -> None:
    """A credential with the token's exact subject whose issuer is only a near miss."""
    comparisons = run.comparisons
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


def _time_shown(a: FederatedAssertion) -> str:
    claims = a.claims or {}
    shown = []
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown.append(f"{name} {human_time(float(value), a.now)}")
    return "; ".join(shown) or "no time claims"


def _time_passed(run: _Run, a: FederatedAssertion, name: str, detail: str) -> None:
    run.step("time window", True, f"{detail}. {_time_shown(a)}")


def _time_failed(run: _Run, a: FederatedAssertion, exc: OAuthError) -> OAuthError:
    run.step("time window", False, f"{a.time_problem}. {_time_shown(a)}")
    return exc.with_detail(a.time_problem) if exc.aadsts == 700024 and a.time_problem else exc


_PASSED = {
    "own issuer": _own_issuer_passed,
    "signature": _signature_passed,
    "subject and audience": _match_passed,
    "time window": _time_passed,
}
_FAILED = {
    "format": _format_failed,
    "claims": _claims_failed,
    "own issuer": _own_issuer_failed,
    "issuer": _issuer_failed,
    "signature": _signature_failed,
    "subject and audience": _match_failed,
    "time window": _time_failed,
}
