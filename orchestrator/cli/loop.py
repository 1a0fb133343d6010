"""``cktloop loop``: rounds of fresh targets, campaign, scoring, fine-tuning and a promotion gate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from circuits import CktLoopError
from orchestrator.cli.design import _progress_bar, _search_options, _settings
from orchestrator.cli.finetune import training_config, training_options
from orchestrator.cli.options import output_dir, positive_float, positive_int

DEFAULT_OUT = Path("runs") / "loop"


def add_commands(commands: Any) -> None:
    p = commands.add_parser(
        "loop",
        help="closed-loop refinement: rounds of fresh targets, a campaign, fine-tuning and a promotion gate",
        description="Each round draws --n fresh targets (as 'cktloop campaign draw' does; window targets around "
        "dataset circuits no earlier round used), runs them as campaign NAME-rK with the current surrogate, "
        "scores that surrogate on the round's verified candidates it never trained on, fine-tunes it on the "
        "loop's verified rows (earlier rounds' rows and dataset rows replayed) and promotes the new version "
        "only if it beats its parent on the new held-out rows and stays within --gate-points of the starting "
        "surrogate on the dataset's held-out split. The next round uses the promoted version. Killed at any "
        "point, the same command resumes (same --out).",
    )
    p.add_argument("--draw", choices=("window", "paper"), default="window", help="kind of targets (default window)")
    p.add_argument("--n", type=positive_int, default=100, help="targets per round (default 100)")
    p.add_argument("--rounds", type=positive_int, default=5, help="rounds (default 5)")
    p.add_argument("--name", default="loop", help="loop name; round k's campaign is NAME-rK (default loop)")
    p.add_argument("--dataset", default="ocb101-seed0", help="dataset to draw from and replay (ocb101-seed0)")
    p.add_argument(
        "--gate-points",
        type=positive_float,
        default=1.0,
        help="largest loss on the dataset's held-out split a promoted model may show: joint-class accuracy in "
        "points, each regression MAE in per cent (default 1)",
    )
    training_options(p)
    _search_options(p)  # --budget, --seed, --surrogate (round 1's model), --workers, --address, --db, ...
    p.add_argument("--out", type=output_dir, help=f"loop folder (default {DEFAULT_OUT}/NAME)")
    p.add_argument("--json", action="store_true", help="print one JSON object per round")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_loop)


FIGURES = (
    "fresh_ugbw_mae_decades",
    "fresh_pm_mae_deg",
    "fresh_gain_mae_db",
    "fresh_fom_mae",
    "fresh_fom_spearman",
    "fresh_rows",
)


def round_summary(record: dict[str, Any]) -> dict[str, Any]:
    """Issue 19's per-round object."""
    outcome = record["outcome"]
    return {
        "round": record["round"],
        "campaign": record["campaign"],
        "models": record["models"],
        "targets": outcome["targets"],
        "met": outcome["met"],
        "simulations": outcome["simulations"],
        "median_sims_to_first_met": outcome["median_sims_to_first_met"],
        **{k: record.get(k) for k in FIGURES},
        "finetuned": record["candidate"],
        "promoted": record["promoted"],
        "gate": record["gate"],
    }


def _line(s: dict[str, Any]) -> str:
    def f(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    verdict = f"promoted {s['promoted']}" if s["promoted"] else "kept: " + "; ".join(s["gate"]["why_not"])
    return (
        f"round {s['round']}: {s['met']}/{s['targets']} met, {s['simulations']} simulations, median to the first met "
        f"{f(s['median_sims_to_first_met'], 'g')}; surrogate {s['models']['surrogate']} on {s['fresh_rows']} fresh "
        f"rows: UGBW {f(s['fresh_ugbw_mae_decades'], '.4f')} dec, PM {f(s['fresh_pm_mae_deg'], '.2f')} deg, FoM "
        f"{f(s['fresh_fom_mae'], '.2f')}; {verdict}"
    )


def _loop(args: argparse.Namespace) -> int:
    from orchestrator.design.campaign import run_campaign
    from orchestrator.design.loop import LoopConfig, LoopSteps, run_loop
    from storage import Store
    from surrogate.predict import Surrogate

    if args.random:
        raise CktLoopError("--random: the loop fine-tunes the surrogate that ranks; a random search has none")
    config = LoopConfig(
        name=args.name,
        draw=args.draw,
        n=args.n,
        rounds=args.rounds,
        seed=args.seed,
        budget=args.budget or 100,
        dataset=args.dataset,
        gate_points=args.gate_points,
    )
    training_config(args, None)  # bad knobs fail here, before anything runs
    base = _settings(args)  # checks the generator and the starting surrogate
    version = Surrogate.load(base.surrogate, device="cpu").version
    start: dict[str, Any] = {"version": version, "checkpoint": str(Path(base.surrogate)), "finetuned": False}
    folder = args.out or DEFAULT_OUT / args.name

    with Store.open(args.db) as store:

        def campaign(spec: Any, surrogate: Path, label: str) -> dict[str, Any]:
            from dataclasses import replace

            bar = None if args.no_progress else _progress_bar(len(spec.targets), label)
            try:
                return run_campaign(
                    store, spec, replace(base, surrogate=str(surrogate)), address=args.address, on_progress=bar
                )
            finally:
                if bar is not None:
                    bar.close()

        def report(record: dict[str, Any]) -> None:
            summary = round_summary(record)
            print(json.dumps(summary) if args.json else _line(summary), flush=True)

        steps = LoopSteps(campaign, lambda parent: training_config(args, parent))
        run_loop(store, folder, config, steps, start, on_round=report)
    if not args.json:
        print(f"loop state: {folder / 'state.json'}", file=sys.stderr)
    return 0
