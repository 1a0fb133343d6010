"""Campaign targets can end as ``failed``, with the reason their search raised.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_campaign_targets_status"


def upgrade() -> None:
    with op.batch_alter_table("campaign_targets") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.drop_constraint(op.f(_CHECK), type_="check")
        batch.create_check_constraint(op.f(_CHECK), "status IN ('pending', 'done', 'failed')")


def downgrade() -> None:
    op.execute("UPDATE campaign_targets SET status = 'pending', reason = NULL WHERE status = 'failed'")
    with op.batch_alter_table("campaign_targets") as batch:
        batch.drop_constraint(op.f(_CHECK), type_="check")
        batch.create_check_constraint(op.f(_CHECK), "status IN ('pending', 'done')")
        batch.drop_column("reason")
