"""``cktloop train|tune|evaluate|bank|ship`` (and ``models``, in promotions.py): the generator's and the surrogate's
life cycle."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from circuits import CktLoopError
from generator.sampling import BANK_VALUES, SAMPLING
from orchestrator.cli.options import (
    db_option,
    input_file,
    non_negative_float,
    output_dir,
    output_file,
    positive_float,
    positive_int,
    ray_address,
    seed,
)
from orchestrator.cli.sources import data_source, open_store

MODELS = ("generator", "surrogate")


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=input_file, help="a JSONL export instead of the store")
    p.add_argument("--dataset", help="dataset name in the store (default: the only dataset)")
    db_option(p)


def add_commands(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train the CktGen generator or the GIN surrogate (resumable)",
        description="Train from a dataset in the store (--db, --dataset) or a JSONL export (--data). Checkpoints, "
        "metrics.jsonl and metrics.png land in --out; run the same command again to resume after an interruption. "
        "A model trained from the store is registered there with its version, config and metrics.",
    )
    train.add_argument("model", choices=MODELS, help="which model")
    train.add_argument(
        "--config", required=True, type=input_file, help="training config YAML (e.g. generator/configs/cpu.yaml)"
    )
    train.add_argument("--out", type=output_dir, help="output directory (default: runs/<model>)")
    train.add_argument("--fresh", action="store_true", help="start over instead of resuming from --out")
    _data_options(train)
    train.set_defaults(run=_train)

    tune = commands.add_parser(
        "tune",
        help="search training knobs with Ray Tune and write the best config",
        description="Sample --trials configs from a small space of knobs (generator: lr, batch size, width; "
        "surrogate: lr, batch size, hidden width; see orchestrator/distributed/tune.py), train each from --config "
        "for --epochs with the same training loop as `cktloop train`, and rank them by the held-out figure "
        "(generator: test reconstruction loss; surrogate: test joint-class accuracy). Trials run side by side on Ray, "
        "--cpus-per-trial each. The best config (with the base config's epochs) lands in --out/best.yaml.",
    )
    tune.add_argument("model", choices=MODELS, help="which model")
    tune.add_argument("--config", required=True, type=input_file, help="base training config YAML")
    tune.add_argument("--out", type=output_dir, help="output directory (default: runs/tune-<model>)")
    tune.add_argument("--trials", type=positive_int, default=4, help="configs sampled (default 4)")
    tune.add_argument("--epochs", type=positive_int, default=5, help="epochs per trial (default 5)")
    tune.add_argument("--cpus-per-trial", type=positive_float, default=1.0, help="Ray CPUs per trial (default 1)")
    tune.add_argument("--seed", type=seed, default=0, help="sampling seed (default 0)")
    tune.add_argument("--address", type=ray_address, help="join this Ray cluster instead of starting a local Ray")
    _data_options(tune)
    tune.set_defaults(run=_tune)

    _add_evaluate(commands)

    ship = commands.add_parser(
        "ship",
        help="copy a trained checkpoint without its resume state (to ship it), with the metrics it reached",
        description="Drop the optimiser, scheduler and RNG states (only resuming needs them) and attach the "
        "evaluation metrics (a JSON file, e.g. from `cktloop evaluate ... --json`).",
    )
    ship.add_argument("checkpoint", type=input_file, help="trained checkpoint")
    ship.add_argument("--out", required=True, type=output_file, help="where to write the shipped checkpoint")
    ship.add_argument("--metrics", type=input_file, action="append", help="JSON metrics to attach (repeatable)")
    ship.set_defaults(run=_ship)

    bank = commands.add_parser(
        "bank",
        help="store the training circuits' latents in a generator checkpoint (for bank sampling)",
        description="Encode the training split a generator was trained on and store the latents with their "
        "spec classes in the checkpoint, so `--sampling bank` can decode around the circuits of a class. "
        "Training does this itself; use it on checkpoints made before the bank existed. The data must be the "
        "model's own training data (checked against the checkpoint's fingerprint).",
    )
    bank.add_argument("checkpoint", type=input_file, help="generator checkpoint (training or shipped)")
    bank.add_argument("--out", type=output_file, help="write here instead of updating the checkpoint in place")
    _data_options(bank)
    bank.set_defaults(run=_bank)

    from orchestrator.cli import promotions

    promotions.add_commands(commands)  # cktloop models promote|rollback|promoted


def _add_evaluate(commands: Any) -> None:
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
        type=input_file,
        help="surrogate or generator checkpoint (default: the shipped cpu checkpoint; recon and prior: the shipped "
        "VAE, generator/checkpoints/cktgen-vae-cpu.pt)",
    )
    evaluate.add_argument(
        "--surrogate", type=input_file, help="cond-gen: the judging surrogate (default: the shipped one)"
    )
    evaluate.add_argument(
        "--split", choices=("train", "test"), default="test", help="surrogate: split to evaluate on (default test)"
    )
    evaluate.add_argument(
        "--plot",
        type=output_file,
        help="surrogate: also write a parity plot (PNG): predicted against ngspice gain, UGBW, PM and FoM, the "
        "class edges drawn, each point green where its class on that axis is right",
    )
    evaluate.add_argument("--rounds", type=positive_int, default=120, help="cond-gen: rounds (default 120)")
    evaluate.add_argument(
        "--samples", type=positive_int, default=1_000, help="prior: latent draws (default 1000, as the paper)"
    )
    evaluate.add_argument(
        "--decodes", type=positive_int, default=10, help="prior: decodes per latent draw (default 10, as the paper)"
    )
    evaluate.add_argument(
        "--temperature",
        type=non_negative_float,
        default=1.0,
        help="prior: temperature of the decoder's drawn choices (default 1; 0 decodes greedily, so use --decodes 1)",
    )
    evaluate.add_argument("--seed", type=seed, default=0, help="sampling seed (default 0)")
    evaluate.add_argument(
        "--sampling",
        choices=SAMPLING,
        default="spec",
        help="cond-gen: the paper's spec latent (default) or around the training circuits of each class (bank)",
    )
    evaluate.add_argument(
        "--bank-noise",
        type=non_negative_float,
        help="cond-gen --sampling bank: noise around a bank latent, in prior standard deviations (default 0.3, "
        "generator.sampling.BANK_NOISE)",
    )
    evaluate.add_argument(
        "--bank-values",
        choices=BANK_VALUES,
        default="clean",
        help="cond-gen --sampling bank: device values from the unperturbed bank latent (clean, default) or the "
        "perturbed one (noisy)",
    )
    evaluate.add_argument("--no-sim", action="store_true", help="cond-gen: skip Sim-Spec-Acc (no ngspice, no Ray)")
    evaluate.add_argument("--workers", type=positive_int, help="cond-gen: ngspice actors (default: CPU count)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _data_options(evaluate)
    evaluate.set_defaults(run=_evaluate)


def _train(args: argparse.Namespace) -> int:
    from circuits.config import read_yaml
    from surrogate.data import NoTrainingRows

    source, dataset = data_source(args)
    out = args.out or Path("runs") / args.model
    made = _missing_folders(out)
    try:
        version, checkpoint, metrics = _train_model(args, source, dataset, out)
    except NoTrainingRows as exc:
        _remove_empty(made)
        raise CktLoopError(f"{_named(source, dataset)}: {exc}") from None
    except BaseException:
        _remove_empty(made)  # a run that failed before writing anything leaves no empty --out behind
        raise
    if dataset is not None:
        config = read_yaml(args.config)
        with open_store(args.db) as store:
            store.register_model(args.model, version, Path(checkpoint).resolve(), config, metrics)
    print(
        f"{args.model} {version}: checkpoint {checkpoint}, metrics {out / 'metrics.jsonl'}, plot {out / 'metrics.png'}"
    )
    return 0


def _train_model(args: argparse.Namespace, source: str, dataset: str | None, out: Path) -> tuple[str, str, dict]:
    """Train (or resume) ``args.model`` into ``out``: its version, checkpoint path and last metrics."""
    if args.model == "generator":
        from generator.train import train as train_generator

        result = train_generator(args.config, source, dataset, out, resume=not args.fresh)
        metrics = dict(result.last or {})
        metrics["validity"] = result.validity
        return result.version, str(result.checkpoint), metrics
    from surrogate.train import train as train_surrogate

    metrics = train_surrogate(args.config, source, dataset, out, resume=not args.fresh)
    return metrics.pop("version"), str(metrics.pop("checkpoint")), metrics


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that exist and are empty; stop at the first that is not."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def _tune(args: argparse.Namespace) -> int:
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.distributed.tune import check_request, markdown_table, tune_model
    from storage.rows import load_rows

    check_request(args.model, args.config, args.trials, args.epochs)
    source, dataset = data_source(args)
    if not load_rows(source, dataset):  # read once here: a bad file fails now, not in every trial on Ray
        raise CktLoopError(f"{_named(source, dataset)}: no rows to tune on")
    ensure_ray(args.address)
    out = args.out or Path("runs") / f"tune-{args.model}"
    result = tune_model(
        args.model, args.config, source, dataset, out, args.trials, args.epochs, args.cpus_per_trial, args.seed
    )
    print(markdown_table(result))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.plot and args.model != "surrogate":
        raise CktLoopError(f"--plot draws the surrogate's parity plot; evaluate {args.model} has none")
    source, dataset = data_source(args)
    if args.model == "surrogate":
        from surrogate.evaluate import evaluate, markdown_table
        from surrogate.predict import SHIPPED_CHECKPOINT

        metrics = evaluate(args.checkpoint or SHIPPED_CHECKPOINT, source, dataset, split=args.split, plot=args.plot)
        if metrics["n"] == 0:
            raise CktLoopError(f"{_named(source, dataset)}: no usable {args.split} rows to evaluate the surrogate on")
        print(json.dumps(metrics, indent=2, default=str) if args.json else markdown_table(metrics))
        if args.plot:
            print(f"parity plot written to {args.plot}", file=sys.stderr)
        return 0
    from generator import evaluate as gen_eval
    from generator.data import build_splits
    from generator.predict import SHIPPED_CHECKPOINT, VAE_CHECKPOINT, Generator
    from storage.rows import load_rows

    shipped = VAE_CHECKPOINT if args.model in ("recon", "prior") else SHIPPED_CHECKPOINT
    generator = Generator.load(args.checkpoint or shipped)
    splits = build_splits(load_rows(source, dataset), generator.spec_classes)
    if args.model in ("recon", "cond-gen") and not splits.test_circuits:
        dropped = ", ".join(f"{k} {v}" for k, v in splits.dropped.items() if v) or "none dropped"
        raise CktLoopError(f"{_named(source, dataset)}: no usable test rows to evaluate {args.model} on ({dropped})")
    if args.model == "recon":
        metrics, title = gen_eval.recon(generator, splits), "reconstruction"
    elif args.model == "prior":
        metrics = gen_eval.prior(
            generator, splits, n=args.samples, seed=args.seed, decodes=args.decodes, temperature=args.temperature
        )
        title = "prior sampling"
    else:
        metrics, title = _cond_gen(args, generator, splits), "conditional generation"
    print(json.dumps(metrics, indent=2, default=str) if args.json else gen_eval.markdown_table(title, metrics))
    return 0


def _named(source: str, dataset: str | None) -> str:
    """The data a command read, as the user named it: a file, or a dataset in a store."""
    return source if dataset is None else f"dataset {dataset!r}"


def _cond_gen(args: argparse.Namespace, generator: Any, splits: Any) -> dict[str, Any]:
    """The paper's conditional-generation metrics, with Sim-Spec-Acc from an ngspice pool unless --no-sim."""
    from generator import evaluate as gen_eval
    from generator.sampling import BANK_NOISE, Sampling
    from surrogate.predict import SHIPPED_CHECKPOINT, Surrogate

    surrogate = Surrogate.load(args.surrogate or SHIPPED_CHECKPOINT, device=generator.model.device)
    bank_noise = BANK_NOISE if args.bank_noise is None else args.bank_noise
    pool = None if args.no_sim else _simulation_pool(args.workers)
    try:
        return gen_eval.cond_gen(
            generator,
            surrogate,
            splits,
            args.rounds,
            args.seed,
            None if pool is None else pool.simulate_all,
            Sampling(args.sampling, bank_noise, args.bank_values),
        )
    finally:
        if pool is not None:
            pool.shutdown()


def _simulation_pool(workers: int | None) -> Any:
    """A pool of ngspice actors on a local Ray."""
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool

    ensure_ray()
    return SimulationPool(PoolConfig(num_workers=workers or os.cpu_count() or 1))


def _bank(args: argparse.Namespace) -> int:
    from generator.train import bank_checkpoint

    source, dataset = data_source(args)
    bank = bank_checkpoint(args.checkpoint, source, dataset, args.out)
    print(f"banked {len(bank)} training latents in {args.out or args.checkpoint}")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from surrogate.training.checkpoints import ship

    metrics: dict[str, Any] = {}
    for path in args.metrics or []:
        try:
            metrics[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CktLoopError(f"{path}: cannot read metrics JSON ({exc})") from None
    size = ship(args.checkpoint, args.out, metrics or None)
    print(f"shipped {args.checkpoint} to {args.out} ({size / 1e6:.1f} MB)")
    return 0
