"""The ``Store`` contract, run against every backend (SQLite file, PostgreSQL schema).

A new backend passes when this whole module passes with it added to the ``store`` fixture.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests._services import fresh_postgres_schema, postgres_url_or_skip

from keyless.authority.model import (
    AdminKey,
    Application,
    AppRole,
    AppRoleAssignment,
    Certificate,
    ClientSecret,
    FederatedIdentityCredential,
    KeyState,
    Refusal,
    SigningKeyRecord,
    Tenant,
    new_id,
)
from keyless.authority.store import SqlStore, Store
from keyless.errors import AlreadyExists, Conflict, LimitReached, NotFound

# -- backends ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        sqlite_store = SqlStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
        yield sqlite_store
        sqlite_store.close()
        return
    with fresh_postgres_schema(postgres_url_or_skip()) as url:
        pg_store = SqlStore.from_url(url)
        yield pg_store
        pg_store.close()


# -- builders ------------------------------------------------------------------------------------

_clock = iter(range(1, 1_000_000))


def _tick() -> float:
    """Strictly increasing creation times, so list order is predictable."""
    return float(next(_clock))


def a_tenant(**changes: Any) -> Tenant:
    tenant_id = new_id()
    tenant = Tenant(
        id=tenant_id,
        display_name="Contoso",
        domains=(f"t{tenant_id[:8]}.example.com",),
        signing_alg="ES256",
        detailed_errors=True,
        max_fics_per_app=7,
        created_at=_tick(),
    )
    return dataclasses.replace(tenant, **changes)


def an_application(tenant: Tenant, **changes: Any) -> Application:
    app = Application(
        object_id=new_id(),
        app_id=new_id(),
        tenant_id=tenant.id,
        display_name="orders-api",
        identifier_uris=("api://orders", "https://orders.example.com"),
        app_roles=(
            AppRole(id=new_id(), value="Orders.Read", display_name="Read", description="r"),
            AppRole(
                id=new_id(),
                value="Orders.Write",
                allowed_member_types=("Application", "User"),
                is_enabled=False,
            ),
        ),
        requested_access_token_version=2,
        app_role_assignment_required=True,
        created_at=_tick(),
    )
    return dataclasses.replace(app, **changes)


def an_assignment(client: Application, resource: Application) -> AppRoleAssignment:
    return AppRoleAssignment(
        id=new_id(),
        tenant_id=client.tenant_id,
        principal_id=client.service_principal_id,
        resource_id=resource.service_principal_id,
        app_role_id=resource.app_roles[0].id,
        created_at=_tick(),
    )


def a_secret(app: Application) -> ClientSecret:
    return ClientSecret(
        key_id=new_id(),
        application_id=app.object_id,
        display_name="ci",
        hint="abc",
        secret_hash=b"\x00\xffhash",
        salt=b"\x01salt",
        start=_tick(),
        end=2e9,
    )


def a_certificate(app: Application) -> Certificate:
    return Certificate(
        key_id=new_id(),
        application_id=app.object_id,
        display_name="signer",
        cert_der=b"\x30\x82der",
        thumbprint_sha1="sha1-thumb",
        thumbprint_sha256="sha256-thumb",
        start=_tick(),
        end=2e9,
    )


def a_fic(app: Application, **changes: Any) -> FederatedIdentityCredential:
    fic = FederatedIdentityCredential(
        id=new_id(),
        application_id=app.object_id,
        name=f"fic-{new_id()[:8]}",
        issuer="https://token.actions.githubusercontent.com",
        subject=f"repo:acme/{new_id()[:8]}:ref:refs/heads/main",
        audiences=("api://AzureADTokenExchange", "other"),
        description="deploys",
        created_at=_tick(),
    )
    return dataclasses.replace(fic, **changes)


def a_signing_key(tenant: Tenant) -> SigningKeyRecord:
    now = _tick()
    return SigningKeyRecord(
        kid=new_id(),
        tenant_id=tenant.id,
        alg="RS256",
        private_key_encrypted=b"\x00sealed",
        cert_der=b"\x30cert",
        state=KeyState.PENDING,
        created_at=now,
        activates_at=now + 3600,
    )


def an_admin_key() -> AdminKey:
    return AdminKey(id=new_id(), display_name="ops", key_hash=b"\x99hash", created_at=_tick())


@pytest.fixture
def tenant(store: SqlStore) -> Tenant:
    return store.create_tenant(a_tenant())


@pytest.fixture
def app(store: SqlStore, tenant: Tenant) -> Application:
    return store.create_application(an_application(tenant))


# -- the protocol itself -------------------------------------------------------------------------


def test_sql_store_implements_every_protocol_method() -> None:
    protocol_methods = {name for name, _ in inspect.getmembers(Store, inspect.isfunction)}
    missing = {name for name in protocol_methods if not callable(getattr(SqlStore, name, None))}
    assert protocol_methods
    assert not missing


# -- tenants -------------------------------------------------------------------------------------


def test_created_tenant_reads_back_identically(store: SqlStore) -> None:
    tenant = a_tenant(domains=("Contoso.COM", "contoso.onmicrosoft.com"))
    assert store.create_tenant(tenant) == tenant
    assert store.get_tenant(tenant.id) == tenant


def test_get_tenant_by_domain_is_case_insensitive(store: SqlStore) -> None:
    tenant = store.create_tenant(a_tenant(domains=("Fabrikam.Example.com",)))
    assert store.get_tenant("fabrikam.example.com") == tenant
    assert store.get_tenant("FABRIKAM.EXAMPLE.COM") == tenant


def test_get_tenant_accepts_upper_case_guid(store: SqlStore, tenant: Tenant) -> None:
    assert store.get_tenant(tenant.id.upper()) == tenant


def test_list_tenants_returns_all_in_creation_order(store: SqlStore) -> None:
    created = [store.create_tenant(a_tenant()) for _ in range(3)]
    assert store.list_tenants() == created


def test_get_missing_tenant_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_tenant(new_id())
    with pytest.raises(NotFound):
        store.get_tenant("nobody.example.com")


def test_duplicate_tenant_id_raises_already_exists(store: SqlStore, tenant: Tenant) -> None:
    with pytest.raises(AlreadyExists):
        store.create_tenant(a_tenant(id=tenant.id))


def test_domain_of_another_tenant_raises_already_exists(store: SqlStore, tenant: Tenant) -> None:
    with pytest.raises(AlreadyExists):
        store.create_tenant(a_tenant(domains=(tenant.domains[0].upper(),)))


def test_failed_create_leaves_no_partial_tenant(store: SqlStore, tenant: Tenant) -> None:
    clash = a_tenant(domains=("fresh.example.com", tenant.domains[0]))
    with pytest.raises(AlreadyExists):
        store.create_tenant(clash)
    with pytest.raises(NotFound):
        store.get_tenant(clash.id)
    with pytest.raises(NotFound):
        store.get_tenant("fresh.example.com")


def test_update_tenant_returns_and_stores_next_version(store: SqlStore, tenant: Tenant) -> None:
    updated = store.update_tenant(dataclasses.replace(tenant, display_name="Renamed"))
    assert updated.version == tenant.version + 1
    assert updated.display_name == "Renamed"
    assert store.get_tenant(tenant.id) == updated


def test_update_tenant_replaces_its_domains(store: SqlStore, tenant: Tenant) -> None:
    old_domain = tenant.domains[0]
    store.update_tenant(dataclasses.replace(tenant, domains=("New.example.com",)))
    assert store.get_tenant("new.example.com").id == tenant.id
    with pytest.raises(NotFound):
        store.get_tenant(old_domain)
    store.create_tenant(a_tenant(domains=(old_domain,)))  # the old domain is free again


def test_update_tenant_to_taken_domain_raises_already_exists(store: SqlStore, tenant: Tenant) -> None:
    other = store.create_tenant(a_tenant())
    with pytest.raises(AlreadyExists):
        store.update_tenant(dataclasses.replace(other, domains=tenant.domains))
    assert store.get_tenant(other.id) == other


def test_update_missing_tenant_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.update_tenant(a_tenant())


def test_delete_tenant_then_get_raises_not_found(store: SqlStore, tenant: Tenant) -> None:
    store.delete_tenant(tenant.id)
    with pytest.raises(NotFound):
        store.get_tenant(tenant.id)
    assert store.list_tenants() == []


def test_delete_missing_tenant_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.delete_tenant(new_id())


# -- compare-and-swap, for every versioned kind ---------------------------------------------------


def _tenant_case(store: SqlStore, tenant: Tenant, app: Application) -> tuple[Any, Any]:
    return tenant, store.update_tenant


def _application_case(store: SqlStore, tenant: Tenant, app: Application) -> tuple[Any, Any]:
    return app, store.update_application


def _fic_case(store: SqlStore, tenant: Tenant, app: Application) -> tuple[Any, Any]:
    return store.create_fic(a_fic(app)), store.update_fic


def _signing_key_case(store: SqlStore, tenant: Tenant, app: Application) -> tuple[Any, Any]:
    return store.add_signing_key(a_signing_key(tenant)), store.update_signing_key


CAS_CASES = {
    "tenant": _tenant_case,
    "application": _application_case,
    "fic": _fic_case,
    "signing_key": _signing_key_case,
}

CasCase = Callable[[SqlStore, Tenant, Application], tuple[Any, Any]]


@pytest.mark.parametrize("case", CAS_CASES.values(), ids=CAS_CASES.keys())
def test_update_increments_version_each_time(
    store: SqlStore, tenant: Tenant, app: Application, case: CasCase
) -> None:
    original, update = case(store, tenant, app)
    first = update(original)
    second = update(first)
    assert (first.version, second.version) == (original.version + 1, original.version + 2)


@pytest.mark.parametrize("case", CAS_CASES.values(), ids=CAS_CASES.keys())
def test_update_with_stale_version_raises_conflict(
    store: SqlStore, tenant: Tenant, app: Application, case: CasCase
) -> None:
    original, update = case(store, tenant, app)
    update(original)
    with pytest.raises(Conflict):
        update(original)


@pytest.mark.parametrize("case", CAS_CASES.values(), ids=CAS_CASES.keys())
def test_update_of_deleted_row_raises_not_found(
    store: SqlStore, tenant: Tenant, app: Application, case: CasCase
) -> None:
    original, update = case(store, tenant, app)
    store.delete_tenant(tenant.id)
    with pytest.raises(NotFound):
        update(original)


def test_losing_a_cas_race_leaves_the_winner_stored(store: SqlStore, tenant: Tenant) -> None:
    winner = store.update_tenant(dataclasses.replace(tenant, display_name="Winner"))
    with pytest.raises(Conflict):
        store.update_tenant(dataclasses.replace(tenant, display_name="Loser"))
    assert store.get_tenant(tenant.id) == winner


# -- applications --------------------------------------------------------------------------------


def test_created_application_reads_back_identically(store: SqlStore, tenant: Tenant) -> None:
    app = an_application(tenant)
    assert store.create_application(app) == app
    assert store.get_application(app.object_id) == app


def test_application_without_token_version_reads_back_none(store: SqlStore, tenant: Tenant) -> None:
    app = store.create_application(an_application(tenant, requested_access_token_version=None, app_roles=()))
    assert store.get_application(app.object_id).requested_access_token_version is None


def test_list_applications_returns_only_that_tenants(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    other_tenant = store.create_tenant(a_tenant())
    store.create_application(an_application(other_tenant))
    second = store.create_application(an_application(tenant))
    assert store.list_applications(tenant.id) == [app, second]


def test_duplicate_app_id_in_tenant_raises_already_exists(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    with pytest.raises(AlreadyExists):
        store.create_application(an_application(tenant, app_id=app.app_id))


def test_same_app_id_in_another_tenant_is_allowed(store: SqlStore, app: Application) -> None:
    other_tenant = store.create_tenant(a_tenant())
    store.create_application(an_application(other_tenant, app_id=app.app_id))


def test_duplicate_application_object_id_raises_already_exists(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    with pytest.raises(AlreadyExists):
        store.create_application(an_application(tenant, object_id=app.object_id))


def test_update_application_to_taken_app_id_raises_already_exists(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    other = store.create_application(an_application(tenant))
    with pytest.raises(AlreadyExists):
        store.update_application(dataclasses.replace(other, app_id=app.app_id))


def test_update_application_persists_every_field(store: SqlStore, app: Application) -> None:
    changed = dataclasses.replace(
        app,
        display_name="renamed",
        identifier_uris=("api://renamed",),
        app_roles=(AppRole(id=new_id(), value="X"),),
        requested_access_token_version=1,
        app_role_assignment_required=False,
    )
    updated = store.update_application(changed)
    assert updated == dataclasses.replace(changed, version=app.version + 1)
    assert store.get_application(app.object_id) == updated


def test_application_in_missing_tenant_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.create_application(an_application(a_tenant()))


def test_get_missing_application_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_application(new_id())


def test_delete_application_then_get_raises_not_found(store: SqlStore, app: Application) -> None:
    store.delete_application(app.object_id)
    with pytest.raises(NotFound):
        store.get_application(app.object_id)


def test_delete_missing_application_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.delete_application(new_id())


# -- role assignments ----------------------------------------------------------------------------


def test_role_assignment_create_list_delete(store: SqlStore, tenant: Tenant, app: Application) -> None:
    resource = store.create_application(an_application(tenant))
    assignment = store.create_role_assignment(an_assignment(app, resource))
    assert store.list_role_assignments(tenant.id) == [assignment]
    store.delete_role_assignment(assignment.id)
    assert store.list_role_assignments(tenant.id) == []


def test_duplicate_role_assignment_raises_already_exists(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    resource = store.create_application(an_application(tenant))
    store.create_role_assignment(an_assignment(app, resource))
    with pytest.raises(AlreadyExists):
        store.create_role_assignment(an_assignment(app, resource))


def test_role_assignment_for_missing_principal_raises_not_found(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    ghost = an_application(tenant)
    with pytest.raises(NotFound):
        store.create_role_assignment(an_assignment(ghost, app))
    with pytest.raises(NotFound):
        store.create_role_assignment(an_assignment(app, ghost))


def test_delete_missing_role_assignment_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.delete_role_assignment(new_id())


# -- secrets and certificates --------------------------------------------------------------------


def test_secrets_add_list_delete(store: SqlStore, app: Application) -> None:
    first, second = store.add_secret(a_secret(app)), store.add_secret(a_secret(app))
    assert store.list_secrets(app.object_id) == [first, second]
    store.delete_secret(app.object_id, first.key_id)
    assert store.list_secrets(app.object_id) == [second]


def test_secret_for_missing_application_raises_not_found(store: SqlStore, tenant: Tenant) -> None:
    with pytest.raises(NotFound):
        store.add_secret(a_secret(an_application(tenant)))


def test_duplicate_secret_key_id_raises_already_exists(store: SqlStore, app: Application) -> None:
    secret = store.add_secret(a_secret(app))
    with pytest.raises(AlreadyExists):
        store.add_secret(secret)


def test_delete_secret_of_another_application_raises_not_found(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    secret = store.add_secret(a_secret(app))
    other = store.create_application(an_application(tenant))
    with pytest.raises(NotFound):
        store.delete_secret(other.object_id, secret.key_id)
    assert store.list_secrets(app.object_id) == [secret]


def test_certificates_add_list_delete(store: SqlStore, app: Application) -> None:
    first, second = store.add_certificate(a_certificate(app)), store.add_certificate(a_certificate(app))
    assert store.list_certificates(app.object_id) == [first, second]
    store.delete_certificate(app.object_id, first.key_id)
    assert store.list_certificates(app.object_id) == [second]


def test_certificate_for_missing_application_raises_not_found(store: SqlStore, tenant: Tenant) -> None:
    with pytest.raises(NotFound):
        store.add_certificate(a_certificate(an_application(tenant)))


def test_delete_missing_certificate_raises_not_found(store: SqlStore, app: Application) -> None:
    with pytest.raises(NotFound):
        store.delete_certificate(app.object_id, new_id())


# -- federated identity credentials --------------------------------------------------------------


def test_fics_create_list_update_delete(store: SqlStore, app: Application) -> None:
    fic = store.create_fic(a_fic(app, description=None))
    assert store.list_fics(app.object_id) == [fic]
    updated = store.update_fic(dataclasses.replace(fic, subject="repo:acme/x:environment:prod"))
    assert store.list_fics(app.object_id) == [updated]
    store.delete_fic(app.object_id, fic.id)
    assert store.list_fics(app.object_id) == []


def test_duplicate_fic_issuer_and_subject_raises_already_exists(store: SqlStore, app: Application) -> None:
    fic = store.create_fic(a_fic(app))
    with pytest.raises(AlreadyExists):
        store.create_fic(a_fic(app, issuer=fic.issuer, subject=fic.subject))


def test_duplicate_fic_name_raises_already_exists(store: SqlStore, app: Application) -> None:
    fic = store.create_fic(a_fic(app))
    with pytest.raises(AlreadyExists):
        store.create_fic(a_fic(app, name=fic.name))


def test_same_fic_issuer_and_subject_on_another_app_is_allowed(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    fic = store.create_fic(a_fic(app))
    other = store.create_application(an_application(tenant))
    store.create_fic(a_fic(other, name=fic.name, issuer=fic.issuer, subject=fic.subject))


def test_update_fic_onto_existing_subject_raises_already_exists(store: SqlStore, app: Application) -> None:
    first, second = store.create_fic(a_fic(app)), store.create_fic(a_fic(app))
    with pytest.raises(AlreadyExists):
        store.update_fic(dataclasses.replace(second, subject=first.subject))


def test_fic_for_missing_application_raises_not_found(store: SqlStore, tenant: Tenant) -> None:
    with pytest.raises(NotFound):
        store.create_fic(a_fic(an_application(tenant)))


def test_delete_fic_of_another_application_raises_not_found(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    fic = store.create_fic(a_fic(app))
    other = store.create_application(an_application(tenant))
    with pytest.raises(NotFound):
        store.delete_fic(other.object_id, fic.id)


def test_fics_past_the_tenants_limit_raise_limit_reached(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    fics = [store.create_fic(a_fic(app)) for _ in range(tenant.max_fics_per_app)]
    revision = store.revision()
    with pytest.raises(LimitReached) as refused:
        store.create_fic(a_fic(app))
    assert refused.value.limit == tenant.max_fics_per_app == 7
    assert store.revision() == revision  # nothing was written
    store.delete_fic(app.object_id, fics[0].id)
    store.create_fic(a_fic(app))
    assert len(store.list_fics(app.object_id)) == 7


def test_concurrent_fic_creates_never_pass_the_limit(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    for _ in range(tenant.max_fics_per_app - 2):
        store.create_fic(a_fic(app))

    def create() -> bool:
        try:
            store.create_fic(a_fic(app))
        except LimitReached:
            return False
        return True

    results = _race(12, create)

    assert results.count(True) == 2
    assert len(store.list_fics(app.object_id)) == tenant.max_fics_per_app


def test_snapshot_holds_what_the_list_calls_return_at_its_revision(store: SqlStore, tenant: Tenant) -> None:
    other = store.create_tenant(a_tenant())
    apps = [store.create_application(an_application(t)) for t in (tenant, other, tenant)]
    for app in apps:
        store.create_fic(a_fic(app))
        store.add_secret(a_secret(app))
    store.add_certificate(a_certificate(apps[0]))
    store.add_signing_key(a_signing_key(other))
    assignment = store.create_role_assignment(an_assignment(apps[0], apps[2]))

    snapshot = store.snapshot()

    assert snapshot.revision == store.revision()
    assert snapshot.tenants == store.list_tenants()
    for t in snapshot.tenants:
        assert [a for a in snapshot.applications if a.tenant_id == t.id] == store.list_applications(t.id)
    assert len(snapshot.applications) == 3
    for app in apps:
        of_app = app.object_id
        assert [f for f in snapshot.fics if f.application_id == of_app] == store.list_fics(of_app)
        assert [s for s in snapshot.secrets if s.application_id == of_app] == store.list_secrets(of_app)
        assert [c for c in snapshot.certificates if c.application_id == of_app] == store.list_certificates(
            of_app
        )
    assert snapshot.role_assignments == [assignment]
    assert snapshot.signing_keys == store.list_signing_keys(tenant.id) + store.list_signing_keys(other.id)


# -- signing keys and admin keys -----------------------------------------------------------------


def test_signing_key_lifecycle(store: SqlStore, tenant: Tenant) -> None:
    pending = store.add_signing_key(a_signing_key(tenant))
    assert store.list_signing_keys(tenant.id) == [pending]
    active = store.update_signing_key(dataclasses.replace(pending, state=KeyState.ACTIVE))
    retired = store.update_signing_key(dataclasses.replace(active, state=KeyState.RETIRED, retired_at=123.5))
    assert store.list_signing_keys(tenant.id) == [retired]
    assert (retired.state, retired.retired_at, retired.version) == (KeyState.RETIRED, 123.5, 3)
    store.delete_signing_key(pending.kid)
    assert store.list_signing_keys(tenant.id) == []


def test_signing_keys_are_listed_per_tenant(store: SqlStore, tenant: Tenant) -> None:
    mine = store.add_signing_key(a_signing_key(tenant))
    store.add_signing_key(a_signing_key(store.create_tenant(a_tenant())))
    assert store.list_signing_keys(tenant.id) == [mine]


def test_signing_key_for_missing_tenant_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.add_signing_key(a_signing_key(a_tenant()))


def test_duplicate_signing_key_kid_raises_already_exists(store: SqlStore, tenant: Tenant) -> None:
    key = store.add_signing_key(a_signing_key(tenant))
    with pytest.raises(AlreadyExists):
        store.add_signing_key(key)


def test_delete_missing_signing_key_raises_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.delete_signing_key(new_id())


def test_admin_keys_add_and_list(store: SqlStore) -> None:
    keys = [store.add_admin_key(an_admin_key()) for _ in range(2)]
    assert store.list_admin_keys() == keys


def test_duplicate_admin_key_raises_already_exists(store: SqlStore) -> None:
    key = store.add_admin_key(an_admin_key())
    with pytest.raises(AlreadyExists):
        store.add_admin_key(key)


# -- cascades ------------------------------------------------------------------------------------


def test_deleting_tenant_deletes_everything_in_it(store: SqlStore, tenant: Tenant, app: Application) -> None:
    resource = store.create_application(an_application(tenant))
    store.create_role_assignment(an_assignment(app, resource))
    store.add_secret(a_secret(app))
    store.add_certificate(a_certificate(app))
    store.create_fic(a_fic(app))
    store.add_signing_key(a_signing_key(tenant))

    store.delete_tenant(tenant.id)

    assert store.list_applications(tenant.id) == []
    assert store.list_role_assignments(tenant.id) == []
    assert store.list_signing_keys(tenant.id) == []
    assert store.list_secrets(app.object_id) == []
    assert store.list_certificates(app.object_id) == []
    assert store.list_fics(app.object_id) == []
    store.create_tenant(a_tenant(domains=tenant.domains))  # its domains are free again


def test_deleting_tenant_leaves_other_tenants_alone(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    other = store.create_tenant(a_tenant())
    other_app = store.create_application(an_application(other))
    store.delete_tenant(tenant.id)
    assert store.list_tenants() == [other]
    assert store.list_applications(other.id) == [other_app]


def test_deleting_application_deletes_its_credentials(store: SqlStore, app: Application) -> None:
    store.add_secret(a_secret(app))
    store.add_certificate(a_certificate(app))
    store.create_fic(a_fic(app))
    store.delete_application(app.object_id)
    assert store.list_secrets(app.object_id) == []
    assert store.list_certificates(app.object_id) == []
    assert store.list_fics(app.object_id) == []


def test_deleting_application_deletes_its_assignments_as_client_and_resource(
    store: SqlStore, tenant: Tenant, app: Application
) -> None:
    other = store.create_application(an_application(tenant))
    third = store.create_application(an_application(tenant))
    store.create_role_assignment(an_assignment(app, other))  # app as client
    store.create_role_assignment(an_assignment(other, app))  # app as resource
    unrelated = store.create_role_assignment(an_assignment(other, third))
    store.delete_application(app.object_id)
    assert store.list_role_assignments(tenant.id) == [unrelated]


# -- revision ------------------------------------------------------------------------------------


def _every_write(store: SqlStore) -> Iterator[str]:
    """Perform one of each write, yielding its name after it."""
    tenant = store.create_tenant(a_tenant())
    yield "create_tenant"
    tenant = store.update_tenant(dataclasses.replace(tenant, display_name="x"))
    yield "update_tenant"
    app = store.create_application(an_application(tenant))
    yield "create_application"
    app = store.update_application(dataclasses.replace(app, display_name="x"))
    yield "update_application"
    resource = store.create_application(an_application(tenant))
    assignment = store.create_role_assignment(an_assignment(app, resource))
    yield "create_role_assignment"
    store.delete_role_assignment(assignment.id)
    yield "delete_role_assignment"
    secret = store.add_secret(a_secret(app))
    yield "add_secret"
    store.delete_secret(app.object_id, secret.key_id)
    yield "delete_secret"
    cert = store.add_certificate(a_certificate(app))
    yield "add_certificate"
    store.delete_certificate(app.object_id, cert.key_id)
    yield "delete_certificate"
    fic = store.create_fic(a_fic(app))
    yield "create_fic"
    fic = store.update_fic(dataclasses.replace(fic, description="x"))
    yield "update_fic"
    store.delete_fic(app.object_id, fic.id)
    yield "delete_fic"
    key = store.add_signing_key(a_signing_key(tenant))
    yield "add_signing_key"
    key = store.update_signing_key(dataclasses.replace(key, state=KeyState.ACTIVE))
    yield "update_signing_key"
    store.delete_signing_key(key.kid)
    yield "delete_signing_key"
    store.add_admin_key(an_admin_key())
    yield "add_admin_key"
    store.delete_application(app.object_id)
    yield "delete_application"
    store.delete_tenant(tenant.id)
    yield "delete_tenant"


def test_revision_increases_on_every_write(store: SqlStore) -> None:
    before = store.revision()
    for write in _every_write(store):
        after = store.revision()
        assert after > before, f"{write} did not bump the revision"
        before = after


def test_revision_is_unchanged_by_reads(store: SqlStore, tenant: Tenant, app: Application) -> None:
    before = store.revision()
    store.get_tenant(tenant.id)
    store.get_tenant(tenant.domains[0])
    store.list_tenants()
    store.get_application(app.object_id)
    store.list_applications(tenant.id)
    store.list_role_assignments(tenant.id)
    store.list_secrets(app.object_id)
    store.list_certificates(app.object_id)
    store.list_fics(app.object_id)
    store.list_signing_keys(tenant.id)
    store.list_admin_keys()
    assert store.revision() == before


def test_revision_is_unchanged_by_failed_writes(store: SqlStore, tenant: Tenant) -> None:
    before = store.revision()
    with pytest.raises(AlreadyExists):
        store.create_tenant(tenant)
    with pytest.raises(NotFound):
        store.delete_tenant(new_id())
    with pytest.raises(Conflict):
        store.update_tenant(dataclasses.replace(tenant, version=99))
    assert store.revision() == before


def test_revision_is_unchanged_by_one_time_use_bookkeeping(store: SqlStore) -> None:
    before = store.revision()
    store.use_once(new_id(), time.time() + 60)
    store.collect_garbage(time.time())
    assert store.revision() == before


# -- one-time use --------------------------------------------------------------------------------


def test_use_once_is_true_first_then_false(store: SqlStore) -> None:
    key = new_id()
    assert store.use_once(key, time.time() + 60) is True
    assert store.use_once(key, time.time() + 60) is False


def test_use_once_keys_are_independent(store: SqlStore) -> None:
    assert store.use_once(new_id(), time.time() + 60) is True
    assert store.use_once(new_id(), time.time() + 60) is True


def test_use_once_of_expired_key_succeeds_again(store: SqlStore) -> None:
    key = new_id()
    assert store.use_once(key, time.time() - 1) is True
    assert store.use_once(key, time.time() + 60) is True
    assert store.use_once(key, time.time() + 60) is False


def test_refusals_are_kept_newest_first_pruned_and_not_a_directory_write(store: SqlStore) -> None:
    def refusal(n: int, tenant: str) -> Refusal:
        return Refusal(float(n), 7000215, "invalid_client", tenant, None, f"r{n}", f"t{n}", "c", "/token")

    revision = store.revision()
    store.record_refusals([refusal(n, "Contoso.Example" if n % 2 else "other") for n in range(6)], keep=4)
    store.record_refusals([], keep=4)

    assert [r.reason for r in store.recent_refusals(None, limit=10)] == ["r5", "r4", "r3", "r2"]
    assert [r.reason for r in store.recent_refusals(["contoso.EXAMPLE"], limit=10)] == ["r5", "r3"]
    assert [r.reason for r in store.recent_refusals(None, limit=1)] == ["r5"]
    assert store.revision() == revision


def _race(workers: int, attempt: Callable[[], bool]) -> list[bool]:
    """Run ``attempt`` in ``workers`` threads released at the same instant."""
    start = threading.Barrier(workers)

    def run() -> bool:
        start.wait()
        return attempt()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run) for _ in range(workers)]
        return [future.result() for future in futures]


def test_use_once_race_on_new_key_has_exactly_one_winner(store: SqlStore) -> None:
    key = new_id()
    results = _race(20, lambda: store.use_once(key, time.time() + 60))
    assert results.count(True) == 1


def test_use_once_race_on_expired_key_has_exactly_one_winner(store: SqlStore) -> None:
    key = new_id()
    store.use_once(key, time.time() - 1)
    results = _race(20, lambda: store.use_once(key, time.time() + 60))
    assert results.count(True) == 1


def test_collect_garbage_deletes_only_expired_records(store: SqlStore) -> None:
    now = time.time()
    store.use_once("expired-1", now - 10)
    store.use_once("expired-2", now - 5)
    store.use_once("live", now + 60)
    assert store.collect_garbage(now) == 2
    assert store.collect_garbage(now) == 0
    assert store.use_once("live", now + 60) is False
    assert store.use_once("expired-1", now + 60) is True


def test_close_can_be_called_twice(store: SqlStore) -> None:
    store.close()
    store.close()
