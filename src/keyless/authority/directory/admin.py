"""Directory administration: the one writer of the directory, behind the admin API, trust files
(``keyless apply`` and ``serve --trust``) and the CLI.

Every write is checked here against every rule in ``rules`` (formats, uniqueness, limits), so no
entry point can skip one. Validation follows Microsoft Graph (FIC names, one audience,
600-character fields, 20 credentials per app by default, one application per identifier URI).
Every write refreshes the in-process directory at once; other nodes see it within the cache poll
interval. Reads go through here too, so the HTTP layer never touches the store.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority.directory import rules
from keyless.authority.directory.secrets import generate_secret, hash_secret
from keyless.authority.directory.signing import KeyManager
from keyless.authority.directory.snapshot import DirectoryCache
from keyless.authority.model import (
    FIC_AUDIENCE_DEFAULT,
    Application,
    AppRole,
    AppRoleAssignment,
    Certificate,
    ClientSecret,
    FederatedIdentityCredential,
    SigningAlg,
    SigningKeyRecord,
    Tenant,
    new_id,
)
from keyless.authority.store._protocol import Store
from keyless.errors import AlreadyExists, ConfigurationError, LimitReached, NotFound
from keyless.jose import load_certificate, x5t_sha1, x5t_sha256

__all__ = ["DirectoryAdmin", "NewSecret", "check_fic"]

SECRET_DEFAULT_LIFETIME = 2 * 365 * 86400


@dataclasses.dataclass(frozen=True, slots=True)
class NewSecret:
    """A freshly created client secret: ``value`` is shown once and never stored."""

    credential: ClientSecret
    value: str


def _invalid(*problems: str) -> ConfigurationError:
    return ConfigurationError(list(problems))


def _check(problems: Sequence[str]) -> None:
    if problems:
        raise ConfigurationError(list(problems))


def check_fic(fic: FederatedIdentityCredential) -> None:
    """Graph's rules for a federated identity credential, every problem at once."""
    _check(rules.fic_problems(fic))


