"""The HTML report of a design campaign, written from its exported per-target records.

It reads only the records (``cktloop campaign export``'s JSONL lines, parsed), so a finished
campaign can be reported anywhere: no database, no Ray. The page and its PNG figures go in one
folder and open offline. The page is ``templates/report.html.j2``, rendered with autoescape: this
module hands it plain text and figure file names, never markup.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from circuits import Circuit, CktLoopError
from circuits.specs import TARGET_FIELDS
from orchestrator.reporting.bode import bode, plot_bode
from orchestrator.reporting.drawing import draw_circuit, si

MAX_FIGURES = 50  # per-winner figure pairs; past this the page would take minutes to write and load
LINES_PER_TARGET_MAX = 8  # more targets than this: median and spread instead of one line each
LABELS = {"gain_db": "gain", "ugbw_hz": "UGBW", "pm_deg": "PM", "fom": "FoM"}
MET, UNMET, ABSENT = "#3a9d5d", "#d9534f", "#cccccc"
DPI = 100

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Summary:
    """One row of the summary table."""

    targets: int
    met: int
    simulations: int

    @property
    def met_share(self) -> float | None:
        return self.met / self.targets if self.targets else None

    @property
    def simulations_per_met(self) -> float | None:
        return self.simulations / self.met if self.met else None


def summarise(records: Sequence[Record]) -> Summary:
    """The summary row of one run; simulations are each target's own spend, summed."""
    return Summary(
        targets=len(records),
        met=sum(bool(r.get("met")) for r in records),
        simulations=sum(int(r.get("n_simulations") or 0) for r in records),
    )


