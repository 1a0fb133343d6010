"""Typed records: what callers hand the store (``DatasetRow``, ``CandidateRecord``) and what its reads
return (frozen dataclasses, never bare dicts). JSON-valued fields (configs, bounds, summaries) stay
plain JSON data; ``to_dict`` gives the JSON form where a caller exports a record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from circuits.circuit import Circuit
from circuits.family import Sample

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

TARGET_STATUSES = ("pending", "done", "failed")
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
JOB_FINISHED = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class DatasetRow:
    """One member of a dataset to add: its place in the generated stream, its split and its circuit."""

    position: int
    topology_number: int
    sizing: int
    split: str
    circuit: Circuit

    @classmethod
    def from_sample(cls, sample: Sample, split: str) -> DatasetRow:
        return cls(sample.index, sample.topology, sample.sizing, split, sample.circuit)


@dataclass(frozen=True)
class CandidateRecord:
    """A circuit to propose for a campaign target: who proposed it (``source``: generator, random,
    refine, seed, ...), the spec class it was asked for, what a model predicted, and the candidate it
    was refined from (``parent_id``). ``round`` is the bandit pull or NSGA-II generation.
    ``model_version`` is the generator version that proposed it, ``surrogate_version`` the surrogate
    version that ranked it (None: none did)."""

    circuit: Circuit
    source: str
    spec_class: tuple[int, ...] | None = None
    predicted: dict[str, float | None] | None = None
    model_version: str | None = None
    parent_id: int | None = None
    round: int = 0
    surrogate_version: str | None = None


@dataclass(frozen=True)
class Measured:
    """One simulator's verdict on a circuit; every field is None while it is not simulated."""

    status: str | None = None
    gain_db: float | None = None
    ugbw_hz: float | None = None
    pm_deg: float | None = None
    fom: float | None = None
    pm_ocb_deg: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The flat form ``Target.met_by`` and the exports read."""
        return asdict(self)


MEASURED_FIELDS = tuple(f.name for f in fields(Measured))


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset member with its circuit (JSON form) and one simulator's verdict; ``id`` is the
    circuit's key, ``topology`` its topology's key."""

    id: str
    position: int
    topology: str
    topology_number: int
    sizing: int
    split: str
    circuit: dict[str, Any]
    measured: Measured

    def to_dict(self) -> dict[str, Any]:
        """One line of ``cktloop dataset export``, the row shape training reads from files."""
        return {
            "id": self.id,
            "position": self.position,
            "topology": self.topology,
            "topology_number": self.topology_number,
            "sizing": self.sizing,
            "split": self.split,
            "circuit": self.circuit,
            **self.measured.to_dict(),
        }


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: how it was drawn, its members, and how many each simulator has done."""

    id: int
    name: str
    seed: int
    n: int
    config: dict[str, Any]
    created_at: datetime
    members: int
    simulated: dict[str, int]


@dataclass(frozen=True)
class ModelInfo:
    """A registered model version: its checkpoint path and how it was made and scored."""

    id: int
    kind: str
    version: str
    path: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    parent_version: str | None = None  # the version it was fine-tuned from
    data_fingerprint: str | None = None  # of the rows it trained on


@dataclass(frozen=True)
class PromotionInfo:
    """A promotion of a registered model version: what promoted it (``promoted_by``, e.g. ``loop NAME``, and
    the loop's ``round``), the gate figures it passed, when, and the version's checkpoint ``path``."""

    id: int
    kind: str
    version: str
    promoted_by: str
    round: int
    gate: dict[str, Any] | None
    created_at: datetime
    path: str


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign, its file, running time summed over runs, and its targets counted by outcome."""

    id: int
    name: str
    config: dict[str, Any]
    wall_s: float
    created_at: datetime
    targets: int
    done: int
    failed: int
    met: int


@dataclass(frozen=True)
class TargetInfo:
    """A campaign target: ``status`` pending, done (with its verdict) or failed (with its ``reason``)."""

    id: int
    campaign_id: int
    campaign: str
    name: str
    position: int
    bounds: dict[str, Any]
    status: str
    met: bool | None
    n_simulations: int | None
    winner_candidate_id: int | None
    summary: dict[str, Any] | None
    reason: str | None
    finished_at: datetime | None
    created_at: datetime
    candidates: int


@dataclass(frozen=True)
class CandidateInfo:
    """A recorded candidate with its circuit (JSON form), its prediction and its measured verdict;
    ``model_version`` is the generator version that proposed it, ``surrogate_version`` the surrogate
    version that ranked it (None: none, or recorded before 0010)."""

    id: int
    target_id: int
    key: str
    circuit: dict[str, Any]
    source: str
    spec_class: list[int] | None
    predicted: dict[str, float] | None
    model_version: str | None
    parent_id: int | None
    round: int
    created_at: datetime
    measured: Measured
    surrogate_version: str | None = None

    @property
    def versions(self) -> dict[str, str | None]:
        """The model versions that proposed and ranked it, by kind."""
        return {"generator": self.model_version, "surrogate": self.surrogate_version}


@dataclass(frozen=True)
class RefinementInfo:
    """An NSGA-II refinement of a seed candidate and what it reached."""

    id: int
    target_id: int
    seed_candidate_id: int
    result_candidate_id: int | None
    n_evaluations: int
    fom_before: float | None
    fom_after: float | None
    history: Any
    created_at: datetime


@dataclass(frozen=True)
class JobInfo:
    """A design job: the campaign it runs as, the request it came from (the validated campaign file:
    name, budget, targets), its ``status`` (one of ``JOB_STATUSES``), why it failed, and when it was
    submitted, (first) started and finished."""

    id: int
    name: str | None
    campaign: str
    request: dict[str, Any]
    status: str
    error: str | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in JOB_FINISHED


def from_row(cls: type[R], row: Any, **computed: Any) -> R:
    """A record from a result row whose columns are named like its fields, but for ``computed`` ones."""
    columns = row._mapping
    return cls(**{f.name: computed[f.name] if f.name in computed else columns[f.name] for f in fields(cls)})
