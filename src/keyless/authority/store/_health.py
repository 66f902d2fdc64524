"""``StoreHealth``: turns a database failure into ``StoreUnavailable`` and logs outages, not requests.

A failure that means "the database is not there right now" (refused, timed out, dropped, locked,
read-only) becomes ``StoreUnavailable`` with a one-line reason; the first one after a success logs
one line (``database unavailable``), the first success after an outage logs one line (``database
is back``). Everything in between is silent: a down database under load must not write a
traceback per request. Other database errors (a bug in a query) pass through untouched.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from keyless.errors import StoreUnavailable

__all__ = ["StoreHealth", "is_unavailable"]

log = logging.getLogger("keyless.store")

_BUSY = ("database is locked", "database table is locked", "database is busy")


# SQLite reports a missing table as an OperationalError too: only these messages mean "not now".
_SQLITE_UNAVAILABLE = (
    "locked",
    "busy",
    "readonly",
    "unable to open",
    "disk i/o error",
    "database or disk is full",
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (rather than a faulty query)."""
    if isinstance(exc, (PoolTimeout, DisconnectionError)):
        return True
    if isinstance(exc, OperationalError) and isinstance(exc.orig, sqlite3.Error):
        return any(text in str(exc.orig).lower() for text in _SQLITE_UNAVAILABLE)
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _first_line(exc: BaseException) -> str:
    source = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(source).strip().splitlines()
    return text[0].strip() if text else type(source).__name__


class StoreHealth:
    """The store's up/down state, its transitions logged once each."""

    def __init__(self, where: str, *, timeout: float) -> None:
        self._where = where  # the database, password hidden
        self.timeout = timeout
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self.reason = ""
        self.retry_after = max(1, math.ceil(timeout))

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException, *, timed_out: bool = False) -> StoreUnavailable:
        """The ``StoreUnavailable`` for ``exc``; logs the outage if this is its first failure."""
        reason = _first_line(exc)
        if timed_out:
            reason = f"no answer within {self.timeout:g} s ({reason})"
        elif isinstance(exc, PoolTimeout):
            reason = f"no database connection free within {self.timeout:g} s"
        if any(busy in reason for busy in _BUSY):  # another writer holds the lock: not an outage
            return StoreUnavailable(f"the database is busy: {reason}", retry_after=self.retry_after)
        with self._lock:
            self.reason = reason
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.error(
                    "database unavailable: %s: %s (answering 503 with Retry-After until it is back)",
                    self._where,
                    reason,
                )
        return StoreUnavailable(f"the database is unavailable: {reason}", retry_after=self.retry_after)

    def succeeded(self) -> None:
        if not self.down:  # the common case, without the lock
            return
        with self._lock:
            since, self._down_since = self._down_since, None
            self.reason = ""
        if since is None:  # another thread logged it
            return
        lasted = time.monotonic() - since
        log.warning("database is back: %s (after %.1f s)", self._where, lasted)
