"""The ``Store``: circuits, datasets, simulation results, model versions and promotions, design campaigns,
jobs and loop states in SQLite or PostgreSQL, one aggregate per module behind this one class.

Each public write is one transaction: it either lands whole or leaves the store as it was. Reads
return typed records (``storage.records``).
"""

from __future__ import annotations

from storage.campaigns import CampaignStore
from storage.candidates import CandidateStore
from storage.datasets import DatasetStore
from storage.engine import default_url, open_engine
from storage.jobs import JobStore
from storage.loops import LoopStateStore
from storage.promotions import PromotionStore
from storage.registry import RegistryStore
from storage.simulations import SimulationStore
from storage.verified import VerifiedStore


class Store(
    DatasetStore,
    SimulationStore,
    RegistryStore,
    PromotionStore,
    CampaignStore,
    CandidateStore,
    JobStore,
    VerifiedStore,
    LoopStateStore,
):
    """A CktLoop database. Open with ``Store.open(url)``; thread- and process-safe for writing."""

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Connect to ``url`` (default: ``default_url()``) and migrate it to the newest schema."""
        return cls(open_engine(url if url is not None else default_url()))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
