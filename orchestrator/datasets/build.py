"""Building a SPICE-labelled dataset: generate the family, simulate what is missing, store it.

Resumable by construction: the stream of circuits is a pure function of (seed, position), the
store ignores rows it already has, and only circuits without a stored simulation are simulated.
Results are written as batches finish, so a killed build loses at most the batches in flight.

Two presets: ``family`` (every generated circuit, the documented OCB rules) and ``ocb101``, which
reproduces how the published Ckt-Bench-101 rows were evidently chosen (docs/ocb-101-gap.md): of
the K = 20 simulated sizings of each topology, rows 2j and 2j+1 are the best and the worst by
OCB's own FoM, a failed simulation counting as −∞. The 20 sizings live in a ``<name>-pool`` dataset.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from circuits import Circuit, FamilyConfig, generate, ocb_figure_of_merit
from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool
from storage import DatasetEntry, DatasetRow, Store

PRESETS = ("family", "ocb101")
TEST_FRACTION = 0.1
WRITE_EVERY = 1000  # results buffered before each write to the store
WRITE_INTERVAL_S = 2.0  # ... or seconds, whichever comes first


def split_of(seed: int, topology_number: int, test_fraction: float = TEST_FRACTION) -> str:
    """Train/test by topology, so no topology straddles the split; stable as the dataset grows."""
    draw = np.random.default_rng([seed, topology_number]).random()
    return "test" if draw < test_fraction else "train"


@dataclass
class BuildReport:
    """What a build did, for the CLI to print."""

    dataset: str
    requested: int
    members: int  # distinct circuits: a stream may repeat a circuit, which is stored once
    already_simulated: int
    simulated: int
    statuses: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    pool_start_s: float = 0.0  # starting (or joining) Ray and the workers
    simulate_s: float = 0.0
    replaced_workers: int = 0

    @property
    def rate(self) -> float:
        return self.simulated / self.simulate_s if self.simulate_s > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "sims_per_s": round(self.rate, 1)}


def build_dataset(
    store: Store,
    n: int,
    seed: int,
    name: str,
    family: FamilyConfig | None = None,
    pool_config: PoolConfig | None = None,
    pool_factory: Callable[[PoolConfig], SimulationPool] = SimulationPool,
    progress: bool = True,
    preset: str = "family",
) -> BuildReport:
    """Make dataset ``name`` hold ``n`` simulated circuits of the (seed, family) stream, chosen by ``preset``."""
    if preset == "ocb101":
        return _build_ocb101(store, n, seed, name, family, pool_config, pool_factory, progress)
    if preset != "family":
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    start = time.perf_counter()
    family = family or FamilyConfig()
    pool_config = pool_config or PoolConfig()
    dataset_id = store.ensure_dataset(name, seed, n, {"family": asdict(family), "test_fraction": TEST_FRACTION})
    rows = [
        DatasetRow(s.index, s.topology, s.sizing, split_of(seed, s.topology), s.circuit)
        for s in generate(n, seed, family)
    ]
    store.add_dataset_circuits(dataset_id, rows)
    pending = store.pending(dataset_id, "ngspice")
    members = len({row.circuit.key for row in rows})
    report = BuildReport(name, n, members, members - len(pending), 0)
    if pending:
        pool_start = time.perf_counter()
        pool = pool_factory(pool_config)
        sim_start = time.perf_counter()
        report.pool_start_s = sim_start - pool_start
        try:
            _simulate_into(store, pool, pending, report, progress)
        finally:
            pool.shutdown()
        report.simulate_s = time.perf_counter() - sim_start
        report.replaced_workers = pool.replaced_workers
    report.wall_s = time.perf_counter() - start
    return report


def _simulate_into(store: Store, pool: SimulationPool, pending: list, report: BuildReport, progress: bool) -> None:
    """Stream results into the store every ``WRITE_EVERY`` results or ``WRITE_INTERVAL_S`` seconds,
    and once more on the way out, even when interrupted."""
    from tqdm import tqdm

    keys = [key for key, _ in pending]
    circuits = [circuit for _, circuit in pending]
    statuses: Counter[str] = Counter()
    buffer: list = []
    nodes: dict[str, str] = {}  # circuit key -> the Ray node that simulated it
    last_write = time.monotonic()

    def flush() -> None:
        nonlocal buffer, last_write
        if buffer:
            store.add_simulations(pool.simulator, pool.version, buffer, nodes)
            report.simulated += len(buffer)
            buffer = []
            nodes.clear()
        last_write = time.monotonic()

    with tqdm(total=len(circuits), unit="sim", desc="simulating", disable=not progress, smoothing=0.1) as bar:
        try:
            for batch in pool.run(circuits):
                for i, perf in zip(batch.indices, batch.results):
                    buffer.append((keys[i], perf, batch.seconds_per_circuit))
                    if batch.node is not None:
                        nodes[keys[i]] = batch.node
                    statuses[perf.status.value] += 1
                bar.update(len(batch.indices))
                if len(buffer) >= WRITE_EVERY or time.monotonic() - last_write > WRITE_INTERVAL_S:
                    flush()
        finally:
            flush()
            report.statuses = dict(statuses)


def _build_ocb101(
    store: Store,
    n: int,
    seed: int,
    name: str,
    family: FamilyConfig | None,
    pool_config: PoolConfig | None,
    pool_factory: Callable[[PoolConfig], SimulationPool],
    progress: bool,
) -> BuildReport:
    start = time.perf_counter()
    family = family or FamilyConfig()
    k = family.sizings_per_topology
    topologies = (n + 1) // 2
    pool_name = f"{name}-pool"
    report = build_dataset(
        store, topologies * k, seed, pool_name, family, pool_config, pool_factory, progress, preset="family"
    )
    by_topology: dict[int, list[DatasetEntry]] = {}
    for row in store.dataset_rows(pool_name):
        by_topology.setdefault(row.topology_number, []).append(row)
    chosen: list[DatasetRow] = []
    for number in range(topologies):
        best, worst = best_and_worst(by_topology[number])
        for row in (best, worst):
            circuit = Circuit.from_dict(row.circuit)
            chosen.append(DatasetRow(len(chosen), number, row.sizing, row.split, circuit))
    config = {"preset": "ocb101", "pool": pool_name, "family": asdict(family), "test_fraction": TEST_FRACTION}
    dataset_id = store.ensure_dataset(name, seed, n, config)
    store.add_dataset_circuits(dataset_id, chosen[:n])
    report.dataset, report.requested, report.members = name, n, len(chosen[:n])
    report.wall_s = time.perf_counter() - start
    return report


def best_and_worst(rows: list[DatasetEntry]) -> tuple[DatasetEntry, DatasetEntry]:
    """The sizings with the highest and the lowest OCB FoM (a failure is −∞); never the same row."""

    def fom(row: DatasetEntry) -> float:
        m = row.measured
        if m.status != "ok" or m.gain_db is None or m.ugbw_hz is None or m.pm_ocb_deg is None:
            return float("-inf")
        return ocb_figure_of_merit(m.gain_db, m.ugbw_hz, m.pm_ocb_deg)

    ordered = sorted(rows, key=lambda row: (-fom(row), row.sizing))
    best, rest = ordered[0], ordered[1:]
    worst = min(rest, key=lambda row: (fom(row), row.sizing))
    return best, worst
