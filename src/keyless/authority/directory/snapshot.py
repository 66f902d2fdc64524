"""The in-process directory: an immutable snapshot of everything the token path reads.

The token endpoint never queries the database: it reads a ``Directory`` built from the store's
``snapshot()`` (one consistent read, one query per table, whatever the directory's size).
``DirectoryCache`` rebuilds the snapshot when the store's ``revision()`` moves (polled, so writes
on other nodes are seen within the poll interval) and at once after writes made in-process.
Private signing keys are unsealed once per snapshot, not per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from keyless._metrics import metrics
from keyless.authority.directory.signing import KeyManager, current_signer_record, published_records
from keyless.authority.model import (
    Application,
    AppRoleAssignment,
    Certificate,
    ClientSecret,
    FederatedIdentityCredential,
    SigningKeyRecord,
    Tenant,
)
from keyless.authority.store._protocol import Store
from keyless.authority.token.fic_index import FicIndex
from keyless.jose import KeySet, PublicKey, Signer

__all__ = ["AppView", "Directory", "DirectoryCache", "TenantView", "load_directory"]

log = logging.getLogger("keyless.directory")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AppView:
    app: Application
    secrets: tuple[ClientSecret, ...]
    certificates: tuple[Certificate, ...]
    fics: tuple[FederatedIdentityCredential, ...]
    fic_index: FicIndex

    def certificate(self, *, sha1: str | None, sha256: str | None) -> Certificate | None:
        for cert in self.certificates:
            if (sha256 and cert.thumbprint_sha256 == sha256) or (sha1 and cert.thumbprint_sha1 == sha1):
                return cert
        return None


@dataclass(frozen=True, slots=True)
class _SigningKey:
    record: SigningKeyRecord
    signer: Signer


@dataclass(frozen=True)
class TenantView:
    tenant: Tenant
    apps_by_app_id: dict[str, AppView]
    apps_by_sp_id: dict[str, AppView]
    resources_by_uri: dict[str, AppView]
    roles_by_pair: dict[tuple[str, str], tuple[str, ...]]
    signing_keys: tuple[_SigningKey, ...]
    _jwks_cache: dict[str, KeySet] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.tenant.id

    def application(self, app_id: str) -> AppView | None:
        return self.apps_by_app_id.get(app_id.lower())

    def resource(self, identifier: str) -> AppView | None:
        """A resource app by appId or identifier URI (trailing slash tolerated, as Entra does)."""
        found = self.apps_by_app_id.get(identifier.lower()) or self.resources_by_uri.get(identifier)
        if found is None and identifier.endswith("/"):
            found = self.resources_by_uri.get(identifier.rstrip("/"))
        return found

    def roles(self, client_sp: str, resource_sp: str) -> tuple[str, ...]:
        return self.roles_by_pair.get((client_sp, resource_sp), ())

    def signer(self, now: float) -> Signer | None:
        current = current_signer_record((k.record for k in self.signing_keys), now)
        if current is None:
            return None
        return next(k.signer for k in self.signing_keys if k.record.kid == current.kid)

    def key_set(self, issuer: str) -> KeySet:
        """The public keys to publish, each tagged with ``issuer`` as Entra's JWKS entries are."""
        cached = self._jwks_cache.get(issuer)
        if cached is None:
            records = published_records(k.record for k in self.signing_keys)
            by_kid = {k.record.kid: k.signer for k in self.signing_keys}
            keys: list[PublicKey] = [by_kid[r.kid].public_key(issuer=issuer) for r in records]
            cached = self._jwks_cache[issuer] = KeySet(keys)
        return cached


@dataclass(frozen=True)
class Directory:
    revision: int
    tenants: dict[str, TenantView]  # by lower-case id and by lower-case domain
    loaded_at: float

    def tenant(self, ref: str) -> TenantView | None:
        return self.tenants.get(ref.lower())

    def all_tenants(self) -> list[TenantView]:
        seen: dict[str, TenantView] = {}
        for view in self.tenants.values():
            seen.setdefault(view.id, view)
        return list(seen.values())


