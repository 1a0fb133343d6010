"""Promotions: which registered version of each model kind (generator, surrogate) is promoted, when, by what
(a loop and its round) and on which gate figures; and each candidate records the surrogate version that
ranked it beside the generator version that proposed it (closed-loop refinement, issue 19). Existing rows
are untouched (their surrogate version is NULL: unknown).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("promoted_by", sa.String(length=200), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column(
            "gate", sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["kind", "version"],
            ["model_versions.kind", "model_versions.version"],
            name=op.f("fk_promotions_kind_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("kind", "promoted_by", "round", name=op.f("uq_promotions_kind_promoted_by_round")),
    )
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("surrogate_version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("surrogate_version")
    op.drop_table("promotions")
