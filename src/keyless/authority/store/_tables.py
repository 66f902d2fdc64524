"""The authority's SQL schema, as SQLAlchemy Core tables.

This is the single description of the schema: ``_sql.py`` queries it and the Alembic migration
``0001_initial`` creates exactly these tables (``tests/authority/store/test_migrations.py``
compares the two). Tuples of the model are JSON columns; times are POSIX seconds as doubles.
Every child row hangs off its parent with ``ON DELETE CASCADE``, so deleting a tenant or an
application removes everything under it in one statement.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.engine import Connection

__all__ = [
    "admin_keys",
    "applications",
    "certificates",
    "client_secrets",
    "federated_identity_credentials",
    "issuer_keys",
    "meta",
    "metadata",
    "one_time_use",
    "refusals",
    "role_assignments",
    "signing_keys",
    "tenant_domains",
    "tenants",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

CASCADE = "CASCADE"

meta = Table(
    "meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String, primary_key=True),
    Column("display_name", String, nullable=False),
    Column("domains", JSON, nullable=False),
    Column("signing_alg", String, nullable=False),
    Column("detailed_errors", Boolean, nullable=False),
    Column("max_fics_per_app", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("version", Integer, nullable=False),
)

# One row per domain, lower-cased: makes domains unique across tenants and indexes the lookup.
tenant_domains = Table(
    "tenant_domains",
    metadata,
    Column("domain", String, primary_key=True),
    Column("tenant_id", String, ForeignKey("tenants.id", ondelete=CASCADE), nullable=False),
    Index("ix_tenant_domains_tenant_id", "tenant_id"),
)

applications = Table(
    "applications",
    metadata,
    Column("object_id", String, primary_key=True),
    Column("app_id", String, nullable=False),
    Column("tenant_id", String, ForeignKey("tenants.id", ondelete=CASCADE), nullable=False),
    Column("display_name", String, nullable=False),
    Column("identifier_uris", JSON, nullable=False),
    Column("app_roles", JSON, nullable=False),
    Column("requested_access_token_version", Integer, nullable=True),
    Column("service_principal_id", String, nullable=False),
    Column("app_role_assignment_required", Boolean, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("tenant_id", "app_id", name="uq_applications_tenant_id_app_id"),
    UniqueConstraint("service_principal_id", name="uq_applications_service_principal_id"),
    Index("ix_applications_app_id", "app_id"),
)

# principal_id and resource_id are service principal ids of applications in the store.
role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", String, primary_key=True),
    Column("tenant_id", String, ForeignKey("tenants.id", ondelete=CASCADE), nullable=False),
    Column(
        "principal_id",
        String,
        ForeignKey("applications.service_principal_id", ondelete=CASCADE, onupdate=CASCADE),
        nullable=False,
    ),
    Column(
        "resource_id",
        String,
        ForeignKey("applications.service_principal_id", ondelete=CASCADE, onupdate=CASCADE),
        nullable=False,
    ),
    Column("app_role_id", String, nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint(
        "principal_id",
        "resource_id",
        "app_role_id",
        name="uq_role_assignments_principal_id_resource_id_app_role_id",
    ),
    Index("ix_role_assignments_tenant_id", "tenant_id"),
    Index("ix_role_assignments_resource_id", "resource_id"),
)

client_secrets = Table(
    "client_secrets",
    metadata,
    Column("key_id", String, primary_key=True),
    Column(
        "application_id",
        String,
        ForeignKey("applications.object_id", ondelete=CASCADE),
        nullable=False,
    ),
    Column("display_name", String, nullable=False),
    Column("hint", String, nullable=False),
    Column("secret_hash", LargeBinary, nullable=False),
    Column("salt", LargeBinary, nullable=False),
    Column("start_at", Double, nullable=False),
    Column("end_at", Double, nullable=False),
    Index("ix_client_secrets_application_id", "application_id"),
)

certificates = Table(
    "certificates",
    metadata,
    Column("key_id", String, primary_key=True),
    Column(
        "application_id",
        String,
        ForeignKey("applications.object_id", ondelete=CASCADE),
        nullable=False,
    ),
    Column("display_name", String, nullable=False),
    Column("cert_der", LargeBinary, nullable=False),
    Column("thumbprint_sha1", String, nullable=False),
    Column("thumbprint_sha256", String, nullable=False),
    Column("start_at", Double, nullable=False),
    Column("end_at", Double, nullable=False),
    Index("ix_certificates_application_id", "application_id"),
)

federated_identity_credentials = Table(
    "federated_identity_credentials",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "application_id",
        String,
        ForeignKey("applications.object_id", ondelete=CASCADE),
        nullable=False,
    ),
    Column("name", String, nullable=False),
    Column("issuer", String, nullable=False),
    Column("subject", String, nullable=True),  # NULL for a flexible credential
    Column("audiences", JSON, nullable=False),
    Column("description", String, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("version", Integer, nullable=False),
    Column("claims_matching_expression", String, nullable=True),
    Column("condition", String, nullable=True),
    Column("allow_broad_match", Boolean, nullable=False, server_default=false()),
    UniqueConstraint(
        "application_id",
        "issuer",
        "subject",
        name="uq_federated_identity_credentials_application_id_issuer_subject",
    ),
    UniqueConstraint("application_id", "name", name="uq_federated_identity_credentials_application_id_name"),
    Index("ix_federated_identity_credentials_issuer_subject", "issuer", "subject"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String, primary_key=True),
    Column("tenant_id", String, ForeignKey("tenants.id", ondelete=CASCADE), nullable=False),
    Column("alg", String, nullable=False),
    Column("private_key_encrypted", LargeBinary, nullable=False),
    Column("cert_der", LargeBinary, nullable=False),
    Column("state", String, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("activates_at", Double, nullable=False),
    Column("retired_at", Double, nullable=True),
    Column("version", Integer, nullable=False),
    Index("ix_signing_keys_tenant_id", "tenant_id"),
)

admin_keys = Table(
    "admin_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("display_name", String, nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
)

one_time_use = Table(
    "one_time_use",
    metadata,
    Column("key", String, primary_key=True),
    Column("expires_at", Double, nullable=False),
    Index("ix_one_time_use_expires_at", "expires_at"),
)


# Recent token-endpoint refusals, shared by every process and node (not directory data: writing
# them leaves the revision alone). Pruned to the newest rows by id.
refusals = Table(
    "refusals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Double, nullable=False),
    Column("tenant", String, nullable=False),  # as the request named it, lower-cased
    Column("aadsts", Integer, nullable=True),
    Column("error", String, nullable=False),
    Column("client_id", String, nullable=True),
    Column("reason", String, nullable=False),
    Column("trace_id", String, nullable=False),
    Column("correlation_id", String, nullable=False),
    Column("endpoint", String, nullable=False),
    Column("credential", String, nullable=True),  # the credential it concerned: "name (id)"
    Column("presented", JSON, nullable=True),  # a verified assertion's iss, sub and aud
    Index("ix_refusals_tenant", "tenant"),
)


# The last good JWKS of each external issuer (public keys only), so that a node started during an
# issuer's outage, or another node, has keys at hand (not directory data: the revision stays).
issuer_keys = Table(
    "issuer_keys",
    metadata,
    Column("issuer", String, primary_key=True),
    Column("jwks", Text, nullable=False),
    Column("fetched_at", Double, nullable=False),
)


@event.listens_for(meta, "after_create")
def _insert_revision_row(target: Table, connection: Connection, **_: object) -> None:
    """``metadata.create_all`` (handy in tests) seeds the one revision row like the migration."""
    connection.execute(text("INSERT INTO meta (id, revision) VALUES (1, 0)"))
