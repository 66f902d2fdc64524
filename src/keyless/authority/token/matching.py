"""Federated identity credential matching, in Entra's order, with Entra's refusal codes.

Matching is exact and case-sensitive on issuer, subject and audience (Entra's rule since 2025).
Each refusal also carries ``detail``: the exact near miss (trailing slash, case, whitespace,
scheme) that a tenant with detailed errors, and every admin audit record, gets to see.
"""

from __future__ import annotations

from collections.abc import Sequence

from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.aadsts import refuse
from keyless.errors import OAuthError

__all__ = ["fics_for_issuer", "match_fic", "near_miss", "refuse_issuer"]


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


def _closest(presented: str, configured: Sequence[str], what: str) -> str:
    for value in configured:
        why = near_miss(presented, value)
        if why is not None:
            return f"presented {what} {presented!r} almost matches configured {value!r}: {why}"
    listed = ", ".join(repr(v) for v in configured) or "none"
    return f"presented {what} {presented!r}; configured: {listed}"


def fics_for_issuer(
    fics: Sequence[FederatedIdentityCredential], iss: str
) -> list[FederatedIdentityCredential]:
    return [f for f in fics if f.issuer == iss]


def refuse_issuer(fics: Sequence[FederatedIdentityCredential], iss: str, sub: str, aud: str) -> OAuthError:
    """The refusal for an issuer no credential names (decided before any key is fetched)."""
    if not fics:
        return refuse(70021, iss=iss, sub=sub, aud=aud).with_detail(
            "the application has no federated identity credentials"
        )
    configured = sorted({f.issuer for f in fics})
    return refuse(700211, iss=iss).with_detail(_closest(iss, configured, "issuer"))


def match_fic(
    candidates: Sequence[FederatedIdentityCredential], *, sub: str, audiences: Sequence[str]
) -> FederatedIdentityCredential:
    """Among credentials with the assertion's issuer, the one matching subject and audience."""
    by_subject = [f for f in candidates if f.subject == sub]
    if not by_subject:
        subjects = sorted({f.subject for f in candidates})
        detail = _closest(sub, subjects, "subject")
        code = 7002138 if any(s.lower() == sub.lower() for s in subjects) else 700213
        raise refuse(code, sub=sub).with_detail(detail)
    for fic in by_subject:
        if any(a in fic.audiences for a in audiences):
            return fic
    shown = ", ".join(audiences) if audiences else ""
    configured = sorted({a for f in by_subject for a in f.audiences})
    raise refuse(700212, aud=shown).with_detail(
        _closest(audiences[0] if audiences else "", configured, "audience")
    )
