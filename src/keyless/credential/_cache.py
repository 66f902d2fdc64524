"""Access tokens per (tenant, scopes, claims, enable_cae), refreshed before they expire, with one
request in flight per key.

* **When to refresh** (``refresh_at``, reported as ``AccessTokenInfo.refresh_on``): the server's
  ``refresh_in`` when it sent one; otherwise half the lifetime for tokens living 2 h or more (as
  azure-identity), else 5 minutes before expiry, but never before half the lifetime has passed
  (so very short-lived tokens are not re-requested on every call).
* **Fast path**: a dict lookup and a clock read, no lock, while ``now < check_at``.
* **Single flight**: the first caller that finds a key due starts the request; callers arriving
  meanwhile get the current token at once if it is still valid, or wait for that request's
  outcome (its token or its exception) otherwise. Threads share one flight per key; tasks share
  one per key and event loop.
* **Failure**: if a refresh fails while the cached token is still valid, that token is returned
  and the next attempt waits ``retry_interval`` (30 s, as azure-identity) or until expiry;
  once expired, the failure is raised.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from keyless.credential._errors import ClientAuthenticationError
from keyless.credential._token_client import TokenResult
from keyless.credential._types import AccessToken, AccessTokenInfo

__all__ = ["CacheKey", "Entry", "TokenCache", "refresh_time"]

log = logging.getLogger("keyless.credential")

CacheKey = tuple[str, tuple[str, ...], str | None, bool]  # tenant, scopes, claims, enable_cae
LONG_LIVED = 7200  # seconds: from this lifetime on, refresh at half-life
REFRESH_MARGIN = 300  # otherwise refresh when this little remains
RETRY_INTERVAL = 30.0
_PRUNE_ABOVE = 256


def refresh_time(result: TokenResult) -> float:
    """When a token should be refreshed (see the module documentation)."""
    lifetime = result.expires_on - result.requested_at
    if result.refresh_in is not None and result.refresh_in > 0:
        at = result.requested_at + result.refresh_in
    elif lifetime >= LONG_LIVED:
        at = result.requested_at + lifetime / 2
    else:
        at = max(result.expires_on - REFRESH_MARGIN, result.requested_at + lifetime / 2)
    return min(at, result.expires_on)


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached token, its prebuilt azure-core views, and when to look at it again."""

    access_token: AccessToken
    info: AccessTokenInfo
    expires_on: int
    refresh_at: float
    check_at: float  # the fast path serves the entry until then (refresh_at, later after a failure)

    @classmethod
    def from_result(cls, result: TokenResult) -> Entry:
        refresh_at = refresh_time(result)
        return cls(
            AccessToken(result.token, result.expires_on),
            AccessTokenInfo(
                result.token, result.expires_on, token_type=result.token_type, refresh_on=int(refresh_at)
            ),
            result.expires_on,
            refresh_at,
            refresh_at,
        )


class _Flight:
    __slots__ = ("done", "entry", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: Entry | None = None
        self.error: BaseException | None = None


class TokenCache:
    """The cache behind one credential; see the module documentation."""

    def __init__(self, clock: Callable[[], float], *, retry_interval: float = RETRY_INTERVAL) -> None:
        self.clock = clock
        self.retry_interval = retry_interval
        self.entries: dict[CacheKey, Entry] = {}
        self._flights: dict[CacheKey, _Flight] = {}
        self._tasks: dict[CacheKey, asyncio.Task[Entry]] = {}

    def clear(self) -> None:
        self.entries.clear()

    # -- shared ------------------------------------------------------------------------------------

    def _valid(self, entry: Entry | None, now: float) -> bool:
        return entry is not None and now < entry.expires_on

    def _store(self, key: CacheKey, result: TokenResult) -> Entry:
        entry = Entry.from_result(result)
        if len(self.entries) >= _PRUNE_ABOVE:
            now = self.clock()
            for stale in [k for k, e in self.entries.items() if e.expires_on <= now]:
                self.entries.pop(stale, None)
        self.entries[key] = entry
        return entry

    def _keep_after_failure(self, key: CacheKey, failure: ClientAuthenticationError) -> Entry | None:
        """The still-valid cached entry to serve after a failed refresh, or None to raise."""
        entry, now = self.entries.get(key), self.clock()
        if entry is None or now >= entry.expires_on:
            return None
        kept = replace(entry, check_at=min(now + self.retry_interval, float(entry.expires_on)))
        self.entries[key] = kept
        log.warning(
            "token refresh failed; using the cached token (valid for %d s more): %s",
            entry.expires_on - now,
            failure.message,
        )
        return kept

    # -- threads -----------------------------------------------------------------------------------

    def get(self, key: CacheKey, fetch: Callable[[], TokenResult]) -> Entry:
        entry, now = self.entries.get(key), self.clock()
        if entry is not None and now < entry.check_at:
            return entry
        flight = _Flight()
        current = self._flights.setdefault(key, flight)  # atomic: exactly one caller starts a flight
        if current is not flight:
            if self._valid(entry, now):
                assert entry is not None
                return entry  # a refresh is under way; the current token is still good
            current.done.wait()
            if current.error is not None:
                raise current.error
            assert current.entry is not None
            return current.entry
        try:
            flight.entry = self._refresh(key, fetch)
            return flight.entry
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            del self._flights[key]
            flight.done.set()

    def _refresh(self, key: CacheKey, fetch: Callable[[], TokenResult]) -> Entry:
        entry = self.entries.get(key)
        if entry is not None and self.clock() < entry.check_at:
            return entry  # another flight finished between our lookup and ours starting
        try:
            return self._store(key, fetch())
        except ClientAuthenticationError as failure:
            kept = self._keep_after_failure(key, failure)
            if kept is None:
                raise
            return kept

    # -- tasks -------------------------------------------------------------------------------------

    async def aget(self, key: CacheKey, fetch: Callable[[], Awaitable[TokenResult]]) -> Entry:
        entry, now = self.entries.get(key), self.clock()
        if entry is not None and now < entry.check_at:
            return entry
        loop = asyncio.get_running_loop()
        task = self._tasks.get(key)
        if task is not None and task.get_loop() is loop and not task.done():
            if self._valid(entry, now):
                assert entry is not None
                return entry
        else:
            task = loop.create_task(self._arefresh(key, fetch))
            task.add_done_callback(_retrieve)
            self._tasks[key] = task
        return await asyncio.shield(task)

    async def _arefresh(self, key: CacheKey, fetch: Callable[[], Awaitable[TokenResult]]) -> Entry:
        try:
            entry = self.entries.get(key)
            if entry is not None and self.clock() < entry.check_at:
                return entry
            try:
                return self._store(key, await fetch())
            except ClientAuthenticationError as failure:
                kept = self._keep_after_failure(key, failure)
                if kept is None:
                    raise
                return kept
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]


def _retrieve(task: asyncio.Task[Entry]) -> None:
    """Mark a flight's exception as seen: every waiter may have been cancelled."""
    if not task.cancelled():
        task.exception()
