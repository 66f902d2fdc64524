"""Looking inside a JWT without verifying it: enough to tell an assertion from garbage, to know
when it expires, and for ``keyless token --decode``. Signatures are the token endpoint's job."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from keyless.credential._errors import AssertionSourceError

__all__ = ["Assertion", "decode_unverified", "inspect_assertion"]

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
MAX_ASSERTION = 64 * 1024  # Entra rejects far smaller; anything bigger is not a token


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, **signature not checked**; ValueError says why not.

    Stricter than ``keyless.jose.decode_unverified``, which it calls to decode: the segments must
    be unpadded base64url, the signature present and the header must name an ``alg``.
    """
    from keyless.errors import MalformedToken
    from keyless.jose import decode_unverified as decode  # cryptography is loaded on first use

    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"a JWT has three base64url parts separated by '.', this has {len(parts)}")
    for part, what in ((parts[0], "header"), (parts[1], "payload")):
        if not _SEGMENT.fullmatch(part):
            raise ValueError(f"its {what} is not base64url")
    try:
        header, claims = decode(token)
    except MalformedToken as exc:
        raise ValueError(exc.reason) from None
    if not parts[2]:
        raise ValueError("it is unsigned (empty signature)")
    if not isinstance(header.get("alg"), str):
        raise ValueError("its header has no 'alg'")
    return header, claims


@dataclass(frozen=True, slots=True)
class Assertion:
    """A client assertion that looks like a JWT, with the claims that matter for its use."""

    token: str
    exp: float | None
    iss: str | None
    sub: str | None


def _describe(text: str) -> str:
    # Never echo the content: a garbage file may still hold a secret.
    if not text:
        return "it is empty"
    return f"it holds {len(text)} characters that are not a JWT"


def inspect_assertion(text: str, where: str, *, now: float) -> Assertion:
    """``text`` as an assertion, or AssertionSourceError naming ``where`` (a file, a variable...).

    Refuses what is not a JWT, and a JWT that has already expired (Entra would answer AADSTS700024).
    """
    token = text.strip()
    if len(token) > MAX_ASSERTION:
        raise AssertionSourceError(f"{where}: {len(token)} characters is too long for a JWT", source=where)
    try:
        _, claims = decode_unverified(token)
    except ValueError as exc:
        reason = _describe(token) if not token or "." not in token else str(exc)
        raise AssertionSourceError(f"{where}: not a JWT ({reason})", source=where) from None
    exp = claims.get("exp")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float)):
        raise AssertionSourceError(f"{where}: the JWT's 'exp' is not a number", source=where)
    if exp is not None and exp <= now:
        raise AssertionSourceError(
            f"{where}: the JWT expired {int(now - exp)} s ago (exp {int(exp)}); "
            "Entra would refuse it with AADSTS700024",
            source=where,
        )
    iss, sub = claims.get("iss"), claims.get("sub")
    return Assertion(
        token,
        float(exp) if exp is not None else None,
        iss if isinstance(iss, str) else None,
        sub if isinstance(sub, str) else None,
    )
