"""``cktloop finetune surrogate|generator|bank``: fine-tune the surrogate or the generator on the store's
verified simulations, or add the circuits that met their targets to a generator's latent bank."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli.options import (
    db_option,
    input_file,
    non_negative_float,
    output_dir,
    positive_float,
    positive_int,
    seed,
)

DEFAULT_OUT = Path("runs") / "finetune"


def _quiet_stdout(json_out: bool) -> contextlib.AbstractContextManager[Any]:
    """With --json, the training's lines per epoch go to stderr, so stdout holds the one JSON object."""
    return contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext()


def _fraction(text: str) -> float:
    """A share strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def add_commands(commands: Any) -> None:
    finetune = commands.add_parser("finetune", help="fine-tune a model on the store's verified simulations")
    sub = finetune.add_subparsers(title="models", metavar="MODEL", required=True)
    p = sub.add_parser(
        "surrogate",
        help="fine-tune the surrogate (an ensemble) on verified campaign candidates, with dataset replay",
        description="Train copies of the surrogate (default: the shipped design one) on the campaign candidates "
        "ngspice measured ok, each circuit once, mixed with replay rows from the dataset's training split. A "
        "stable hash of each circuit's key holds a share of them out; the new model is judged there and on the "
        "dataset's test split, beside its parent, and registered in the store with its parent version, the "
        "fingerprint of its rows and those metrics. Killed and re-run, it resumes (same --out).",
    )
    p.add_argument(
        "--campaign",
        action="append",
        default=[],
        metavar="NAME",
        help="train on this campaign (repeat; default: every campaign)",
    )
    p.add_argument("--since", metavar="VERSION", help="only candidates newer than those the registered VERSION used")
    p.add_argument("--base", type=input_file, help="parent checkpoint (default: the shipped design surrogate)")
    p.add_argument("--dataset", default="ocb101-seed0", help="the no-forgetting check's dataset (default ocb101-seed0)")
    training_options(p)
    p.add_argument("--seed", type=seed, default=0, help="training seed (0)")
    p.add_argument("--out", type=output_dir, help=f"run folder (default: under {DEFAULT_OUT}, one per request)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    db_option(p)
    p.set_defaults(run=_finetune_surrogate)
    _generator_commands(sub)


def training_options(p: argparse.ArgumentParser) -> None:
    """The fine-tune's knobs (shared with ``cktloop loop``)."""
    replay = "replay rows per verified row, from each dataset replayed (4)"
    p.add_argument("--replay-ratio", type=non_negative_float, default=4.0, help=replay)
    p.add_argument(
        "--replay-dataset",
        metavar="NAME|all",
        default="all",
        help="whose training split the replay rows come from: every dataset in the store (all, default) or the "
        "one named; never a circuit of any dataset's held-out split",
    )
    earlier = "with --since (and in the loop): verified rows from before VERSION replayed per new row (1)"
    p.add_argument("--earlier-ratio", type=non_negative_float, default=1.0, help=earlier)
    p.add_argument("--holdout", type=_fraction, default=0.2, help="share of verified circuits held out (0.2)")
    p.add_argument("--members", type=positive_int, default=3, help="ensemble members (3; 1: no uncertainty)")
    p.add_argument("--epochs", type=positive_int, default=6, help="epochs per member (6)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (1)")


def training_config(args: argparse.Namespace, base: Path | str | None) -> Any:
    """A ``FinetuneConfig`` from ``training_options`` and ``--dataset``/``--seed``/``--no-progress``."""
    from surrogate.finetune import FinetuneConfig

    options = {
        "dataset": args.dataset,
        "replay_ratio": args.replay_ratio,
        "replay": args.replay_dataset,
        "earlier_ratio": args.earlier_ratio,
        "holdout_fraction": args.holdout,
        "members": args.members,
        "epochs": args.epochs,
        "seed": args.seed,
        "threads": args.threads,
        "progress": not args.no_progress,
    }
    if base is not None:
        options["base"] = str(Path(base).resolve())
    return FinetuneConfig(**options)


def _default_out(args: argparse.Namespace, config: Any, last_candidate: int, kind: str = "surrogate") -> Path:
    """One folder per request (store, rows, config) and store state, so a killed run's re-run finds it."""
    blob = json.dumps([args.db, sorted(set(args.campaign)), args.since, config.to_dict()], sort_keys=True)
    return DEFAULT_OUT / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}-c{last_candidate}"


def _finetune_surrogate(args: argparse.Namespace) -> int:
    from storage import Store
    from surrogate.finetune import finetune

    config = training_config(args, args.base)
    with Store.open(args.db) as store:
        out = args.out or _default_out(args, config, store.last_candidate_id())
        with _quiet_stdout(args.json):
            result = finetune(store, out, args.campaign, args.since, config)
    if args.json:
        print(json.dumps(result))
        return 0
    rows = result["rows"]
    print(f"registered surrogate {result['version']} (parent {result['parent_version']}) at {result['checkpoint']}")
    print(f"rows: {rows['n_train']} verified + {rows['n_replay']} replay trained on, {rows['n_heldout']} held out")
    print(_table(result["metrics"]))
    return 0


def _table(metrics: dict[str, Any]) -> str:
    lines = ["| figure | parent | new |", "|---|---|---|"]
    for part, names in (
        ("heldout", ("ugbw_mae_dec", "pm_mae_deg", "gain_mae_db", "fom_mae", "fom_spearman")),
        ("dataset_test", ("joint_acc", "ugbw_mae_dec", "pm_mae_deg", "gain_mae_db", "fom_mae")),
    ):
        for name in names:
            old, new = metrics[f"parent_{part}"].get(name), metrics[part].get(name)
            if old is not None and new is not None:
                lines.append(f"| {part} {name} | {old:.4g} | {new:.4g} |")
    return "\n".join(lines)


