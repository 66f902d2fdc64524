"""Typed settings for each service, defaults in one place, environment prefix ``KEYLESS_``.

Every problem is reported at once at start-up (``ConfigurationError.problems``), and settings that
only make sense on a developer's machine produce loud warnings (``development_warnings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from keyless._limits import LIMIT_DESCRIPTIONS, ServerLimits
from keyless.errors import ConfigurationError
from keyless.trust import DEFAULT_MIN_REFRESH_INTERVAL

__all__ = ["AuthoritySettings", "load_authority_settings"]

_LIMITS = ServerLimits()  # the defaults


class AuthoritySettings(BaseSettings):
    """Settings of the token service (``keyless serve``)."""

    model_config = SettingsConfigDict(env_prefix="KEYLESS_", extra="ignore", frozen=True)

    data_dir: Path = Field(Path(".keyless"), description="Where the database, keys and TLS files live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite in the data directory. postgresql+psycopg://..."
    )
    database_timeout: float = Field(
        5.0,
        gt=0,
        le=300,
        description=(
            "Bound (s) on every database wait: connecting, each statement (PostgreSQL statement_timeout "
            "plus a client-side watchdog; SQLite's busy timeout) and waiting for a pooled connection. "
            "Past it, admin and certificate-assertion token requests answer 503 with Retry-After."
        ),
    )
    database_startup_timeout: float = Field(
        60.0,
        ge=0,
        le=3600,
        description=(
            "How long (s) start-up keeps retrying, with backoff, a PostgreSQL database that cannot be "
            "reached; 0 gives up at once."
        ),
    )
    apply_lock_timeout: float = Field(
        60.0,
        ge=0,
        le=3600,
        description=(
            "How long (s) an apply waits for another apply to finish (applies are serialized across "
            "nodes) before it is refused with 409."
        ),
    )
    ready_store_timeout: float = Field(
        2.0, gt=0, le=60, description="Bound (s) on the database probe of /readyz."
    )
    ready_max_snapshot_age: float = Field(
        30.0,
        gt=0,
        description=(
            "/readyz fails when the directory snapshot was last checked against the store longer ago "
            "than this (s)."
        ),
    )
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8443, ge=0, le=65535, description="Port to listen on.")
    public_url: str | None = Field(
        None,
        description="Base URL clients use (issuers and endpoints derive from it). Default: https://localhost:PORT",
    )
    audit_file: Path | None = Field(
        None,
        description="Also write every audit event (token issued or refused) as a JSON line to this file.",
    )
    audit_file_max_bytes: int = Field(
        100 * 1024 * 1024, ge=0, description="Rotate the audit file past this size (0: never)."
    )
    audit_file_backups: int = Field(
        5, ge=0, le=1000, description="Rotated audit files kept (file.1 ... file.N)."
    )
    metrics_address: str | None = Field(
        None,
        description=(
            "host:port of a separate, unauthenticated listener for Prometheus scrapes (GET /metrics); "
            "default: none, /metrics on the main port with the admin key."
        ),
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description=(
            "Proxies trusted to set X-Forwarded-For/-Proto (comma-separated addresses or networks); "
            "default: none, the peer address is the client."
        ),
    )
    tls: bool = Field(True, description="Serve HTTPS (every Microsoft client requires it).")
    tls_cert: Path | None = Field(None, description="Server certificate chain (PEM); default: a local CA's.")
    tls_key: Path | None = Field(None, description="Server private key (PEM).")
    kek: SecretStr | None = Field(
        None, description="Key-encryption key, base64 of 32 bytes; default: a 0600 key file in the data dir."
    )
    workers: int = Field(1, ge=1, le=64, description="Server processes.")
    shutdown_grace: int = Field(
        10, ge=0, le=3600, description="Seconds in-flight requests get to finish on SIGTERM."
    )
    token_lifetime_min: int = Field(3600, ge=60, description="Shortest access-token lifetime (s).")
    token_lifetime_max: int = Field(5400, ge=60, description="Longest access-token lifetime (s).")
    assertion_leeway: int = Field(300, ge=0, le=900, description="Clock skew allowed on assertions (s).")
    max_assertion_lifetime: int = Field(
        3600,
        ge=60,
        le=86400,
        description=(
            "Longest lifetime (s) of a certificate client assertion, exp minus now (MSAL signs 10 "
            "minutes, azure-identity 30). Federated assertions keep their issuer's lifetime."
        ),
    )
    assertion_algorithms: tuple[str, ...] = Field(
        ("RS256",), description="Algorithms accepted for federated assertions (Entra supports RS256)."
    )
    key_publish_delay: int = Field(
        3600, ge=0, description="Seconds a rotated-in signing key is published before it signs."
    )
    key_propagation_seconds: float = Field(
        5.0,
        ge=0,
        description=(
            "Least time a new signing key is published before it signs, so that every node and worker "
            "(each reads the store every KEYLESS_CACHE_POLL_INTERVAL) serves it first; a shorter publish "
            "delay, 0 included, is raised to it."
        ),
    )
    jwks_max_age: int = Field(3600, ge=1, description="How long an external issuer's keys are cached (s).")
    jwks_refresh_cooldown: float = Field(
        DEFAULT_MIN_REFRESH_INTERVAL,
        ge=0,
        description=(
            "Minimum seconds between two fetches of one issuer's keys: an unknown kid refetches once "
            "it has passed (rotation pickup), a failed fetch backs off from it (doubling, up to 60 s)."
        ),
    )
    http_timeout: float = Field(5.0, gt=0, le=60, description="Timeout for fetching external issuers.")
    max_form_bytes: int = Field(64 * 1024, ge=1024, description="Largest token request body accepted.")
    console_session_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 86400,
        description="How long a console sign-in lasts (the session cookie is refused after it).",
    )
    admin_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest admin API request body (413 above), read only once the admin key passed.",
    )
    cache_poll_interval: float = Field(
        1.0, gt=0, description="How often the directory cache polls the store."
    )
    redis_url: str | None = Field(
        None, description="Redis URL for shared one-time-use (jti) records across nodes."
    )
    dev_mode: bool = Field(
        False, description="Development mode: enables the options below. Never in production."
    )
    allow_http_loopback_issuers: bool = Field(
        False, description="Accept http:// issuers on 127.0.0.1/localhost (development only)."
    )
    issuer_overrides: dict[str, str] = Field(
        default_factory=dict,
        description="Development only: issuer -> discovery URL, to trust a local stand-in for a real issuer.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    max_header_bytes: int = Field(
        _LIMITS.max_header_bytes, ge=1024, description=LIMIT_DESCRIPTIONS["max_header_bytes"]
    )
    max_headers: int = Field(_LIMITS.max_headers, ge=8, description=LIMIT_DESCRIPTIONS["max_headers"])
    header_timeout: float = Field(
        _LIMITS.header_timeout, gt=0, description=LIMIT_DESCRIPTIONS["header_timeout"]
    )
    keep_alive_timeout: float = Field(
        _LIMITS.keep_alive_timeout, gt=0, description=LIMIT_DESCRIPTIONS["keep_alive_timeout"]
    )
    max_connections: int = Field(
        _LIMITS.max_connections, ge=1, description=LIMIT_DESCRIPTIONS["max_connections"]
    )

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'keyless.db').resolve()}"

    @property
    def server_limits(self) -> ServerLimits:
        """The HTTP server's resource bounds."""
        return ServerLimits(
            max_header_bytes=self.max_header_bytes,
            max_headers=self.max_headers,
            header_timeout=self.header_timeout,
            keep_alive_timeout=self.keep_alive_timeout,
            max_connections=self.max_connections,
        )

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://localhost:{self.port}"

    def problems(self) -> list[str]:
        """Every combination that cannot work, all at once."""
        found: list[str] = []
        if self.token_lifetime_min > self.token_lifetime_max:
            found.append("KEYLESS_TOKEN_LIFETIME_MIN is larger than KEYLESS_TOKEN_LIFETIME_MAX")
        if (self.tls_cert is None) != (self.tls_key is None):
            found.append("KEYLESS_TLS_CERT and KEYLESS_TLS_KEY go together")
        if self.issuer_overrides and not self.dev_mode:
            found.append("KEYLESS_ISSUER_OVERRIDES is refused unless KEYLESS_DEV_MODE=true")
        if self.allow_http_loopback_issuers and not self.dev_mode:
            found.append("KEYLESS_ALLOW_HTTP_LOOPBACK_ISSUERS is refused unless KEYLESS_DEV_MODE=true")
        bad_algs = [a for a in self.assertion_algorithms if a.upper() == "NONE" or a.startswith("HS")]
        if bad_algs:
            found.append(f"KEYLESS_ASSERTION_ALGORITHMS may not contain {', '.join(bad_algs)}")
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            found.append("KEYLESS_PUBLIC_URL must start with https://")
        return found

    def development_warnings(self) -> list[str]:
        warnings: list[str] = []
        if self.dev_mode:
            warnings.append("DEVELOPMENT MODE is on: never run it in production")
        for issuer, url in self.issuer_overrides.items():
            warnings.append(
                f"ISSUER OVERRIDE: assertions claiming {issuer!r} are checked with keys from {url}"
            )
        if self.allow_http_loopback_issuers:
            warnings.append("http:// issuers on loopback are accepted")
        return warnings


def load_authority_settings(**overrides: object) -> AuthoritySettings:
    """Read the environment (plus explicit overrides) and report every problem at once."""
    try:
        settings = AuthoritySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(
            [f"KEYLESS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        ) from None
    problems = settings.problems()
    if problems:
        raise ConfigurationError(problems)
    return settings
