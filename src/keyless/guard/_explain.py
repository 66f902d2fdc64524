"""``keyless guard explain``: run every check on a token and say which pass, which fail, and why.

Unlike the verifier, the explainer does not stop at the first failure: claims are still checked
when the signature cannot be (marked as *unverified*), and the policy is still evaluated against
the claims the token would have. Steps that cannot run at all are ``skip``. Fetches the issuer's
keys like the verifier does (so it needs the network, and the same configuration).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from keyless.errors import MalformedToken, VerificationError
from keyless.guard import _claim_steps
from keyless.guard._checks import check_algorithm, check_size, show
from keyless.guard._claim_steps import ClaimInput, ClaimStep
from keyless.guard._identity import Identity, identity_from_claims
from keyless.guard._issuers import TrustedIssuer, audience_set
from keyless.guard._request_safety import unsafe_path
from keyless.guard._verifier import Verifier
from keyless.jose import ParsedJWS, PublicKey, decode_unverified, parse_compact, verify_signature

__all__ = ["Explanation", "Step", "explain"]

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True, slots=True)
class Step:
    """One check: its name, ``pass``/``fail``/``skip``, what was found, and the refusal code."""

    name: str
    status: Status
    detail: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    steps: tuple[Step, ...]
    identity: Identity | None = None  # set only when every token check passed
    header: Mapping[str, Any] | None = None
    claims: Mapping[str, Any] | None = None
    decision: str | None = None  # the policy's reason, when a request was given

    @property
    def passed(self) -> bool:
        """True when the token is accepted (and, if a request was given, the policy allows it)."""
        return self.identity is not None and all(s.status != "fail" for s in self.steps)

    @property
    def failures(self) -> list[Step]:
        return [s for s in self.steps if s.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "steps": [
                {"name": s.name, "status": s.status, "detail": s.detail, "code": s.code} for s in self.steps
            ],
            "header": dict(self.header) if self.header is not None else None,
            "claims": dict(self.claims) if self.claims is not None else None,
        }


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Run:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def check(self, name: str, action: Callable[[], str]) -> bool:
        try:
            detail = action()
        except VerificationError as exc:
            self.steps.append(Step(name, "fail", exc.reason, exc.code))
            return False
        self.steps.append(Step(name, "pass", detail))
        return True

    def skip(self, name: str, why: str) -> None:
        self.steps.append(Step(name, "skip", why))


async def explain(
    token: str,
    verifier: Verifier,
    *,
    now: float | None = None,
    method: str | None = None,
    path: str | None = None,
) -> Explanation:
    """Every check of ``token`` against ``verifier``'s configuration (and the policy for a request)."""
    now = verifier.now() if now is None else now
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    run = _Run()
    _size(run, verifier, token)
    parsed = _structure(run, verifier, token)
    header: Mapping[str, Any] | None
    payload: Mapping[str, Any] | None
    if parsed is not None:
        header, payload, unverified = parsed.header, parsed.payload, ""
    else:
        try:
            header, payload = decode_unverified(token)
        except MalformedToken:
            header, payload = None, None
        unverified = " (unverified: the token is malformed)"
    _algorithm(run, verifier, header)
    if payload is None:
        for name in ("issuer", "keys", "signature", "expiry", "not before", "audience", "subject"):
            run.skip(name, "no readable payload")
        return Explanation(tuple(run.steps), header=header)
    trusted = _issuer(run, verifier, payload)
    key = await _signature(run, verifier, trusted, parsed)
    if key is None:
        unverified = unverified or " (unverified: the signature was not checked)"
    _claims(run, verifier, payload, trusted, key, now, unverified)
    token_ok = all(s.status == "pass" for s in run.steps)
    provisional = _provisional(payload, trusted)
    decision = None
    if path is not None:
        decision = _policy(run, verifier, provisional, method or "GET", path, token_ok)
    return Explanation(tuple(run.steps), provisional if token_ok else None, header, payload, decision)


def _size(run: _Run, verifier: Verifier, token: str) -> None:
    limit = verifier.config.max_token_size

    def size() -> str:
        check_size(token, limit)
        return f"{len(token)} bytes (limit {limit})"

    run.check("size", size)


def _structure(run: _Run, verifier: Verifier, token: str) -> ParsedJWS | None:
    parsed: list[ParsedJWS] = []

    def structure() -> str:
        # Past the size limit, still look inside (the size step has already failed).
        parsed.append(parse_compact(token, max_size=max(verifier.config.max_token_size, len(token))))
        header = parsed[0].header
        return f"compact JWS; alg {show(header.get('alg'))}, kid {show(header.get('kid'))}"

    run.check("structure", structure)
    return parsed[0] if parsed else None


def _algorithm(run: _Run, verifier: Verifier, header: Mapping[str, Any] | None) -> None:
    alg = header.get("alg") if header is not None else None
    if not isinstance(alg, str):
        run.skip("algorithm", "no readable header")
        return

    def algorithm() -> str:
        check_algorithm(alg, verifier.algorithms)
        return f"{alg} is allowed"

    run.check("algorithm", algorithm)


