"""``cktloop dataset build|export|stats|list``: SPICE-labelled datasets in the store."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from circuits import CktLoopError
from orchestrator.cli.options import (
    STDIO,
    db_option,
    input_file,
    output_file,
    output_file_or_stdout,
    positive_float,
    positive_int,
    ray_address,
    seed,
)
from orchestrator.cli.sources import dataset_name, open_store

if TYPE_CHECKING:
    from storage import DatasetEntry

OCB101_MIN_SIZINGS = 2  # the ocb101 preset keeps the best and the worst sizing of each topology


def add_commands(commands: Any) -> None:
    dataset = commands.add_parser("dataset", help="build, export and summarise SPICE-labelled datasets")
    dataset_commands = dataset.add_subparsers(title="dataset commands", metavar="COMMAND", required=True)

    build = dataset_commands.add_parser(
        "build",
        help="generate OCB op-amps and simulate them with ngspice on Ray (resumable)",
        description="Generate the first N circuits of the seeded OCB family stream, simulate every one not yet "
        "simulated with a pool of ngspice workers on Ray, and store circuits and results. Killed and re-run with "
        "the same arguments, it finishes the rest without duplicates; a larger --n extends the dataset.",
    )
    build.add_argument("--n", type=positive_int, required=True, help="number of circuits")
    build.add_argument("--seed", type=seed, default=0, help="seed of the family stream (default 0)")
    build.add_argument(
        "--name", help="dataset name (default: ocb-seed<SEED>, or ocb101-seed<SEED> for --preset ocb101)"
    )
    build.add_argument(
        "--preset",
        choices=("family", "ocb101"),
        default="family",
        help="family: every circuit of the documented OCB rules (default); ocb101: like the published "
        "Ckt-Bench-101, the best and worst OCB-FoM sizings of each topology's 20 (simulates 10x N circuits)",
    )
    build.add_argument(
        "--sizings-per-topology",
        type=positive_int,
        default=20,
        metavar="K",
        help="circuits sized on each random topology (default 20, CktGNN's K; at least 2 for --preset ocb101); "
        "fewer gives more topologies",
    )
    build.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 1, help="ngspice actors (default: CPU count)"
    )
    build.add_argument("--batch-size", type=positive_int, default=250, help="circuits per Ray call (default 250)")
    build.add_argument("--timeout", type=positive_float, default=60.0, help="seconds a Ray call may take (default 60)")
    build.add_argument("--address", type=ray_address, help="Ray cluster address to join (default: start a local Ray)")
    build.add_argument("--json", action="store_true", help="print the build report as JSON")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    db_option(build)
    build.set_defaults(run=_build)

    export = dataset_commands.add_parser(
        "export", help="write a dataset as JSON lines", description="One JSON object per circuit, in stream order."
    )
    export.add_argument(
        "--out", required=True, type=output_file_or_stdout, help="output file (.jsonl); '-' for standard output"
    )
    export.add_argument("--name", help="dataset name (default: the only dataset in the store)")
    db_option(export)
    export.set_defaults(run=_export)

    stats = dataset_commands.add_parser(
        "stats",
        help="distributions of a dataset beside the published OCB labels",
        description="Status counts, spec quantiles, and a side-by-side comparison with Ckt-Bench-101's published "
        "labels (two-sample KS distances) on the comparable quantities.",
    )
    stats.add_argument("--name", help="dataset name (default: the only dataset in the store)")
    stats.add_argument(
        "--ocb", type=input_file, help="published labels CSV (default: ../shared/data/ocb/perform101.csv)"
    )
    stats.add_argument("--plot", type=output_file, help="also write the distributions as a PNG")
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    db_option(stats)
    stats.set_defaults(run=_stats)

    listing = dataset_commands.add_parser("list", help="datasets in the store")
    db_option(listing)
    listing.set_defaults(run=_list)


def _build(args: argparse.Namespace) -> int:
    from orchestrator.distributed.runtime import ensure_ray

    if args.preset == "ocb101" and args.sizings_per_topology < OCB101_MIN_SIZINGS:
        raise CktLoopError(
            f"--preset ocb101 keeps the best and the worst sizing of each topology, so --sizings-per-topology "
            f"must be >= {OCB101_MIN_SIZINGS}, got {args.sizings_per_topology}"
        )
    if args.address:  # joined first, so a cluster that does not answer is an error before anything is stored
        ensure_ray(args.address)

    from circuits import FamilyConfig
    from orchestrator.datasets.build import build_dataset
    from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool

    name = args.name or (f"ocb101-seed{args.seed}" if args.preset == "ocb101" else f"ocb-seed{args.seed}")
    pool_config = PoolConfig(num_workers=args.workers, batch_size=args.batch_size, timeout_s=args.timeout)

    def pool_factory(config: PoolConfig) -> SimulationPool:
        ensure_ray(args.address, num_cpus=None if args.address else args.workers)
        return SimulationPool(config)

    with open_store(args.db) as store:
        report = build_dataset(
            store,
            args.n,
            args.seed,
            name,
            family=FamilyConfig(sizings_per_topology=args.sizings_per_topology),
            pool_config=pool_config,
            pool_factory=pool_factory,
            progress=not args.no_progress,
            preset=args.preset,
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())) or "none new"
    print(
        f"dataset {report.dataset}: {report.members} distinct circuits of {report.requested} requested; "
        f"{report.already_simulated} were already simulated, {report.simulated} simulated now ({statuses})"
    )
    if report.simulated:
        print(
            f"simulation: {report.simulate_s:.1f} s at {report.rate:.0f} simulations/s "
            f"with {args.workers} worker(s); Ray and workers started in {report.pool_start_s:.1f} s; "
            f"total {report.wall_s:.1f} s"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        name = dataset_name(store, args.name, "--name")
        rows = store.dataset_rows(name)
        if str(args.out) == STDIO:
            _write_rows(rows, sys.stdout)
            return 0
        tmp = args.out.with_name(args.out.name + ".part")
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w") as fh:
                count = _write_rows(rows, fh)
        except OSError as exc:
            raise CktLoopError(f"{args.out}: cannot write ({exc.strerror})") from None
    tmp.replace(args.out)
    print(f"wrote {count} circuits of dataset {name} to {args.out}", file=sys.stderr)
    return 0


def _write_rows(rows: Iterable[DatasetEntry], fh: Any) -> int:
    count = 0
    for row in rows:
        fh.write(json.dumps(row.to_dict(), separators=(",", ":")) + "\n")
        count += 1
    return count


def _stats(args: argparse.Namespace) -> int:
    from orchestrator.datasets.stats import default_ocb_path, render, stats

    with open_store(args.db) as store:
        name = dataset_name(store, args.name, "--name")
        rows = list(store.dataset_rows(name))
    ocb = args.ocb or default_ocb_path()
    if args.ocb is None and not ocb.exists():
        print(f"cktloop: note: {ocb} not found, so no comparison with OCB-101 (point --ocb at it)", file=sys.stderr)
        ocb = None
    result = stats(rows, ocb)
    result["dataset"] = name
    if args.plot:
        from orchestrator.datasets.stats import plot

        plot(result, args.plot)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    print(json.dumps(public, indent=2) if args.json else render(result))
    if args.plot:
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        datasets = store.datasets()
    if not datasets:
        print("no datasets")
    for d in datasets:
        print(json.dumps(asdict(d), default=str))
    return 0
