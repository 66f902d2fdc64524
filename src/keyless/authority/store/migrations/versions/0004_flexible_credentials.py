"""Flexible federated credentials (claimsMatchingExpression), CEL conditions, the broad-match
opt-in, and, on a refusal, the credential it concerned and the verified iss/sub/aud presented.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot drop NOT NULL in place (the table is copied), PostgreSQL alters it
    with op.batch_alter_table("federated_identity_credentials") as batch:
        batch.alter_column("subject", existing_type=sa.String(), nullable=True)
        batch.add_column(sa.Column("claims_matching_expression", sa.String(), nullable=True))
        batch.add_column(sa.Column("condition", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("allow_broad_match", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("refusals") as batch:
        batch.add_column(sa.Column("credential", sa.String(), nullable=True))
        batch.add_column(sa.Column("presented", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refusals") as batch:
        batch.drop_column("presented")
        batch.drop_column("credential")
    op.execute("DELETE FROM federated_identity_credentials WHERE subject IS NULL")
    with op.batch_alter_table("federated_identity_credentials") as batch:
        batch.drop_column("allow_broad_match")
        batch.drop_column("condition")
        batch.drop_column("claims_matching_expression")
        batch.alter_column("subject", existing_type=sa.String(), nullable=False)
