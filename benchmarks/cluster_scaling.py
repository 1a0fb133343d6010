"""Cluster scaling, part 1: the orchestration's efficiency. The simulation pool alone, its workers on a
simulator of fixed latency (``simulator.testing.FixedLatencyBackend``: 20 ms a circuit, asleep), so
the machine's cores do not limit it: achieved throughput over the ideal ``workers / latency``.

    .venv/bin/python benchmarks/cluster_scaling.py --workers 8 32 64 --batch-size 10 50
    .venv/bin/python benchmarks/cluster_scaling.py --address 127.0.0.1:26380   # on scripts/local_cluster.sh

Each worker asks Ray for ``--cpus`` (default 0.01) CPUs, so 64 of them fit one small node or a local
cluster of 1-CPU nodes. Every run simulates ``--seconds`` of ideal work (workers / latency x seconds
circuits, and at least 8 calls a worker); the clock starts once every worker has answered (start-up is
reported apart; one pool serves every batch size). Efficiency = busy / overshoot (see ``measure``); the
idle share (1 - busy) is split into the tail (workers idle after their last result) and the rest (start
and gaps the driver left). The load average (1 min) is printed at the end of each run.
Run by hand; CI never runs it. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from dataclasses import replace
from functools import partial

from circuits import generate
from orchestrator.distributed.runtime import ensure_ray
from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool
from simulator.testing import FixedLatencyBackend


def start_pool(workers: int, latency: float, cpus: float, in_flight: int) -> tuple[SimulationPool, float]:
    """A pool of ``workers`` fixed-latency workers, every one of them answered; and its start-up seconds."""
    import ray

    config = PoolConfig(num_workers=workers, num_cpus_per_worker=cpus, in_flight_per_worker=in_flight, timeout_s=600.0)
    begun = time.perf_counter()
    pool = SimulationPool(config, partial(FixedLatencyBackend, latency))  # spread over the nodes
    ray.get([actor.info.remote() for actor in pool._actors], timeout=900)
    return pool, time.perf_counter() - begun


def placement(pool: SimulationPool) -> str:
    """How many workers each alive node hosts, head first, e.g. ``40+12+12`` (from the GCS's actor table)."""
    import ray
    from ray._private import state

    order = [n["NodeID"] for n in sorted(ray.nodes(), key=lambda n: n["NodeManagerPort"]) if n["Alive"]]
    hosts = [state.actors(actor._actor_id.hex())["Address"]["NodeID"] for actor in pool._actors]
    return "+".join(str(hosts.count(node)) for node in order)


def measure(pool: SimulationPool, circuits: list, batch: int, latency: float) -> dict[str, float]:
    """Run ``circuits`` through ``pool`` in calls of ``batch``. Efficiency = achieved / ideal throughput
    = busy / overshoot: the share of the wall time the workers spent inside ``simulate`` (what the
    orchestration controls), over how much longer than ``latency`` a circuit took inside it (sleeps
    woken late on a loaded machine)."""
    pool.config = replace(pool.config, batch_size=batch)
    workers = pool.config.num_workers
    started, cpu = time.perf_counter(), time.process_time()
    done = inside = 0.0
    finished: list[float] = []  # when each call's result reached the driver
    for b in pool.run(circuits):
        done += len(b.indices)
        inside += b.seconds_per_circuit * len(b.indices)
        finished.append(time.perf_counter())
    ended = time.perf_counter()
    wall, cpu = ended - started, time.process_time() - cpu
    assert done == len(circuits)
    achieved, ideal = done / wall, workers / latency
    # Where the idle worker-seconds went: the tail (each worker idle after its last result: the last
    # `workers` results are taken as one per worker) and the rest (start, and gaps the driver left).
    idle = workers * wall - inside
    tail = sum(ended - t for t in finished[-workers:])
    return {
        "tail": tail / (workers * wall),
        "other_idle": (idle - tail) / (workers * wall),
        "wall_s": wall,
        "achieved": achieved,
        "ideal": ideal,
        "eff": achieved / ideal,
        "busy": inside / (workers * wall),
        "overshoot": inside / (done * latency),
        "driver_ms": 1000 * cpu / -(-len(circuits) // batch),  # the driver's CPU a Ray call
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[10, 50], help="circuits per Ray call")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds a circuit")
    parser.add_argument("--seconds", type=float, default=20.0, help="ideal seconds of work a run")
    parser.add_argument("--cpus", type=float, default=0.01, help="Ray CPUs a worker asks for")
    parser.add_argument("--address", default=None, help="a Ray cluster (HOST:PORT); default: a local Ray")
    parser.add_argument("--in-flight", type=int, default=PoolConfig.in_flight_per_worker, help="calls queued a worker")
    parser.add_argument("--distinct", type=int, default=2000, help="distinct circuits, cycled to the run's size")
    parser.add_argument(
        "--compare-drain", action="store_true", help="each run twice on the same pool: one result a turn, then all"
    )
    args = parser.parse_args()

    ensure_ray(address=args.address, num_cpus=None if args.address else 2)
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    pool_of = [s.circuit for s in generate(args.distinct, 0)]
    print(f"# {platform.node()}, {os.cpu_count()} cores, {len(nodes)} Ray node(s), latency {args.latency * 1000:g} ms")
    columns = "workers, per node, drain, circuits/call, circuits, start-up s, wall s, achieved /s, ideal /s, efficiency"
    columns += ", busy, idle: tail, idle: other, overshoot, driver CPU ms/call, load"
    print("| " + " | ".join(columns.split(", ")) + " |")
    print("|---" * len(columns.split(", ")) + "|")
    orders = itertools.cycle([(False, True), (True, False)])
    for workers in args.workers:
        pool, startup = start_pool(workers, args.latency, args.cpus, args.in_flight)
        where = placement(pool)
        for batch in args.batch_size:
            # at least 8 calls a worker: with fewer, the pool's two calls in flight per worker leave some idle
            n = max(int(workers / args.latency * args.seconds), workers * batch * 8)
            circuits = [pool_of[i % len(pool_of)] for i in range(n)]
            turns = next(orders) if args.compare_drain else (pool.drain,)  # A/B, then B/A: load drifts
            for drain in turns:
                pool.drain = drain
                r = measure(pool, circuits, batch, args.latency)
                print(row(workers, where, drain, batch, n, startup, r), flush=True)
        pool.shutdown()


def row(workers: int, where: str, drain: bool, batch: int, n: int, startup: float, r: dict[str, float]) -> str:
    """One line of the table (the load average, 1 min, taken now)."""
    return (
        f"| {workers} | {where} | {'all' if drain else 'one'} | {batch} | {n:,} | {startup:.0f} | {r['wall_s']:.1f}"
        f" | {r['achieved']:,.0f} | {r['ideal']:,.0f} | {r['eff']:.3f} | {r['busy']:.3f} | {r['tail']:.3f}"
        f" | {r['other_idle']:.3f} | {r['overshoot']:.3f} | {r['driver_ms']:.2f} | {os.getloadavg()[0]:.0f} |"
    )


if __name__ == "__main__":
    main()
