"""Simulation results: at most one verdict per circuit and simulator, the first one recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter

from sqlalchemy import Connection

from circuits.performance import Performance
from storage.circuit_rows import CHUNK_SIZE, chunks, circuit_ids
from storage.engine import Database, StoreError, insert_new
from storage.models import simulations
from storage.validate import finite, nonempty


class SimulationStore(Database):
    """Simulators' verdicts on stored circuits."""

    def add_simulations(
        self,
        simulator: str,
        version: str,
        results: Sequence[tuple[str, Performance, float | None]],
        nodes: Mapping[str, str] | None = None,
    ) -> None:
        """Record results as (circuit key, performance, seconds), each with the node that ran it when
        ``nodes`` (circuit key -> Ray node id) names one. A circuit already simulated by ``simulator``
        keeps its first result; an unknown key fails the whole batch."""
        nonempty(simulator, "simulator", 64)
        nonempty(version, "simulator version", 64)
        if not results:
            return

        def work(conn: Connection) -> None:
            ids = circuit_ids(conn, (key for key, _, _ in results))
            missing = sorted({key for key, _, _ in results if key not in ids})
            if missing:
                shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
                raise StoreError(f"cannot record {simulator} results for unknown circuit(s) {shown}; nothing recorded")
            rows = sorted(
                (
                    {
                        "circuit_id": ids[key],
                        "simulator": simulator,
                        "simulator_version": version,
                        "status": perf.status.value,
                        "gain_db": finite(perf.gain_db),
                        "ugbw_hz": finite(perf.ugbw_hz),
                        "pm_deg": finite(perf.pm_deg),
                        "pm_ocb_deg": finite(perf.pm_ocb_deg),
                        "fom": finite(perf.fom),
                        "error": perf.error,
                        "seconds": finite(seconds),
                        "node": (nodes or {}).get(key),
                    }
                    for key, perf, seconds in results
                ),
                key=itemgetter("circuit_id"),
            )
            for chunk in chunks(rows, CHUNK_SIZE):
                conn.execute(insert_new(conn, simulations), list(chunk))

        self._write(work)
