"""The storage contract every backend fulfils (tests/authority/store/test_conformance.py pins it).

Rules:
- Only ``NotFound``, ``AlreadyExists``, ``Conflict`` and ``LimitReached`` are raised on purpose.
- ``update_*`` is compare-and-swap: it succeeds only if the stored ``version`` equals the given
  object's ``version``, and stores the object with ``version + 1`` (returned).
- ``revision()`` is a counter bumped by every write; the in-process directory cache polls it to
  know when to reload (so a write on one node is seen by the others).
- ``snapshot()`` reads every tenant, application, credential, role assignment and signing key in
  one consistent read, with the revision it belongs to: a fixed number of queries, whatever the size.
- ``create_fic`` refuses (``LimitReached``) a credential past its tenant's ``max_fics_per_app``;
  the count and the insert are one atomic step, so concurrent creates cannot pass the limit.
- Deleting a tenant deletes everything in it; deleting an application deletes its credentials,
  federated credentials and role assignments (both as client and as resource).
- ``transaction()`` makes every call inside it (in that thread) one transaction, committed whole
  or not at all, and serialized against every other ``transaction()`` on the same database.
- A database that cannot be reached within its bounds raises ``StoreUnavailable``, never waits
  unbounded.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from keyless.authority.model import (
    AdminKey,
    Application,
    AppRoleAssignment,
    Certificate,
    ClientSecret,
    FederatedIdentityCredential,
    Refusal,
    SigningKeyRecord,
    Tenant,
)

__all__ = ["Store", "StoreSnapshot"]


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """Every row the token path needs, read at one ``revision`` (each list in its ``list_*`` order)."""

    revision: int
    tenants: list[Tenant]
    applications: list[Application]
    secrets: list[ClientSecret]
    certificates: list[Certificate]
    fics: list[FederatedIdentityCredential]
    role_assignments: list[AppRoleAssignment]
    signing_keys: list[SigningKeyRecord]


class Store(Protocol):
    # -- tenants ---------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> Tenant: ...
    def get_tenant(self, tenant_id: str) -> Tenant: ...
    def list_tenants(self) -> list[Tenant]: ...
    def update_tenant(self, tenant: Tenant) -> Tenant: ...
    def delete_tenant(self, tenant_id: str) -> None: ...

    # -- applications (with their service principal) ------------------------------------------
    def create_application(self, app: Application) -> Application: ...
    def get_application(self, object_id: str) -> Application: ...
    def list_applications(self, tenant_id: str) -> list[Application]: ...
    def update_application(self, app: Application) -> Application: ...
    def delete_application(self, object_id: str) -> None: ...

    # -- app role assignments ------------------------------------------------------------------
    def create_role_assignment(self, assignment: AppRoleAssignment) -> AppRoleAssignment: ...
    def list_role_assignments(self, tenant_id: str) -> list[AppRoleAssignment]: ...
    def delete_role_assignment(self, assignment_id: str) -> None: ...

    # -- client secrets and certificates ---------------------------------------------------------
    def add_secret(self, secret: ClientSecret) -> ClientSecret: ...
    def list_secrets(self, application_id: str) -> list[ClientSecret]: ...
    def delete_secret(self, application_id: str, key_id: str) -> None: ...
    def add_certificate(self, cert: Certificate) -> Certificate: ...
    def list_certificates(self, application_id: str) -> list[Certificate]: ...
    def delete_certificate(self, application_id: str, key_id: str) -> None: ...

    # -- federated identity credentials --------------------------------------------------------
    def create_fic(self, fic: FederatedIdentityCredential) -> FederatedIdentityCredential: ...
    def list_fics(self, application_id: str) -> list[FederatedIdentityCredential]: ...
    def update_fic(self, fic: FederatedIdentityCredential) -> FederatedIdentityCredential: ...
    def delete_fic(self, application_id: str, fic_id: str) -> None: ...

    # -- signing keys -----------------------------------------------------------------------------
    def add_signing_key(self, key: SigningKeyRecord) -> SigningKeyRecord: ...
    def list_signing_keys(self, tenant_id: str) -> list[SigningKeyRecord]: ...
    def update_signing_key(self, key: SigningKeyRecord) -> SigningKeyRecord: ...
    def delete_signing_key(self, kid: str) -> None: ...

    # -- admin credentials ------------------------------------------------------------------------
    def add_admin_key(self, key: AdminKey) -> AdminKey: ...
    def list_admin_keys(self) -> list[AdminKey]: ...

    # -- one-time use and housekeeping --------------------------------------------------------------
    def use_once(self, key: str, expires_at: float) -> bool:
        """Record ``key`` (e.g. a client assertion's ``jti``); False if already recorded and unexpired."""
        ...

    def revision(self) -> int:
        """A counter bumped by every write."""
        ...

    def snapshot(self) -> StoreSnapshot:
        """Everything the directory snapshot is built from, in one consistent read."""
        ...

    def record_refusals(self, refusals: Sequence[Refusal], *, keep: int) -> None:
        """Append refusals (not a directory write: the revision stays) and keep the newest ``keep``."""
        ...

    def recent_refusals(self, tenants: Collection[str] | None, *, limit: int) -> list[Refusal]:
        """Newest first (by time); only those whose tenant (as the request named it) is in ``tenants``."""
        ...

    def collect_garbage(self, now: float) -> int:
        """Delete expired one-time-use records; return how many rows went."""
        ...

    def save_issuer_keys(self, issuer: str, jwks: str, fetched_at: float) -> None:
        """Keep ``jwks`` (a JWKS document, JSON) as ``issuer``'s last good key set, unless a newer
        one is stored already (not a directory write: the revision stays)."""
        ...

    def load_issuer_keys(self, issuer: str) -> tuple[str, float] | None:
        """``issuer``'s last good JWKS document and when it was fetched, if any."""
        ...

    def transaction(self, *, lock_timeout: float) -> AbstractContextManager[None]:
        """All-or-nothing and serialized; ``Locked`` if another one holds the lock past ``lock_timeout``."""
        ...

    def ping(self) -> None:
        """One bounded round trip (``StoreUnavailable`` when the database does not answer)."""
        ...

    def close(self) -> None: ...
