"""Remote issuers: OIDC discovery, a cached and rate-limited JWKS fetch, remote signature checks."""

from keyless.trust._claims import TimeWindow, check_expiry, check_not_before, check_time_window, entra_time
from keyless.trust._discovery import WELL_KNOWN_PATH, ProviderMetadata, discover, discovery_url_for
from keyless.trust._fetch import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, JsonFetcher, check_fetch_url
from keyless.trust._keycache import (
    DEFAULT_MIN_REFRESH_INTERVAL,
    IssuerKeyCache,
    KeyCacheStats,
    KeyPersistence,
    RemoteKeySet,
)
from keyless.trust._verify import verify_remote

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MIN_REFRESH_INTERVAL",
    "DEFAULT_TIMEOUT",
    "WELL_KNOWN_PATH",
    "IssuerKeyCache",
    "JsonFetcher",
    "KeyCacheStats",
    "KeyPersistence",
    "ProviderMetadata",
    "RemoteKeySet",
    "TimeWindow",
    "check_expiry",
    "check_fetch_url",
    "check_not_before",
    "check_time_window",
    "discover",
    "discovery_url_for",
    "entra_time",
    "verify_remote",
]
