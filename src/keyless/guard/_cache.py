"""A bounded cache of verified tokens, so that a token seen again skips the signature check.

Entries are keyed by the SHA-256 of the token (the token itself is never kept), hold the
:class:`~keyless.guard.Identity` it proved, and are valid from ``nbf`` (less the leeway) until
``exp``: an expired token misses the cache and is checked (and refused) in full. The least recently
used entry goes when the cache is full. Safe within one event loop (no awaits inside).

``entries`` maps a key to ``(valid_from, expires, identity)``. The verifier reads it directly on
its hot path (the same test as :meth:`TokenCache.lookup`, without the call); everything else goes
through the methods.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from keyless.guard._identity import Identity

__all__ = ["TokenCache"]

_sha256 = hashlib.sha256


class TokenCache:
    """At most ``max_entries`` verified tokens, each until its ``exp``."""

    __slots__ = ("entries", "hits", "max_entries", "misses")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.entries: OrderedDict[bytes, tuple[float, float, Identity]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(token: str) -> bytes:
        """The cache key of a token: its SHA-256."""
        return _sha256(token.encode("utf-8", "surrogatepass")).digest()

    def lookup(self, key: bytes, now: float) -> Identity | None:
        """The identity cached under ``key`` if ``now`` is inside its window, else ``None``."""
        entry = self.entries.get(key)
        if entry is not None:
            valid_from, expires, identity = entry
            if valid_from <= now < expires:
                self.entries.move_to_end(key)
                self.hits += 1
                return identity
            if now >= expires:
                del self.entries[key]
        self.misses += 1
        return None

    def store(self, key: bytes, identity: Identity, valid_from: float) -> None:
        entries = self.entries
        entries[key] = (valid_from, identity.expires, identity)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def get(self, token: str, now: float) -> Identity | None:
        return self.lookup(self.key(token), now)

    def put(self, token: str, identity: Identity, valid_from: float = float("-inf")) -> None:
        self.store(self.key(token), identity, valid_from)

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)
