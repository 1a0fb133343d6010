"""Promotions: which registered model version of each kind (generator, surrogate) campaigns use by default.

A promotion names a registered (kind, version), what promoted it (``promoted_by``: ``loop NAME`` for the
closed loop) and at which round, with the gate figures it passed. The newest promotion of a kind is the
promoted version. Recording one is idempotent per (kind, promoted_by, round): a loop resumed after a kill
records its promotions again and adds nothing; the same slot with another version is refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, select

from storage.engine import Database, StoreError, insert_new
from storage.models import model_versions, promotions
from storage.records import PromotionInfo, from_row
from storage.validate import count, json_value, nonempty


def _query() -> Select[Any]:
    return select(promotions, model_versions.c.path).join(
        model_versions,
        (model_versions.c.kind == promotions.c.kind) & (model_versions.c.version == promotions.c.version),
    )


class PromotionStore(Database):
    """Promoted model versions, newest last."""

    def promote(
        self, kind: str, version: str, promoted_by: str, round: int = 0, gate: dict[str, Any] | None = None
    ) -> PromotionInfo:
        """Promote the registered ``kind`` model ``version`` (``promoted_by`` and ``round`` say by what, ``gate``
        on which figures) and return the promotion. Recording the same promotion again returns the first;
        another version for the same (kind, promoted_by, round) is refused, and so is an unregistered one."""
        row = {
            "kind": nonempty(kind, "a model kind", 64),
            "version": nonempty(version, "a model version", 64),
            "promoted_by": nonempty(promoted_by, "what promoted the model", 200),
            "round": count(round, "the promotion's round"),
            "gate": json_value(gate, f"the gate figures of model {kind} {version}"),
        }
        key = (promotions.c.kind == row["kind"]) & (promotions.c.promoted_by == row["promoted_by"])
        key &= promotions.c.round == row["round"]

        def work(conn: Connection) -> Any:
            registered = select(model_versions.c.id).where(
                model_versions.c.kind == row["kind"], model_versions.c.version == row["version"]
            )
            if conn.execute(registered).first() is None:
                raise StoreError(f"cannot promote {kind} model version {version!r}: it is not registered")
            conn.execute(insert_new(conn, promotions), row)
            have = conn.execute(_query().where(key)).one()
            if have.version != row["version"]:
                raise StoreError(
                    f"{promoted_by} round {round} already promoted {kind} version {have.version!r}, not {version!r}"
                )
            return have

        return from_row(PromotionInfo, self._write(work))

    def promotions(self, kind: str | None = None) -> list[PromotionInfo]:
        """Every promotion (of ``kind``, or all), oldest first."""
        stmt = _query().order_by(promotions.c.id)
        if kind is not None:
            stmt = stmt.where(promotions.c.kind == kind)
        return [from_row(PromotionInfo, r) for r in self._read(lambda conn: conn.execute(stmt).all())]

    def promoted(self, kind: str) -> PromotionInfo | None:
        """The promoted ``kind`` model (its newest promotion), or None when none of that kind was promoted."""
        stmt = _query().where(promotions.c.kind == kind).order_by(promotions.c.id.desc()).limit(1)
        row = self._read(lambda conn: conn.execute(stmt).first())
        return None if row is None else from_row(PromotionInfo, row)
