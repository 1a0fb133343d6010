"""Promotions: which registered model version of each kind (generator, surrogate) campaigns use by default.

A promotion names a registered (kind, version), what promoted it (``promoted_by``: ``loop NAME`` for the
closed loop) and at which round, with the gate figures it passed. The newest promotion of a kind is the
promoted version. Recording one is idempotent per (kind, promoted_by, round): a loop resumed after a kill
records its promotions again and adds nothing; the same slot with another version is refused.

By hand (``cktloop models promote|rollback``): ``promote_by_hand`` records ``promoted_by`` ``hand`` and
``rollback`` records ``rollback`` (the version that is current again) or ``rollback to shipped`` (the
version rolled back from, none before it: the kind falls back to its shipped model), each ``round`` the next
number of its kind's rows by that name. Rows are never deleted: read oldest first, a promotion pushes its
version and a rollback pops the current one, so rolling back twice goes two promotions back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, select

from storage.engine import Database, StoreError, insert_new
from storage.models import model_versions, promotions
from storage.records import PromotionInfo, from_row
from storage.validate import count, json_value, nonempty

HAND = "hand"
ROLLBACK = "rollback"
TO_SHIPPED = "rollback to shipped"


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
        return None if row is None or row.promoted_by == TO_SHIPPED else from_row(PromotionInfo, row)

    def promote_by_hand(self, kind: str, version: str, why: str | None = None) -> PromotionInfo | None:
        """Promote the registered ``kind`` model ``version`` by hand (``why`` kept in the row's gate) and return
        the promotion; None, adding nothing, when ``version`` is the promoted one already."""
        gate = None if why is None else {"why": nonempty(why, "the reason", 2000)}
        return self._by_hand(kind, lambda stack: None if stack[-1:] == [version] else (HAND, version, gate))

    def rollback(self, kind: str) -> PromotionInfo:
        """Make the ``kind`` version promoted before the current one current again (a new row); with none
        before it, the shipped model (a ``rollback to shipped`` row naming the version rolled back from, after
        which ``promoted`` is None). Nothing promoted is a ``StoreError``."""

        def step(stack: list[str]) -> tuple[str, str, dict[str, Any]]:
            if not stack:
                raise StoreError(f"no {kind} version is promoted (the shipped model is in use): nothing to roll back")
            if len(stack) == 1:
                return TO_SHIPPED, stack[-1], {"rolled_back": stack[-1]}
            return ROLLBACK, stack[-2], {"rolled_back": stack[-1]}

        done = self._by_hand(kind, step)
        assert done is not None
        return done

    def _by_hand(
        self, kind: str, step: Callable[[list[str]], tuple[str, str, dict[str, Any] | None] | None]
    ) -> PromotionInfo | None:
        """Record the promotion ``step`` makes of the kind's promoted versions (oldest first), numbered after
        the kind's rows of its name, in one transaction; None when ``step`` records none."""
        kind = nonempty(kind, "a model kind", 64)

        def work(conn: Connection) -> Any:
            rows = conn.execute(_query().where(promotions.c.kind == kind).order_by(promotions.c.id)).all()
            made = step(_stack(rows))
            if made is None:
                return None
            by, version, gate = made
            rounds = [r.round for r in rows if r.promoted_by == by]
            row = {"kind": kind, "version": version, "promoted_by": by, "round": max(rounds, default=0) + 1}
            registered = select(model_versions.c.id).where(
                model_versions.c.kind == kind, model_versions.c.version == version
            )
            if conn.execute(registered).first() is None:
                raise StoreError(f"cannot promote {kind} model version {version!r}: it is not registered")
            values = {**row, "gate": json_value(gate, f"the reason for {version}")}
            new = conn.execute(promotions.insert().returning(promotions.c.id), values).scalar_one()
            return conn.execute(_query().where(promotions.c.id == new)).one()

        got = self._write(work, idempotent=False)
        return None if got is None else from_row(PromotionInfo, got)


def _stack(rows: Sequence[Any]) -> list[str]:
    """The promoted versions a kind's promotion rows (oldest first) leave, the current one last."""
    stack: list[str] = []
    for r in rows:
        if r.promoted_by in (ROLLBACK, TO_SHIPPED):
            stack = stack[:-1]
        else:
            stack.append(r.version)
    return stack
