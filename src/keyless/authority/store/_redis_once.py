"""``RedisOneTimeUse``: the one-time-use check (replay protection) shared through Redis.

Each key is claimed with ``SET keyless:once:<key> 1 NX EXAT <expiry>``: Redis decides atomically
which caller is first, and drops the record itself when it expires. ``redis`` is imported only
when an instance is made, so keyless imports fine without it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

__all__ = ["RedisOneTimeUse"]

KEY_PREFIX = "keyless:once:"


class RedisOneTimeUse:
    """``use_once`` on a Redis server at ``url`` (``redis://`` or ``rediss://``)."""

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX) -> None:
        import redis

        self._client: redis.Redis = redis.Redis.from_url(url)
        self._prefix = prefix

    def use_once(self, key: str, expires_at: float) -> bool:
        """True for the first caller with ``key`` until ``expires_at``; False for repeats."""
        # EXAT takes whole seconds; round up so a record never lapses early (and stays > 0).
        expire_at_second = max(1, math.ceil(expires_at))
        claimed = self._client.set(self._prefix + key, b"1", nx=True, exat=expire_at_second)
        return bool(claimed)

    def close(self) -> None:
        self._client.close()
