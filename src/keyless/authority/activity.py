"""Token issuance and refusals over the last hours, for the console's chart.

Prometheus counters are totals; the console wants a series. ``Activity`` samples the totals
(every worker's, in multiprocess mode) at most once a minute from the authority's background loop,
and keeps twelve hours. Refusals are also kept in the store with their time, so their history
survives a restart; issuance history starts when the process does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise

from keyless._metrics import counter_totals

__all__ = ["Activity", "Sample"]

ISSUED = "keyless_tokens_issued"
REFUSED = "keyless_tokens_refused"


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    issued: float
    refused: float


class Activity:
    def __init__(self, *, every: float = 60.0, keep: float = 12 * 3600) -> None:
        self.every = every
        self._samples: deque[Sample] = deque(maxlen=int(keep // every) + 2)

    def current(self, now: float) -> Sample:
        totals = counter_totals(ISSUED, REFUSED)
        return Sample(now, totals[ISSUED], totals[REFUSED])

    def sample(self, now: float) -> None:
        """Record the totals if a minute has passed since the last sample."""
        if not self._samples or now - self._samples[-1].time >= self.every:
            self._samples.append(self.current(now))

    def issued_per_bucket(self, now: float, *, hours: int, bucket: float) -> list[tuple[float, float]]:
        """(bucket start, tokens issued in it) for the last ``hours``, oldest first. The first
        sample is taken when the authority starts: buckets before it are 0."""
        points = [*self._samples, self.current(now)]
        start = now - hours * 3600
        edges = [start + i * bucket for i in range(int(hours * 3600 // bucket) + 1)]

        def total_at(t: float) -> float:
            before = [p.issued for p in points if p.time <= t]
            return before[-1] if before else points[0].issued

        return [(left, max(0.0, total_at(right) - total_at(left))) for left, right in pairwise(edges)]
