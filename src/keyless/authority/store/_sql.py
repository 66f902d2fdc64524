"""``SqlStore``: the ``Store`` protocol over SQLAlchemy, for SQLite and PostgreSQL.

Every write runs in one transaction that also bumps ``meta.revision``; updates are
compare-and-swap on ``version``; database constraint violations become ``AlreadyExists`` (unique)
or ``NotFound`` (missing parent). Row <-> object translation lives in ``_mapping``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Engine,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.dml import ReturningInsert

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
from keyless.authority.store import _mapping as m
from keyless.authority.store._engine import (
    DEFAULT_DATABASE_TIMEOUT,
    create_store_engine,
    enable_sqlite_pragmas,
    engine_timeout,
    statement_timed_out,
)
from keyless.authority.store._health import StoreHealth, is_unavailable
from keyless.authority.store._migrate import upgrade_to_head
from keyless.authority.store._protocol import StoreSnapshot
from keyless.authority.store._tables import (
    admin_keys,
    applications,
    certificates,
    client_secrets,
    federated_identity_credentials,
    issuer_keys,
    meta,
    one_time_use,
    role_assignments,
    signing_keys,
    tenant_domains,
    tenants,
)
from keyless.authority.store._tables import refusals as refusals_table
from keyless.errors import (
    AlreadyExists,
    ConfigurationError,
    Conflict,
    LimitReached,
    Locked,
    NotFound,
    StorageError,
    StoreUnavailable,
)

__all__ = ["SqlStore", "create_store_engine"]

T = TypeVar("T")
Versioned = TypeVar("Versioned", Tenant, Application, FederatedIdentityCredential, SigningKeyRecord)

SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# SQLite extended result codes (sqlite3.SQLITE_CONSTRAINT_*), and PostgreSQL SQLSTATEs.
_SQLITE_UNIQUE = {1555, 2067}  # PRIMARYKEY, UNIQUE
_SQLITE_FOREIGN_KEY = 787
_PG_UNIQUE = "23505"
_PG_FOREIGN_KEY = "23503"

# The PostgreSQL advisory lock that serializes ``SqlStore.transaction`` across nodes ("keyl").
APPLY_LOCK_KEY = 0x6B65796C


# -- error translation ---------------------------------------------------------------------------


def _constraint_kind(exc: IntegrityError) -> str:
    """``unique``, ``foreign_key`` or ``other``, from the driver's error code."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if sqlstate == _PG_UNIQUE or sqlite_code in _SQLITE_UNIQUE:
        return "unique"
    if sqlstate == _PG_FOREIGN_KEY or sqlite_code == _SQLITE_FOREIGN_KEY:
        return "foreign_key"
    return "other"


def _storage_error(exc: IntegrityError, subject: str) -> StorageError | None:
    """The ``StorageError`` a constraint violation means, or None for any other violation."""
    kind = _constraint_kind(exc)
    if kind == "unique":
        return AlreadyExists(f"{subject} clashes with an existing one (same id or unique key)")
    if kind == "foreign_key":
        return NotFound(f"{subject} refers to a tenant or application that does not exist")
    return None


# -- the store -----------------------------------------------------------------------------------

_LOCKED = "another apply is in progress (it holds the directory's write lock); try again when it has finished"


class _Unit:
    """An open ``SqlStore.transaction()``: its connection, and whether anything was written."""

    __slots__ = ("conn", "dirty")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dirty = False