def _store_rows_options(p: argparse.ArgumentParser, what: str) -> None:
    """--campaign/--since/--base/--dataset/--holdout and the held-out metrics' knobs (generator and bank)."""
    p.add_argument(
        "--campaign", action="append", default=[], metavar="NAME", help="read this campaign (repeat; default: all)"
    )
    p.add_argument(
        "--since", metavar="VERSION", help="only candidates newer than those the registered generator VERSION read"
    )
    p.add_argument("--base", type=input_file, help="parent generator checkpoint (default: the shipped design one)")
    p.add_argument("--dataset", default="ocb101-seed0", help=f"{what} (default ocb101-seed0)")
    p.add_argument("--holdout", type=_fraction, default=0.2, help="share of the circuits held out to judge on (0.2)")
    p.add_argument("--judge", type=input_file, help="surrogate judging class conditioning (default: the shipped one)")
    p.add_argument("--eval-rounds", type=positive_int, default=10, help="circuits generated per held-out class (10)")
    p.add_argument("--seed", type=seed, default=0, help="seed (0)")
    p.add_argument("--out", type=output_dir, help=f"run folder (default: under {DEFAULT_OUT}, one per request)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    db_option(p)


def _generator_commands(sub: Any) -> None:
    p = sub.add_parser(
        "generator",
        help="fine-tune the generator on verified candidates of the classes the campaigns asked for, with replay",
        description="Train the generator (default: the shipped design one) on the campaign candidates ngspice "
        "measured ok whose measured class is one the campaigns' targets ask for, labelled with that class, mixed "
        "with replay rows from the dataset's training split; its latent bank is then re-encoded from the same "
        "circuits. A stable hash of each circuit's key holds a share out; the new version is judged there "
        "(validity, class conditioning by the judge surrogate, new topologies, reconstruction loss) beside its "
        "parent and registered in the store with its parent version and the fingerprint of its rows. Killed "
        "and re-run, it resumes (same --out).",
    )
    _store_rows_options(p, "replay rows (its training split) and the bank's circuits")
    p.add_argument("--replay-ratio", type=non_negative_float, default=1.0, help="replay rows per verified row (1)")
    earlier = "with --since: verified rows from before VERSION replayed per new row (1)"
    p.add_argument("--earlier-ratio", type=non_negative_float, default=1.0, help=earlier)
    p.add_argument("--epochs", type=positive_int, default=3, help="epochs (3)")
    p.add_argument("--lr", type=positive_float, default=3e-4, help="peak learning rate, cosine decay (3e-4)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_finetune_generator)

    b = sub.add_parser(
        "bank",
        help="add the verified circuits that met their targets to a generator's latent bank (no training)",
        description="Encode the campaign candidates that met a target they were proposed for (measured ok inside "
        "every bound) with the generator's encoder and add them to its latent bank under their measured class: "
        "the same weights, a larger bank, a new version registered in the store with its parent. A stable hash "
        "of each key holds a share of them out to judge the result on beside its parent.",
    )
    _store_rows_options(b, "whose training split new topologies are counted against")
    b.set_defaults(run=_refresh_bank)


def _options(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    options = {name: getattr(args, name) for name in names}
    options.update(dataset=args.dataset, holdout_fraction=args.holdout, seed=args.seed, eval_rounds=args.eval_rounds)
    for key in ("base", "judge"):
        if getattr(args, key) is not None:
            options[key] = str(Path(getattr(args, key)).resolve())
    return options


def _finetune_generator(args: argparse.Namespace) -> int:
    from generator.finetune import GeneratorFinetuneConfig, finetune
    from storage import Store

    options = _options(args, "replay_ratio", "earlier_ratio", "epochs", "lr", "threads")
    config = GeneratorFinetuneConfig(**options, progress=not args.no_progress)
    with Store.open(args.db) as store:
        out = args.out or _default_out(args, config, store.last_candidate_id(), "generator")
        with _quiet_stdout(args.json):
            result = finetune(store, out, args.campaign, args.since, config)
    rows = result["rows"]
    return _report(args, result, f"{rows['n_train']} verified + {rows['n_replay']} replay trained on")


def _refresh_bank(args: argparse.Namespace) -> int:
    from generator.refresh import RefreshConfig, refresh
    from storage import Store

    config = RefreshConfig(**_options(args))
    with Store.open(args.db) as store:
        out = args.out or _default_out(args, config, store.last_candidate_id(), "bank")
        with _quiet_stdout(args.json):
            result = refresh(store, out, args.campaign, args.since, config)
    bank = result["metrics"]["bank"]
    return _report(args, result, f"{bank['added']} met circuits added (bank of {bank['size']})")


def _report(args: argparse.Namespace, result: dict[str, Any], what: str) -> int:
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"registered generator {result['version']} (parent {result['parent_version']}) at {result['checkpoint']}")
    print(f"rows: {what}, {result['rows']['n_heldout']} held out")
    metrics = result["metrics"]
    lines = ["| held-out figure | parent | new |", "|---|---|---|"]
    for name in ("spec_acc", "novel_topologies", "validity", "validity_free_decoder", "recon_loss"):
        old, new = metrics["parent_heldout"].get(name), metrics["heldout"].get(name)
        if old is not None and new is not None:
            lines.append(f"| {name} | {old:.4g} | {new:.4g} |")
    print("\n".join(lines))
    return 0
