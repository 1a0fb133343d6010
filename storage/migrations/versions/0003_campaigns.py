"""Design campaigns: campaigns, their targets, the candidates proposed for each, and refinements.

campaign_targets.winner_candidate_id and candidates.target_id refer to each other. SQLite accepts a
foreign key to a table that does not exist yet, so there the cycle is declared in CREATE TABLE (its
ALTER TABLE cannot add constraints); PostgreSQL gets the constraint by ALTER once both tables exist.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WINNER_FK = "fk_campaign_targets_winner_candidate_id_candidates"


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    winner_fk = [sa.ForeignKeyConstraint(["winner_candidate_id"], ["candidates.id"], name=op.f(_WINNER_FK))]
    op.create_table(
        "campaign_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("bounds", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=True),
        sa.Column("n_simulations", sa.Integer(), nullable=True),
        sa.Column("winner_candidate_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.CheckConstraint("status IN ('pending', 'done')", name=op.f("ck_campaign_targets_status")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_targets_campaign_id_campaigns")
        ),
        *(winner_fk if sqlite else []),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_targets")),
        sa.UniqueConstraint("campaign_id", "name", name=op.f("uq_campaign_targets_campaign_id_name")),
        sa.UniqueConstraint("campaign_id", "position", name=op.f("uq_campaign_targets_campaign_id_position")),
    )
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("circuit_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("spec_class", sa.Text(), nullable=True),
        sa.Column("predicted_gain_db", sa.Float(), nullable=True),
        sa.Column("predicted_ugbw_hz", sa.Float(), nullable=True),
        sa.Column("predicted_pm_deg", sa.Float(), nullable=True),
        sa.Column("predicted_fom", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(["circuit_id"], ["circuits.id"], name=op.f("fk_candidates_circuit_id_circuits")),
        sa.ForeignKeyConstraint(["parent_id"], ["candidates.id"], name=op.f("fk_candidates_parent_id_candidates")),
        sa.ForeignKeyConstraint(
            ["target_id"], ["campaign_targets.id"], name=op.f("fk_candidates_target_id_campaign_targets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
        sa.UniqueConstraint(
            "target_id", "circuit_id", "source", name=op.f("uq_candidates_target_id_circuit_id_source")
        ),
    )
    op.create_index(op.f("ix_candidates_circuit_id"), "candidates", ["circuit_id"], unique=False)
    if not sqlite:
        op.create_foreign_key(op.f(_WINNER_FK), "campaign_targets", "candidates", ["winner_candidate_id"], ["id"])
    op.create_table(
        "refinements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("seed_candidate_id", sa.Integer(), nullable=False),
        sa.Column("result_candidate_id", sa.Integer(), nullable=True),
        sa.Column("n_evaluations", sa.Integer(), nullable=False),
        sa.Column("fom_before", sa.Float(), nullable=True),
        sa.Column("fom_after", sa.Float(), nullable=True),
        sa.Column("history", sa.Text(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["result_candidate_id"], ["candidates.id"], name=op.f("fk_refinements_result_candidate_id_candidates")
        ),
        sa.ForeignKeyConstraint(
            ["seed_candidate_id"], ["candidates.id"], name=op.f("fk_refinements_seed_candidate_id_candidates")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["campaign_targets.id"], name=op.f("fk_refinements_target_id_campaign_targets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refinements")),
        sa.UniqueConstraint("target_id", "seed_candidate_id", name=op.f("uq_refinements_target_id_seed_candidate_id")),
    )


def downgrade() -> None:
    # Break the cycle first: with rows in place, neither table of it could be dropped before the other.
    op.execute("UPDATE campaign_targets SET winner_candidate_id = NULL")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(_WINNER_FK), "campaign_targets", type_="foreignkey")
    op.drop_table("refinements")
    op.drop_index(op.f("ix_candidates_circuit_id"), table_name="candidates")
    op.drop_table("candidates")
    op.drop_table("campaign_targets")
    op.drop_table("campaigns")