def _issuer(run: _Run, verifier: Verifier, payload: Mapping[str, Any]) -> TrustedIssuer | None:
    found: list[TrustedIssuer] = []

    def issuer() -> str:
        found.append(verifier.issuers.resolve(payload))
        trusted = found[0]
        tenant = f" (tenant {trusted.tenant_id})" if trusted.tenant_id else ""
        return f"{show(trusted.issuer)} is trusted ({trusted.kind}{tenant})"

    run.check("issuer", issuer)
    return found[0] if found else None


def _policy(
    run: _Run, verifier: Verifier, identity: Identity | None, method: str, path: str, token_ok: bool
) -> str:
    verb = method.upper()
    policy = verifier.config.policy
    # The path as it would appear on the request line: encoded tricks are judged as the gate does.
    raw = path.encode("utf-8", "surrogatepass")
    bad = unsafe_path(unquote(path), raw, case_insensitive=policy.case_insensitive_paths)
    if bad is not None:
        run.steps.append(
            Step("policy", "fail", f"{verb} {path}: refused before the policy: {bad}", "bad_path")
        )
        return bad
    result = policy.decide(identity, verb, unquote(path))
    anonymous = result.rule is not None and result.rule.allow == "anonymous"
    note = "" if token_ok or anonymous else " (if the token were valid)"
    code = None if result.allowed else ("forbidden" if result.status == 403 else "no_token")
    run.steps.append(
        Step("policy", "pass" if result.allowed else "fail", f"{verb} {path}: {result.reason}{note}", code)
    )
    return result.reason


async def _signature(
    run: _Run, verifier: Verifier, trusted: TrustedIssuer | None, parsed: ParsedJWS | None
) -> PublicKey | None:
    if trusted is None or parsed is None:
        why = "the issuer is not trusted" if parsed is not None else "the token is malformed"
        run.skip("keys", why)
        run.skip("signature", why)
        return None
    try:
        keys = await verifier.keys_for(trusted, parsed.kid)
    except VerificationError as exc:
        run.steps.append(Step("keys", "fail", exc.reason, exc.code))
        run.skip("signature", "no keys")
        return None
    kid = parsed.kid
    if kid is None:
        found = "the token names no kid"
    else:
        found = f"kid {show(kid)} is {'' if keys.has_kid(kid) else 'NOT '}among them"
    source = trusted.keys.discovery_url or trusted.keys.issuer
    run.steps.append(Step("keys", "pass", f"{len(keys)} key(s) of {source}; {found}"))
    verified: list[PublicKey] = []

    def signature() -> str:
        verified.append(verify_signature(parsed, keys, algorithms=verifier.algorithms))
        return f"verified with key {show(verified[0].kid)} ({parsed.alg})"

    run.check("signature", signature)
    return verified[0] if verified else None


def _claims(
    run: _Run,
    verifier: Verifier,
    payload: Mapping[str, Any],
    trusted: TrustedIssuer | None,
    key: PublicKey | None,
    now: float,
    unverified: str,
) -> None:
    """The verifier's own claim steps (``CLAIM_STEPS``), each reported."""
    config = verifier.config
    audiences = trusted.audiences if trusted is not None else audience_set(config.audiences)
    checked = ClaimInput(payload, trusted, key, now, config.leeway, audiences, config.required_claims)
    for step in _claim_steps.CLAIM_STEPS:
        if step.applies(checked):
            run.check(step.name, _describing(step, checked, unverified))


def _describing(step: ClaimStep, checked: ClaimInput, unverified: str) -> Callable[[], str]:
    def action() -> str:
        return _described(step.name, checked, step.run(checked), unverified)

    return action


def _described(name: str, c: ClaimInput, found: Any, unverified: str) -> str:
    """What a passed claim step found, in words."""
    payload = c.payload
    if name == "key issuer":
        assert c.key is not None
        return f"the key is published for {show(c.key.extra.get('issuer'))}"
    if name == "expiry":
        left = found - c.now
        state = (
            f"valid for another {left:.0f} s"
            if left >= 0
            else f"expired {-left:.0f} s ago, within the leeway"
        )
        return f"{state} (exp {_when(found)}, leeway {c.leeway:.0f} s){unverified}"
    if name == "not before":
        return (f"valid since {_when(found)}" if found is not None else "no nbf claim") + unverified
    if name == "audience":
        return f"{show(payload.get('aud'))} is one of this service's audiences{unverified}"
    if name == "tenant":
        assert c.trusted is not None
        return f"tenant {c.trusted.tenant_id}{unverified}"
    if name == "subject":
        return f"sub {show(payload.get('sub'))}{unverified}"
    if name == "required claims":
        return ", ".join(claim for claim, _ in c.required) + f" as required{unverified}"
    return f"passed{unverified}"


def _provisional(payload: Mapping[str, Any], trusted: TrustedIssuer | None) -> Identity | None:
    """The identity the claims describe (for the policy step), if they are readable at all."""
    if not isinstance(payload.get("sub"), str) or not isinstance(payload.get("iss"), str):
        return None
    exp = payload.get("exp")
    expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else 0.0
    return identity_from_claims(payload, kind=trusted.kind if trusted else "unknown", expires=expires)
