"""keyless.trust's public surface is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import keyless.trust


def test_the_public_names_are_pinned() -> None:
    assert sorted(keyless.trust.__all__) == [
        "DEFAULT_MAX_BYTES",
        "DEFAULT_MIN_REFRESH_INTERVAL",
        "DEFAULT_TIMEOUT",
        "IssuerKeyCache",
        "JsonFetcher",
        "KeyCacheStats",
        "KeyPersistence",
        "ProviderMetadata",
        "RemoteKeySet",
        "TimeWindow",
        "WELL_KNOWN_PATH",
        "check_expiry",
        "check_fetch_url",
        "check_not_before",
        "check_time_window",
        "discover",
        "discovery_url_for",
        "entra_time",
        "verify_remote",
    ]
    for name in keyless.trust.__all__:
        assert hasattr(keyless.trust, name)
