"""``cktloop loop``: rounds of fresh targets, campaign, scoring, fine-tuning and a promotion gate."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from circuits import CktLoopError
from orchestrator.cli.design import _models, _progress_bar, _search_options, _settings
from orchestrator.cli.finetune import training_config, training_options
from orchestrator.cli.options import input_file, output_dir, positive_float, positive_int

DEFAULT_OUT = Path("runs") / "loop"
REPORT = "report"


def _file_or_report(text: str) -> str:
    """``report`` (the loop report) or a campaign file whose targets every round runs."""
    return text if text == REPORT else str(input_file(text))


def add_commands(commands: Any) -> None:
    p = commands.add_parser(
        "loop",
        help="closed-loop refinement: rounds of fresh targets, a campaign, fine-tuning and a promotion gate",
        description="Each round draws --n fresh targets (as 'cktloop campaign draw' does; window targets around "
        "dataset circuits no earlier round used), runs them as campaign NAME-rK with the current surrogate, "
        "scores that surrogate on the round's verified candidates it never trained on, fine-tunes it on the "
        "loop's verified rows (earlier rounds' rows and the datasets' training rows replayed) and promotes the new "
        "version only if it beats its parent on the new held-out rows and stays within --gate-points of the starting "
        "surrogate on the dataset's held-out split. The next round uses the promoted version; promotions are "
        "recorded in the store, where campaigns, design and serve find them (--models promoted, their default). "
        "Given a campaign FILE, every round runs its targets instead of drawing fresh ones. Killed at any point, "
        "the same command resumes (same --out). 'cktloop loop report --out DIR [--loop NAME|FOLDER]' writes the "
        "loop's per-round figures as PNG plots and an HTML page.",
    )
    p.add_argument(
        "file",
        nargs="?",
        type=_file_or_report,
        metavar="FILE|report",
        help="a campaign YAML file whose targets every round runs (instead of --draw), or 'report'",
    )
    p.add_argument("--draw", choices=("window", "paper"), help="kind of targets drawn each round (default window)")
    p.add_argument("--n", type=positive_int, default=100, help="targets per round (default 100)")
    p.add_argument("--rounds", type=positive_int, default=5, help="rounds (default 5)")
    p.add_argument(
        "--name", help="loop name; round k's campaign is NAME-rK (default: the campaign file's name, or loop)"
    )
    p.add_argument(
        "--loop",
        metavar="NAME|FOLDER",
        help="loop report: the loop to report, by name (its folder under runs/loop, else the copy of its state the "
        "loop keeps in the store) or folder (default: --name)",
    )
    p.add_argument("--dataset", default="ocb101-seed0", help="dataset drawn from, forgetting checked on (ocb101-seed0)")
    p.add_argument(
        "--gate-points",
        type=positive_float,
        default=1.0,
        help="largest loss on the dataset's held-out split a promoted model may show: joint-class accuracy in "
        "points, each regression MAE in per cent (default 1)",
    )
    training_options(p)
    _search_options(p)  # --budget, --seed, --models/--surrogate (round 1's models), --workers, --address, --db, ...
    p.add_argument(
        "--out", type=output_dir, help=f"loop folder (default {DEFAULT_OUT}/NAME); loop report: the report folder"
    )
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


def _config(args: argparse.Namespace) -> Any:
    """The loop's settings from the options (and the campaign file, when one is given)."""
    from orchestrator.design.loop import LoopConfig

    if args.file is None:
        name, draw, n, budget, file = args.name or "loop", args.draw or "window", args.n, args.budget or 100, None
    else:
        from orchestrator.design.campaign_file import load_campaign

        if args.draw is not None:
            raise CktLoopError(f"--draw {args.draw}: a loop over a campaign file runs the file's targets")
        spec = load_campaign(args.file)
        name, draw, n, file = args.name or spec.name, "file", len(spec.targets), str(Path(args.file).resolve())
        budget = args.budget or spec.budget
    return LoopConfig(
        name=name,
        draw=draw,
        n=n,
        rounds=args.rounds,
        seed=args.seed,
        budget=budget,
        dataset=args.dataset,
        gate_points=args.gate_points,
        file=file,
    )


