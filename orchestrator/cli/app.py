"""The ``cktloop`` command line. Every problem a user can fix ends as one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from circuits import Circuit, CircuitError, CktLoopError

EXIT_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.run(args) or 0)
    except CktLoopError as exc:
        print(f"cktloop: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cktloop: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    from storage import default_url

    parser = argparse.ArgumentParser(
        prog="cktloop",
        description="Specification-driven op-amp design: build SPICE-labelled datasets, train and evaluate the "
        "generator and the surrogate, design op-amps for target specs and run campaigns of many targets.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def db_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db",
            default=default_url(),
            metavar="URL",
            help="SQLAlchemy database URL (default: $CKTLOOP_DB or sqlite:///cktloop.db in the current directory); "
            "e.g. postgresql+psycopg://user@host/db",
        )

    dataset = commands.add_parser("dataset", help="build, export and summarise SPICE-labelled datasets")
    dataset_commands = dataset.add_subparsers(title="dataset commands", metavar="COMMAND")

    build = dataset_commands.add_parser(
        "build",
        help="generate OCB op-amps and simulate them with ngspice on Ray (resumable)",
        description="Generate the first N circuits of the seeded OCB family stream, simulate every one not yet "
        "simulated with a pool of ngspice workers on Ray, and store circuits and results. Killed and re-run with "
        "the same arguments, it finishes the rest without duplicates; a larger --n extends the dataset.",
    )
    build.add_argument("--n", type=_positive_int, required=True, help="number of circuits")
    build.add_argument("--seed", type=int, default=0, help="seed of the family stream (default 0)")
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
        type=_positive_int,
        default=20,
        metavar="K",
        help="circuits sized on each random topology (default 20, CktGNN's K); fewer gives more topologies",
    )
    build.add_argument(
        "--workers", type=_positive_int, default=os.cpu_count() or 1, help="ngspice actors (default: CPU count)"
    )
    build.add_argument("--batch-size", type=_positive_int, default=250, help="circuits per Ray call (default 250)")
    build.add_argument("--timeout", type=float, default=60.0, help="seconds a Ray call may take (default 60)")
    build.add_argument("--address", help="Ray cluster address to join (default: start a local Ray)")
    build.add_argument("--json", action="store_true", help="print the build report as JSON")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    db_option(build)
    build.set_defaults(run=_dataset_build)

    export = dataset_commands.add_parser(
        "export", help="write a dataset as JSON lines", description="One JSON object per circuit, in stream order."
    )
    export.add_argument("--out", required=True, type=Path, help="output file (.jsonl); '-' for standard output")
    export.add_argument("--name", help="dataset name (default: the only dataset in the store)")
    db_option(export)
    export.set_defaults(run=_dataset_export)

    stats = dataset_commands.add_parser(
        "stats",
        help="distributions of a dataset beside the published OCB labels",
        description="Status counts, spec quantiles, and a side-by-side comparison with Ckt-Bench-101's published "
        "labels (two-sample KS distances) on the comparable quantities.",
    )
    stats.add_argument("--name", help="dataset name (default: the only dataset in the store)")
    stats.add_argument("--ocb", type=Path, help="published labels CSV (default: ../shared/data/ocb/perform101.csv)")
    stats.add_argument("--plot", type=Path, help="also write the distributions as a PNG")
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    db_option(stats)
    stats.set_defaults(run=_dataset_stats)

    listing = dataset_commands.add_parser("list", help="datasets in the store")
    db_option(listing)
    listing.set_defaults(run=_dataset_list)

    simulate = commands.add_parser(
        "simulate",
        help="simulate one circuit with ngspice and print its specs as JSON",
        description="Read a circuit JSON file (or '-' for standard input; an exported JSON line works too) and print "
        "gain_db, ugbw_hz, pm_deg, fom and the status as JSON.",
    )
    simulate.add_argument("file", help="circuit JSON file")
    simulate.set_defaults(run=_simulate)

    netlist = commands.add_parser(
        "netlist",
        help="print a circuit's self-contained ngspice deck",
        description="Print the deck that `ngspice -b` runs: the AC sweep from 1 Hz to 100 GHz, H = V(out)/V(inp).",
    )
    netlist.add_argument("file", help="circuit JSON file (or '-' for standard input)")
    netlist.set_defaults(run=_netlist)

    train = commands.add_parser(
        "train",
        help="train the CktGen generator or the GIN surrogate (resumable)",
        description="Train from a dataset in the store (--db, --dataset) or a JSONL export (--data). Checkpoints, "
        "metrics.jsonl and metrics.png land in --out; run the same command again to resume after an interruption. "
        "A model trained from the store is registered there with its version, config and metrics.",
    )
    train.add_argument("model", choices=("generator", "surrogate"), help="which model")
    train.add_argument(
        "--config", required=True, type=Path, help="training config YAML (e.g. generator/configs/cpu.yaml)"
    )
    train.add_argument("--data", help="a JSONL export to train from instead of the store")
    train.add_argument("--dataset", help="dataset name in the store (default: the only dataset)")
    train.add_argument("--out", type=Path, help="output directory (default: runs/<model>)")
    train.add_argument("--fresh", action="store_true", help="start over instead of resuming from --out")
    db_option(train)
    train.set_defaults(run=_train)

    tune = commands.add_parser(
        "tune",
        help="search training knobs with Ray Tune and write the best config",
        description="Sample --trials configs from a small space of knobs (generator: lr, batch size, width; "
        "surrogate: lr, batch size, hidden width; see orchestrator/tune.py), train each from --config for "
        "--epochs with the same training loop as `cktloop train`, and rank them by the held-out figure "
        "(generator: test reconstruction loss; surrogate: test joint-class accuracy). Trials run side by side on Ray, "
        "--cpus-per-trial each. The best config (with the base config's epochs) lands in --out/best.yaml.",
    )
    tune.add_argument("model", choices=("generator", "surrogate"), help="which model")
    tune.add_argument("--config", required=True, type=Path, help="base training config YAML")
    tune.add_argument("--data", help="a JSONL export to train from instead of the store")
    tune.add_argument("--dataset", help="dataset name in the store (default: the only dataset)")
    tune.add_argument("--out", type=Path, help="output directory (default: runs/tune-<model>)")
    tune.add_argument("--trials", type=int, default=4, help="configs sampled (default 4)")
    tune.add_argument("--epochs", type=int, default=5, help="epochs per trial (default 5)")
    tune.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray CPUs per trial (default 1)")
    tune.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    tune.add_argument("--address", help="join this Ray cluster instead of starting a local Ray")
    db_option(tune)
    tune.set_defaults(run=_tune)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate the surrogate or the generator (the paper's metrics, plus ngspice-judged accuracy)",
        description="surrogate: joint-class and per-axis accuracy, FoM and spec regression errors against ngspice "
        "labels. cond-gen: the paper's conditional-generation metrics (Spec-Acc, R@1-3, MM-D, FID, diversity, "
        "validity) judged by the surrogate, and Sim-Spec-Acc judged by ngspice through the simulation pool. recon: "
        "Recon-Acc on test circuits. prior: validity, novelty and uniqueness of prior samples. Checkpoints default to "
        "the shipped ones (recon and prior: the reconstruction-only VAE, as in the paper); the data to a dataset in "
        "the store or a JSONL export.",
    )
    evaluate.add_argument("model", choices=("surrogate", "cond-gen", "recon", "prior"), help="what to evaluate")
    evaluate.add_argument(
        "--checkpoint",
        type=Path,
        help="surrogate or generator checkpoint (default: the shipped cpu checkpoint; recon and prior: the shipped "
        "VAE, generator/checkpoints/cktgen-vae-cpu.pt)",
    )
    evaluate.add_argument("--surrogate", type=Path, help="cond-gen: the judging surrogate (default: the shipped one)")
    evaluate.add_argument("--data", help="a JSONL export instead of the store")
    evaluate.add_argument("--dataset", help="dataset name in the store (default: the only dataset)")
    evaluate.add_argument("--split", default="test", help="surrogate: split to evaluate on (default test)")
    evaluate.add_argument(
        "--plot",
        type=Path,
        help="surrogate: also write a parity plot (PNG): predicted against ngspice gain, UGBW, PM and FoM, the "
        "class edges drawn, each point green where its class on that axis is right",
    )
    evaluate.add_argument("--rounds", type=_positive_int, default=120, help="cond-gen: rounds (default 120)")
    evaluate.add_argument(
        "--samples", type=_positive_int, default=1_000, help="prior: latent draws (default 1000, as the paper)"
    )
    evaluate.add_argument(
        "--decodes", type=_positive_int, default=10, help="prior: decodes per latent draw (default 10, as the paper)"
    )
    evaluate.add_argument(
        "--temperature",
        type=_non_negative_float,
        default=1.0,
        help="prior: temperature of the decoder's drawn choices (default 1; 0 decodes greedily, so use --decodes 1)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    evaluate.add_argument(
        "--sampling",
        choices=("bank", "spec"),  # orchestrator.design.search.SAMPLING (not imported: it pulls in pymoo)
        default="spec",
        help="cond-gen: the paper's spec latent (default) or around the training circuits of each class (bank)",
    )
    evaluate.add_argument(
        "--bank-noise",
        type=_non_negative_float,
        help="cond-gen --sampling bank: noise around a bank latent, in prior standard deviations (default 0.3, "
        "generator.latent_bank.BANK_NOISE)",
    )
    evaluate.add_argument(
        "--bank-values",
        choices=("clean", "noisy"),  # generator.predict.BANK_VALUES
        default="clean",
        help="cond-gen --sampling bank: device values from the unperturbed bank latent (clean, default) or the "
        "perturbed one (noisy)",
    )
    evaluate.add_argument("--no-sim", action="store_true", help="cond-gen: skip Sim-Spec-Acc (no ngspice, no Ray)")
    evaluate.add_argument("--workers", type=_positive_int, help="cond-gen: ngspice actors (default: CPU count)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    db_option(evaluate)
    evaluate.set_defaults(run=_evaluate)

    ship = commands.add_parser(
        "ship",
        help="copy a trained checkpoint without its resume state (to ship it), with the metrics it reached",
        description="Drop the optimiser, scheduler and RNG states (only resuming needs them) and attach the "
        "evaluation metrics (a JSON file, e.g. from `cktloop evaluate ... --json`).",
    )
    ship.add_argument("checkpoint", type=Path, help="trained checkpoint")
    ship.add_argument("--out", required=True, type=Path, help="where to write the shipped checkpoint")
    ship.add_argument("--metrics", type=Path, action="append", help="JSON metrics to attach (repeatable)")
    ship.set_defaults(run=_ship)

    bank = commands.add_parser(
        "bank",
        help="store the training circuits' latents in a generator checkpoint (for bank sampling)",
        description="Encode the training split a generator was trained on and store the latents with their "
        "spec classes in the checkpoint, so `--sampling bank` can decode around the circuits of a class. "
        "Training does this itself; use it on checkpoints made before the bank existed. The data must be the "
        "model's own training data (checked against the checkpoint's fingerprint).",
    )
    bank.add_argument("checkpoint", type=Path, help="generator checkpoint (training or shipped)")
    bank.add_argument("--data", help="a JSONL export instead of the store")
    bank.add_argument("--dataset", help="dataset name in the store (default: the only dataset)")
    bank.add_argument("--out", type=Path, help="write here instead of updating the checkpoint in place")
    db_option(bank)
    bank.set_defaults(run=_bank)

    from orchestrator.cli import design as campaign_cli

    campaign_cli.add_commands(commands, db_option)
    return parser


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def read_circuit(path: str) -> Circuit:
    """A circuit from a JSON file; an object with a ``circuit`` field (an export line) works too."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except FileNotFoundError:
        raise CircuitError(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise CircuitError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CircuitError(f"{path}: malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if isinstance(data, dict) and "circuit" in data and "nodes" not in data:
        data = data["circuit"]
    try:
        return Circuit.from_dict(data)
    except CircuitError as exc:
        raise CircuitError(f"{path}: {exc}") from None


def _open_store(url: str):  # type: ignore[no-untyped-def]
    from storage import Store

    return Store.open(url)


def _dataset_build(args: argparse.Namespace) -> int:
    from circuits import FamilyConfig
    from orchestrator.datasets.build import build_dataset
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.distributed.simulation_pool import PoolConfig

    store = _open_store(args.db)
    name = args.name or (f"ocb101-seed{args.seed}" if args.preset == "ocb101" else f"ocb-seed{args.seed}")
    pool_config = PoolConfig(num_workers=args.workers, batch_size=args.batch_size, timeout_s=args.timeout)

    def pool_factory(config: PoolConfig):  # type: ignore[no-untyped-def]
        from orchestrator.distributed.simulation_pool import SimulationPool

        ensure_ray(args.address, num_cpus=None if args.address else args.workers)
        return SimulationPool(config)

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
    else:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())) or "none new"
        print(
            f"dataset {report.dataset}: {report.members} distinct circuits of {report.requested} requested; "
            f"{report.already_simulated} were already "
            f"simulated, {report.simulated} simulated now ({statuses})"
        )
        if report.simulated:
            print(
                f"simulation: {report.simulate_s:.1f} s at {report.rate:.0f} simulations/s "
                f"with {args.workers} worker(s); Ray and workers started in {report.pool_start_s:.1f} s; "
                f"total {report.wall_s:.1f} s"
            )
    return 0


