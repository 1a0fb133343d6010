"""Registered models keep their lineage: the version they were fine-tuned from and a fingerprint of the
rows they trained on (closed-loop refinement, issue 19).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("parent_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("data_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("data_fingerprint")
        batch.drop_column("parent_version")