def _role_map(
    apps: Iterable[AppView], assignments: Iterable[AppRoleAssignment]
) -> dict[tuple[str, str], tuple[str, ...]]:
    role_values: dict[tuple[str, str], str] = {}
    for view in apps:
        for role in view.app.app_roles:
            role_values[(view.app.service_principal_id, role.id)] = role.value
    granted: dict[tuple[str, str], list[str]] = {}
    for a in assignments:
        value = role_values.get((a.resource_id, a.app_role_id))
        if value is not None:
            values = granted.setdefault((a.principal_id, a.resource_id), [])
            if value not in values:
                values.append(value)
    return {pair: tuple(sorted(values)) for pair, values in granted.items()}


def _grouped(items: Iterable[T], key: Callable[[T], str]) -> dict[str, list[T]]:
    """``items`` by ``key``, each group in the order the items came in."""
    groups: dict[str, list[T]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return groups


@dataclass(frozen=True, slots=True)
class _Credentials:
    """A snapshot's credentials, by the object id of their application."""

    secrets: dict[str, list[ClientSecret]]
    certificates: dict[str, list[Certificate]]
    fics: dict[str, list[FederatedIdentityCredential]]

    def view(self, app: Application) -> AppView:
        key = app.object_id
        fics = self.fics.get(key, ())
        return AppView(
            app=app,
            secrets=tuple(self.secrets.get(key, ())),
            certificates=tuple(self.certificates.get(key, ())),
            fics=tuple(fics),
            fic_index=FicIndex.build(fics),
        )


def _tenant_view(
    tenant: Tenant,
    views: list[AppView],
    assignments: list[AppRoleAssignment],
    signing: list[SigningKeyRecord],
    keys: KeyManager,
) -> TenantView:
    by_uri: dict[str, AppView] = {}
    for view in views:
        for uri in view.app.identifier_uris:
            by_uri[uri] = view
            by_uri.setdefault(uri.rstrip("/"), view)
    return TenantView(
        tenant=tenant,
        apps_by_app_id={v.app.app_id.lower(): v for v in views},
        apps_by_sp_id={v.app.service_principal_id: v for v in views},
        resources_by_uri=by_uri,
        roles_by_pair=_role_map(views, assignments),
        signing_keys=tuple(_SigningKey(r, keys.signer(r)) for r in signing),
    )


def load_directory(store: Store, keys: KeyManager) -> Directory:
    """Build the snapshot from one consistent read of the store (a fixed number of queries)."""
    rows = store.snapshot()
    credentials = _Credentials(
        secrets=_grouped(rows.secrets, lambda r: r.application_id),
        certificates=_grouped(rows.certificates, lambda r: r.application_id),
        fics=_grouped(rows.fics, lambda r: r.application_id),
    )
    apps = _grouped(rows.applications, lambda a: a.tenant_id)
    assignments = _grouped(rows.role_assignments, lambda a: a.tenant_id)
    signing = _grouped(rows.signing_keys, lambda k: k.tenant_id)
    tenants: dict[str, TenantView] = {}
    for tenant in rows.tenants:
        views = [credentials.view(app) for app in apps.get(tenant.id, ())]
        view = _tenant_view(tenant, views, assignments.get(tenant.id, []), signing.get(tenant.id, []), keys)
        tenants[tenant.id.lower()] = view
        for domain in tenant.domains:
            tenants[domain.lower()] = view
    keys.retain(k.kid for k in rows.signing_keys)
    return Directory(revision=rows.revision, tenants=tenants, loaded_at=time.time())


class DirectoryCache:
    """Holds the current snapshot; ``refresh()`` reloads it if the store moved on."""

    def __init__(self, store: Store, keys: KeyManager, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._keys = keys
        self._lock = threading.Lock()
        self._clock = clock
        self._current = load_directory(store, keys)
        self._checked_at = time.monotonic()
        self._note()

    def _note(self) -> None:
        m = metrics()
        m.directory_revision.set(self._current.revision)
        m.directory_checked_at.set(time.time())

    @property
    def current(self) -> Directory:
        return self._current

    @property
    def age(self) -> float:
        """Seconds since the snapshot was last confirmed current against the store."""
        return time.monotonic() - self._checked_at

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the store's revision changed (or ``force``); True if a new snapshot was built."""
        with self._lock:
            if not force and self._store.revision() == self._current.revision:
                self._checked_at = time.monotonic()
                self._note()
                return False
            self._current = load_directory(self._store, self._keys)
            self._checked_at = time.monotonic()
            self._note()
            log.debug("directory reloaded at revision %s", self._current.revision)
            return True
