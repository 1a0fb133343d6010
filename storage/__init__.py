"""CktLoop's database: circuits, datasets, simulation results, model versions and design campaigns.

SQLite (default, ``sqlite:///cktloop.db``) or PostgreSQL, through SQLAlchemy; the schema is managed
by Alembic migrations that ``Store.open`` applies automatically.
"""

from storage.migrate import current_revision, head_revision, upgrade
from storage.store import CandidateRecord, DatasetRow, Store, StoreError, default_url

__all__ = [
    "CandidateRecord",
    "DatasetRow",
    "Store",
    "StoreError",
    "current_revision",
    "default_url",
    "head_revision",
    "upgrade",
]
