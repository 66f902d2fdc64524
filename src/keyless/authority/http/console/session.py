"""Console sign-in: the admin key, exchanged once for a session cookie.

The cookie is sealed (AES-256-GCM) with the authority's key-encryption key, which every node
shares, so any node can read it and nobody else can read or forge it. It carries the admin key's
*id* (never the key), its expiry and the session's CSRF token; it is ``HttpOnly``, ``Secure``,
``SameSite=Strict``, limited to ``/console``, and refused after ``console_session_seconds`` or once
the admin key it came from is deleted. Every form carries the CSRF token, compared in constant
time; the sign-in form itself uses a double-submit cookie, so a page elsewhere cannot sign a
browser in to an attacker's session.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass

from keyless.errors import ConfigurationError
from keyless.jose import KeyEncryptionKey

__all__ = ["COOKIE", "PRE_COOKIE", "Session", "SessionCodec", "same_token"]

COOKIE = "keyless_console"
PRE_COOKIE = "keyless_console_signin"  # the sign-in form's double-submit CSRF cookie
_AAD = b"keyless console session v1"
_MAX_COOKIE = 4096


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str  # the admin key signed in with
    csrf: str
    expires: float


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class SessionCodec:
    def __init__(self, kek: KeyEncryptionKey, lifetime: float) -> None:
        self._kek = kek
        self.lifetime = lifetime

    def new(self, key_id: str, now: float) -> tuple[Session, str]:
        session = Session(key_id, secrets.token_urlsafe(32), now + self.lifetime)
        payload = json.dumps({"k": session.key_id, "c": session.csrf, "e": session.expires}).encode()
        sealed = self._kek.seal(payload, aad=_AAD)
        return session, base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def read(self, cookie: str | None, now: float) -> Session | None:
        """The session the cookie holds, or None (absent, altered, foreign or expired)."""
        if not cookie or len(cookie) > _MAX_COOKIE:
            return None
        try:
            sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            data = json.loads(self._kek.open(sealed, aad=_AAD))
            session = Session(str(data["k"]), str(data["c"]), float(data["e"]))
        except (ValueError, binascii.Error, ConfigurationError, KeyError, TypeError):
            return None
        return session if session.expires > now else None
