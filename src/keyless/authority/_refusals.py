"""Recent refusals, for admins: a bounded, in-memory ring buffer per server process.

Every error response of the protocol endpoints is recorded here (next to its ``keyless.audit``
log line) with its full reason, whatever the caller was told: the AADSTS code, the tenant as the
URL named it, the client id when known, the exact reason, the trace and correlation ids and the
time. Never a token or a secret. Each worker process keeps its own buffer (``keyless serve
--workers N`` has N of them; the admin API answers from the process that serves the request),
and a restart empties it: the audit log is the durable record.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

__all__ = ["RECENT_REFUSALS", "Refusal", "RefusalLog"]

DEFAULT_CAPACITY = 1000


@dataclass(frozen=True, slots=True)
class Refusal:
    time: float
    aadsts: int | None
    error: str
    tenant: str  # as the request named it: GUID or domain ("" when the URL had none)
    client_id: str | None
    reason: str  # the exact mismatch (the refusal's detail), or the first line of the description
    trace_id: str
    correlation_id: str
    endpoint: str  # the request path

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "aadsts": self.aadsts,
            "error": self.error,
            "tenant": self.tenant,
            "clientId": self.client_id,
            "reason": self.reason,
            "traceId": self.trace_id,
            "correlationId": self.correlation_id,
            "endpoint": self.endpoint,
        }


class RefusalLog:
    """The last ``capacity`` refusals of this process, oldest dropped first; thread-safe."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._items: deque[Refusal] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def record(self, refusal: Refusal) -> None:
        with self._lock:
            self._items.append(refusal)

    def recent(self, tenant_refs: Collection[str] | None = None, *, limit: int = 100) -> list[Refusal]:
        """Newest first; only those naming one of ``tenant_refs`` (GUID or domains) when given."""
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


RECENT_REFUSALS = RefusalLog()