def _dataset_name(store, name: str | None, option: str) -> str:  # type: ignore[no-untyped-def]
    """``name``, or the store's only dataset; ``option`` is the flag that names one, for the error."""
    if name:
        return name
    names = [d["name"] for d in store.datasets()]
    if len(names) == 1:
        return str(names[0])
    if not names:
        raise CktLoopError("the store holds no dataset yet: run `cktloop dataset build --n N` first")
    raise CktLoopError(f"the store holds several datasets ({', '.join(names)}): choose one with {option}")


def _dataset_export(args: argparse.Namespace) -> int:
    store = _open_store(args.db)
    name = _dataset_name(store, args.name, "--name")
    rows = store.dataset_rows(name)
    if str(args.out) == "-":
        count = _write_rows(rows, sys.stdout)
    else:
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


def _write_rows(rows, fh) -> int:  # type: ignore[no-untyped-def]
    count = 0
    for row in rows:
        fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        count += 1
    return count


def _dataset_stats(args: argparse.Namespace) -> int:
    from orchestrator.datasets.stats import default_ocb_path, render, stats

    store = _open_store(args.db)
    name = _dataset_name(store, args.name, "--name")
    ocb = args.ocb or default_ocb_path()
    if args.ocb is None and not ocb.exists():
        print(f"cktloop: note: {ocb} not found, so no comparison with OCB-101 (point --ocb at it)", file=sys.stderr)
        ocb = None
    result = stats(list(store.dataset_rows(name)), ocb)
    result["dataset"] = name
    if args.plot:
        from orchestrator.datasets.stats import plot

        plot(result, args.plot)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    print(json.dumps(public, indent=2) if args.json else render(result))
    if args.plot:
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def _dataset_list(args: argparse.Namespace) -> int:
    store = _open_store(args.db)
    datasets = store.datasets()
    if not datasets:
        print("no datasets")
    for d in datasets:
        print(json.dumps(d, default=str))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from simulator.ngspice import NgspiceBackend

    circuit = read_circuit(args.file)
    (result,) = NgspiceBackend().simulate([circuit])
    print(json.dumps({"id": circuit.key, **result.to_dict()}, indent=2))
    return 0


