"""The relational schema, as SQLAlchemy 2.0 typed declarative models.

Every change here needs an Alembic migration in ``storage/migrations/versions``; a test checks
that the migrated schema and this metadata agree. JSON columns are ``JSON`` (JSONB on PostgreSQL);
a Python ``None`` in a nullable one is SQL NULL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

# JSON on SQLite, JSONB on PostgreSQL (the migrations use the same type).
JSON_TYPE: TypeEngine[Any] = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Deterministic constraint names, so migrations can refer to (and drop) them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Topology(Base):
    """A circuit topology: subgraph types, positions and edges, without device values."""

    __tablename__ = "topologies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    n_stages: Mapped[int] = mapped_column(Integer)
    n_nodes: Mapped[int] = mapped_column(Integer)
    structure: Mapped[dict[str, Any]] = mapped_column(
        JSON_TYPE
    )  # {"types": [...], "pos": [...], "edges": [[u, v], ...]}
    created_at: Mapped[datetime] = _created_at()


class CircuitRow(Base):
    """A sized circuit, stored in its canonical JSON form and identified by its content hash."""

    __tablename__ = "circuits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    topology_id: Mapped[int] = mapped_column(ForeignKey("topologies.id"), index=True)
    grid: Mapped[str] = mapped_column(String(64))
    circuit: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)  # renamed from circuit_json (0006)
    created_at: Mapped[datetime] = _created_at()


class Simulation(Base):
    """One simulator's verdict on one circuit (at most one per circuit and simulator)."""

    __tablename__ = "simulations"
    __table_args__ = (UniqueConstraint("circuit_id", "simulator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"))
    simulator: Mapped[str] = mapped_column(String(64))
    simulator_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    gain_db: Mapped[float | None] = mapped_column(Float)
    ugbw_hz: Mapped[float | None] = mapped_column(Float)
    pm_deg: Mapped[float | None] = mapped_column(Float)
    pm_ocb_deg: Mapped[float | None] = mapped_column(Float)  # OCB's reading, for comparisons (0002)
    fom: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _created_at()
    node: Mapped[str | None] = mapped_column(String(64))  # the Ray node that ran it (0009), NULL when unknown


class Dataset(Base):
    """A named, seeded draw from the circuit family."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    seed: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    created_at: Mapped[datetime] = _created_at()


class DatasetCircuit(Base):
    """Membership of a circuit in a dataset, at its position in the generated stream."""

    __tablename__ = "dataset_circuits"
    __table_args__ = (UniqueConstraint("dataset_id", "position"),)

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    topology_number: Mapped[int] = mapped_column(Integer)
    sizing: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(32))


class ModelVersion(Base):
    """A trained model artefact (generator, surrogate, ...) and how it was made and scored."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    created_at: Mapped[datetime] = _created_at()
    # lineage (0008): the version fine-tuned from, and a fingerprint of the rows trained on
    parent_version: Mapped[str | None] = mapped_column(String(64))
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))