class SqlStore:
    """The authority's store on a SQLAlchemy ``Engine`` (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect.name
        if dialect not in SUPPORTED_DIALECTS:
            raise ConfigurationError(f"unsupported database {dialect!r}; use SQLite or PostgreSQL")
        if dialect == "sqlite":
            enable_sqlite_pragmas(engine)
        self._engine = engine
        where = engine.url.render_as_string(hide_password=True)
        self.health = StoreHealth(where, timeout=engine_timeout(engine))
        # The open ``transaction()`` of this thread or task, which every call joins.
        self._unit: ContextVar[_Unit | None] = ContextVar(f"keyless_store_unit_{id(self)}", default=None)
        self._units = threading.Lock()  # one transaction() per process at a time (then per database)

    @classmethod
    def from_url(
        cls, url: str, *, migrate: bool = True, timeout: float = DEFAULT_DATABASE_TIMEOUT
    ) -> SqlStore:
        """A store on ``url``, every database wait bounded by ``timeout`` seconds; ``migrate``
        brings the schema up to date first."""
        engine = create_store_engine(url, timeout=timeout)
        if migrate:
            upgrade_to_head(engine)
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def _use(self, *, write: bool) -> Iterator[Connection]:
        """A connection (in a transaction that commits on success when ``write``), or the open
        ``transaction()``'s. A database that is not there becomes ``StoreUnavailable``."""
        unit = self._unit.get()
        if unit is not None:
            unit.dirty |= write
            yield unit.conn
            return
        try:
            with self._engine.begin() if write else self._engine.connect() as conn:
                yield conn
        except (DBAPIError, PoolTimeout) as exc:
            if not is_unavailable(exc):
                raise
            raise self._failed(exc) from None
        self.health.succeeded()

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        return self.health.failed(exc, timed_out=statement_timed_out())

    def ping(self) -> None:
        """One round trip to the database (``StoreUnavailable`` if it does not answer in time)."""
        with self._use(write=False) as conn:
            conn.execute(select(1)).scalar()

    @contextmanager
    def transaction(self, *, lock_timeout: float) -> Iterator[None]:
        """Every store call inside (in this thread) is one transaction: all of it commits, or none.

        Transactions are serialized across processes and nodes: PostgreSQL's advisory lock, SQLite's
        write lock (``BEGIN IMMEDIATE``). One that cannot take the lock within ``lock_timeout``
        seconds raises ``Locked``. Other writes go on meanwhile (in SQLite they wait for it).
        """
        if self._unit.get() is not None:
            raise RuntimeError("store transactions do not nest")
        deadline = time.monotonic() + max(0.0, lock_timeout)
        if not self._units.acquire(timeout=max(0.0, lock_timeout)):
            raise Locked(_LOCKED)
        try:
            with self._use(write=False) as conn:
                self._take_write_lock(conn, deadline)
                unit = _Unit(conn)
                token = self._unit.set(unit)
                try:
                    yield
                    if unit.dirty:
                        conn.execute(update(meta).values(revision=meta.c.revision + 1))
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
                finally:
                    self._unit.reset(token)
        finally:
            self._units.release()

    def _take_write_lock(self, conn: Connection, deadline: float) -> None:
        """The database-wide lock ``transaction()`` holds until it ends; ``Locked`` past ``deadline``."""
        postgresql_lock = select(func.pg_try_advisory_xact_lock(APPLY_LOCK_KEY))
        while True:
            if self._engine.dialect.name == "postgresql":
                if conn.execute(postgresql_lock).scalar():
                    return
            else:  # SQLite waits in its busy handler: bound it by what is left of the wait
                left = max(0, int((deadline - time.monotonic()) * 1000))
                conn.exec_driver_sql(f"PRAGMA busy_timeout={left}")
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return
                except DBAPIError as exc:
                    if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                        raise
                    conn.rollback()
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(self.health.timeout * 1000)}")
            if time.monotonic() >= deadline:
                raise Locked(_LOCKED)
            time.sleep(0.05)

    @contextmanager
    def _writing(self, subject: str, *, serialized: bool = False) -> Iterator[Connection]:
        """One write transaction that bumps the revision on success.

        ``serialized`` bumps it first instead: that write takes the store's write lock (the one
        ``meta`` row in PostgreSQL, the database in SQLite) before anything is read, so a
        read-then-write (a count against a limit) cannot interleave with another one. Inside a
        ``transaction()`` the revision moves once, when it commits.
        """
        bump = update(meta).values(revision=meta.c.revision + 1)
        in_unit = self._unit.get() is not None
        try:
            with self._use(write=True) as conn:
                if serialized and not in_unit:
                    conn.execute(bump)
                yield conn
                if not serialized and not in_unit:
                    conn.execute(bump)
        except IntegrityError as exc:
            error = _storage_error(exc, subject)
            if error is None:
                raise
            raise error from exc

    def _rows(
        self, table: Table, *where: ColumnElement[bool], order_by: Sequence[Any] = ()
    ) -> list[RowMapping]:
        with self._use(write=False) as conn:
            query = select(table).where(*where).order_by(*order_by)
            return list(conn.execute(query).mappings())

    def _list(
        self,
        table: Table,
        convert: Callable[[m.Row], T],
        *where: ColumnElement[bool],
        order_by: Sequence[Any] = (),
    ) -> list[T]:
        return [convert(row) for row in self._rows(table, *where, order_by=order_by)]

    def _one(self, table: Table, convert: Callable[[m.Row], T], *where: Any, subject: str) -> T:
        rows = self._rows(table, *where)
        if not rows:
            raise NotFound(f"{subject} does not exist")
        return convert(rows[0])

    def _insert(self, table: Table, values: dict[str, Any], subject: str) -> None:
        with self._writing(subject) as conn:
            conn.execute(insert(table).values(values))

    def _delete(self, table: Table, *where: ColumnElement[bool], subject: str) -> None:
        with self._writing(subject) as conn:
            if conn.execute(delete(table).where(*where)).rowcount == 0:
                raise NotFound(f"{subject} does not exist")

    @staticmethod
    def _swap(conn: Connection, table: Table, key: str, new: Versioned, values: dict[str, Any]) -> Versioned:
        """Write ``values`` if the stored version is still ``new.version``; return it bumped."""
        key_column = table.c[key]
        key_value = values.pop(key)
        values["version"] = new.version + 1
        matching = (key_column == key_value, table.c.version == new.version)
        if conn.execute(update(table).where(*matching).values(values)).rowcount == 0:
            exists = conn.execute(select(key_column).where(key_column == key_value)).first()
            if exists is None:
                raise NotFound(f"{table.name} row {key_value} does not exist")
            raise Conflict(f"{table.name} row {key_value} changed since version {new.version}; re-read it")
        return dataclasses.replace(new, version=new.version + 1)

    def _update(self, table: Table, key: str, new: Versioned, values: dict[str, Any]) -> Versioned:
        with self._writing(f"{table.name} row") as conn:
            return self._swap(conn, table, key, new, values)

    # -- tenants ---------------------------------------------------------------------------------

    def create_tenant(self, tenant: Tenant) -> Tenant:
        with self._writing(f"tenant {tenant.id}") as conn:
            conn.execute(insert(tenants).values(m.tenant_row(tenant)))
            self._insert_domains(conn, tenant)
        return tenant

    @staticmethod
    def _insert_domains(conn: Connection, tenant: Tenant) -> None:
        rows = m.domain_rows(tenant)
        if rows:
            conn.execute(insert(tenant_domains), rows)

    def get_tenant(self, tenant_id: str) -> Tenant:
        """By GUID, or by any of the tenant's domains (case-insensitively)."""
        owner_of_domain = (
            select(tenant_domains.c.tenant_id)
            .where(tenant_domains.c.domain == tenant_id.lower())
            .scalar_subquery()
        )
        by_id_or_domain = or_(
            tenants.c.id.in_([tenant_id, tenant_id.lower()]), tenants.c.id == owner_of_domain
        )
        return self._one(tenants, m.tenant_from, by_id_or_domain, subject=f"tenant {tenant_id}")

    def list_tenants(self) -> list[Tenant]:
        return self._list(tenants, m.tenant_from, order_by=(tenants.c.created_at, tenants.c.id))

    def update_tenant(self, tenant: Tenant) -> Tenant:
        with self._writing(f"tenant {tenant.id}") as conn:
            updated = self._swap(conn, tenants, "id", tenant, m.tenant_row(tenant))
            conn.execute(delete(tenant_domains).where(tenant_domains.c.tenant_id == tenant.id))
            self._insert_domains(conn, tenant)
        return updated

    def delete_tenant(self, tenant_id: str) -> None:
        self._delete(tenants, tenants.c.id == tenant_id, subject=f"tenant {tenant_id}")

    # -- applications ----------------------------------------------------------------------------

    def create_application(self, app: Application) -> Application:
        self._insert(applications, m.application_row(app), f"application {app.object_id}")
        return app

    def get_application(self, object_id: str) -> Application:
        by_id = applications.c.object_id == object_id
        return self._one(applications, m.application_from, by_id, subject=f"application {object_id}")

    def list_applications(self, tenant_id: str) -> list[Application]:
        order = (applications.c.created_at, applications.c.object_id)
        in_tenant = applications.c.tenant_id == tenant_id
        return self._list(applications, m.application_from, in_tenant, order_by=order)

    def update_application(self, app: Application) -> Application:
        return self._update(applications, "object_id", app, m.application_row(app))

    def delete_application(self, object_id: str) -> None:
        subject = f"application {object_id}"
        self._delete(applications, applications.c.object_id == object_id, subject=subject)

    # -- app role assignments --------------------------------------------------------------------

    def create_role_assignment(self, assignment: AppRoleAssignment) -> AppRoleAssignment:
        subject = f"role assignment {assignment.id}"
        self._insert(role_assignments, m.assignment_row(assignment), subject)
        return assignment

    def list_role_assignments(self, tenant_id: str) -> list[AppRoleAssignment]:
        order = (role_assignments.c.created_at, role_assignments.c.id)
        in_tenant = role_assignments.c.tenant_id == tenant_id
        return self._list(role_assignments, m.assignment_from, in_tenant, order_by=order)

    def delete_role_assignment(self, assignment_id: str) -> None:
        subject = f"role assignment {assignment_id}"
        self._delete(role_assignments, role_assignments.c.id == assignment_id, subject=subject)

    # -- client secrets and certificates ---------------------------------------------------------

    def add_secret(self, secret: ClientSecret) -> ClientSecret:
        self._insert(client_secrets, m.secret_row(secret), f"client secret {secret.key_id}")
        return secret

    def list_secrets(self, application_id: str) -> list[ClientSecret]:
        order = (client_secrets.c.start_at, client_secrets.c.key_id)
        of_app = client_secrets.c.application_id == application_id
        return self._list(client_secrets, m.secret_from, of_app, order_by=order)

    def delete_secret(self, application_id: str, key_id: str) -> None:
        where = (client_secrets.c.application_id == application_id, client_secrets.c.key_id == key_id)
        self._delete(client_secrets, *where, subject=f"client secret {key_id}")

    def add_certificate(self, cert: Certificate) -> Certificate:
        self._insert(certificates, m.certificate_row(cert), f"certificate {cert.key_id}")
        return cert

    def list_certificates(self, application_id: str) -> list[Certificate]:
        order = (certificates.c.start_at, certificates.c.key_id)
        of_app = certificates.c.application_id == application_id
        return self._list(certificates, m.certificate_from, of_app, order_by=order)

    def delete_certificate(self, application_id: str, key_id: str) -> None:
        where = (certificates.c.application_id == application_id, certificates.c.key_id == key_id)
        self._delete(certificates, *where, subject=f"certificate {key_id}")

    # -- federated identity credentials ----------------------------------------------------------

    def create_fic(self, fic: FederatedIdentityCredential) -> FederatedIdentityCredential:
        fics = federated_identity_credentials
        subject = f"federated credential {fic.name!r}"
        # PostgreSQL also locks the application's row, so creates inside a transaction() (which
        # leaves the revision for its end) and outside it count one after the other.
        limit_of_app = (
            select(tenants.c.max_fics_per_app)
            .select_from(applications.join(tenants, applications.c.tenant_id == tenants.c.id))
            .where(applications.c.object_id == fic.application_id)
            .with_for_update(of=applications)
        )
        of_app = select(func.count()).select_from(fics).where(fics.c.application_id == fic.application_id)
        with self._writing(subject, serialized=True) as conn:
            limit = conn.execute(limit_of_app).scalar()
            if limit is None:
                raise NotFound(f"{subject} refers to a tenant or application that does not exist")
            if conn.execute(of_app).scalar_one() >= limit:
                raise LimitReached(
                    f"application {fic.application_id} already has {limit} federated identity "
                    "credentials (its tenant's limit per application)",
                    limit=limit,
                )
            conn.execute(insert(fics).values(m.fic_row(fic)))
        return fic

    def list_fics(self, application_id: str) -> list[FederatedIdentityCredential]:
        fics = federated_identity_credentials
        order = (fics.c.created_at, fics.c.id)
        return self._list(fics, m.fic_from, fics.c.application_id == application_id, order_by=order)

    def update_fic(self, fic: FederatedIdentityCredential) -> FederatedIdentityCredential:
        return self._update(federated_identity_credentials, "id", fic, m.fic_row(fic))

    def delete_fic(self, application_id: str, fic_id: str) -> None:
        fics = federated_identity_credentials
        where = (fics.c.application_id == application_id, fics.c.id == fic_id)
        self._delete(fics, *where, subject=f"federated credential {fic_id}")

    # -- signing keys ----------------------------------------------------------------------------

    def add_signing_key(self, key: SigningKeyRecord) -> SigningKeyRecord:
        self._insert(signing_keys, m.signing_key_row(key), f"signing key {key.kid}")
        return key

    def list_signing_keys(self, tenant_id: str) -> list[SigningKeyRecord]:
        order = (signing_keys.c.created_at, signing_keys.c.kid)
        in_tenant = signing_keys.c.tenant_id == tenant_id
        return self._list(signing_keys, m.signing_key_from, in_tenant, order_by=order)

    def update_signing_key(self, key: SigningKeyRecord) -> SigningKeyRecord:
        return self._update(signing_keys, "kid", key, m.signing_key_row(key))

    def delete_signing_key(self, kid: str) -> None:
        self._delete(signing_keys, signing_keys.c.kid == kid, subject=f"signing key {kid}")

    # -- admin credentials -----------------------------------------------------------------------

    def add_admin_key(self, key: AdminKey) -> AdminKey:
        self._insert(admin_keys, m.admin_key_row(key), f"admin key {key.id}")
        return key

    def list_admin_keys(self) -> list[AdminKey]:
        order = (admin_keys.c.created_at, admin_keys.c.id)
        return self._list(admin_keys, m.admin_key_from, order_by=order)

    # -- one-time use and housekeeping -----------------------------------------------------------
    # These are not directory writes: they leave the revision alone so caches are not reloaded.

    def use_once(self, key: str, expires_at: float) -> bool:
        """Claim ``key`` atomically: a new key, or one whose previous claim has expired, wins."""
        claim = self._claim_statement(key, expires_at, now=time.time())
        with self._use(write=True) as conn:
            return conn.execute(claim).first() is not None

    def _claim_statement(self, key: str, expires_at: float, now: float) -> ReturningInsert[tuple[str]]:
        """INSERT the key, or take over its row only if that row has expired (one statement).

        A row comes back (RETURNING) only when this call claimed the key.
        """
        previous_claim_expired = one_time_use.c.expires_at <= now
        if self._engine.dialect.name == "postgresql":
            pg = postgresql.insert(one_time_use).values(key=key, expires_at=expires_at)
            return pg.on_conflict_do_update(
                index_elements=[one_time_use.c.key],
                set_={"expires_at": pg.excluded.expires_at},
                where=previous_claim_expired,
            ).returning(one_time_use.c.key)
        lite = sqlite.insert(one_time_use).values(key=key, expires_at=expires_at)
        return lite.on_conflict_do_update(
            index_elements=[one_time_use.c.key],
            set_={"expires_at": lite.excluded.expires_at},
            where=previous_claim_expired,
        ).returning(one_time_use.c.key)

    def revision(self) -> int:
        with self._use(write=False) as conn:
            value = conn.execute(select(meta.c.revision).where(meta.c.id == 1)).scalar()
        return int(value or 0)

    def snapshot(self) -> StoreSnapshot:
        """One query per table inside one read transaction: PostgreSQL's REPEATABLE READ, SQLite's
        WAL read snapshot (an explicit BEGIN: the driver starts none for reads)."""
        in_unit = self._unit.get() is not None
        with self._use(write=False) as conn:
            if in_unit:
                pass  # the open transaction() is the consistent read
            elif self._engine.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            else:
                conn.exec_driver_sql("BEGIN")

            def every(table: Table, convert: Callable[[m.Row], T], *order_by: Any) -> list[T]:
                return [convert(row) for row in conn.execute(select(table).order_by(*order_by)).mappings()]

            revision = conn.execute(select(meta.c.revision).where(meta.c.id == 1)).scalar()
            fics = federated_identity_credentials
            snapshot = StoreSnapshot(
                revision=int(revision or 0),
                tenants=every(tenants, m.tenant_from, tenants.c.created_at, tenants.c.id),
                applications=every(
                    applications, m.application_from, applications.c.created_at, applications.c.object_id
                ),
                secrets=every(
                    client_secrets, m.secret_from, client_secrets.c.start_at, client_secrets.c.key_id
                ),
                certificates=every(
                    certificates, m.certificate_from, certificates.c.start_at, certificates.c.key_id
                ),
                fics=every(fics, m.fic_from, fics.c.created_at, fics.c.id),
                role_assignments=every(
                    role_assignments, m.assignment_from, role_assignments.c.created_at, role_assignments.c.id
                ),
                signing_keys=every(
                    signing_keys, m.signing_key_from, signing_keys.c.created_at, signing_keys.c.kid
                ),
            )
            if not in_unit:
                conn.rollback()
        return snapshot

    def record_refusals(self, refusals: Sequence[Refusal], *, keep: int) -> None:
        if not refusals:
            return
        rows = [m.refusal_row(r) for r in refusals]
        newest = select(func.max(refusals_table.c.id)).scalar_subquery()
        with self._use(write=True) as conn:
            conn.execute(insert(refusals_table), rows)
            conn.execute(delete(refusals_table).where(refusals_table.c.id <= newest - keep))

    def recent_refusals(self, tenants: Collection[str] | None, *, limit: int) -> list[Refusal]:
        newest_first = (refusals_table.c.time.desc(), refusals_table.c.id.desc())
        query = select(refusals_table).order_by(*newest_first).limit(max(0, limit))
        if tenants is not None:
            query = query.where(refusals_table.c.tenant.in_([t.lower() for t in tenants]))
        with self._use(write=False) as conn:
            rows = conn.execute(query).mappings().all()
        return [m.refusal_from(row) for row in rows]

    def save_issuer_keys(self, issuer: str, jwks: str, fetched_at: float) -> None:
        newer = (issuer_keys.c.issuer == issuer, issuer_keys.c.fetched_at < fetched_at)
        try:
            with self._use(write=True) as conn:
                updated = conn.execute(
                    update(issuer_keys).where(*newer).values(jwks=jwks, fetched_at=fetched_at)
                )
                known = select(issuer_keys.c.issuer).where(issuer_keys.c.issuer == issuer)
                if not updated.rowcount and conn.execute(known).first() is None:
                    conn.execute(insert(issuer_keys).values(issuer=issuer, jwks=jwks, fetched_at=fetched_at))
        except IntegrityError:
            pass  # another node stored this issuer's keys at the same moment: theirs will do

    def load_issuer_keys(self, issuer: str) -> tuple[str, float] | None:
        with self._use(write=False) as conn:
            row = conn.execute(
                select(issuer_keys.c.jwks, issuer_keys.c.fetched_at).where(issuer_keys.c.issuer == issuer)
            ).first()
        return None if row is None else (str(row[0]), float(row[1]))

    def collect_garbage(self, now: float) -> int:
        with self._use(write=True) as conn:
            expired = delete(one_time_use).where(one_time_use.c.expires_at <= now)
            return conn.execute(expired).rowcount

    def close(self) -> None:
        self._engine.dispose()
