"""Remote key sets: an issuer's JWKS, cached, refreshed carefully, and served when the issuer is down.

:class:`RemoteKeySet` follows one issuer (discovery, then ``jwks_uri``):

* the key set is served from cache while younger than ``max_age``; the discovery document too;
* fetches of one issuer are at least ``min_refresh_interval`` apart, whatever asks for them: a
  token whose ``kid`` is not in the set triggers a refetch (rotation pickup) once that interval
  has passed since the last attempt, so a flood of unknown ``kid`` values costs one fetch per
  interval and a rotated key is accepted at most one interval after it is published;
* a failed fetch backs off the same way, and longer after each consecutive failure (doubling up
  to ``max_failure_backoff``): until then the last good set is served, or, with none ever
  fetched, the failure is raised again without any request (negative caching);
* one fetch is in flight at a time: concurrent callers wait for it and share its result;
* with ``serve_stale`` (the authority), a request never waits for a refresh while a key set is
  at hand: past 75% of ``max_age`` a refresh starts in the background and the current set keeps
  being served (only an unknown ``kid`` waits, for the one fetch that can find it);
* with a ``persistence`` (the authority's store), each good key set is saved, and a process that
  has none yet loads the saved one before fetching: it starts serving during an issuer's outage,
  and nodes share what any of them fetched.

:class:`IssuerKeyCache` holds a bounded, least-recently-used registry of them over one client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import httpx

from keyless._metrics import issuer_fetched
from keyless.errors import TransportError
from keyless.jose import KeySet
from keyless.trust._discovery import ProviderMetadata, discover
from keyless.trust._fetch import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, JsonFetcher

__all__ = [
    "DEFAULT_MAX_FAILURE_BACKOFF",
    "DEFAULT_MIN_REFRESH_INTERVAL",
    "IssuerKeyCache",
    "KeyCacheStats",
    "KeyPersistence",
    "RemoteKeySet",
]

# Short enough that a rotated key is picked up within seconds, long enough that made-up kid
# values cannot turn the cache into a request amplifier against the issuer.
DEFAULT_MIN_REFRESH_INTERVAL = 4.0
DEFAULT_MAX_FAILURE_BACKOFF = 60.0

logger = logging.getLogger("keyless.trust")

Clock = Callable[[], float]
REFRESH_AHEAD = 0.75  # with serve_stale: share of max_age after which a background refresh starts


class KeyPersistence(Protocol):
    """Where the last good key set of each issuer is kept beyond this process (blocking calls; they
    run in a worker thread). ``fetched_at`` is wall-clock time (``time.time()``)."""

    def load(self, issuer: str) -> tuple[Mapping[str, Any], float] | None: ...

    def save(self, issuer: str, jwks: Mapping[str, Any], fetched_at: float) -> None: ...


@dataclass(slots=True)
class KeyCacheStats:
    """Counters for admins and tests; times are readings of the cache's clock.

    ``fetches`` counts refresh attempts (each a discovery fetch when that document is stale, then a
    JWKS fetch); ``keys`` is the size of the last good set; ``last_error`` stays after a recovery;
    ``backoffs`` counts calls answered from a recorded failure without fetching.
    """

    fetches: int = 0
    discovery_fetches: int = 0
    jwks_fetches: int = 0
    failures: int = 0
    backoffs: int = 0
    keys: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None


def _check_tuning(
    max_age: float, min_refresh_interval: float, timeout: float, max_keys: int, max_failure_backoff: float
) -> None:
    if not max_age > 0:
        raise ValueError("max_age must be positive")
    if not min_refresh_interval >= 0:
        raise ValueError("min_refresh_interval must not be negative")
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    if max_keys < 1:
        raise ValueError("max_keys must be at least 1")
    if not max_failure_backoff >= min_refresh_interval:
        raise ValueError("max_failure_backoff must be at least min_refresh_interval")


class RemoteKeySet:
    """The signing keys of one remote OIDC issuer, fetched through discovery and cached."""

    def __init__(
        self,
        issuer: str,
        *,
        client: httpx.AsyncClient,
        discovery_url: str | None = None,
        max_age: float = 3600,
        min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        allow_http_loopback: bool = False,
        clock: Clock = time.monotonic,
        max_keys: int = 100,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_failure_backoff: float = DEFAULT_MAX_FAILURE_BACKOFF,
        serve_stale: bool = False,
        persistence: KeyPersistence | None = None,
    ) -> None:
        max_failure_backoff = max(max_failure_backoff, min_refresh_interval)
        _check_tuning(max_age, min_refresh_interval, timeout, max_keys, max_failure_backoff)
        self.issuer = issuer
        self._serve_stale = serve_stale
        self._persistence = persistence
        self._persisted_checked = persistence is None
        self._document: Mapping[str, Any] | None = None  # the JWKS behind the last fetched set
        self._background: set[asyncio.Task[Any]] = set()
        self.discovery_url = discovery_url
        self.max_age = max_age
        self.min_refresh_interval = min_refresh_interval
        self.max_failure_backoff = max_failure_backoff
        self.stats = KeyCacheStats()
        self._fetcher = JsonFetcher(client, timeout, max_bytes, allow_http_loopback)
        self._clock = clock
        self._max_keys = max_keys
        self._keys: KeySet | None = None
        self._keys_at = -math.inf
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = -math.inf
        self._next_attempt_at = -math.inf  # no fetch starts before this reading of the clock
        self._consecutive_failures = 0
        self._error: TransportError | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def cached(self) -> KeySet | None:
        """The last good key set, without fetching anything."""
        return self._keys

    @property
    def metadata(self) -> ProviderMetadata | None:
        """The cached discovery document, if any."""
        return self._metadata

    async def get(self) -> KeySet:
        """The issuer's key set: cached while younger than ``max_age``, else refetched (at most once
        per interval; in between, the last good set, or the last failure raised again)."""
        if self._keys is None and not self._persisted_checked:
            await self._load_persisted()
        keys = self._keys
        if keys is not None:
            age = self._clock() - self._keys_at
            if not self._serve_stale:
                if age < self.max_age:
                    return keys
            else:
                if age >= self.max_age * REFRESH_AHEAD:
                    self._refresh_in_background()
                return keys
        if self._backing_off():
            if keys is None:
                self.stats.backoffs += 1
            return self._current()
        return await self._refresh()

    async def get_for_kid(self, kid: str | None) -> KeySet:
        """Like :meth:`get`, refetching if ``kid`` is unknown and the last attempt is old enough."""
        keys = await self.get()
        if kid is None or keys.has_kid(kid) or self._backing_off():
            return keys
        return await self._refresh()

    async def aclose(self) -> None:
        """Stop background refreshes and saves (a save already in its thread still completes)."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _refresh_in_background(self) -> None:
        if self._background or self._lock.locked() or self._backing_off():
            return
        self._spawn(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        with contextlib.suppress(TransportError):  # recorded and logged by the fetch
            await self._refresh()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _load_persisted(self) -> None:
        self._persisted_checked = True
        assert self._persistence is not None
        try:
            found = await asyncio.to_thread(self._persistence.load, self.issuer)
            if found is None:
                return
            document, fetched_at = found
            keys = KeySet.from_jwks(document, max_keys=self._max_keys)
        except Exception as exc:  # a store problem must not stop a fetch from the issuer itself
            logger.warning("stored keys of issuer %s could not be read: %s", self.issuer, exc)
            return
        if self._keys is not None or not len(keys):
            return
        age = max(0.0, time.time() - fetched_at)
        self._keys, self._keys_at = keys, self._clock() - age
        self.stats.keys = len(keys)
        logger.info(
            "using the stored key set of issuer %s (%d keys, fetched %.0f s ago)", self.issuer, len(keys), age
        )

    def _persist(self) -> None:
        if self._persistence is None or self._document is None:
            return
        self._spawn(self._save(self._persistence, self._document, time.time()))

    async def _save(
        self, persistence: KeyPersistence, document: Mapping[str, Any], fetched_at: float
    ) -> None:
        try:
            await asyncio.to_thread(persistence.save, self.issuer, document, fetched_at)
        except Exception as exc:
            logger.warning("the key set of issuer %s could not be stored: %s", self.issuer, exc)

    def _backing_off(self) -> bool:
        """True while the last attempt (success or failure) is too recent for another fetch; a
        caller arriving while a fetch is in flight waits for that fetch instead."""
        return self._clock() < self._next_attempt_at and not self._lock.locked()

    async def _refresh(self) -> KeySet:
        """Single flight: fetch unless a fetch finished while we waited for the lock; share its result."""
        generation = self._generation
        async with self._lock:
            if self._generation == generation:
                await self._fetch()
            return self._current()

    def _current(self) -> KeySet:
        if self._keys is not None:
            return self._keys
        error = self._error
        if error is None:  # pragma: no cover - a finished fetch always leaves keys or an error
            raise TransportError(f"no key set for issuer {self.issuer}", retryable=True)
        raise TransportError(str(error), retryable=error.retryable)

    async def _fetch(self) -> None:
        # Counted from the start of the attempt: a slow issuer does not earn extra fetches.
        self._next_attempt_at = self._clock() + self.min_refresh_interval
        self.stats.fetches += 1
        try:
            keys = await self._load()
        except TransportError as exc:
            self._record_failure(exc)
            issuer_fetched(self.issuer, ok=False)
        else:
            self._record_success(keys)
            issuer_fetched(self.issuer, ok=True, keys=len(keys))
            self._persist()
        # Only a finished fetch counts: if this task is cancelled, the next waiter fetches itself.
        self._generation += 1

    async def _load(self) -> KeySet:
        metadata = await self._provider_metadata()
        try:
            return await self._load_jwks(metadata.jwks_uri)
        except TransportError:
            self._metadata = None  # the jwks_uri may have moved: rediscover next time
            raise

    async def _provider_metadata(self) -> ProviderMetadata:
        if self._metadata is not None and self._clock() - self._metadata_at < self.max_age:
            return self._metadata
        self.stats.discovery_fetches += 1
        metadata = await discover(self.issuer, self._fetcher, discovery_url=self.discovery_url)
        self._metadata, self._metadata_at = metadata, self._clock()
        return metadata

    async def _load_jwks(self, jwks_uri: str) -> KeySet:
        self.stats.jwks_fetches += 1
        document = await self._fetcher.get(jwks_uri)
        self._document = document
        try:
            keys = KeySet.from_jwks(document, max_keys=self._max_keys)
        except ValueError as exc:
            raise TransportError(f"JWKS at {jwks_uri} is not usable: {exc}", retryable=False) from None
        if not len(keys):
            raise TransportError(f"JWKS at {jwks_uri} has no usable keys", retryable=False)
        return keys

    def _record_success(self, keys: KeySet) -> None:
        now = self._clock()
        self._keys, self._keys_at = keys, now
        self._error, self._consecutive_failures = None, 0
        self.stats.keys = len(keys)
        self.stats.last_success_at = now

    def _record_failure(self, error: TransportError) -> None:
        now = self._clock()
        self._error = error
        self._consecutive_failures += 1
        backoff = min(
            self.min_refresh_interval * 2 ** (self._consecutive_failures - 1), self.max_failure_backoff
        )
        self._next_attempt_at = max(self._next_attempt_at, now + backoff)
        self.stats.failures += 1
        self.stats.last_error, self.stats.last_error_at = str(error), now
        if self._keys is None:
            logger.warning(
                "keys of issuer %s could not be fetched: %s (next attempt in %.0f s at the earliest)",
                self.issuer,
                error,
                backoff,
            )
            return
        logger.warning(
            "keys of issuer %s could not be refreshed (%s); serving the last good set (%.0f s old), "
            "next attempt in %.0f s at the earliest",
            self.issuer,
            error,
            now - self._keys_at,
            backoff,
        )


class IssuerKeyCache:
    """A bounded (least recently used) registry of :class:`RemoteKeySet`, one per issuer.

    The cache fetches from whatever issuer it is asked about, so callers decide which issuers are
    allowed *before* calling it: it is never called for an issuer nobody registered (a federated
    credential, a trusted guard issuer). All key sets share one ``httpx.AsyncClient``: the given
    ``client`` (left open by :meth:`aclose`) or one the cache creates and closes.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        max_issuers: int = 1024,
        max_age: float = 3600,
        min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        allow_http_loopback: bool = False,
        clock: Clock = time.monotonic,
        max_keys: int = 100,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_failure_backoff: float = DEFAULT_MAX_FAILURE_BACKOFF,
        serve_stale: bool = False,
        persistence: KeyPersistence | None = None,
    ) -> None:
        max_failure_backoff = max(max_failure_backoff, min_refresh_interval)
        _check_tuning(max_age, min_refresh_interval, timeout, max_keys, max_failure_backoff)
        if max_issuers < 1:
            raise ValueError("max_issuers must be at least 1")
        self._owns_client = client is None
        if client is None:
            client = httpx.AsyncClient(follow_redirects=False, timeout=timeout)
        self._client = client
        self._max_issuers = max_issuers
        self._max_age = max_age
        self._min_refresh_interval = min_refresh_interval
        self._timeout = timeout
        self._allow_http_loopback = allow_http_loopback
        self._clock = clock
        self._max_keys = max_keys
        self._max_bytes = max_bytes
        self._max_failure_backoff = max_failure_backoff
        self._serve_stale = serve_stale
        self._persistence = persistence
        self._sets: OrderedDict[tuple[str, str | None], RemoteKeySet] = OrderedDict()

    async def get(self, issuer: str, kid: str | None, *, discovery_url: str | None = None) -> KeySet:
        """``issuer``'s key set, refetched (at most once per interval) if ``kid`` is not in it."""
        return await self.remote(issuer, discovery_url=discovery_url).get_for_kid(kid)

    def remote(self, issuer: str, *, discovery_url: str | None = None) -> RemoteKeySet:
        """The :class:`RemoteKeySet` for ``issuer``, created on first use; marks it recently used."""
        key = (issuer, discovery_url)
        found = self._sets.get(key)
        if found is not None:
            self._sets.move_to_end(key)
            return found
        created = self._create(issuer, discovery_url)
        self._sets[key] = created
        while len(self._sets) > self._max_issuers:
            self._sets.popitem(last=False)
        return created

    def _create(self, issuer: str, discovery_url: str | None) -> RemoteKeySet:
        return RemoteKeySet(
            issuer,
            client=self._client,
            discovery_url=discovery_url,
            max_age=self._max_age,
            min_refresh_interval=self._min_refresh_interval,
            timeout=self._timeout,
            allow_http_loopback=self._allow_http_loopback,
            clock=self._clock,
            max_keys=self._max_keys,
            max_bytes=self._max_bytes,
            max_failure_backoff=self._max_failure_backoff,
            serve_stale=self._serve_stale,
            persistence=self._persistence,
        )

    @property
    def issuers(self) -> list[str]:
        """Issuers currently held, least recently used first."""
        return [issuer for issuer, _ in self._sets]

    def __len__(self) -> int:
        return len(self._sets)

    async def aclose(self) -> None:
        """Forget every key set (stopping their background work); close the HTTP client if this
        cache created it."""
        for remote in self._sets.values():
            await remote.aclose()
        self._sets.clear()
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> IssuerKeyCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
