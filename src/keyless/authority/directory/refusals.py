"""Recent refusals, for admins: every process's, shared through the store.

Every error response of the protocol endpoints is recorded (next to its ``keyless.audit`` log line)
with its full reason, whatever the caller was told: the AADSTS code, the tenant as the URL named
it, the client id when known, the exact reason, the trace and correlation ids and the time. Never a
token or a secret.

Recording never touches the database on the request path: a refusal goes into a bounded in-memory
buffer, which the authority's background loop writes to the store about once a second (and the
admin route before it reads). So ``keyless serve --workers N`` and several nodes on one
PostgreSQL show one list, and a flood of bad requests costs one batched insert per second, not one
per request; beyond the buffer's size, the oldest unwritten refusals are dropped (and counted).
The store keeps the newest 10,000; the audit log is the durable record.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Collection

from keyless.authority.model import Refusal
from keyless.authority.store._protocol import Store

__all__ = ["Refusal", "RefusalLog"]

log = logging.getLogger("keyless.audit")

DEFAULT_BUFFER = 1000
DEFAULT_KEEP = 10_000


class RefusalLog:
    """Refusals of this process, written to ``store`` in batches (or kept in memory without one)."""

    def __init__(
        self, store: Store | None = None, *, buffer: int = DEFAULT_BUFFER, keep: int = DEFAULT_KEEP
    ) -> None:
        self._store = store
        self._keep = keep
        # Without a store: the last ``buffer`` refusals. With one: those not written yet.
        self._items: deque[Refusal] = deque(maxlen=buffer)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self.dropped = 0

    def record(self, refusal: Refusal) -> None:
        with self._lock:
            if self._store is not None and len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(refusal)

    def flush(self) -> int:
        """Write the buffered refusals to the store in one batch; how many went (0 without a store)."""
        if self._store is None:
            return 0
        with self._flushing:  # one batch at a time, in order
            with self._lock:
                batch = list(self._items)
                self._items.clear()
            if not batch:
                return 0
            try:
                self._store.record_refusals(batch, keep=self._keep)
            except Exception:
                with self._lock:  # keep them for the next try, still bounded, oldest dropped first
                    kept = deque(batch + list(self._items), maxlen=self._items.maxlen)
                    self.dropped += len(batch) + len(self._items) - len(kept)
                    self._items = kept
                raise
        return len(batch)

    def recent(self, tenant_refs: Collection[str] | None = None, *, limit: int = 100) -> list[Refusal]:
        """Newest first; only those naming one of ``tenant_refs`` (GUID or domains) when given."""
        if self._store is not None:
            self.flush()
            return self._store.recent_refusals(tenant_refs, limit=limit)
        refs = {r.lower() for r in tenant_refs} if tenant_refs is not None else None
        with self._lock:
            items = list(self._items)
        found = [r for r in reversed(items) if refs is None or r.tenant.lower() in refs]
        return found[: max(0, limit)]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
