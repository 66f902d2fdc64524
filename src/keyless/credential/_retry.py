"""When to try a token request again, and how long to wait first.

* retryable failures (HTTP 408/429/500/502/503/504, timeouts, connection errors) are retried up to
  ``max_attempts`` tries in all, waiting a full-jitter exponential backoff
  (``uniform(0, min(max_delay, base_delay * 2**n))``) or exactly what ``Retry-After`` asks;
  a ``Retry-After`` beyond ``max_retry_after`` is not waited for: the error is raised at once;
* AADSTS70021 (no matching federated credential: also what Entra answers for a while after one is
  created) is retried only when ``propagation_timeout`` > 0, and then until that many seconds
  have passed since the first try, whatever ``max_attempts`` says;
* nothing else is retried: other 4xx answers will not change by asking again.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from keyless.credential._errors import ClientAuthenticationError

__all__ = ["PROPAGATION_CODES", "RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
PROPAGATION_CODES = frozenset({70021})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with jittered backoff; see the module documentation."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    propagation_timeout: float = 0.0
    random: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")
        if self.propagation_timeout < 0:
            raise ValueError("propagation_timeout must not be negative")

    def backoff(self, attempt: int) -> float:
        """Full jitter: a uniform wait in [0, min(max_delay, base_delay * 2**attempt))."""
        ceiling = min(self.max_delay, self.base_delay * math.pow(2, min(attempt, 30)))
        return ceiling * self.random()

    def delay(self, failure: ClientAuthenticationError, attempt: int, elapsed: float) -> float | None:
        """Seconds to wait before try ``attempt + 1`` (0-based ``attempt`` just failed), or None."""
        if failure.aadsts in PROPAGATION_CODES:
            if self.propagation_timeout <= 0:
                return None
            wait = max(self.backoff(attempt), min(1.0, self.max_delay))
            return wait if elapsed + wait <= self.propagation_timeout else None
        if not failure.retryable or attempt + 1 >= self.max_attempts:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= self.max_retry_after else None
        return self.backoff(attempt)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
