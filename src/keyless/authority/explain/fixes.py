"""The concrete fix for a refused assertion: the trust-file lines, the ``az`` command and the
``keyless`` command that would make the credential match, or what to change on the token's side.

A fix that changes a credential makes it trust the token's subject: it is only right when that
subject is the workload meant to be trusted, and every such fix says so.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from keyless.authority.explain.clauses import repaired_expression
from keyless.authority.explain.github import github_other_workload, parse_github_subject
from keyless.authority.explain.report import Comparison, Fix
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, FederatedIdentityCredential
from keyless.authority.token.expressions import parse_expression
from keyless.errors import OAuthError

__all__ = ["Fix", "suggest_fixes"]

_SCORE = {"match": 2, "near miss": 1, "differs": 0}


@dataclass(frozen=True, slots=True)
class _Wanted:
    name: str
    issuer: str
    subject: str
    audience: str


def suggest_fixes(
    refusal: OAuthError | None,
    credentials: Sequence[FederatedIdentityCredential],
    comparisons: Sequence[Comparison],
    *,
    iss: str,
    sub: str,
    audiences: Sequence[str],
    claims: Mapping[str, Any] | None = None,
    app: str = "",
    tenant: str = "",
) -> list[Fix]:
    """What would make the token endpoint accept the assertion, most likely fix first."""
    if refusal is None:
        return []
    code = refusal.aadsts
    token_side = _token_side(code, refusal, iss)
    if token_side is not None:
        return [token_side]
    if not iss or not sub or not audiences:
        return []
    audience = FIC_AUDIENCE_DEFAULT if FIC_AUDIENCE_DEFAULT in audiences else audiences[0]
    target = _Target(app or "<APP_ID>", tenant or "<TENANT>")
    if code == 700212:
        return _audience_fixes(credentials, iss, sub, audiences, target)
    if code not in (70021, 700211, 700213, 7002138):
        return []
    for what, value in (("issuer", iss), ("subject", sub)):
        if value != value.strip():
            return [
                Fix(
                    f"the token's {what} {value!r} has leading or trailing whitespace: fix the token's {what}"
                )
            ]
    closest = _closest(credentials, comparisons, sub)
    if closest is not None and (closest.claims_matching_expression is not None or closest.condition):
        flexible = _flexible_fix(closest, comparisons, claims or {"sub": sub}, target)
        if flexible is not None:
            return [flexible]
    if closest is not None and closest.claims_matching_expression is None:
        wanted = _Wanted(closest.name, iss, sub, _kept_audience(closest, audiences, audience))
        return [target.update(closest, wanted)]
    wanted = _Wanted(_new_name(iss, sub, {f.name for f in credentials}), iss, sub, audience)
    other = _other_workload(credentials, iss, sub)
    keep = f"keep {other.name} for {other.subject!r}; " if other is not None else ""
    return [target.create(wanted, keep)]


def _flexible_fix(
    fic: FederatedIdentityCredential,
    comparisons: Sequence[Comparison],
    claims: Mapping[str, Any],
    target: _Target,
) -> Fix | None:
    """For a flexible credential the token almost satisfies: the repaired expression; for a
    condition that is false: what it said."""
    mine = [c for c in comparisons if c.credential == fic.name]
    if fic.claims_matching_expression is not None and any(
        c.field.startswith("claims[") and c.verdict != "match" for c in mine
    ):
        repaired = repaired_expression(parse_expression(fic.claims_matching_expression), claims)
        if repaired is None:
            return None
        # double quotes read better around an expression's single quotes, where the shell allows
        quoted = f'"{repaired}"' if not set(repaired) & set('"$`\\!') else shlex.quote(repaired)
        return Fix(
            summary=f"change credential {fic.name}'s expression to {repaired!r} (only if the token's "
            "workload is one you mean to trust; or fix the token's side to match the expression)",
            trust_file=f"claimsMatchingExpression: {json.dumps(repaired)}",
            az=None,
            keyless=f"keyless fic update {target.tenant} {target.app} {shlex.quote(fic.name)} "
            f"--expression {quoted}",
        )
    condition = next((c for c in mine if c.field == "condition" and c.verdict != "match"), None)
    if condition is not None:
        return Fix(
            f"credential {fic.name} matches, but its condition {fic.condition!r} {condition.presented}: "
            "the token's claims must satisfy it, or change the condition "
            f"(keyless fic update {target.tenant} {target.app} {shlex.quote(fic.name)} --condition ...)"
        )
    return None


def _token_side(code: int | None, refusal: OAuthError, iss: str) -> Fix | None:
    detail = refusal.detail or ""
    messages = {
        50027: f"the assertion itself is unusable ({detail or 'malformed'}): fix how the token is obtained",
        700027: f"the signature is refused ({detail}): the token was altered, or signed with a key or "
        "algorithm the issuer does not publish (Entra accepts RS256)",
        700222: "tokens of this authority cannot be federated credentials: present the workload platform's "
        "token (GitHub, Google, Kubernetes ...), not an access token from here",
        7000272: f"the issuer {iss} does not publish the token's kid: the token is older than the issuer's "
        "current keys, or was signed by another issuer; get a fresh token",
        90061: f"the authority could not fetch the keys of {iss} ({detail}): make "
        f"{iss.rstrip('/')}/.well-known/openid-configuration and its jwks_uri reachable from the authority",
        700024: f"the token is outside its validity window ({detail}): get a fresh token (they are "
        "short-lived; a cached one may be past its exp) and check the clocks of both machines",
    }
    summary = messages.get(code or 0)
    return Fix(summary) if summary else None


def _closest(
    credentials: Sequence[FederatedIdentityCredential], comparisons: Sequence[Comparison], sub: str
) -> FederatedIdentityCredential | None:
    """The credential the token was most likely meant for: every field matches or is a near miss
    (a typo-like one: not another GitHub workload of the same repository); the best such one."""
    best: tuple[int, FederatedIdentityCredential] | None = None
    for fic in credentials:
        mine = [c for c in comparisons if c.credential == fic.name]
        repairable = all(
            c.verdict == "match"
            or (
                c.verdict == "near miss"
                and not (c.field == "subject" and github_other_workload(sub, c.configured))
            )
            for c in mine
        )
        if not mine or not repairable:
            continue
        score = sum(_SCORE[c.verdict] for c in mine)
        if best is None or score > best[0]:
            best = (score, fic)
    return best[1] if best else None


def _other_workload(
    credentials: Sequence[FederatedIdentityCredential], iss: str, sub: str
) -> FederatedIdentityCredential | None:
    """A credential of the same issuer for another GitHub workload of the same repository."""
    return next(
        (f for f in credentials if f.issuer == iss and f.subject and github_other_workload(sub, f.subject)),
        None,
    )


def _kept_audience(fic: FederatedIdentityCredential, audiences: Sequence[str], fallback: str) -> str:
    return next((a for a in fic.audiences if a in audiences), fallback)


def _audience_fixes(
    credentials: Sequence[FederatedIdentityCredential],
    iss: str,
    sub: str,
    audiences: Sequence[str],
    target: _Target,
) -> list[Fix]:
    fic = next((f for f in credentials if f.issuer == iss and f.subject == sub), None)
    if fic is None:
        return []
    configured = fic.audiences[0] if fic.audiences else FIC_AUDIENCE_DEFAULT
    fixes = [
        Fix(
            f"request the token for audience {configured!r} (it was issued for {', '.join(audiences)}): "
            "GitHub azure/login 'audience', the metadata server's '?audience=', a projected token's "
            "'audience' ..."
        )
    ]
    fixes.append(target.update(fic, _Wanted(fic.name, iss, sub, audiences[0])))
    return fixes


class _Target:
    def __init__(self, app: str, tenant: str) -> None:
        self.app = app
        self.tenant = tenant

    def _parameters(self, wanted: _Wanted) -> str:
        body = {
            "name": wanted.name,
            "issuer": wanted.issuer,
            "subject": wanted.subject,
            "audiences": [wanted.audience],
        }
        return shlex.quote(json.dumps(body))

    def update(self, fic: FederatedIdentityCredential, wanted: _Wanted) -> Fix:
        changed = [
            f"{name} {old!r} -> {new!r}"
            for name, old, new in (
                ("issuer", fic.issuer, wanted.issuer),
                ("subject", fic.subject, wanted.subject),
                ("audience", fic.audiences[0] if fic.audiences else "", wanted.audience),
            )
            if old != new
        ]
        flags = " ".join(
            f"--{name} {shlex.quote(new)}"
            for name, old, new in (
                ("issuer", fic.issuer, wanted.issuer),
                ("subject", fic.subject, wanted.subject),
                ("audience", fic.audiences[0] if fic.audiences else "", wanted.audience),
            )
            if old != new
        )
        return Fix(
            summary=f"change credential {fic.name}: {'; '.join(changed)} (only if {wanted.subject!r} is "
            "the workload you mean to trust)",
            trust_file=_yaml(wanted),
            az=f"az ad app federated-credential update --id {self.app} --federated-credential-id "
            f"{shlex.quote(fic.name)} --parameters {self._parameters(wanted)}",
            keyless=f"keyless fic update {self.tenant} {self.app} {shlex.quote(fic.name)} {flags}",
        )

    def create(self, wanted: _Wanted, prefix: str = "") -> Fix:
        return Fix(
            summary=f"{prefix}add a credential for issuer {wanted.issuer!r} and subject "
            f"{wanted.subject!r} (only if that is the workload you mean to trust)",
            trust_file=_yaml(wanted),
            az=f"az ad app federated-credential create --id {self.app} "
            f"--parameters {self._parameters(wanted)}",
            keyless=f"keyless fic create {self.tenant} {self.app} --name {shlex.quote(wanted.name)} "
            f"--issuer {shlex.quote(wanted.issuer)} --subject {shlex.quote(wanted.subject)} "
            f"--audience {shlex.quote(wanted.audience)}",
        )


def _yaml(wanted: _Wanted) -> str:
    entry = {
        "name": wanted.name,
        "issuer": wanted.issuer,
        "subject": wanted.subject,
        "audiences": [wanted.audience],
    }
    body = yaml.safe_dump([entry], sort_keys=False, default_flow_style=None, width=1000)
    return "federatedIdentityCredentials:\n" + "".join(f"  {line}\n" for line in body.splitlines())


def _new_name(iss: str, sub: str, taken: set[str]) -> str:
    """A valid, unused credential name from the token (``github-app-main``, ``accounts-google-com``)."""
    github = parse_github_subject(sub)
    if github is not None:
        repo = (github.repo or github.repo_id or "repo").split("/")[-1]
        base = f"github-{repo}-{github.context_value or github.kind or 'any'}"
    else:
        base = urlsplit(iss).hostname or "federated"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")[:110] or "federated"
    if not name[0].isalnum():
        name = "f" + name
    name = name if len(name) >= 3 else f"{name}-fic"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate
