"""Fuzz suite: property-based (hypothesis) runs over keyless's untrusted-input parsers.

``make test`` runs each target briefly (the ``short`` profile); ``make fuzz`` runs the same tests
long (the ``long`` profile, ``KEYLESS_FUZZ_EXAMPLES`` examples per target, 20,000 unless set).
A crash, a 500, or an unauthenticated 2xx is a failure in either.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "short",
    max_examples=200,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("KEYLESS_FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("KEYLESS_FUZZ_PROFILE", "short"))
