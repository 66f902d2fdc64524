"""The running authority: wires settings, store, keys, the directory cache, remote issuer keys and
the token service together, and runs the background work (cache polling, key housekeeping)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import orjson

from keyless.authority._paths import ADMIN_KEY_FILE, URL_FILE
from keyless.authority.activity import Activity
from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.directory.refusals import RefusalLog
from keyless.authority.directory.signing import KeyManager
from keyless.authority.directory.snapshot import Directory, DirectoryCache
from keyless.authority.model import AdminKey, new_id
from keyless.authority.store import RedisOneTimeUse, SqlStore, Store
from keyless.authority.token.client_auth import ClientAuthenticator, ClientAuthPolicy, OneTimeUse
from keyless.authority.token.client_credentials import TokenService
from keyless.config import AuthoritySettings
from keyless.errors import ConfigurationError, StoreUnavailable
from keyless.jose import KeyEncryptionKey
from keyless.trust import IssuerKeyCache

__all__ = ["ADMIN_KEY_FILE", "URL_FILE", "Authority", "admin_key_matches"]

log = logging.getLogger("keyless.authority")

HOUSEKEEPING_INTERVAL = 30.0


def _hash_admin_key(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def admin_key_matches(value: str, keys: list[AdminKey]) -> bool:
    digest = _hash_admin_key(value)
    found = False
    for key in keys:
        found |= hmac.compare_digest(digest, key.key_hash)
    return found


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _open_store(url: str, *, timeout: float, wait: float) -> SqlStore:
    """The store, migrated; a URL keyless cannot use, or a database that refuses it, is one clear
    line (the password never shown) instead of a driver's traceback.

    A PostgreSQL server that cannot be reached is retried with backoff (0.5 s doubling to 5 s) for
    up to ``wait`` seconds, announced in one line; SQLite's problems (a read-only file) are not
    transient and are reported at once.
    """
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    from keyless.authority.store._health import is_unavailable

    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigurationError(f"KEYLESS_DATABASE_URL {url!r} is not a database URL") from None
    shown = parsed.render_as_string(hide_password=True)
    supported = "keyless supports sqlite:///PATH and postgresql+psycopg://"
    deadline = time.monotonic() + wait
    delay = 0.5
    announced = False
    while True:
        try:
            store = SqlStore.from_url(url, migrate=True, timeout=timeout)
        except (ModuleNotFoundError, sqlalchemy.exc.NoSuchModuleError) as exc:
            raise ConfigurationError(f"no database driver for {shown} ({exc}): {supported}") from None
        except sqlalchemy.exc.DBAPIError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            transient = (
                is_unavailable(exc)
                and parsed.get_backend_name() != "sqlite"
                and not _refused_by_the_server(reason)
            )
            if not transient or time.monotonic() + delay > deadline:
                waited = f" (still unreachable after {wait:g} s)" if announced else ""
                raise ConfigurationError(f"cannot open the database {shown}: {reason}{waited}") from None
            if not announced:
                log.warning("database %s not reachable (%s); retrying for up to %g s", shown, reason, wait)
                announced = True
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        if announced:
            log.warning("database %s reachable; starting", shown)
        return store


# A server that answers with these refuses the configuration itself: retrying cannot help.
_CONFIGURATION_REFUSALS = (
    "does not exist",  # role "x" / database "x" does not exist
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
)


def _refused_by_the_server(reason: str) -> bool:
    return "FATAL:" in reason and any(text in reason for text in _CONFIGURATION_REFUSALS)


class StoredIssuerKeys:
    """The issuer key cache's persistence: the last good JWKS of each issuer in the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load(self, issuer: str) -> tuple[Mapping[str, Any], float] | None:
        found = self._store.load_issuer_keys(issuer)
        if found is None:
            return None
        document, fetched_at = found
        parsed = orjson.loads(document)
        return (parsed, fetched_at) if isinstance(parsed, dict) else None

    def save(self, issuer: str, jwks: Mapping[str, Any], fetched_at: float) -> None:
        self._store.save_issuer_keys(issuer, orjson.dumps(dict(jwks)).decode(), fetched_at)


