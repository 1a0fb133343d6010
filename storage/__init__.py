"""CktLoop's database: circuits, datasets, simulation results, model versions, design campaigns and design jobs.

SQLite (default, ``sqlite:///cktloop.db``) or PostgreSQL, through SQLAlchemy; the schema is managed
by Alembic migrations that ``Store.open`` applies automatically. Reads return the typed records of
``storage.records``.
"""

from storage.datasets import EVERY_DATASET
from storage.engine import CommitUnknown, StoreError, default_url
from storage.migrate import current_revision, head_revision, upgrade
from storage.records import (
    CampaignInfo,
    CandidateInfo,
    CandidateRecord,
    DatasetEntry,
    DatasetInfo,
    DatasetRow,
    JobInfo,
    Measured,
    ModelInfo,
    PromotionInfo,
    RefinementInfo,
    TargetInfo,
)
from storage.store import Store

__all__ = [
    "EVERY_DATASET",
    "CampaignInfo",
    "CandidateInfo",
    "CandidateRecord",
    "CommitUnknown",
    "DatasetEntry",
    "DatasetInfo",
    "DatasetRow",
    "JobInfo",
    "Measured",
    "ModelInfo",
    "PromotionInfo",
    "RefinementInfo",
    "Store",
    "StoreError",
    "TargetInfo",
    "current_revision",
    "default_url",
    "head_revision",
    "upgrade",
]
