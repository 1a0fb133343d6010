"""``cktloop design`` and ``cktloop campaign run|export|report|list``: the designer's commands."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from circuits import CktLoopError
from circuits.targets import Target
from generator.sampling import SAMPLING
from orchestrator.cli.options import (
    STDIO,
    budget,
    count,
    db_option,
    input_file,
    models_option,
    non_negative_float,
    output_dir,
    output_file,
    output_file_or_stdout,
    positive_float,
    positive_int,
    ray_address,
    seed,
)
from orchestrator.design.bandit import POLICIES


def add_commands(commands: Any) -> None:
    design = commands.add_parser(
        "design",
        help="design one op-amp for a target: generate, rank, verify with ngspice, refine",
        description="Search the circuits meeting every --target bound: a bandit over the target's spec classes asks "
        "the generator for circuits, the surrogate ranks them, ngspice verifies the best and NSGA-II refines the "
        "sizing of the best verified topology. Whether the target is met is decided by ngspice alone. The search is "
        "stored as a one-target campaign, so running the same command again returns the stored answer.",
    )
    design.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="EXPR",
        help="a bound such as 'gain_db>=60', 'ugbw_hz>=1e9' or 'pm_deg>=60' (repeat; fields: gain_db, ugbw_hz, "
        "pm_deg, fom)",
    )
    design.add_argument("--name", help="name of the design (default: derived from the bounds)")
    design.add_argument("--json", action="store_true", help="print one JSON object (met, circuit, netlist, specs)")
    _search_options(design)
    design.set_defaults(run=_design)

    campaign = commands.add_parser("campaign", help="run, export and report design campaigns of many targets")
    sub = campaign.add_subparsers(title="campaign commands", metavar="COMMAND", required=True)
    run = sub.add_parser(
        "run",
        help="run (or resume) the targets of a campaign file",
        description="Run every target of FILE (a name, an optional budget, targets with {min, max} bounds per spec). "
        "Results land in the store as they finish; killed and re-run, the campaign skips finished targets.",
    )
    run.add_argument("file", type=input_file, help="campaign YAML file")
    _search_options(run)
    run.add_argument("--no-progress", action="store_true", help="no progress display")
    run.set_defaults(run=_campaign_run)

    export = sub.add_parser("export", help="one JSON line per target: bounds, met, winner circuit, netlist, specs")
    export.add_argument("campaign", help="campaign id or name")
    export.add_argument(
        "--out", required=True, type=output_file_or_stdout, help="output .jsonl file ('-' for standard output)"
    )
    db_option(export)
    export.set_defaults(run=_campaign_export)

    report = sub.add_parser("report", help="an HTML report: met targets, FoM against simulations, Bode plots")
    report.add_argument("campaign", help="campaign id or name")
    report.add_argument("--out", required=True, type=output_dir, help="output directory (index.html and images)")
    report.add_argument("--baseline", help="a campaign (id or name) to compare with, e.g. a --random run")
    db_option(report)
    report.set_defaults(run=_campaign_report)

    draw = sub.add_parser(
        "draw",
        help="write a campaign file of targets drawn from a dataset (as the paper draws them, or hard ones)",
        description="paper: thresholds of the spec classes (the cktloop preset, standard PM) that occur in the "
        "dataset, plus random threshold triples no circuit has but a class dominates (reference §5); each is "
        "feasible. hard: "
        "gain/UGBW thresholds with a PM window met by fewer than 1 in 500 circuits of the dataset, which should be a "
        "plain random sample of the family (e.g. the ocb101 pool), and by at least 5 of them. window: gain ± 1.5 dB, "
        "UGBW ± 8 % and PM ± 3° around the measured specs of random stable circuits (PM > 0) of the dataset's "
        "held-out split.",
    )
    draw.add_argument("kind", choices=("paper", "hard", "window"), help="which kind of targets")
    draw.add_argument("--n", type=positive_int, default=100, help="number of targets (default 100)")
    draw.add_argument("--dataset", required=True, help="dataset in the store to draw from")
    draw.add_argument("--name", help="campaign name (default: <kind>-<n>)")
    draw.add_argument("--budget", type=budget, help="simulations per target written into the file")
    draw.add_argument("--seed", type=seed, default=1, help="drawing seed (default 1)")
    draw.add_argument("--out", required=True, type=output_file, help="campaign YAML file to write")
    db_option(draw)
    draw.set_defaults(run=_campaign_draw)

    listing = sub.add_parser("list", help="campaigns in the store")
    db_option(listing)
    listing.set_defaults(run=_campaign_list)


def screen_ratio(text: str) -> float:
    """``--refine-screen``: a number from 1 to 100."""
    value = positive_float(text)
    if not 1.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 100, got {text!r}")
    return value


def near_violation(text: str) -> float:
    """``--refine-near``: a normalised violation from 0 to 1."""
    value = non_negative_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", type=budget, help="simulations per target, refinement included (default 500)")
    p.add_argument("--policy", choices=sorted(POLICIES), default="ucb1", help="bandit policy (default ucb1)")
    p.add_argument("--generator", type=input_file, help="generator checkpoint (default: the one --models picks)")
    p.add_argument(
        "--sampling",
        choices=SAMPLING,
        default="bank",
        help="generator latents: around the training circuits of the class (bank, default) or the paper's "
        "spec latent (spec)",
    )
    p.add_argument("--surrogate", type=input_file, help="surrogate checkpoint (default: the one --models picks)")
    models_option(p)
    p.add_argument(
        "--verify",
        choices=("rank", "ucb"),
        default="rank",
        help="which half of each verification round the surrogate picks: the best predicted (rank, default) or "
        "the best optimistic, each spec moved up to 2 deviations of an ensemble surrogate towards the target (ucb)",
    )
    p.add_argument(
        "--refine-screen",
        type=screen_ratio,
        metavar="R",
        help="refinement breeds R sizings per simulation and the surrogate picks which to simulate, those it "
        "expects to meet the target (default 8; 1: every bred sizing is simulated, as before)",
    )
    p.add_argument(
        "--refine-near",
        type=near_violation,
        metavar="V",
        help="end the search phase and refine as soon as a simulated circuit misses the target by at most V "
        "(its worst normalised violation: gain in dB/20, UGBW in decades, PM in units of 90 degrees; 0.1 is "
        "2 dB, 26 %% or 9 degrees) while none meets it yet (default 0.1; 0: the search phase always takes its "
        "share of the budget)",
    )
    p.add_argument(
        "--reuse",
        type=count,
        metavar="N",
        help="each target's search starts from the N circuits of the store's other campaigns and of "
        "--reuse-dataset's training split whose measured specs come closest to it, one per topology: those "
        "the store measured meeting the target are simulated first, the others are known misses refinement "
        "may start from without simulating them again (default 5; 0: off)",
    )
    p.add_argument(
        "--reuse-dataset",
        metavar="NAME|all|none",
        help="with --reuse: whose training split is reused besides the campaigns: one dataset, every dataset in "
        "the store (all, default) or none; never a circuit of any dataset's held-out split",
    )
    p.add_argument(
        "--random", action="store_true", help="baseline: plain random sampling of the family, no models, no refinement"
    )
    p.add_argument("--workers", type=positive_int, default=2, help="bandit worker processes (default 2)")
    p.add_argument(
        "--searches-per-worker",
        type=positive_int,
        default=16,
        metavar="N",
        help="targets each bandit worker searches at once, in threads; their model calls are batched (default 16)",
    )
    p.add_argument(
        "--simulator-cpus",
        type=positive_float,
        metavar="CPUS",
        help="CPUs Ray reserves for each ngspice actor (default: the node's CPUs shared by all of them, at most 1)",
    )
    p.add_argument(
        "--target-timeout",
        type=positive_float,
        default=3600.0,
        metavar="S",
        help="seconds one target's search may take before it is failed and its worker replaced (default 3600)",
    )
    p.add_argument(
        "--call-timeout",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="seconds one call to the generator or surrogate actor may take (default 300)",
    )
    p.add_argument(
        "--startup-timeout",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="seconds the model actors and bandit workers may take to start and load their models (default 300)",
    )
    p.add_argument("--seed", type=seed, default=0, help="campaign seed (default 0)")
    p.add_argument("--reference", help="dataset whose best FoM per target the report compares with")
    p.add_argument("--address", type=ray_address, help="Ray cluster address to join (default: start a local Ray)")
    db_option(p)


def _models(args: argparse.Namespace, store: Any) -> Any:
    """The models ``--models``, ``--generator`` and ``--surrogate`` pick (None for a --random search)."""
    from orchestrator.design.models import resolve_models

    if args.random:
        if args.models is not None:
            raise CktLoopError("--models: a --random search loads no models")
        return None
    return resolve_models(store, args.models, {"generator": args.generator, "surrogate": args.surrogate})


def _settings(args: argparse.Namespace, models: Any) -> Any:
    """Campaign settings from the options and the ``models`` that ``_models`` picked."""
    from orchestrator.design.campaign import CampaignSettings
    from orchestrator.design.search import SearchConfig

    generator = surrogate = None
    if not args.random:
        generator, surrogate = models["generator"].path, models["surrogate"].path
        for what, path in (("generator", generator), ("surrogate", surrogate)):
            if not Path(path).is_file():
                raise CktLoopError(f"{what} checkpoint {path} not found (train one, or pass --random)")
        _check_checkpoints(args.generator, args.surrogate)  # registered ones are loaded by the model actors
    screen = {} if args.refine_screen is None else {"refine_screen": args.refine_screen}
    if args.refine_near is not None:
        screen["refine_near"] = args.refine_near
    search = (
        SearchConfig(policy=args.policy, refine_share=0.0)
        if args.random
        else SearchConfig(policy=args.policy, sampling=args.sampling, verify=args.verify, **screen)
    )
    given = args.reuse_dataset  # None: not given, the default (every dataset); "none": campaigns only
    reuse_dataset = CampaignSettings.reuse_dataset if given is None else None if given == "none" else given
    return CampaignSettings(
        generator=None if args.random else str(generator),
        surrogate=None if args.random else str(surrogate),
        search=search,
        workers=args.workers,
        searches_per_worker=args.searches_per_worker,
        simulator_cpus=args.simulator_cpus,
        seed=args.seed,
        target_timeout_s=args.target_timeout,
        call_timeout_s=args.call_timeout,
        startup_timeout_s=args.startup_timeout,
        reuse=0 if args.random else (CampaignSettings.reuse if args.reuse is None else args.reuse),
        reuse_dataset=reuse_dataset,
    )


def _check_checkpoints(generator: Path | None, surrogate: Path | None) -> None:
    """Load the checkpoints a user named here, so a bad one is a one-line error before Ray starts."""
    if generator is not None:
        from generator.predict import Generator

        Generator.load(generator)
    if surrogate is not None:
        from surrogate.predict import Surrogate

        Surrogate.load(surrogate)


def _run(args: argparse.Namespace, campaign: Any, show: bool) -> tuple[dict[str, Any], str]:
    """Run ``campaign``; its summary, and in words the models it used."""
    from orchestrator.design.campaign import load_reference, run_campaign
    from orchestrator.design.models import describe
    from storage import Store

    with Store.open(args.db) as store:
        models = _models(args, store)
        settings = _settings(args, models)
        reference = load_reference(store, args.reference)
        bar = _progress_bar(len(campaign.targets)) if show else None
        try:
            summary = run_campaign(
                store, campaign, settings, address=args.address, on_progress=bar, reference_rows=reference
            )
        finally:
            if bar is not None:
                bar.close()
    return summary, "models: none (random search)" if models is None else describe(models)


class _progress_bar:
    """tqdm over targets, with met and simulations in the postfix; drawn from the campaign's first
    progress, so a campaign that fails to start (an unreachable cluster) prints its error alone."""

    def __init__(self, total: int, desc: str = "campaign") -> None:
        self.total, self.desc = total, desc
        self.bar: Any = None

    def __call__(self, progress: Any) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="target", desc=self.desc, file=sys.stderr)
        self.bar.n = progress.done
        self.bar.set_postfix(met=progress.met, sims=progress.simulations)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _design(args: argparse.Namespace) -> int:
    from orchestrator.design.campaign_file import DEFAULT_BUDGET, Campaign
    from orchestrator.design.export import campaign_records
    from storage import Store

    digest = hashlib.sha256(json.dumps(sorted(args.target)).encode()).hexdigest()[:10]
    name = args.name or f"design-{digest}"
    target = Target.from_expressions(name, args.target)
    campaign = Campaign(name, DEFAULT_BUDGET if args.budget is None else args.budget, (target,))
    started = time.monotonic()
    _, models = _run(args, campaign, show=False)
    with Store.open(args.db) as store:
        (record,) = campaign_records(store, name)
    winner = record["winner"] or {}
    out = {
        "target": target.describe(),
        "met": bool(record["met"]),
        "n_simulations": record["n_simulations"],
        "seconds": round(time.monotonic() - started, 2),
        "models": models.removeprefix("models: "),
        **{k: winner.get(k) for k in ("circuit", "netlist", "measured", "predicted", "source", "spec_class")},
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    verdict = "met" if out["met"] else "NOT met (closest circuit shown)"
    print(f"{name}: {target.describe()}: {verdict} after {out['n_simulations']} simulations")
    print(f"  {models}")
    if out["measured"]:
        m = out["measured"]
        print(
            f"  measured (ngspice): gain {m['gain_db']:.2f} dB, UGBW {m['ugbw_hz']:.4g} Hz, PM {m['pm_deg']:.2f} deg, "
            f"FoM {m['fom']:.3f}"
        )
        print("  netlist: cktloop campaign export " + name + " --out - | jq -r .winner.netlist")
    return 0


def _db_option(url: str) -> str:
    """`` --db URL`` (password masked) for a command printed for the user, when ``url`` is not the default."""
    from storage import default_url
    from storage.engine import mask

    return "" if url == default_url() else f" --db {mask(url)}"


def _campaign_run(args: argparse.Namespace) -> int:
    from orchestrator.design.campaign_file import load_campaign

    campaign = load_campaign(args.file)
    if args.budget is not None:
        campaign = type(campaign)(campaign.name, args.budget, campaign.targets)
    summary, models = _run(args, campaign, show=not args.no_progress)
    print(
        f"campaign {summary['name']!r} (id {summary['id']}): {summary['met']} of {summary['targets']} targets met, "
        f"{summary['done']} done, {summary['failed']} failed, {summary['wall_s']:.1f} s. "
        + (f"{summary['rerun']} searches run again after their bandit worker was lost. " if summary["rerun"] else "")
        + f"Report: cktloop campaign report {summary['name']}{_db_option(args.db)} --out out/{summary['name']}-report/"
    )
    print(models)
    return 0


def _campaign_export(args: argparse.Namespace) -> int:
    from orchestrator.design.export import campaign_records
    from storage import Store

    with Store.open(args.db) as store:
        records = campaign_records(store, _id_or_name(args.campaign))
    lines = [json.dumps(r, default=str) for r in records]
    if str(args.out) == STDIO:
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        out = args.out
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("\n".join(lines) + "\n")
        except OSError as exc:
            raise CktLoopError(f"{out}: cannot write ({exc.strerror})") from None
        print(f"wrote {len(lines)} targets to {args.out}", file=sys.stderr)
    return 0


def _campaign_report(args: argparse.Namespace) -> int:
    from orchestrator.design.export import campaign_records
    from orchestrator.reporting.report import write_report
    from storage import Store

    with Store.open(args.db) as store:
        info = store.campaign(_id_or_name(args.campaign))
        records = campaign_records(store, info.id)
        base_info = store.campaign(_id_or_name(args.baseline)) if args.baseline else None
        baseline = campaign_records(store, base_info.id) if base_info else None
    facts: dict[str, Any] = {
        "campaign": info.name,
        "targets": info.targets,
        "created": str(info.created_at),
        "wall_time_s": info.wall_s,
    }
    if base_info:
        facts["baseline_wall_time_s"] = base_info.wall_s
    path = write_report(records, args.out, baseline=baseline, facts=facts)
    print(f"report: {path}")
    return 0


def _campaign_draw(args: argparse.Namespace) -> int:
    import yaml

    from circuits.specs import spec_classes
    from circuits.target_sets import hard_targets, meet_rates, paper_targets, to_campaign, window_source, window_targets
    from storage import Store

    with Store.open(args.db) as store:
        rows = [entry.to_dict() for entry in store.dataset_rows(args.dataset)]
    classes = spec_classes("cktloop")
    if args.kind == "paper":
        present = {c for c in (classes.classify(r) for r in rows) if c is not None}
        targets = paper_targets(classes, present, args.n, seed=args.seed)
        rates = meet_rates(targets, rows)
    elif args.kind == "window":
        targets = window_targets(window_source(rows), args.n, seed=args.seed)
        rates = meet_rates(targets, rows)
    else:
        picked = hard_targets(rows, args.n, seed=args.seed)
        targets, rates = [t for t, _ in picked], [r for _, r in picked]
    if not targets:
        raise CktLoopError(f"no {args.kind} targets can be drawn from dataset {args.dataset!r}")
    name = args.name or f"{args.kind}-{len(targets)}"
    header = (
        f"# {len(targets)} {args.kind} targets drawn from dataset {args.dataset} ({len(rows)} circuits) with seed "
        f"{args.seed}.\n# Share of the dataset meeting each target: min {min(rates):.2e}, median "
        f"{sorted(rates)[len(rates) // 2]:.2e}, max {max(rates):.2e}.\n"
    )
    text = yaml.safe_dump(to_campaign(name, targets, args.budget), sort_keys=False, default_flow_style=None)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(header + text)
    except OSError as exc:
        raise CktLoopError(f"{args.out}: cannot write ({exc.strerror})") from None
    print(f"wrote {len(targets)} targets to {args.out}")
    return 0


def _campaign_list(args: argparse.Namespace) -> int:
    from storage import Store

    with Store.open(args.db) as store:
        rows = store.campaigns()
    if not rows:
        print("no campaigns in the store")
    for r in rows:
        print(f"{r.id:>4}  {r.name:<40} targets {r.targets:>4}  done {r.done:>4}  failed {r.failed:>4}  met {r.met:>4}")
    return 0


def _id_or_name(text: str) -> int | str:
    return int(text) if text.isdigit() else text