class DirectoryAdmin:
    def __init__(
        self,
        store: Store,
        keys: KeyManager,
        cache: DirectoryCache | None,
        *,
        key_publish_delay: int,
        min_publish_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._keys = keys
        self._cache = cache
        self._publish_delay = key_publish_delay
        self._min_publish_delay = min_publish_delay
        self._clock = clock
        self._batching = threading.local()

    def _changed(self) -> None:
        if getattr(self._batching, "active", False):
            return  # the batch refreshes once, after it commits
        if self._cache is not None:
            self._cache.refresh()

    @contextmanager
    def batch(self, *, lock_timeout: float) -> Iterator[None]:
        """Every write inside (in this thread) is one store transaction: all of it or nothing,
        serialized against other batches on every node (``Locked`` after ``lock_timeout`` s of
        waiting). The directory is refreshed once, after the commit."""
        self._batching.active = True
        try:
            with self.store.transaction(lock_timeout=lock_timeout):
                yield
        finally:
            self._batching.active = False
        self._changed()

    # -- tenants ----------------------------------------------------------------------------------
    def create_tenant(
        self,
        display_name: str,
        *,
        tenant_id: str | None = None,
        domains: Sequence[str] = (),
        signing_alg: SigningAlg = "RS256",
        detailed_errors: bool = False,
        max_fics_per_app: int = 20,
    ) -> Tenant:
        problems = rules.tenant_problems(display_name, domains)
        if tenant_id is not None and not rules.is_guid(tenant_id):
            problems.append(f"id {tenant_id!r} is not a GUID")
        _check(problems)
        now = self._clock()
        tenant = self.store.create_tenant(
            Tenant(
                id=(tenant_id or new_id()).lower(),
                display_name=display_name,
                domains=tuple(d.lower() for d in domains),
                signing_alg=signing_alg,
                detailed_errors=detailed_errors,
                max_fics_per_app=max_fics_per_app,
                created_at=now,
            )
        )
        self._keys.ensure_key(tenant.id, signing_alg, now=now)
        self._changed()
        return tenant

    def update_tenant(self, tenant: Tenant) -> Tenant:
        _check(rules.tenant_problems(tenant.display_name, tenant.domains))
        updated = self.store.update_tenant(tenant)
        self._keys.ensure_key(updated.id, updated.signing_alg, now=self._clock())
        self._changed()
        return updated

    def delete_tenant(self, tenant_id: str) -> None:
        self.store.delete_tenant(self.store.get_tenant(tenant_id).id)
        self._changed()

    # -- applications -----------------------------------------------------------------------------
    def create_application(
        self,
        tenant_id: str,
        display_name: str,
        *,
        app_id: str | None = None,
        identifier_uris: Sequence[str] = (),
        app_roles: Sequence[AppRole] = (),
        requested_access_token_version: Literal[1, 2] | None = None,
        app_role_assignment_required: bool = False,
        others: Sequence[Application] | None = None,
    ) -> Application:
        """``others``: the tenant's applications when the caller holds them (a trust-file apply),
        to check the new one against without reading them all again."""
        tenant = self.store.get_tenant(tenant_id)
        if app_id is not None and not rules.is_guid(app_id):
            raise _invalid(f"appId {app_id!r} is not a GUID")
        app = Application(
            object_id=new_id(),
            app_id=(app_id or new_id()).lower(),
            tenant_id=tenant.id,
            display_name=display_name,
            identifier_uris=tuple(identifier_uris),
            app_roles=tuple(app_roles),
            requested_access_token_version=requested_access_token_version,
            app_role_assignment_required=app_role_assignment_required,
            created_at=self._clock(),
        )
        self.check_application(app, others)
        created = self.store.create_application(app)
        self._changed()
        return created

    def check_application(self, app: Application, others: Sequence[Application] | None = None) -> None:
        """Every rule for ``app`` among ``others`` (default: the tenant's stored applications)."""
        if others is None:
            others = self.store.list_applications(app.tenant_id)
        problems = rules.role_problems(app.app_roles) + rules.identifier_uri_problems(app.identifier_uris)
        problems += [str(clash) for clash in rules.identifier_uri_clashes(app, others)]
        _check(problems)

    def find_application(self, tenant_id: str, ref: str) -> Application:
        """An application by objectId, appId or displayName (unique) within a tenant."""
        tenant = self.store.get_tenant(tenant_id)
        apps = self.store.list_applications(tenant.id)
        low = ref.lower()
        for app in apps:
            if low in (app.object_id, app.app_id):
                return app
        named = [a for a in apps if a.display_name == ref]
        if len(named) == 1:
            return named[0]
        raise NotFound(f"no application {ref!r} in tenant {tenant.id}")

    def update_application(
        self, app: Application, others: Sequence[Application] | None = None
    ) -> Application:
        self.check_application(app, others)
        updated = self.store.update_application(app)
        self._changed()
        return updated

    def delete_application(self, object_id: str) -> None:
        self.store.delete_application(object_id)
        self._changed()

    # -- role assignments ----------------------------------------------------------------------------
    def assign_role(
        self,
        client: Application,
        resource: Application,
        role: str,
        existing: Sequence[AppRoleAssignment] | None = None,
    ) -> AppRoleAssignment:
        """Grant ``client`` the app role ``role`` (value or id) of ``resource``. ``existing``: the
        assignments between these applications when the caller holds them (a trust-file apply)."""
        match = [r for r in resource.app_roles if role in (r.value, r.id)]
        if not match:
            raise NotFound(f"application {resource.display_name!r} has no app role {role!r}")
        if "Application" not in match[0].allowed_member_types:
            raise _invalid(f"app role {role!r} does not allow Application members")
        wanted = (client.service_principal_id, resource.service_principal_id, match[0].id)
        if existing is None:
            existing = self.store.list_role_assignments(resource.tenant_id)
        for held in existing:
            if (held.principal_id, held.resource_id, held.app_role_id) == wanted:
                raise AlreadyExists("Permission being assigned already exists on the object.")
        assignment = self.store.create_role_assignment(
            AppRoleAssignment(
                id=new_id(),
                tenant_id=resource.tenant_id,
                principal_id=client.service_principal_id,
                resource_id=resource.service_principal_id,
                app_role_id=match[0].id,
                created_at=self._clock(),
            )
        )
        self._changed()
        return assignment

    def unassign_role(self, assignment_id: str, tenant: Tenant | None = None) -> None:
        """Delete an assignment (when ``tenant`` is given, only one of that tenant's)."""
        if tenant is not None and all(
            a.id != assignment_id for a in self.store.list_role_assignments(tenant.id)
        ):
            raise NotFound(f"Tenant '{tenant.display_name}' has no app role assignment {assignment_id}.")
        self.store.delete_role_assignment(assignment_id)
        self._changed()

    # -- credentials ------------------------------------------------------------------------------------
    def add_secret(
        self,
        app: Application,
        display_name: str = "",
        *,
        value: str | None = None,
        lifetime: int = SECRET_DEFAULT_LIFETIME,
    ) -> NewSecret:
        """Create a client secret (or register a given ``value``, e.g. from an environment variable)."""
        secret_value = value or generate_secret()
        digest, salt = hash_secret(secret_value)
        now = self._clock()
        credential = self.store.add_secret(
            ClientSecret(
                key_id=new_id(),
                application_id=app.object_id,
                display_name=display_name,
                hint=secret_value[:3],
                secret_hash=digest,
                salt=salt,
                start=now,
                end=now + lifetime,
            )
        )
        self._changed()
        return NewSecret(credential, secret_value)

    def remove_secret(self, app: Application, key_id: str) -> None:
        if all(s.key_id != key_id for s in self.store.list_secrets(app.object_id)):
            raise NotFound(f"Application '{app.display_name}' has no password credential {key_id}.")
        self.store.delete_secret(app.object_id, key_id)
        self._changed()

    def add_certificate(
        self, app: Application, cert_pem_or_der: bytes | str, display_name: str = ""
    ) -> Certificate:
        try:
            cert = load_certificate(cert_pem_or_der)
        except ValueError as exc:
            raise _invalid(f"not a PEM or DER certificate: {exc}") from None
        der = cert.public_bytes(Encoding.DER)
        if any(c.thumbprint_sha1 == x5t_sha1(der) for c in self.store.list_certificates(app.object_id)):
            raise AlreadyExists(
                "A key credential with the same thumbprint already exists on this application."
            )
        credential = self.store.add_certificate(
            Certificate(
                key_id=new_id(),
                application_id=app.object_id,
                display_name=display_name or cert.subject.rfc4514_string(),
                cert_der=der,
                thumbprint_sha1=x5t_sha1(der),
                thumbprint_sha256=x5t_sha256(der),
                start=cert.not_valid_before_utc.timestamp(),
                end=cert.not_valid_after_utc.timestamp(),
            )
        )
        self._changed()
        return credential

    def remove_certificate(self, app: Application, key_id: str) -> None:
        if all(c.key_id != key_id for c in self.store.list_certificates(app.object_id)):
            raise NotFound(f"Application '{app.display_name}' has no key credential {key_id}.")
        self.store.delete_certificate(app.object_id, key_id)
        self._changed()

    # -- federated identity credentials ---------------------------------------------------------------
    def create_fic(
        self,
        app: Application,
        *,
        name: str,
        issuer: str,
        subject: str | None,
        audiences: Sequence[str] = (FIC_AUDIENCE_DEFAULT,),
        description: str | None = None,
        claims_matching_expression: str | None = None,
        condition: str | None = None,
        allow_broad_match: bool = False,
        others: Sequence[FederatedIdentityCredential] | None = None,
    ) -> FederatedIdentityCredential:
        """``others``: the application's credentials when the caller holds them (a trust-file apply).
        Exactly one of ``subject`` and ``claims_matching_expression`` is given (Graph's rule)."""
        fic = FederatedIdentityCredential(
            id=new_id(),
            application_id=app.object_id,
            name=name,
            issuer=issuer,
            subject=subject,
            audiences=tuple(audiences),
            description=description,
            created_at=self._clock(),
            claims_matching_expression=claims_matching_expression,
            condition=condition,
            allow_broad_match=allow_broad_match,
        )
        self._check_fic(fic, others)
        try:
            created = self.store.create_fic(fic)  # the store counts against the limit atomically
        except LimitReached as exc:
            raise _invalid(
                f"application {app.display_name!r} already has {exc.limit} federated identity "
                "credentials (the limit per application)"
            ) from None
        self._changed()
        return created

    def find_fic(self, app: Application, ref: str) -> FederatedIdentityCredential:
        for fic in self.store.list_fics(app.object_id):
            if ref in (fic.id, fic.name):
                return fic
        raise NotFound(f"application {app.display_name!r} has no federated identity credential {ref!r}")

    def update_fic(self, fic: FederatedIdentityCredential) -> FederatedIdentityCredential:
        self._check_fic(fic)
        updated = self.store.update_fic(fic)
        self._changed()
        return updated

    def _check_fic(
        self, fic: FederatedIdentityCredential, others: Sequence[FederatedIdentityCredential] | None = None
    ) -> None:
        check_fic(fic)
        if others is None:
            others = self.store.list_fics(fic.application_id)
        clash = rules.fic_clash(fic, others)
        if clash is not None:
            raise AlreadyExists(clash)

    def delete_fic(self, app: Application, ref: str) -> None:
        self.store.delete_fic(app.object_id, self.find_fic(app, ref).id)
        self._changed()

    # -- reads ------------------------------------------------------------------------------------------
    def list_tenants(self) -> list[Tenant]:
        return self.store.list_tenants()

    def get_tenant(self, ref: str) -> Tenant:
        """A tenant by id or domain."""
        return self.store.get_tenant(ref)

    def list_applications(self, tenant_id: str) -> list[Application]:
        return self.store.list_applications(tenant_id)

    def list_secrets(self, app: Application) -> list[ClientSecret]:
        return self.store.list_secrets(app.object_id)

    def list_certificates(self, app: Application) -> list[Certificate]:
        return self.store.list_certificates(app.object_id)

    def list_fics(self, app: Application) -> list[FederatedIdentityCredential]:
        return self.store.list_fics(app.object_id)

    def list_role_assignments(self, tenant_id: str) -> list[AppRoleAssignment]:
        return self.store.list_role_assignments(tenant_id)

    # -- signing keys -------------------------------------------------------------------------------------
    def signing_keys(self, tenant_id: str) -> list[SigningKeyRecord]:
        return self.store.list_signing_keys(self.store.get_tenant(tenant_id).id)

    def rotate_keys(self, tenant_id: str, *, publish_delay: float | None = None) -> SigningKeyRecord:
        """Add a key that is published now and signs after the publish delay, never sooner than
        ``min_publish_delay`` (the propagation time): a node or worker that has not read the store
        since would otherwise hand resource servers a JWKS without the key that signs."""
        tenant = self.store.get_tenant(tenant_id)
        delay = max(self._publish_delay if publish_delay is None else publish_delay, self._min_publish_delay)
        record = self._keys.rotate(tenant.id, tenant.signing_alg, now=self._clock(), publish_delay=delay)
        if not self.housekeeping():  # housekeeping refreshes the directory itself when it changed keys
            self._changed()
        return record

    def housekeeping(self) -> int:
        """Promote, retire and delete signing keys as time requires; drop expired one-time records."""
        now = self._clock()
        changes = self._keys.tick((t.id for t in self.store.list_tenants()), now=now)
        self.store.collect_garbage(now)
        if changes:
            self._changed()
        return changes
