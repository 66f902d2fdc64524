"""The guard's checks of a token, one small function each; every refusal has a code and a reason.

The verifier runs them in this order (the explainer runs them all, and reports each)::

    check_size          MalformedToken        before anything is decoded
    (parse_compact)     MalformedToken        structure, header (no JWE, crit, nested, alg none)
    check_algorithm     UnsupportedAlgorithm  before any key is fetched
    (resolve issuer)    ClaimError iss / tid  before any key is fetched
    (signature)         UnknownKey / InvalidSignature
    check_key_issuer    ClaimError iss        a key that names its issuer must name this one
    check_expiry        TokenExpired          exp, give or take the leeway
    check_not_before    TokenNotYetValid      nbf, give or take the leeway
    check_audience      ClaimError aud
    check_tenant        ClaimError tid
    check_subject       ClaimError sub
    check_required      ClaimError <claim>

Claim values quoted in reasons pass through :func:`show`, since they come from the token.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from keyless.errors import ClaimError, MalformedToken, UnsupportedAlgorithm
from keyless.trust import check_expiry, check_not_before

__all__ = [
    "check_algorithm",
    "check_audience",
    "check_expiry",
    "check_not_before",
    "check_required",
    "check_size",
    "check_subject",
    "show",
]


def show(value: object, limit: int = 120) -> str:
    """A claim value for a reason: quoted, escaped, cut short (claims are attacker-controlled)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def check_size(token: object, max_size: int) -> str:
    if type(token) is not str:
        raise MalformedToken("token must be text")
    if len(token) > max_size:
        raise MalformedToken(f"token is larger than {max_size} bytes")
    return token


def check_algorithm(alg: str, algorithms: Collection[str]) -> None:
    if alg not in algorithms:
        allowed = ", ".join(sorted(algorithms))
        raise UnsupportedAlgorithm(f"algorithm {show(alg)} is not allowed (allowed: {allowed})")


def check_audience(payload: Mapping[str, Any], audiences: Collection[str]) -> None:
    """``aud`` (text, or a list of text) must name one of this service's audiences."""
    aud = payload.get("aud")
    if type(aud) is str:
        if aud in audiences:
            return
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if any(a in audiences for a in aud):
            return
    elif aud is None:
        raise ClaimError("aud", "the token has no 'aud' claim")
    else:
        raise ClaimError("aud", "'aud' must be text or a list of text")
    raise ClaimError("aud", f"audience {show(aud)} is not one of this service's audiences")


def check_subject(payload: Mapping[str, Any]) -> None:
    sub = payload.get("sub")
    if type(sub) is not str or not sub:
        raise ClaimError("sub", "the token has no 'sub' claim" if sub is None else "'sub' must be text")


def check_required(payload: Mapping[str, Any], required: Collection[tuple[str, Any]], present: Any) -> None:
    """Each ``(claim, value)``: the claim must exist (``present``) or equal the value (or one of a tuple)."""
    for claim, expected in required:
        if claim not in payload:
            raise ClaimError(claim, f"the token has no {show(claim)} claim, which this service requires")
        if expected is present:
            continue
        value = payload[claim]
        accepted = expected if isinstance(expected, tuple) else (expected,)
        if not any(type(value) is type(a) and value == a for a in accepted):
            wanted = " or ".join(show(a) for a in accepted)
            raise ClaimError(claim, f"claim {show(claim)} is {show(value)}, this service requires {wanted}")
