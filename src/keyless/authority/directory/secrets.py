"""Client secrets: generated like Entra's (40 characters), kept only as a salted SHA-256, compared in
constant time. Secrets are high-entropy random strings, so a fast hash is the right tool here."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["generate_secret", "hash_secret", "secret_matches"]

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~._-"


def generate_secret() -> str:
    """A 40-character secret from a URL-safe alphabet (~240 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(40))


def hash_secret(value: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    """Return ``(hash, salt)`` for storing ``value``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return hashlib.sha256(salt + value.encode("utf-8")).digest(), salt


def secret_matches(value: str, stored_hash: bytes, salt: bytes) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(value, salt)[0], stored_hash)
