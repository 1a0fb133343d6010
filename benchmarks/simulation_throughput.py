"""Simulations per second: the Ray pool (1 and 2 workers) against one process driving libngspice
directly (one circuit per deck, and CktLoop's many circuits per deck) and one ``ngspice -b``
process per circuit (how most published tools run it).

    .venv/bin/python benchmarks/simulation_throughput.py --n 5000

Run by hand on an otherwise idle machine; CI never runs it. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from circuits import generate
from simulator.netlist import deck
from simulator.ngspice import NgspiceBackend


def direct(circuits, per_deck: int) -> float:
    backend = NgspiceBackend(circuits_per_deck=per_deck)
    backend.simulate(circuits[:50])  # load the library outside the clock
    start = time.perf_counter()
    backend.simulate(circuits)
    return len(circuits) / (time.perf_counter() - start)


def batch_processes(circuits) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, circuit in enumerate(circuits):
            path = Path(tmp) / f"c{i}.cir"
            path.write_text(deck(circuit))
            paths.append(path)
        start = time.perf_counter()
        for path in paths:
            raw = str(path.with_suffix(".raw"))
            subprocess.run(["ngspice", "-b", "-r", raw, str(path)], capture_output=True, check=True)
        return len(circuits) / (time.perf_counter() - start)


def pool(circuits, workers: int) -> tuple[float, float]:
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool

    ensure_ray(num_cpus=2)
    start = time.perf_counter()
    sim_pool = SimulationPool(PoolConfig(num_workers=workers))
    started = time.perf_counter()
    count = sum(len(b.indices) for b in sim_pool.run(circuits))
    rate = count / (time.perf_counter() - started)
    sim_pool.shutdown()
    return rate, started - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="circuits per measurement (default 5000)")
    parser.add_argument("--n-batch", type=int, default=300, help="circuits for the ngspice -b measurement")
    args = parser.parse_args()
    circuits = [s.circuit for s in generate(args.n, 2024)]
    rows = [
        ("one process, libngspice, 1 circuit per deck", direct(circuits, 1)),
        ("one process, libngspice, 50 circuits per deck", direct(circuits, 50)),
        (f"one `ngspice -b` process per circuit ({args.n_batch} circuits)", batch_processes(circuits[: args.n_batch])),
    ]
    for workers in (1, 2):
        rate, start_s = pool(circuits, workers)
        label = f"Ray pool, {workers} worker(s), 250 circuits per call (workers started in {start_s:.1f} s)"
        rows.append((label, rate))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, n={args.n}\n")
    print("| path | simulations/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
