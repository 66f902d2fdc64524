"""The one exception tree of keyless.

Every class has a stable ``code`` that scripts and tests can rely on::

    KeylessError                          code
    +-- ConfigurationError                config_invalid        bad settings, reported all at once
    +-- StorageError                      storage
    |   +-- NotFound                      not_found
    |   +-- AlreadyExists                 already_exists
    |   +-- Conflict                      conflict              compare-and-swap lost a race
    |   +-- LimitReached                  limit_reached         a per-parent limit is full
    |   +-- Locked                        locked                another apply holds the write lock
    |   +-- StoreUnavailable              store_unavailable     the database did not answer in
    |                                                           time (or refused); ``retry_after``
    +-- TransportError                    transport             network trouble; ``retryable``
    +-- VerificationError                 verification_failed   a token was refused; ``reason``
    |   +-- MalformedToken                malformed
    |   +-- UnsupportedAlgorithm          alg_not_allowed
    |   +-- UnknownKey                    unknown_kid
    |   +-- InvalidSignature              bad_signature
    |   +-- ClaimError                    claim_invalid          (``claim`` names it)
    |       +-- TokenExpired              expired
    |       +-- TokenNotYetValid          not_yet_valid
    +-- OAuthError                        oauth_error           an OAuth/Entra protocol error:
                                                                ``error``, ``error_description``,
                                                                ``status``, ``aadsts`` (int or None),
                                                                ``detail`` (the exact reason, for admins)

Storage raises only ``NotFound`` / ``AlreadyExists`` / ``Conflict`` / ``LimitReached`` / ``Locked``
on purpose, and ``StoreUnavailable`` when the database cannot be reached within its bounds. Verification
errors carry a machine ``code`` and a human ``reason``; never the token itself.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ClaimError",
    "ConfigurationError",
    "Conflict",
    "InvalidSignature",
    "KeylessError",
    "LimitReached",
    "Locked",
    "MalformedToken",
    "NotFound",
    "OAuthError",
    "StorageError",
    "StoreUnavailable",
    "TokenExpired",
    "TokenNotYetValid",
    "TransportError",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "VerificationError",
]


class KeylessError(Exception):
    """Root of every error keyless raises on purpose."""

    code = "keyless_error"


class ConfigurationError(KeylessError):
    """Settings or files that cannot work; ``problems`` lists every one found."""

    code = "config_invalid"

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class StorageError(KeylessError):
    code = "storage"


class NotFound(StorageError):
    code = "not_found"


class AlreadyExists(StorageError):
    code = "already_exists"


class Conflict(StorageError):
    """An update lost a compare-and-swap race: re-read and try again."""

    code = "conflict"


class LimitReached(StorageError):
    """A create would pass a per-parent limit (federated credentials per application): ``limit``."""

    code = "limit_reached"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class Locked(StorageError):
    """Another store transaction (a trust-file apply) held the write lock past the wait bound."""

    code = "locked"


class StoreUnavailable(StorageError):
    """The database did not answer within its bounds (down, blackholed, locked, read-only).

    ``reason`` is one line for the log (never a traceback, never a password); clients are told to
    come back after ``retry_after`` seconds (503 with ``Retry-After``).
    """

    code = "store_unavailable"

    def __init__(self, reason: str, *, retry_after: int = 5) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TransportError(KeylessError):
    """The network failed us; ``retryable`` says whether trying again may help."""

    code = "transport"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class VerificationError(KeylessError):
    """A token was refused. ``reason`` is for humans; ``code`` for machines."""

    code = "verification_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedToken(VerificationError):
    code = "malformed"


class UnsupportedAlgorithm(VerificationError):
    code = "alg_not_allowed"


class UnknownKey(VerificationError):
    code = "unknown_kid"


class InvalidSignature(VerificationError):
    code = "bad_signature"


class ClaimError(VerificationError):
    code = "claim_invalid"

    def __init__(self, claim: str, reason: str) -> None:
        super().__init__(reason)
        self.claim = claim


class TokenExpired(ClaimError):
    code = "expired"


class TokenNotYetValid(ClaimError):
    code = "not_yet_valid"


class OAuthError(KeylessError):
    """An OAuth 2.0 error as the token endpoint returns it (RFC 6749 5.2, Entra's shape)."""

    code = "oauth_error"

    def __init__(
        self,
        error: str,
        error_description: str,
        *,
        status: int = 400,
        aadsts: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(f"{error}: {error_description}")
        self.error = error
        self.error_description = error_description
        self.status = status
        self.aadsts = aadsts
        # The exact reason for admins (audit log, detailed-errors tenants); never secrets or tokens.
        self.detail = detail
        # The federated credential the refusal concerned, "name (id)", when one had matched.
        self.credential: str | None = None
        # A federated assertion's verified iss, sub and aud (only once its signature checked out),
        # so admins can compare them with the credentials later; never the token.
        self.presented: dict[str, object] | None = None

    def with_detail(self, detail: str) -> OAuthError:
        self.detail = detail
        return self

    def concerning(self, name: str, id: str) -> OAuthError:
        self.credential = f"{name} ({id})"
        return self
