"""``cktloop finetune surrogate``: fine-tune the surrogate on the store's verified simulations."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from orchestrator.cli.options import db_option, input_file, non_negative_float, output_dir, positive_int, seed

DEFAULT_OUT = Path("runs") / "finetune"


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
    p.add_argument("--dataset", default="ocb101-seed0", help="replay and no-forgetting dataset (default ocb101-seed0)")
    training_options(p)
    p.add_argument("--seed", type=seed, default=0, help="training seed (0)")
    p.add_argument("--out", type=output_dir, help=f"run folder (default: under {DEFAULT_OUT}, one per request)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    db_option(p)
    p.set_defaults(run=_finetune_surrogate)


def training_options(p: argparse.ArgumentParser) -> None:
    """The fine-tune's knobs (shared with ``cktloop loop``)."""
    p.add_argument("--replay-ratio", type=non_negative_float, default=2.0, help="replay rows per verified row (2)")
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


def _default_out(args: argparse.Namespace, config: Any, last_candidate: int) -> Path:
    """One folder per request (store, rows, config) and store state, so a killed run's re-run finds it."""
    blob = json.dumps([args.db, sorted(set(args.campaign)), args.since, config.to_dict()], sort_keys=True)
    return DEFAULT_OUT / f"surrogate-{hashlib.sha256(blob.encode()).hexdigest()[:10]}-c{last_candidate}"


def _finetune_surrogate(args: argparse.Namespace) -> int:
    from storage import Store
    from surrogate.finetune import finetune

    config = training_config(args, args.base)
    with Store.open(args.db) as store:
        out = args.out or _default_out(args, config, store.last_candidate_id())
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
