"""Federated identity credential matching, in Entra's order, with Entra's refusal codes.

Matching is exact and case-sensitive on issuer, subject and audience (Entra's rule since 2025);
a flexible credential matches by its ``claimsMatchingExpression`` instead of the subject, and any
credential with a CEL ``condition`` also needs it to hold. Candidates come from the application's
``FicIndex`` (a lookup, not a scan). Each refusal also carries ``detail``: the exact near miss
(trailing slash, case, whitespace, scheme, ``-``/``_``) that a tenant with detailed errors, and
every admin audit record, gets to see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any

from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.fic_index import CompiledFic, FicIndex, IssuerIndex, fold
from keyless.errors import OAuthError

__all__ = ["match_fic", "near_miss", "refuse_issuer"]

_SHOWN = 5  # configured values listed in a refusal's detail


def near_miss(presented: str, configured: str) -> str | None:
    """Why two almost-equal strings differ, or None if they are not a near miss."""
    if presented == configured:
        return None
    if presented.strip() == configured.strip():
        return "they differ only by leading or trailing whitespace"
    if presented.rstrip("/") == configured.rstrip("/"):
        return "they differ only by a trailing slash"
    if presented.lower() == configured.lower():
        return "they differ only by letter case (matching is case-sensitive)"
    if presented.split("://", 1)[-1] == configured.split("://", 1)[-1]:
        return "they differ only by URL scheme"
    if presented.replace("-", "_") == configured.replace("-", "_"):
        return "they differ only by '-' versus '_' (e.g. pull-request vs pull_request)"
    return None


def _listed(values: Iterable[str], total: int) -> str:
    """The first few of ``total`` values (never more are read: a refusal costs what an acceptance does)."""
    shown = ", ".join(repr(v) for v in islice(values, _SHOWN)) or "none"
    return shown + (f" and {total - _SHOWN} more" if total > _SHOWN else "")


def _closest(presented: str, configured: Sequence[str], what: str) -> str:
    for value in configured:
        why = near_miss(presented, value)
        if why is not None:
            return f"presented {what} {presented!r} almost matches configured {value!r}: {why}"
    return f"presented {what} {presented!r}; configured: {_listed(configured, len(configured))}"


def refuse_issuer(index: FicIndex, iss: str, sub: str, aud: str) -> OAuthError:
    """The refusal for an issuer no credential names (decided before any key is fetched)."""
    if not len(index):
        return refuse(70021, iss=iss, sub=sub, aud=aud).with_detail(
            "the application has no federated identity credentials"
        )
    return refuse(700211, iss=iss).with_detail(_closest(iss, index.issuers, "issuer"))


def _subject_refusal(index: IssuerIndex, sub: str, claims: Mapping[str, Any]) -> OAuthError:
    near = index.near(sub, claims)
    for item in near:
        if item.expression is None:
            why = near_miss(sub, item.fic.subject or "")
            if why is not None:
                code = 7002138 if why.startswith("they differ only by letter case") else 700213
                detail = f"presented subject {sub!r} almost matches configured {item.fic.subject!r}: {why}"
                return refuse(code, sub=sub).with_detail(detail)
        else:
            failed = [r for r in item.expression.evaluate(claims) if not r.ok]
            if failed:
                clause, value = failed[0].clause, failed[0].presented
                folded = replace(clause, comparand=fold(clause.comparand))
                if isinstance(value, str) and folded.test(fold(value)):
                    detail = (
                        f"presented {clause.claim} {value!r} almost matches credential {item.fic.name!r}'s "
                        f"clause {clause} (it differs by case, '-'/'_', whitespace or a trailing '/')"
                    )
                else:
                    detail = (
                        f"credential {item.fic.name}: clause {clause} does not match the token's "
                        f"{clause.claim} {value!r}"
                    )
                return refuse(700213, sub=sub).with_detail(detail)
    detail = f"presented subject {sub!r}; configured: {_listed(index.exact, len(index.exact))}"
    flexible = index.flexible_count
    if flexible:
        expressions = (c.fic.claims_matching_expression or "" for c in index.credentials if c.expression)
        detail += f"; expressions: {_listed(expressions, flexible)}"
    return refuse(700213, sub=sub).with_detail(detail)


def match_fic(
    index: IssuerIndex, *, sub: str, audiences: Sequence[str], claims: Mapping[str, Any]
) -> FederatedIdentityCredential:
    """Among one issuer's credentials, the first matching subject (or expression), audience and
    condition: exact credentials first, then flexible ones."""
    by_subject = index.candidates(sub, claims)
    if not by_subject:
        raise _subject_refusal(index, sub, claims)
    by_audience = [c for c in by_subject if any(a in c.fic.audiences for a in audiences)]
    if not by_audience:
        shown = ", ".join(audiences) if audiences else ""
        configured = sorted({a for c in by_subject for a in c.fic.audiences})
        raise refuse(700212, aud=shown).with_detail(
            _closest(audiences[0] if audiences else "", configured, "audience")
        )
    refused: list[tuple[CompiledFic, str]] = []
    for item in by_audience:
        if item.condition is None:
            return item.fic
        result = item.condition.evaluate(claims)
        if result.passed:
            return item.fic
        refused.append((item, result.describe()))
    item, why = refused[0]
    raise (
        refuse(700213, sub=sub)
        .with_detail(f"credential {item.fic.name!r} matches, but its condition {item.fic.condition!r} {why}")
        .concerning(item.fic.name, item.fic.id)
    )
