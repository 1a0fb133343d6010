"""The model registry: trained model versions, where their checkpoints are, and how they scored."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Connection, select

from storage.engine import Database, StoreError, insert_new
from storage.models import model_versions
from storage.records import ModelInfo, from_row
from storage.validate import json_value, nonempty


class RegistryStore(Database):
    """Registered model versions, one per (kind, version)."""

    def register_model(
        self,
        kind: str,
        version: str,
        path: str | os.PathLike[str],
        config: dict[str, Any],
        metrics: dict[str, Any],
        parent_version: str | None = None,
        data_fingerprint: str | None = None,
    ) -> int:
        """Record a trained model (fine-tuned from ``parent_version`` on rows with ``data_fingerprint``, when
        given); registering the same (kind, version) again with the same data is a no-op."""
        row = {
            "kind": nonempty(kind, "a model kind", 64),
            "version": nonempty(version, "a model version", 64),
            "path": str(path),
            "config": json_value(config, f"the config of model {kind} {version}"),
            "metrics": json_value(metrics, f"the metrics of model {kind} {version}"),
            "parent_version": None if parent_version is None else nonempty(parent_version, "a parent version", 64),
            "data_fingerprint": None
            if data_fingerprint is None
            else nonempty(data_fingerprint, "a data fingerprint", 64),
        }

        def work(conn: Connection) -> int:
            conn.execute(insert_new(conn, model_versions), row)
            have = conn.execute(
                select(model_versions).where(model_versions.c.kind == kind, model_versions.c.version == version)
            ).one()
            differs = [f for f in row if getattr(have, f) != row[f]]
            if differs:
                raise StoreError(
                    f"model {kind} version {version!r} is already registered with a different {', '.join(differs)}"
                )
            return int(have.id)

        return self._write(work)

    def model_versions(self, kind: str | None = None) -> list[ModelInfo]:
        """Registered models (of ``kind``, or all), oldest first."""
        stmt = select(model_versions).order_by(model_versions.c.id)
        if kind is not None:
            stmt = stmt.where(model_versions.c.kind == kind)
        rows = self._read(lambda conn: conn.execute(stmt).all())
        return [from_row(ModelInfo, r) for r in rows]

    def model_version(self, kind: str, version: str) -> ModelInfo:
        """The registered ``kind`` model ``version``; an unknown one is a ``StoreError`` naming it."""
        stmt = select(model_versions).where(model_versions.c.kind == kind, model_versions.c.version == version)
        row = self._read(lambda conn: conn.execute(stmt).one_or_none())
        if row is None:
            raise StoreError(f"no {kind} model version {version!r} is registered")
        return from_row(ModelInfo, row)