class Authority:
    """Everything one server process needs; ``open()`` it, then serve ``directory()`` and ``tokens``."""

    def __init__(
        self,
        settings: AuthoritySettings,
        store: Store,
        kek: KeyEncryptionKey,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.kek = kek  # also seals the console's session cookies (every node shares it)
        self.keys = KeyManager(store, kek, max_token_lifetime=settings.token_lifetime_max)
        delay = settings.key_publish_delay
        # Settle signing keys (promotions, retirements) before the first snapshot is built.
        DirectoryAdmin(store, self.keys, None, key_publish_delay=delay, clock=clock).housekeeping()
        self.cache = DirectoryCache(store, self.keys, clock=clock)
        self.admin = DirectoryAdmin(
            store,
            self.keys,
            self.cache,
            key_publish_delay=delay,
            min_publish_delay=settings.key_propagation_seconds,
            clock=clock,
        )
        self.activity = Activity()  # issuance and refusals over time, for the console's chart
        self.activity.sample(clock())
        self._http = httpx.AsyncClient(timeout=settings.http_timeout, follow_redirects=False)
        self.issuer_keys = IssuerKeyCache(
            client=self._http,
            serve_stale=True,  # a request never waits on a refresh while a key set is at hand
            persistence=StoredIssuerKeys(store),
            max_age=settings.jwks_max_age,
            min_refresh_interval=settings.jwks_refresh_cooldown,
            timeout=settings.http_timeout,
            allow_http_loopback=settings.allow_http_loopback_issuers,
        )
        self._once: OneTimeUse = RedisOneTimeUse(settings.redis_url) if settings.redis_url else store
        self.refusals = RefusalLog(store)
        policy = ClientAuthPolicy(
            leeway=settings.assertion_leeway,
            assertion_algorithms=frozenset(settings.assertion_algorithms),
            issuer_overrides=dict(settings.issuer_overrides),
            own_issuer_prefix=settings.base_url + "/",
            max_assertion_lifetime=settings.max_assertion_lifetime,
        )
        authenticator = ClientAuthenticator(policy, self.issuer_keys, self._once, clock)
        self.tokens = TokenService(
            authenticator=authenticator,
            base_url=settings.base_url,
            lifetime=(settings.token_lifetime_min, settings.token_lifetime_max),
            clock=clock,
        )

    @classmethod
    def open(cls, settings: AuthoritySettings) -> Authority:
        """Open the store (migrating it), the key-encryption key, and bootstrap the admin credential."""
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(settings.data_dir, 0o700)
        except OSError as exc:
            raise ConfigurationError(
                f"the data directory {settings.data_dir} cannot be created: {exc.strerror or exc}"
            ) from None
        kek = (
            KeyEncryptionKey.from_base64(settings.kek.get_secret_value())
            if settings.kek
            else KeyEncryptionKey.load_or_create(settings.data_dir / "kek.key")
        )
        store = _open_store(
            settings.database, timeout=settings.database_timeout, wait=settings.database_startup_timeout
        )
        try:
            authority = cls(settings, store, kek)
            authority.bootstrap_admin_key()
        except StoreUnavailable as exc:
            store.close()
            raise ConfigurationError(f"cannot start: {exc.reason}") from None
        (settings.data_dir / URL_FILE).write_text(settings.base_url + "\n")
        for warning in settings.development_warnings():
            log.warning("!!! %s", warning)
        return authority

    def directory(self) -> Directory:
        return self.cache.current

    # -- admin credential ------------------------------------------------------------------------------
    def bootstrap_admin_key(self) -> Path | None:
        """On first start, create an admin key and write it 0600 into the data directory."""
        path = self.settings.data_dir / ADMIN_KEY_FILE
        if self.store.list_admin_keys():
            return None
        value = "kla_" + secrets.token_urlsafe(32)
        self.store.add_admin_key(
            AdminKey(
                id=new_id(),
                display_name="bootstrap",
                key_hash=_hash_admin_key(value),
                created_at=self.clock(),
            )
        )
        _write_private(path, value + "\n")
        log.info("admin key written to %s (mode 0600)", path)
        return path

    def check_admin_key(self, value: str) -> bool:
        return admin_key_matches(value, self.store.list_admin_keys())

    def admin_key_id(self, value: str) -> str | None:
        """The id of the admin key ``value`` is (compared in constant time), or None."""
        found = None
        for key in self.store.list_admin_keys():
            if admin_key_matches(value, [key]):
                found = key.id
        return found

    def admin_key_exists(self, key_id: str) -> bool:
        return any(k.id == key_id for k in self.store.list_admin_keys())

    # -- background work -------------------------------------------------------------------------------
    async def run_background(self) -> None:
        """Poll the store for changes and keep signing keys moving through their lifecycle."""
        last_housekeeping = 0.0
        while True:
            await asyncio.sleep(self.settings.cache_poll_interval)
            self.activity.sample(self.clock())
            try:
                await anyio.to_thread.run_sync(self.cache.refresh)
                if len(self.refusals):
                    await anyio.to_thread.run_sync(self.refusals.flush)
                if time.monotonic() - last_housekeeping > HOUSEKEEPING_INTERVAL:
                    last_housekeeping = time.monotonic()
                    await anyio.to_thread.run_sync(self.admin.housekeeping)
            except StoreUnavailable:  # the store logs the outage and its end, once each
                continue
            except Exception:  # keep serving from the last snapshot whatever the store does
                log.exception("background refresh failed; serving the last directory snapshot")

    async def aclose(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.refusals.flush)
        except StoreUnavailable as exc:  # the audit log has them; closing goes on
            log.warning("could not write the last %d refusals to the store: %s", len(self.refusals), exc)
        except Exception:  # the audit log has them; closing goes on
            log.exception("could not write the last refusals to the store")
        await self.issuer_keys.aclose()
        await self._http.aclose()
        self.store.close()
