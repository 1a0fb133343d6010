"""Loop states: a closed loop's ``state.json`` (``orchestrator.design.loop``), kept in the store as well.

The loop writes its state to its folder after every step and here beside it; the folder stays the source a
loop resumes from (its checkpoints live there), the store's copy is what ``cktloop loop report`` reads when
the folder is gone. Saving replaces the loop's copy whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from storage.engine import Database, dialect_insert
from storage.models import loop_states
from storage.validate import json_value, nonempty


class LoopStateStore(Database):
    """Closed loops' states, by loop name."""

    def save_loop_state(self, name: str, state: dict[str, Any]) -> None:
        """Keep ``state`` (strict JSON: no NaN) as loop ``name``'s state, replacing what was kept."""
        row = {"name": nonempty(name, "a loop name", 200), "state": json_value(state, f"the state of loop {name}")}

        def work(conn: Connection) -> None:
            stmt = dialect_insert(conn, loop_states).values(row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"], set_={"state": stmt.excluded.state, "updated_at": func.now()}
                )
            )

        self._write(work)

    def loop_state(self, name: str) -> dict[str, Any] | None:
        """Loop ``name``'s state as last saved, or None when the store has none."""
        stmt = select(loop_states.c.state).where(loop_states.c.name == name)
        return self._read(lambda conn: conn.execute(stmt).scalar_one_or_none())
