"""JSON columns become ``JSON`` (JSONB on PostgreSQL) instead of text, converted in place; the
circuits' ``circuit_json`` is renamed ``circuit``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable); circuits.circuit_json is renamed on the way.
_COLUMNS = (
    ("topologies", "structure", False),
    ("circuits", "circuit_json", False),
    ("datasets", "config", False),
    ("model_versions", "config", False),
    ("model_versions", "metrics", False),
    ("campaigns", "config", False),
    ("campaign_targets", "bounds", False),
    ("campaign_targets", "summary", True),
    ("candidates", "spec_class", True),
    ("refinements", "history", False),
)
_RENAMED = {("circuits", "circuit_json"): "circuit"}


def _json() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _convert(
    table: str,
    column: str,
    nullable: bool,
    old: sa.types.TypeEngine,
    new: sa.types.TypeEngine,
    cast: str,
    rename: str | None,
) -> None:
    options: dict[str, Any] = (
        {"postgresql_using": f"{column}::{cast}"} if op.get_bind().dialect.name == "postgresql" else {}
    )
    if rename:
        options["new_column_name"] = rename
    with op.batch_alter_table(table) as batch:
        batch.alter_column(column, existing_type=old, existing_nullable=nullable, type_=new, **options)


def upgrade() -> None:
    for table, column, nullable in _COLUMNS:
        _convert(table, column, nullable, sa.Text(), _json(), "jsonb", _RENAMED.get((table, column)))


def downgrade() -> None:
    for table, old, nullable in _COLUMNS:
        new = _RENAMED.get((table, old))
        _convert(table, new or old, nullable, _json(), sa.Text(), "text", old if new else None)
