"""The HTML report of a design campaign, written from its exported per-target records.

It reads only the records (``cktloop campaign export``'s JSONL lines, parsed), so a finished
campaign can be reported anywhere: no database, no Ray. The page and its PNG figures go in one
folder and open offline. Bode plots are recomputed from each winner circuit with the numpy MNA
backend (which agrees with ngspice to 1e-13), and their markers come from ``simulator.measure``,
so the marked gain, UGBW and PM are the measured ones by construction.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from circuits import Circuit, CktLoopError
from orchestrator.reporting.drawing import draw_circuit, si
from simulator.measure import measure
from simulator.mna import MnaBackend
from simulator.netlist import elements

MAX_FIGURES = 50  # per-winner figure pairs; past this the page would take minutes to write and load
LINES_PER_TARGET_MAX = 8  # more targets than this: median and spread instead of one line each
SPECS = ("gain_db", "ugbw_hz", "pm_deg", "fom")
LABELS = {"gain_db": "gain", "ugbw_hz": "UGBW", "pm_deg": "PM", "fom": "FoM"}
MET, UNMET, ABSENT = "#3a9d5d", "#d9534f", "#cccccc"
DPI = 100

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Bode:
    """A winner's frequency response and the markers drawn on it.

    ``phase_deg`` is the phase of H, or of −H for an amplifier that inverts at low frequency,
    unwrapped from 1 Hz: the reading ``simulator.measure`` takes, so PM = 180° + phase at UGBW.
    """

    freq_hz: np.ndarray
    mag_db: np.ndarray
    phase_deg: np.ndarray
    gain_db: float | None
    ugbw_hz: float | None
    pm_deg: float | None


def bode(circuit: Circuit) -> Bode:
    """Simulate ``circuit`` over the measurement sweep and measure the markers from that response."""
    backend = MnaBackend()
    h = backend.transfer(elements(circuit))
    perf = measure(backend.freq_hz, h)
    reference = -h if h[0].real < 0 else h
    with np.errstate(divide="ignore"):
        mag_db = 20.0 * np.log10(np.abs(h))
    return Bode(
        freq_hz=backend.freq_hz,
        mag_db=mag_db,
        phase_deg=np.degrees(np.unwrap(np.angle(reference))),
        gain_db=perf.gain_db,
        ugbw_hz=perf.ugbw_hz,
        pm_deg=perf.pm_deg,
    )


def plot_bode(b: Bode, title: str) -> Figure:
    """Magnitude and phase against log frequency, with gain, UGBW and PM marked and written out."""
    fig = Figure(figsize=(6.4, 5.0))
    mag_ax, phase_ax = fig.subplots(2, 1, sharex=True)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.1, top=0.94, hspace=0.1)  # fixed: a layout engine costs 0.7 s
    mag_ax.semilogx(b.freq_hz, b.mag_db, color="C0")
    mag_ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    mag_ax.set_ylabel("|H| [dB]")
    mag_ax.set_title(title, fontsize=10)
    phase_ax.semilogx(b.freq_hz, b.phase_deg, color="C1")
    phase_ax.axhline(-180.0, color="grey", lw=0.8, ls="--")
    phase_ax.set_ylabel("phase [deg]")
    phase_ax.set_xlabel("frequency [Hz]")
    if b.gain_db is not None:
        mag_ax.plot(b.freq_hz[0], b.gain_db, "o", color="k")
        mag_ax.annotate(
            f"gain {b.gain_db:.1f} dB", (b.freq_hz[0], b.gain_db), xytext=(8, -14), textcoords="offset points"
        )
    if b.ugbw_hz is not None and b.pm_deg is not None:
        phase_at = b.pm_deg - 180.0
        # labels go left of the UGBW line when it sits in the sweep's last decades, so they stay inside
        left = math.log(b.ugbw_hz / b.freq_hz[0]) > 0.7 * math.log(b.freq_hz[-1] / b.freq_hz[0])
        side = {"textcoords": "offset points", "ha": "right" if left else "left"}
        mag_ax.plot(b.ugbw_hz, 0.0, "o", color="k")
        mag_ax.annotate(f"UGBW {si(b.ugbw_hz, 'Hz')}", (b.ugbw_hz, 0.0), xytext=(-8, -14) if left else (8, 8), **side)
        for ax in (mag_ax, phase_ax):
            ax.axvline(b.ugbw_hz, color="grey", lw=0.8, ls=":")
        phase_ax.annotate("", (b.ugbw_hz, phase_at), xytext=(b.ugbw_hz, -180.0), arrowprops={"arrowstyle": "<->"})
        phase_ax.plot(b.ugbw_hz, phase_at, "o", color="k")
        phase_ax.annotate(
            f"PM {b.pm_deg:.1f}°", (b.ugbw_hz, (phase_at - 180.0) / 2), xytext=(-8 if left else 8, 0), **side
        )
    else:
        mag_ax.text(0.98, 0.9, "no unity-gain crossing", transform=mag_ax.transAxes, ha="right")
    for ax in (mag_ax, phase_ax):
        ax.grid(alpha=0.3)
    return fig


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
    """Write ``out_dir/index.html`` and its PNG figures; return the page's path.

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
    title = title or f"CktLoop campaign {campaign}".strip()
    runs = {"campaign": list(records)}
    if baseline is not None:
        runs["baseline"] = list(baseline)

    body = [f"<h1>{_e(title)}</h1>"]
    if facts:
        body += ["<h2>Facts</h2>", _table(["fact", "value"], [[k, _fact(k, v)] for k, v in facts.items()])]
    body += ["<h2>Summary</h2>", _summary_table(runs, facts)]
    body += ["<h2>Targets met</h2>", _figure(out, "met.png", _met_chart(runs), "targets met, per target")]
    body += ["<h2>Best FoM against simulations spent</h2>", _history_section(out, runs)]
    body += ["<h2>Refinement and the dataset</h2>", _refinement_section(out, records)]
    body += ["<h2>Targets</h2>", _target_table(records, baseline)]
    body += ["<h2>Winners</h2>", _winner_section(out, records, max_figures)]
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head><body>",
            *body,
            "</body></html>",
        ]
    )
    path = out / "index.html"
    try:
        path.write_text(page + "\n", encoding="utf-8")
    except OSError as exc:
        raise CktLoopError(f"{path}: cannot write the report ({exc.strerror})") from None
    return path


STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 1400px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.met { color: #2e7d4f; font-weight: bold; } .unmet { color: #b52b27; font-weight: bold; }
.scroll { overflow-x: auto; }
pre { font-size: 0.85em; margin: 0.3em 0; }
.winner { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; margin-bottom: 2em; }
.winner img { max-width: 100%; }
"""


# --- sections -------------------------------------------------------------------------------


def _summary_table(runs: Mapping[str, list[Record]], facts: Mapping[str, Any]) -> str:
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
    header = ["run", "targets", "met", "met share", "simulations", "simulations per met target", "wall time"]
    return _table(header, rows)


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


def _history_section(out: Path, runs: Mapping[str, list[Record]]) -> str:
    curves = {name: _curves(recs) for name, recs in runs.items()}
    if all(c is None for c in curves.values()):
        return "<p>No run recorded a history of simulations.</p>"
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
    note = "Solid: the campaign; dashed: the baseline." if len(runs) > 1 else ""
    return _figure(out, "history.png", fig, "best FoM against simulations") + (f"<p>{note}</p>" if note else "")


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


def _refinement_section(out: Path, records: Sequence[Record]) -> str:
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
        return "<p>No target was refined, and none has a dataset circuit to compare with.</p>"
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
    text = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return _figure(out, "refinement.png", fig, "refinement gain") + f"<ul>{text}</ul>"


def _target_table(records: Sequence[Record], baseline: Sequence[Record] | None) -> str:
    base_met = {str(r.get("name")): bool(r.get("met")) for r in baseline or []}
    header = ["target", "bounds", "met", "class mode", "simulations"]
    header += [f"{LABELS[s]} measured / predicted" for s in SPECS]
    header += ["source", "spec class", "dataset best FoM", "refinement FoM", "netlist"]
    if baseline is not None:
        header.insert(3, "baseline met")
    rows = []
    for k, r in enumerate(records):
        winner = r.get("winner") or {}
        measured, predicted = winner.get("measured") or {}, winner.get("predicted") or {}
        name = str(r.get("name"))
        link = f'<a href="#winner-{k}">{_e(name)}</a>' if winner else _e(name)
        refinement = r.get("refinement")
        cells = [
            link,
            _e(_bounds(r.get("bounds") or {})),
            _met(bool(r.get("met"))),
            _e(str(r.get("class_mode") or "—")),
            _e(str(r.get("n_simulations", "—"))),
            *(_e(f"{_fmt(s, measured.get(s))} / {_fmt(s, predicted.get(s))}") for s in SPECS),
            _e(str(winner.get("source") or "—")),
            _e("—" if winner.get("spec_class") is None else str(list(winner["spec_class"]))),
            _e(_fmt("fom", r.get("dataset_best_fom"))),
            _e("—" if not refinement else f"{refinement['fom_before']:.3f} → {refinement['fom_after']:.3f}"),
            _netlist(winner.get("netlist")),
        ]
        if baseline is not None:
            cells.insert(3, _met(base_met[name]) if name in base_met else "—")
        rows.append(cells)
    return f'<div class="scroll">{_table(header, rows, escape=False)}</div>'


def _winner_section(out: Path, records: Sequence[Record], max_figures: int) -> str:
    winners = [(k, r) for k, r in enumerate(records) if r.get("winner")]
    if not winners:
        return "<p>No target has a winner.</p>"
    parts = []
    if len(winners) > max_figures:
        parts.append(
            f"<p>Figures are shown for the first {max_figures} of {len(winners)} targets with a winner; "
            "the rest are in the table above.</p>"
        )
    for k, r in winners[:max_figures]:
        name = str(r.get("name"))
        circuit = Circuit.from_dict(r["winner"]["circuit"])
        b = bode(circuit)
        parts += [
            f'<h3 id="winner-{k}">{_e(name)} {_met(bool(r.get("met")))}</h3>',
            f"<p>{_e(_bounds(r.get('bounds') or {}))}; winner from {_e(str(r['winner'].get('source') or '—'))}</p>",
            '<div class="winner">',
            _figure(out, f"bode-{k:04d}.png", plot_bode(b, f"{name}: Bode plot"), f"Bode plot of {name}"),
            _figure(out, f"topology-{k:04d}.png", draw_circuit(circuit), f"topology of {name}"),
            "</div>",
        ]
    return "\n".join(parts)


# --- helpers --------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], escape: bool = True) -> str:
    """An HTML table; cells are escaped unless the caller built (and escaped) their HTML itself."""

    def cell(text: str) -> str:
        return _e(text) if escape else text

    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(out: Path, filename: str, fig: Figure, alt: str) -> str:
    path = out / filename
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise CktLoopError(f"{path}: cannot write a figure ({exc.strerror})") from None
    return f'<img src="{_e(filename)}" alt="{_e(alt)}">'


def _met(met: bool) -> str:
    return '<span class="met">met</span>' if met else '<span class="unmet">not met</span>'


def _netlist(text: str | None) -> str:
    if not text:
        return "—"
    return f"<details><summary>netlist</summary><pre>{_e(text)}</pre></details>"


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