def write_report(
    records: Sequence[Record],
    out_dir: Path | str,
    *,
    baseline: Sequence[Record] | None = None,
    facts: Mapping[str, Any] | None = None,
    title: str | None = None,
    max_figures: int = MAX_FIGURES,
) -> Path:
    """Write ``out_dir/index.html`` (from ``templates/report.html.j2``) and its PNG figures; return its path.

    ``facts`` are campaign-level facts shown as given; ``wall_time_s`` (and ``baseline_wall_time_s``)
    also fill the summary table's wall-time column.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CktLoopError(f"{out}: cannot create the report folder ({exc.strerror})") from None
    facts = dict(facts or {})
    campaign = next((str(r["campaign"]) for r in records if r.get("campaign")), "")
    runs = {"campaign": list(records)}
    if baseline is not None:
        runs["baseline"] = list(baseline)
    refinement, refinement_lines = _refinement_figure(out, records)
    winners = [(k, r) for k, r in enumerate(records) if r.get("winner")]
    template = _templates().get_template("report.html.j2")
    page = template.render(
        title=title or f"CktLoop campaign {campaign}".strip(),
        facts=[[k, _fact(k, v)] for k, v in facts.items()],
        summary_header=SUMMARY_HEADER,
        summary=_summary_rows(runs, facts),
        met_figure=_figure(out, "met.png", _met_chart(runs), "targets met, per target"),
        history_figure=_history_figure(out, runs),
        has_baseline=baseline is not None,
        refinement_figure=refinement,
        refinement_lines=refinement_lines,
        target_header=_target_header(baseline is not None),
        targets=_target_rows(records, baseline),
        winners=[_winner(out, k, r) for k, r in winners[:max_figures]],
        winners_total=len(winners),
    )
    return write_page(out, page)


def write_page(out: Path, page: str) -> Path:
    """Write a report's ``index.html`` into ``out``; return its path."""
    path = out / "index.html"
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise CktLoopError(f"{path}: cannot write the report ({exc.strerror})") from None
    return path


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("orchestrator.reporting", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class Image:
    """A figure written beside the page: its file name and alternative text."""

    src: str
    alt: str


@dataclass(frozen=True)
class TargetRow:
    """One row of the targets table, every cell as text (the template escapes and marks it up)."""

    index: int
    name: str
    has_winner: bool
    bounds: str
    met: bool
    baseline_met: bool | None  # None: no baseline, or the target is absent from it
    class_mode: str
    simulations: str
    specs: list[str]
    source: str
    spec_class: str
    dataset_best_fom: str
    refinement: str
    netlist: str | None


@dataclass(frozen=True)
class Winner:
    """A winner's heading and its two figures."""

    index: int
    name: str
    met: bool
    bounds: str
    source: str
    bode: Image
    topology: Image


# --- sections -------------------------------------------------------------------------------

SUMMARY_HEADER = ["run", "targets", "met", "met share", "simulations", "simulations per met target", "wall time"]


def _summary_rows(runs: Mapping[str, list[Record]], facts: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for name, recs in runs.items():
        s = summarise(recs)
        wall = facts.get("wall_time_s" if name == "campaign" else f"{name}_wall_time_s")
        rows.append(
            [
                name,
                str(s.targets),
                str(s.met),
                "—" if s.met_share is None else f"{s.met_share:.1%}",
                str(s.simulations),
                "—" if s.simulations_per_met is None else f"{s.simulations_per_met:.1f}",
                "—" if wall is None else _duration(float(wall)),
            ]
        )
    return rows


def _met_chart(runs: Mapping[str, list[Record]]) -> Figure:
    """One cell per target and run: met, unmet, or absent from that run (matched by name)."""
    names = [str(r.get("name")) for r in runs["campaign"]]
    for recs in runs.values():
        names += [n for n in (str(r.get("name")) for r in recs) if n not in names]
    fig = Figure(figsize=(min(max(6.0, 0.3 * len(names) + 2.0), 14.0), 0.6 * len(runs) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    for row, recs in enumerate(runs.values()):
        met = {str(r.get("name")): bool(r.get("met")) for r in recs}
        colours = [ABSENT if n not in met else MET if met[n] else UNMET for n in names]
        ax.bar(range(len(names)), 0.8, bottom=row - 0.4, width=0.9 if len(names) < 200 else 1.0, color=colours)
    ax.set_yticks(range(len(runs)), list(runs))
    ax.set_ylim(len(runs) - 0.5, -0.5)
    ax.set_xlim(-0.5, max(len(names), 1) - 0.5)
    if len(names) <= 40:
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    else:
        ax.set_xlabel(f"{len(names)} targets, in campaign order")
    ax.legend(
        handles=[Patch(color=c, label=label) for c, label in ((MET, "met"), (UNMET, "not met"), (ABSENT, "absent"))],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=3,
        frameon=False,
        fontsize=8,
    )
    return fig


def _history_figure(out: Path, runs: Mapping[str, list[Record]]) -> Image | None:
    curves = {name: _curves(recs) for name, recs in runs.items()}
    if all(c is None for c in curves.values()):
        return None
    fig = Figure(figsize=(12.0, 4.2), layout="constrained")
    share_ax, fom_ax = fig.subplots(1, 2)
    per_target = all(len(recs) <= LINES_PER_TARGET_MAX for recs in runs.values())
    colour = {str(r.get("name")): f"C{k % 10}" for k, r in enumerate(runs["campaign"])}
    for (name, curve), style in zip(curves.items(), ("-", "--")):
        if curve is None:
            continue
        x, fom, names = curve
        share_ax.step(x, np.isfinite(fom).mean(axis=0), style, where="post", label=name)
        if per_target:
            for target, values in zip(names, fom):
                if not np.isfinite(values).any():
                    continue  # never met: no line, and no legend entry to puzzle over
                fom_ax.step(x, values, style, where="post", color=colour.get(target), label=f"{target} ({name})")
            continue
        has = np.isfinite(fom).any(axis=0)
        q = np.full((3, x.size), np.nan)
        q[:, has] = np.nanquantile(fom[:, has], (0.25, 0.5, 0.75), axis=0)
        line = fom_ax.step(x, q[1], style, where="post", label=f"{name}: median over targets met so far")[0]
        fom_ax.fill_between(x, q[0], q[2], step="post", alpha=0.2, color=line.get_color(), label=f"{name}: 25-75 %")
    share_ax.set_ylabel("share of targets met")
    share_ax.set_ylim(-0.02, 1.02)
    fom_ax.set_ylabel("best FoM of a met circuit")
    for ax in (share_ax, fom_ax):
        ax.set_xlabel("simulations spent on the target")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _figure(out, "history.png", fig, "best FoM against simulations")


def _curves(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """Every target's best FoM (NaN before its first met circuit) on the union of all recorded counts."""
    histories = [
        sorted((int(n), math.nan if f is None else float(f)) for n, f in r.get("history") or []) for r in records
    ]
    x = np.array(sorted({n for h in histories for n, _ in h}), dtype=float)
    if not x.size:
        return None
    fom = np.full((len(records), x.size), np.nan)
    for k, h in enumerate(histories):
        if h:
            n, f = np.array([p[0] for p in h], dtype=float), np.array([p[1] for p in h])
            at = np.searchsorted(n, x, side="right") - 1
            fom[k] = np.where(at >= 0, f[np.maximum(at, 0)], np.nan)
    return x, fom, [str(r.get("name")) for r in records]


def _refinement_figure(out: Path, records: Sequence[Record]) -> tuple[Image | None, list[str]]:
    """Refinement's FoM gain and the winners against the dataset's best, with a line of figures per panel."""
    refined = [
        (str(r.get("name")), float(r["refinement"]["fom_before"]), float(r["refinement"]["fom_after"]))
        for r in records
        if r.get("refinement")
    ]
    versus = [
        (str(r.get("name")), float(r["dataset_best_fom"]), float(r["winner"]["measured"]["fom"]))
        for r in records
        if r.get("met") and r.get("winner") and r.get("dataset_best_fom") is not None
        if (r["winner"].get("measured") or {}).get("fom") is not None
    ]
    if not refined and not versus:
        return None, []
    fig = Figure(figsize=(11.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (
        (refined, "FoM before refinement", "FoM after refinement", "refinement"),
        (versus, "best FoM in the dataset", "FoM of the campaign's winner", "winner against the dataset"),
    )
    lines = []
    for ax, (points, xlabel, ylabel, what) in zip(axes, panels):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(what, fontsize=10)
        ax.grid(alpha=0.3)
        if not points:
            ax.text(0.5, 0.5, "nothing to show", transform=ax.transAxes, ha="center")
            continue
        _, before, after = zip(*points)
        ax.scatter(before, after, s=18, color="C0", zorder=3)
        lo, hi = min(before + after), max(before + after)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="equal")
        if len(points) <= 15:
            for name, a, b in points:
                ax.annotate(name, (a, b), xytext=(4, 4), textcoords="offset points", fontsize=7)
        ax.legend(fontsize=7)
        gains = np.subtract(after, before)
        lines.append(
            f"{what}: {int((gains > 0).sum())} of {len(points)} above the diagonal, "
            f"median difference {float(np.median(gains)):+.3f} FoM"
        )
    return _figure(out, "refinement.png", fig, "refinement gain"), lines


def _target_header(has_baseline: bool) -> list[str]:
    header = ["target", "bounds", "met", "class mode", "simulations"]
    header += [f"{LABELS[s]} measured / predicted" for s in TARGET_FIELDS]
    header += ["source", "spec class", "dataset best FoM", "refinement FoM", "netlist"]
    if has_baseline:
        header.insert(3, "baseline met")
    return header


def _target_rows(records: Sequence[Record], baseline: Sequence[Record] | None) -> list[TargetRow]:
    base_met = {str(r.get("name")): bool(r.get("met")) for r in baseline or []}
    rows = []
    for k, r in enumerate(records):
        winner = r.get("winner") or {}
        measured, predicted = winner.get("measured") or {}, winner.get("predicted") or {}
        name = str(r.get("name"))
        refinement = r.get("refinement")
        rows.append(
            TargetRow(
                index=k,
                name=name,
                has_winner=bool(winner),
                bounds=_bounds(r.get("bounds") or {}),
                met=bool(r.get("met")),
                baseline_met=base_met.get(name),
                class_mode=str(r.get("class_mode") or "—"),
                simulations=str(r.get("n_simulations", "—")),
                specs=[f"{_fmt(s, measured.get(s))} / {_fmt(s, predicted.get(s))}" for s in TARGET_FIELDS],
                source=str(winner.get("source") or "—"),
                spec_class="—" if winner.get("spec_class") is None else str(list(winner["spec_class"])),
                dataset_best_fom=_fmt("fom", r.get("dataset_best_fom")),
                refinement="—" if not refinement else f"{refinement['fom_before']:.3f} → {refinement['fom_after']:.3f}",
                netlist=winner.get("netlist") or None,
            )
        )
    return rows


def _winner(out: Path, k: int, record: Record) -> Winner:
    """The winner's Bode plot and topology drawing, written beside the page."""
    name = str(record.get("name"))
    circuit = Circuit.from_dict(record["winner"]["circuit"])
    return Winner(
        index=k,
        name=name,
        met=bool(record.get("met")),
        bounds=_bounds(record.get("bounds") or {}),
        source=str(record["winner"].get("source") or "—"),
        bode=_figure(out, f"bode-{k:04d}.png", plot_bode(bode(circuit), f"{name}: Bode plot"), f"Bode plot of {name}"),
        topology=_figure(out, f"topology-{k:04d}.png", draw_circuit(circuit), f"topology of {name}"),
    )


# --- helpers --------------------------------------------------------------------------------


def _figure(out: Path, filename: str, fig: Figure, alt: str) -> Image:
    path = out / filename
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise CktLoopError(f"{path}: cannot write a figure ({exc.strerror})") from None
    return Image(filename, alt)


def _fmt(spec: str, value: Any) -> str:
    if value is None:
        return "—"
    value = float(value)
    if spec == "ugbw_hz":
        return si(value, "Hz")
    if spec == "gain_db":
        return f"{value:.1f} dB"
    if spec == "pm_deg":
        return f"{value:.1f}°"
    return f"{value:.3f}" if spec == "fom" else f"{value:g}"


def _bounds(bounds: Mapping[str, Any]) -> str:
    parts = []
    for spec, bound in bounds.items():
        label = LABELS.get(spec, spec)
        if bound.get("min") is not None:
            parts.append(f"{label} ≥ {_fmt(spec, bound['min'])}")
        if bound.get("max") is not None:
            parts.append(f"{label} ≤ {_fmt(spec, bound['max'])}")
    return ", ".join(parts) or "—"


def _fact(key: str, value: Any) -> str:
    if key.endswith("wall_time_s") and isinstance(value, int | float):
        return _duration(float(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min" if hours else f"{m} min {s:02d} s"