def _data_source(args: argparse.Namespace) -> tuple[str, str | None]:
    """The rows to train or evaluate on: an export file, or a dataset in the store."""
    if args.data:
        return args.data, None
    return args.db, _dataset_name(_open_store(args.db), args.dataset, "--dataset")


def _train(args: argparse.Namespace) -> int:
    source, dataset = _data_source(args)
    out = args.out or Path("runs") / args.model
    if args.model == "generator":
        from generator.train import train as train_generator

        result = train_generator(args.config, source, dataset, out, resume=not args.fresh)
        version, checkpoint, metrics = result.version, result.checkpoint, dict(result.last or {})
        metrics["validity"] = result.validity
    else:
        from surrogate.train import train as train_surrogate

        metrics = train_surrogate(args.config, source, dataset, out, resume=not args.fresh)
        version, checkpoint = metrics.pop("version"), metrics.pop("checkpoint")
    if dataset is not None:
        import yaml

        config = yaml.safe_load(args.config.read_text())
        _open_store(args.db).register_model(args.model, version, Path(checkpoint).resolve(), config, metrics)
    print(
        f"{args.model} {version}: checkpoint {checkpoint}, metrics {out / 'metrics.jsonl'}, plot {out / 'metrics.png'}"
    )
    return 0


def _tune(args: argparse.Namespace) -> int:
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.distributed.tune import check_request, markdown_table, tune_model

    check_request(args.model, args.config, args.trials, args.epochs)
    source, dataset = _data_source(args)
    ensure_ray(args.address)
    out = args.out or Path("runs") / f"tune-{args.model}"
    result = tune_model(
        args.model, args.config, source, dataset, out, args.trials, args.epochs, args.cpus_per_trial, args.seed
    )
    print(markdown_table(result))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    source, dataset = _data_source(args)
    if args.model == "surrogate":
        from surrogate.evaluate import evaluate, markdown_table
        from surrogate.predict import SHIPPED_CHECKPOINT

        metrics = evaluate(args.checkpoint or SHIPPED_CHECKPOINT, source, dataset, split=args.split, plot=args.plot)
        print(json.dumps(metrics, indent=2, default=str) if args.json else markdown_table(metrics))
        if args.plot:
            print(f"parity plot written to {args.plot}", file=sys.stderr)
        return 0
    if args.plot:
        raise CktLoopError(f"--plot draws the surrogate's parity plot; evaluate {args.model} has none")
    from generator import evaluate as gen_eval
    from generator.data import build_splits
    from generator.latent_bank import BANK_NOISE
    from generator.predict import SHIPPED_CHECKPOINT, VAE_CHECKPOINT, Generator
    from storage.rows import load_rows

    shipped = VAE_CHECKPOINT if args.model in ("recon", "prior") else SHIPPED_CHECKPOINT
    generator = Generator.load(args.checkpoint or shipped)
    bank_noise = BANK_NOISE if args.bank_noise is None else args.bank_noise
    splits = build_splits(load_rows(source, dataset), generator.spec_classes)
    if args.model == "recon":
        metrics, title = gen_eval.recon(generator, splits), "reconstruction"
    elif args.model == "prior":
        metrics, title = (
            gen_eval.prior(
                generator, splits, n=args.samples, seed=args.seed, decodes=args.decodes, temperature=args.temperature
            ),
            "prior sampling",
        )
    else:
        from surrogate.predict import SHIPPED_CHECKPOINT as SURROGATE_CHECKPOINT
        from surrogate.predict import Surrogate

        surrogate = Surrogate.load(args.surrogate or SURROGATE_CHECKPOINT, device=generator.model.device)
        pool = None if args.no_sim else _simulation_pool(args.workers)
        try:
            simulate = None if pool is None else pool.simulate_all
            metrics = gen_eval.cond_gen(
                generator,
                surrogate,
                splits,
                args.rounds,
                args.seed,
                simulate,
                args.sampling,
                bank_noise,
                args.bank_values,
            )
        finally:
            if pool is not None:
                pool.shutdown()
        title = "conditional generation"
    print(json.dumps(metrics, indent=2, default=str) if args.json else gen_eval.markdown_table(title, metrics))
    return 0


def _bank(args: argparse.Namespace) -> int:
    from generator.train import bank_checkpoint

    source, dataset = _data_source(args)
    bank = bank_checkpoint(args.checkpoint, source, dataset, args.out)
    print(f"banked {len(bank)} training latents in {args.out or args.checkpoint}")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from surrogate.checkpoint import ship

    metrics: dict = {}
    for path in args.metrics or []:
        try:
            metrics[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CktLoopError(f"{path}: cannot read metrics JSON ({exc})") from None
    size = ship(args.checkpoint, args.out, metrics or None)
    print(f"shipped {args.checkpoint} to {args.out} ({size / 1e6:.1f} MB)")
    return 0


def _simulation_pool(workers: int | None, address: str | None = None):  # type: ignore[no-untyped-def]
    """A pool of ngspice actors on a local Ray (or the cluster at ``address``)."""
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool

    ensure_ray(address)
    return SimulationPool(PoolConfig(num_workers=workers or os.cpu_count() or 1))


def _netlist(args: argparse.Namespace) -> int:
    from simulator.netlist import deck

    sys.stdout.write(deck(read_circuit(args.file)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
