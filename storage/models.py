"""The relational schema, as SQLAlchemy 2.0 typed declarative models.

Every change here needs an Alembic migration in ``storage/migrations/versions``; a test checks
that the migrated schema and this metadata agree. JSON columns are ``Text`` holding compact JSON,
so the schema is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    structure: Mapped[str] = mapped_column(Text)  # JSON {"types": [...], "pos": [...], "edges": [[u, v], ...]}
    created_at: Mapped[datetime] = _created_at()


class CircuitRow(Base):
    """A sized circuit, stored as its canonical JSON and identified by its content hash."""

    __tablename__ = "circuits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    topology_id: Mapped[int] = mapped_column(ForeignKey("topologies.id"), index=True)
    grid: Mapped[str] = mapped_column(String(64))
    circuit_json: Mapped[str] = mapped_column(Text)
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


class Dataset(Base):
    """A named, seeded draw from the circuit family."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    seed: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    config: Mapped[str] = mapped_column(Text)  # JSON object
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
    config: Mapped[str] = mapped_column(Text)  # JSON object
    metrics: Mapped[str] = mapped_column(Text)  # JSON object
    created_at: Mapped[datetime] = _created_at()


topologies = Topology.__table__
circuits = CircuitRow.__table__
simulations = Simulation.__table__
datasets = Dataset.__table__
dataset_circuits = DatasetCircuit.__table__
model_versions = ModelVersion.__table__