def _start(args: argparse.Namespace, store: Any, folder: Path) -> tuple[Any, dict[str, Any], str]:
    """Round 1's campaign settings, its surrogate (``start``) and the models in words. A loop folder that was
    started keeps the surrogate it started with unless --models or --surrogate names one (then it must agree)."""
    from dataclasses import replace

    from orchestrator.design.loop import STATE
    from orchestrator.design.models import describe
    from surrogate.predict import Surrogate

    models = _models(args, store)
    base = _settings(args, models)  # checks the generator and the starting surrogate
    state = folder / STATE
    if state.is_file() and args.models is None and args.surrogate is None:
        start = dict(json.loads(state.read_text())["start"])
        return replace(base, surrogate=start["checkpoint"]), start, f"resuming from surrogate {start['version']}"
    choice = models["surrogate"]
    version = choice.version or Surrogate.load(base.surrogate, device="cpu").version
    # a fine-tune from the store's candidates: the loop trains on what is new since the rows it read
    finetuned = choice.version is not None and bool(store.model_version("surrogate", version).config.get("rows"))
    start = {"version": version, "checkpoint": str(Path(base.surrogate)), "finetuned": finetuned}
    return base, start, describe(models)


def _loop(args: argparse.Namespace) -> int:
    from orchestrator.design.campaign import run_campaign
    from orchestrator.design.loop import LoopSteps, run_loop
    from storage import Store

    if args.file == REPORT:
        return _report(args)
    if args.random:
        raise CktLoopError("--random: the loop fine-tunes the surrogate that ranks; a random search has none")
    if args.loop is not None:
        raise CktLoopError("--loop names the loop of 'cktloop loop report'; a loop runs as --name, in --out")
    config = _config(args)
    training_config(args, None)  # bad knobs fail here, before anything runs
    folder = args.out or DEFAULT_OUT / config.name

    with Store.open(args.db) as store:
        base, start, models = _start(args, store, folder)

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
        say = lambda: print(f"loop {config.name}: {models}", file=sys.stderr, flush=True)  # noqa: E731
        run_loop(store, folder, config, steps, start, on_round=report, on_start=say)
    if not args.json:
        print(f"loop state: {folder / 'state.json'}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    """``cktloop loop report --out DIR [--loop NAME|FOLDER] [--db URL]``."""
    from orchestrator.design.loop import STATE
    from orchestrator.design.outcomes import campaign_outcome
    from orchestrator.reporting.loop_report import write_loop_report
    from storage import Store, StoreError

    if args.out is None:
        raise CktLoopError("loop report: --out DIR (the report folder) is required")
    where = args.loop or args.name or "loop"
    folder = Path(where) if (Path(where) / STATE).is_file() else DEFAULT_OUT / where
    path = folder / STATE
    live: dict[int, dict[str, Any]] = {}
    with Store.open(args.db) as store:
        if path.is_file():
            try:
                state = json.loads(path.read_text())
                name = state["config"]["name"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CktLoopError(f"loop report: {path} is not a loop state file ({exc})") from None
        else:  # the folder is gone: the copy the loop kept in the store
            name = Path(where).name
            kept = store.loop_state(name)
            if kept is None:
                raise CktLoopError(
                    f"loop report: no loop state at {path}, and the store holds no loop named {name!r} "
                    "(name the loop or its folder with --loop, the loop's store with --db)"
                )
            state = kept
        for record in state.get("rounds", []):
            if record.get("outcome") is None and record.get("campaign"):
                with contextlib.suppress(StoreError):  # the round's campaign may not be in the store yet
                    live[int(record["round"])] = campaign_outcome(store, record["campaign"])
        promotions = [
            {"round": p.round, "version": p.version, "created_at": f"{p.created_at:%Y-%m-%d %H:%M:%S}"}
            for p in store.promotions("surrogate")
            if p.promoted_by == f"loop {name}"
        ]
    page = write_loop_report(state, args.out, live=live, promotions=promotions)
    print(f"report: {page}")
    return 0
