"""Design jobs: a campaign submitted to the service, queued until a runner takes it, with its status,
error and times, so that a restarted service resumes its unfinished jobs. Existing rows are untouched.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "design_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column(
            "request", sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name=op.f("ck_design_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_jobs")),
        sa.UniqueConstraint("campaign", name=op.f("uq_design_jobs_campaign")),
    )
    op.create_index(op.f("ix_design_jobs_status"), "design_jobs", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_design_jobs_status"), table_name="design_jobs")
    op.drop_table("design_jobs")
