"""Initial schema: topologies, circuits, simulations, datasets, dataset_circuits, model_versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "topologies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("n_stages", sa.Integer(), nullable=False),
        sa.Column("n_nodes", sa.Integer(), nullable=False),
        sa.Column("structure", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topologies")),
        sa.UniqueConstraint("key", name=op.f("uq_topologies_key")),
    )
    op.create_table(
        "circuits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("topology_id", sa.Integer(), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=False),
        sa.Column("circuit_json", sa.Text(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(["topology_id"], ["topologies.id"], name=op.f("fk_circuits_topology_id_topologies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_circuits")),
    )
    op.create_index(op.f("ix_circuits_key"), "circuits", ["key"], unique=True)
    op.create_index(op.f("ix_circuits_topology_id"), "circuits", ["topology_id"], unique=False)
    op.create_table(
        "simulations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circuit_id", sa.Integer(), nullable=False),
        sa.Column("simulator", sa.String(length=64), nullable=False),
        sa.Column("simulator_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("gain_db", sa.Float(), nullable=True),
        sa.Column("ugbw_hz", sa.Float(), nullable=True),
        sa.Column("pm_deg", sa.Float(), nullable=True),
        sa.Column("fom", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(["circuit_id"], ["circuits.id"], name=op.f("fk_simulations_circuit_id_circuits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulations")),
        sa.UniqueConstraint("circuit_id", "simulator", name=op.f("uq_simulations_circuit_id_simulator")),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "dataset_circuits",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("circuit_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("topology_number", sa.Integer(), nullable=False),
        sa.Column("sizing", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["circuit_id"], ["circuits.id"], name=op.f("fk_dataset_circuits_circuit_id_circuits")),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_circuits_dataset_id_datasets")),
        sa.PrimaryKeyConstraint("dataset_id", "circuit_id", name=op.f("pk_dataset_circuits")),
        sa.UniqueConstraint("dataset_id", "position", name=op.f("uq_dataset_circuits_dataset_id_position")),
    )
    op.create_index(op.f("ix_dataset_circuits_circuit_id"), "dataset_circuits", ["circuit_id"], unique=False)
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_model_versions_kind_version")),
    )


def downgrade() -> None:
    op.drop_table("model_versions")
    op.drop_index(op.f("ix_dataset_circuits_circuit_id"), table_name="dataset_circuits")
    op.drop_table("dataset_circuits")
    op.drop_table("datasets")
    op.drop_table("simulations")
    op.drop_index(op.f("ix_circuits_topology_id"), table_name="circuits")
    op.drop_index(op.f("ix_circuits_key"), table_name="circuits")
    op.drop_table("circuits")
    op.drop_table("topologies")
