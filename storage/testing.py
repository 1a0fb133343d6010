"""Test data and a concurrent writer, for tests of the store.

Shipped with the package (like ``simulator.testing``) so processes started with ``spawn`` can import
the writer whatever pytest's import mode.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from circuits import Circuit, Performance, Sample, SimStatus, generate
from storage.engine import StoreError
from storage.records import DatasetRow
from storage.store import Store

_SAMPLES: dict[tuple[int, int], list[Sample]] = {}


def samples(n: int, seed: int = 1) -> list[Sample]:
    """The first ``n`` circuits of the family for ``seed`` (cached: generating is not free)."""
    if (n, seed) not in _SAMPLES:
        _SAMPLES[(n, seed)] = list(generate(n, seed))
    return _SAMPLES[(n, seed)]


def rows(n: int, seed: int = 1) -> list[DatasetRow]:
    """Dataset rows for the first ``n`` circuits; every fifth topology goes to the test split.

    A stream can repeat a circuit (a small topology sized twice alike); a dataset holds each circuit
    once, at its first position, so repeats are left out here to keep the expected counts simple.
    """
    seen: set[Circuit] = set()  # the generator lists a topology's nodes in one order: equal means same key
    out = []
    for s in samples(n, seed):
        if s.circuit not in seen:
            seen.add(s.circuit)
            out.append(DatasetRow.from_sample(s, "test" if s.topology % 5 == 0 else "train"))
    return out


def fake_performance(key: str) -> Performance:
    """A deterministic result for a circuit key: mostly OK, some failures of each kind."""
    h = int(key[:8], 16)
    if h % 7 == 0:
        return Performance.failed(SimStatus.SIM_ERROR, f"singular matrix ({key[:6]})")
    if h % 11 == 0:
        return Performance(SimStatus.NO_CROSSING, gain_db=-3.5)
    return Performance(SimStatus.OK, gain_db=20 + h % 80, ugbw_hz=1e5 * (1 + h % 1000), pm_deg=-30 + h % 120)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def concurrent_writer(url: str, worker: int, span: tuple[int, int], barrier: Any, errors: Any) -> None:
    """One of several processes filling one database with rows at positions ``span`` = [first, stop).

    Opens the store (the first to get there migrates a fresh database), ensures dataset "shared",
    adds its rows and records fake results, in small transactions so the writers interleave.
    Reports a failure by putting its traceback on the ``errors`` queue.
    """
    try:
        first, stop = span
        data = [r for r in rows(stop) if first <= r.position < stop]
        if worker % 2:
            data.reverse()  # opposite orders, so overlapping transactions meet head-on
        barrier.wait(timeout=120)
        store = Store.open(url)
        did = store.ensure_dataset("shared", 1, stop, {"family": "default"})
        barrier.wait(timeout=120)
        for chunk in _chunks(data, 15):
            store.add_dataset_circuits(did, chunk)
        for chunk in _chunks(data, 15):
            results = [(r.circuit.key, fake_performance(r.circuit.key), 0.1) for r in chunk]
            store.add_simulations("ngspice", f"w{worker}", results)
        store.close()
    except BaseException:
        errors.put(f"worker {worker}: {traceback.format_exc()}")
        raise


# What makes two rows the same row, per table: a store written twice over (a resumed job, a retried write,
# two drivers) must hold none of these twice.
SAME_ROW = {
    "circuits": "key",
    "simulations": "circuit_id, simulator",
    "candidates": "target_id, circuit_id, source",
    "refinements": "target_id, seed_candidate_id",
    "campaign_targets": "campaign_id, name",
    "campaigns": "name",
    "design_jobs": "campaign",
    "model_versions": "kind, version",
    "promotions": "kind, promoted_by, round",
}


def duplicate_rows(engine: Engine) -> dict[str, int]:
    """Per table of ``SAME_ROW``, how many groups of rows that should be one row hold more than one."""
    with engine.connect() as conn:
        return {
            table: conn.execute(
                text(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} GROUP BY {cols} HAVING COUNT(*) > 1) AS d")
            ).scalar_one()
            for table, cols in SAME_ROW.items()
        }


def targets_done(store: Store, campaign: str) -> int:
    """Targets of ``campaign`` done so far (0 before it is stored): for tests that stop a job part-way."""
    try:
        return sum(r.status == "done" for r in store.campaign_targets(campaign))
    except StoreError:
        return 0


class LocalPostgres:
    """A PostgreSQL server of its own, in a temporary folder on a free port, from the installed binaries:
    for tests that stop and restart the server (never the machine's shared one).

    ``start()`` creates the cluster (trust authentication, listening on 127.0.0.1 only) and starts it;
    ``stop(mode)`` stops it (``immediate`` is a crash: no shutdown checkpoint, clients cut off);
    ``close()`` stops it and removes the folder. Run as root, the server runs as user ``postgres``.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or self.find_bindir()
        if found is None:
            raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl) found")
        self.bindir = found
        self.root = Path(tempfile.mkdtemp(prefix="cktpg"))
        self.data = self.root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres")

    @staticmethod
    def find_bindir() -> Path | None:
        """``$CKTLOOP_PG_BIN``, else the newest /usr/lib/postgresql/*/bin, else the folder of ``pg_ctl``."""
        candidates = [os.environ.get("CKTLOOP_PG_BIN", "")]
        candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
        candidates.append(os.path.dirname(shutil.which("pg_ctl") or ""))
        return next((Path(c) for c in candidates if c and (Path(c) / "initdb").exists()), None)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bindir / tool), *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit status {done.returncode}"]
            raise RuntimeError(f"{tool} {args[-1]} failed: {lines[-1]} (log: {self.root / 'server.log'})")

    def start(self) -> None:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "90",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "90", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