class Promotion(Base):
    """A registered model version promoted for its kind (0010): the newest promotion of a kind is the version
    campaigns use by default. ``promoted_by`` names what promoted it (``loop NAME``; by hand ``hand``,
    ``rollback`` or ``rollback to shipped``, see storage.promotions), ``round`` the loop's round (by hand: the
    row's number among its kind's of that name; 0 otherwise), ``gate`` the figures it was judged on. One
    promotion per (kind, promoted_by, round), so a resumed loop records each of its promotions once."""

    __tablename__ = "promotions"
    __table_args__ = (
        UniqueConstraint("kind", "promoted_by", "round"),
        ForeignKeyConstraint(["kind", "version"], ["model_versions.kind", "model_versions.version"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    promoted_by: Mapped[str] = mapped_column(String(200))
    round: Mapped[int] = mapped_column(Integer)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON_TYPE)
    created_at: Mapped[datetime] = _created_at()


class Campaign(Base):
    """A named design campaign: the validated campaign file it was started from."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    wall_s: Mapped[float] = mapped_column(Float, server_default="0")  # time spent running it, summed over runs
    created_at: Mapped[datetime] = _created_at()


class CampaignTarget(Base):
    """One target of a campaign: pending until finished with a verdict (never reopened), or failed with
    the reason its search raised (a re-run retries it)."""

    __tablename__ = "campaign_targets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "name"),
        UniqueConstraint("campaign_id", "position"),
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)  # order in the campaign file
    bounds: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)  # {"gain_db": {"min": 60.0, "max": null}, ...}
    status: Mapped[str] = mapped_column(String(16))
    met: Mapped[bool | None] = mapped_column(Boolean)
    n_simulations: Mapped[int | None] = mapped_column(Integer)
    # candidates also refer to targets: the cycle is closed by ALTER (use_alter) after both exist.
    winner_candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id", use_alter=True))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON_TYPE)
    reason: Mapped[str | None] = mapped_column(Text)  # why the target failed (0005)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


class Candidate(Base):
    """A circuit proposed for a target, by whom, with what prediction and from which parent.

    Measured specs are not kept here: they are the circuit's rows in ``simulations``.
    """

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("target_id", "circuit_id", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("campaign_targets.id"))
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # generator, random, refine, seed, ...
    spec_class: Mapped[list[int] | None] = mapped_column(JSON_TYPE)  # class indices
    predicted_gain_db: Mapped[float | None] = mapped_column(Float)
    predicted_ugbw_hz: Mapped[float | None] = mapped_column(Float)
    predicted_pm_deg: Mapped[float | None] = mapped_column(Float)
    predicted_fom: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))  # the generator's that proposed it
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"))
    round: Mapped[int] = mapped_column(Integer)  # bandit pull or NSGA-II generation
    created_at: Mapped[datetime] = _created_at()
    surrogate_version: Mapped[str | None] = mapped_column(String(64))  # the surrogate's that ranked it (0010)


class Refinement(Base):
    """One NSGA-II refinement of a seed candidate for a target, and what it achieved."""

    __tablename__ = "refinements"
    __table_args__ = (UniqueConstraint("target_id", "seed_candidate_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("campaign_targets.id"))
    seed_candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    result_candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"))
    n_evaluations: Mapped[int] = mapped_column(Integer)
    fom_before: Mapped[float | None] = mapped_column(Float)
    fom_after: Mapped[float | None] = mapped_column(Float)
    history: Mapped[Any] = mapped_column(JSON_TYPE, nullable=False)  # e.g. best FoM per generation
    created_at: Mapped[datetime] = _created_at()


class DesignJob(Base):
    """A design campaign submitted to the service (0007): queued until a runner takes it, then running,
    and finally done, failed (with the error) or cancelled. ``campaign`` names the campaign it runs as."""

    __tablename__ = "design_jobs"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))  # the submitter's label
    campaign: Mapped[str] = mapped_column(String(200), unique=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)  # the validated campaign: name, budget, targets
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoopState(Base):
    """A closed loop's state (0011): its config, the current model and every round's figures, the copy of the
    loop folder's ``state.json`` kept in the store, so a loop whose folder is lost can still be reported."""

    __tablename__ = "loop_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# The tables, for SQLAlchemy Core statements.
topologies = Base.metadata.tables[Topology.__tablename__]
circuits = Base.metadata.tables[CircuitRow.__tablename__]
simulations = Base.metadata.tables[Simulation.__tablename__]
datasets = Base.metadata.tables[Dataset.__tablename__]
dataset_circuits = Base.metadata.tables[DatasetCircuit.__tablename__]
model_versions = Base.metadata.tables[ModelVersion.__tablename__]
promotions = Base.metadata.tables[Promotion.__tablename__]
campaigns = Base.metadata.tables[Campaign.__tablename__]
campaign_targets = Base.metadata.tables[CampaignTarget.__tablename__]
candidates = Base.metadata.tables[Candidate.__tablename__]
refinements = Base.metadata.tables[Refinement.__tablename__]
design_jobs = Base.metadata.tables[DesignJob.__tablename__]
loop_states = Base.metadata.tables[LoopState.__tablename__]
