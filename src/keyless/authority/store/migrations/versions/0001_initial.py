"""The authority's initial schema (mirrors ``keyless.authority.store._tables``).

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASCADE = "CASCADE"


def _cascade_fk(table: str, column: str, target: str, *, on_update: bool = False) -> sa.ForeignKeyConstraint:
    """A foreign key named as ``_tables``' naming convention names it."""
    target_table = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column],
        [target],
        name=f"fk_{table}_{column}_{target_table}",
        ondelete=CASCADE,
        onupdate=CASCADE if on_update else None,
    )


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=f"pk_{table}")


def _create_meta() -> None:
    op.create_table(
        "meta",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        _pk("meta", "id"),
    )
    op.execute("INSERT INTO meta (id, revision) VALUES (1, 0)")


def _create_tenants() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("signing_alg", sa.String(), nullable=False),
        sa.Column("detailed_errors", sa.Boolean(), nullable=False),
        sa.Column("max_fics_per_app", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _pk("tenants", "id"),
    )
    op.create_table(
        "tenant_domains",
        sa.Column("domain", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        _pk("tenant_domains", "domain"),
        _cascade_fk("tenant_domains", "tenant_id", "tenants.id"),
    )
    op.create_index("ix_tenant_domains_tenant_id", "tenant_domains", ["tenant_id"])


def _create_applications() -> None:
    op.create_table(
        "applications",
        sa.Column("object_id", sa.String(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("identifier_uris", sa.JSON(), nullable=False),
        sa.Column("app_roles", sa.JSON(), nullable=False),
        sa.Column("requested_access_token_version", sa.Integer(), nullable=True),
        sa.Column("service_principal_id", sa.String(), nullable=False),
        sa.Column("app_role_assignment_required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _pk("applications", "object_id"),
        _cascade_fk("applications", "tenant_id", "tenants.id"),
        sa.UniqueConstraint("tenant_id", "app_id", name="uq_applications_tenant_id_app_id"),
        sa.UniqueConstraint("service_principal_id", name="uq_applications_service_principal_id"),
    )
    op.create_index("ix_applications_app_id", "applications", ["app_id"])


def _create_role_assignments() -> None:
    sp_id = "applications.service_principal_id"
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("principal_id", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("app_role_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        _pk("role_assignments", "id"),
        _cascade_fk("role_assignments", "tenant_id", "tenants.id"),
        _cascade_fk("role_assignments", "principal_id", sp_id, on_update=True),
        _cascade_fk("role_assignments", "resource_id", sp_id, on_update=True),
        sa.UniqueConstraint(
            "principal_id",
            "resource_id",
            "app_role_id",
            name="uq_role_assignments_principal_id_resource_id_app_role_id",
        ),
    )
    op.create_index("ix_role_assignments_tenant_id", "role_assignments", ["tenant_id"])
    op.create_index("ix_role_assignments_resource_id", "role_assignments", ["resource_id"])


def _create_credentials() -> None:
    op.create_table(
        "client_secrets",
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("hint", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("start_at", sa.Double(), nullable=False),
        sa.Column("end_at", sa.Double(), nullable=False),
        _pk("client_secrets", "key_id"),
        _cascade_fk("client_secrets", "application_id", "applications.object_id"),
    )
    op.create_index("ix_client_secrets_application_id", "client_secrets", ["application_id"])
    op.create_table(
        "certificates",
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("thumbprint_sha1", sa.String(), nullable=False),
        sa.Column("thumbprint_sha256", sa.String(), nullable=False),
        sa.Column("start_at", sa.Double(), nullable=False),
        sa.Column("end_at", sa.Double(), nullable=False),
        _pk("certificates", "key_id"),
        _cascade_fk("certificates", "application_id", "applications.object_id"),
    )
    op.create_index("ix_certificates_application_id", "certificates", ["application_id"])


def _create_federated_identity_credentials() -> None:
    table = "federated_identity_credentials"
    op.create_table(
        table,
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _pk(table, "id"),
        _cascade_fk(table, "application_id", "applications.object_id"),
        sa.UniqueConstraint(
            "application_id", "issuer", "subject", name=f"uq_{table}_application_id_issuer_subject"
        ),
        sa.UniqueConstraint("application_id", "name", name=f"uq_{table}_application_id_name"),
    )
    op.create_index(f"ix_{table}_issuer_subject", table, ["issuer", "subject"])


def _create_signing_keys() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("alg", sa.String(), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("activates_at", sa.Double(), nullable=False),
        sa.Column("retired_at", sa.Double(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _pk("signing_keys", "kid"),
        _cascade_fk("signing_keys", "tenant_id", "tenants.id"),
    )
    op.create_index("ix_signing_keys_tenant_id", "signing_keys", ["tenant_id"])


def _create_admin_keys_and_one_time_use() -> None:
    op.create_table(
        "admin_keys",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        _pk("admin_keys", "id"),
    )
    op.create_table(
        "one_time_use",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        _pk("one_time_use", "key"),
    )
    op.create_index("ix_one_time_use_expires_at", "one_time_use", ["expires_at"])


def upgrade() -> None:
    _create_meta()
    _create_tenants()
    _create_applications()
    _create_role_assignments()
    _create_credentials()
    _create_federated_identity_credentials()
    _create_signing_keys()
    _create_admin_keys_and_one_time_use()


def downgrade() -> None:
    for table in (
        "one_time_use",
        "admin_keys",
        "signing_keys",
        "federated_identity_credentials",
        "certificates",
        "client_secrets",
        "role_assignments",
        "applications",
        "tenant_domains",
        "tenants",
        "meta",
    ):
        op.drop_table(table)
