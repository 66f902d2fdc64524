"""Reading a JWT without verifying it, for display and diagnosis only.

Lenient where ``parse_compact`` is strict (padding, whitespace around the token, any JSON the
standard library accepts), so a dry run can still show what a malformed token claims. Nothing
read here may decide whether a token is accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from keyless.errors import MalformedToken

__all__ = ["decode_unverified"]


def _segment(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken(f"the {what} is not base64url-encoded JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"the {what} is not a JSON object")
    return value


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, leniently and WITHOUT any verification (for display).

    Raises ``MalformedToken`` saying what is wrong: not three parts (five is an encrypted JWE),
    or a segment that is not base64url-encoded JSON object.
    """
    parts = token.strip().split(".")
    if len(parts) == 5:
        raise MalformedToken("this is an encrypted token (JWE, five parts): its claims cannot be read")
    if len(parts) != 3:
        raise MalformedToken(f"a JWT has three dot-separated parts; this has {len(parts)}")
    return _segment(parts[0], "header"), _segment(parts[1], "payload")
