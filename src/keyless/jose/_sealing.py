"""Keys encrypted at rest: AES-256-GCM under a key-encryption key (KEK).

The KEK comes from ``KEYLESS_KEK`` (base64 of 32 bytes) or from a key file created 0600 on first
use. Sealed values are ``b"k1" + nonce(12) + ciphertext``; the associated data binds a sealed
value to its purpose (e.g. the signing key's ``kid``) so values cannot be swapped between rows.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyless.errors import ConfigurationError

__all__ = ["KeyEncryptionKey"]

_VERSION = b"k1"
_NONCE = 12


class KeyEncryptionKey:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_base64(cls, value: str) -> KeyEncryptionKey:
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except ValueError:
            raise ConfigurationError("KEYLESS_KEK is not valid base64") from None
        return cls(raw)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyEncryptionKey:
        """Read the key file, or create it with mode 0600 (refusing a file others can read)."""
        if path.exists():
            mode = path.stat().st_mode & 0o077
            if mode:
                raise ConfigurationError(f"{path} is readable by others: chmod 600 it")
            return cls.from_base64(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(key).decode() + "\n")
        return cls(key)

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, *, aad: bytes) -> bytes:
        if not sealed.startswith(_VERSION) or len(sealed) < len(_VERSION) + _NONCE + 16:
            raise ConfigurationError("sealed value has an unknown format")
        nonce = sealed[len(_VERSION) : len(_VERSION) + _NONCE]
        try:
            return self._aead.decrypt(nonce, sealed[len(_VERSION) + _NONCE :], aad)
        except InvalidTag:
            raise ConfigurationError(
                "cannot decrypt a stored key: the key-encryption key (KEYLESS_KEK or the key "
                "file) is not the one it was sealed with"
            ) from None
