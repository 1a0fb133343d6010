"""The report of a closed loop (``cktloop loop report``): per round, the surrogate's errors on the round's
fresh verified candidates, the simulations to the first met circuit, the targets met, and the models in use.

It reads the loop's ``state.json`` (as ``orchestrator.design.loop`` writes it) and what the CLI adds from the
store: each round's campaign outcome where the state has none yet (a round whose campaign is running) and the
loop's promotions as recorded. The page is ``templates/loop.html.j2`` with its PNG figures beside it, rendered
with autoescape from plain text and figure file names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from circuits import CktLoopError
from orchestrator.reporting.report import Image, _figure, _templates, write_page

# (state key, axis label, table header) of the surrogate's errors on fresh candidates
ERRORS = (
    ("fresh_ugbw_mae_decades", "UGBW MAE (decades)", "UGBW MAE dec"),
    ("fresh_pm_mae_deg", "PM MAE (degrees)", "PM MAE °"),
    ("fresh_gain_mae_db", "gain MAE (dB)", "gain MAE dB"),
    ("fresh_fom_mae", "FoM MAE", "FoM MAE"),
)
HEADER = [
    "round",
    "campaign",
    "generator",
    "surrogate",
    "targets",
    "met",
    "simulations",
    "median sims to first met",
    *(h for _, _, h in ERRORS),
    "FoM Spearman",
    "fresh rows",
    "fine-tuned",
    "gate",
    "promotion in the store",
]


def write_loop_report(
    state: Mapping[str, Any],
    out_dir: Path | str,
    *,
    live: Mapping[int, Mapping[str, Any]] | None = None,
    promotions: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``out_dir/index.html`` and its figures for the loop ``state``; return the page's path.

    ``live``: by round, the campaign outcome read from the store for rounds whose state has none yet;
    ``promotions``: the loop's promotions in the store (``round``, ``version``, ``created_at``)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CktLoopError(f"{out}: cannot create the report folder ({exc.strerror})") from None
    rounds = [_round(r, (live or {}).get(int(r["round"]))) for r in state.get("rounds", [])]
    rounds = [r for r in rounds if r["outcome"] is not None]
    config = state.get("config", {})
    start = str(state.get("start", {}).get("version"))
    by_round = {int(p["round"]): p for p in promotions}
    page = (
        _templates()
        .get_template("loop.html.j2")
        .render(
            title=f"CktLoop loop {config.get('name', '')}".strip(),
            facts=[[k, str(v)] for k, v in config.items()] + [["starting surrogate", start]],
            header=HEADER,
            rows=[_row(r, by_round.get(r["round"])) for r in rounds],
            errors_figure=_errors_figure(out, rounds) if rounds else None,
            outcome_figure=_outcome_figure(out, rounds, int(config.get("budget") or 0)) if rounds else None,
            models_figure=_models_figure(out, rounds) if rounds else None,
            pending=[int(r["round"]) for r in state.get("rounds", []) if not r.get("done")],
        )
    )
    return write_page(out, page)


def _round(record: Mapping[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any]:
    """A round's figures: its recorded outcome, else the live one from the store (marked unfinished)."""
    outcome = record.get("outcome") or live
    return {
        "round": int(record["round"]),
        "campaign": record.get("campaign", ""),
        "models": dict(record.get("models") or {}),
        "outcome": None if outcome is None else dict(outcome),
        "running": record.get("outcome") is None,
        **{k: _number(record.get(k)) for k, _, _ in ERRORS},
        "fresh_fom_spearman": _number(record.get("fresh_fom_spearman")),
        "fresh_rows": record.get("fresh_rows"),
        "candidate": record.get("candidate"),
        "promoted": record.get("promoted"),
        "gate": record.get("gate"),
        "done": bool(record.get("done")),
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _row(r: Mapping[str, Any], promotion: Mapping[str, Any] | None) -> list[str]:
    o = r["outcome"]
    median = o.get("median_sims_to_first_met")
    if not r["done"]:
        gate = "campaign running" if r["running"] else "fine-tune pending"
    elif r["promoted"]:
        gate = f"promoted (fresh MAE ratio {r['gate']['fresh_mae_ratio']:.3f})"
    else:
        gate = "kept: " + "; ".join((r["gate"] or {}).get("why_not") or ["?"])
    stored = f"{promotion['version']} at {promotion['created_at']}" if promotion else "—"
    return [
        str(r["round"]),
        str(r["campaign"]),
        str(r["models"].get("generator") or "—"),
        str(r["models"].get("surrogate") or "—"),
        str(o.get("targets")),
        str(o.get("met")),
        str(o.get("simulations")),
        "— (half or more not met)" if median is None else f"{median:g}",
        *(_fmt(r[k]) for k, _, _ in ERRORS),
        _fmt(r["fresh_fom_spearman"]),
        str(r["fresh_rows"] if r["fresh_rows"] is not None else "—"),
        str(r["candidate"] or "—"),
        gate,
        stored,
    ]


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _rounds_axis(ax: Any, rounds: Sequence[Mapping[str, Any]]) -> None:
    ax.set_xticks([r["round"] for r in rounds])
    ax.set_xlabel("round")
    ax.grid(alpha=0.3)


def _errors_figure(out: Path, rounds: Sequence[Mapping[str, Any]]) -> Image:
    """The surrogate's errors on each round's fresh verified candidates, one panel per spec."""
    fig = Figure(figsize=(10.0, 6.4), layout="constrained")
    for ax, (key, label, _) in zip(fig.subplots(2, 2).flat, ERRORS):
        points = [(r["round"], r[key]) for r in rounds if r[key] is not None]
        if points:
            x, y = zip(*points)
            ax.plot(x, y, "o-")
            ax.set_ylim(bottom=0.0)
        ax.set_ylabel(label)
        _rounds_axis(ax, rounds)
    fig.suptitle("the round's surrogate on the round's fresh verified candidates (before training on them)")
    return _figure(out, "errors.png", fig, "surrogate errors on fresh candidates, per round")


def _outcome_figure(out: Path, rounds: Sequence[Mapping[str, Any]], budget: int) -> Image:
    """Targets met (share) and the median simulations to the first met circuit, per round."""
    fig = Figure(figsize=(10.0, 3.6), layout="constrained")
    met_ax, sims_ax = fig.subplots(1, 2)
    x = [r["round"] for r in rounds]
    share = [100.0 * r["outcome"]["met"] / max(1, r["outcome"]["targets"]) for r in rounds]
    met_ax.bar(x, share, color=["#9ccfb0" if r["running"] else "#3a9d5d" for r in rounds])
    for xi, si, r in zip(x, share, rounds):
        met_ax.annotate(f"{r['outcome']['met']}/{r['outcome']['targets']}", (xi, si), ha="center", va="bottom")
    met_ax.set_ylabel("targets met (%)")
    met_ax.set_ylim(0, 105)
    medians = [r["outcome"].get("median_sims_to_first_met") for r in rounds]
    shown = [(xi, m) for xi, m in zip(x, medians) if m is not None]
    if shown:
        sims_ax.plot(*zip(*shown), "o-", label="median over targets")
        for xi, m in shown:
            sims_ax.annotate(f"{m:g}", (xi, m), textcoords="offset points", xytext=(0, 5), ha="center")
    unmet = [xi for xi, m in zip(x, medians) if m is None]
    if unmet and budget:
        sims_ax.plot(unmet, [budget] * len(unmet), "x", color="#d9534f", label="half or more not met")
    if shown or unmet:
        sims_ax.legend(fontsize=8)
    sims_ax.set_ylabel("simulations to the first met circuit")
    sims_ax.set_ylim(0, sims_axis_top([m for _, m in shown], budget if unmet else 0))
    for ax in (met_ax, sims_ax):
        _rounds_axis(ax, rounds)
    return _figure(out, "outcomes.png", fig, "targets met and simulations to the first met circuit, per round")


def sims_axis_top(medians: Sequence[float], budget: int) -> float:
    """The top of the simulations axis: room above the largest median shown, and above the budget when an
    unmet round is marked there (``budget`` 0 otherwise), so medians of a few simulations stay readable."""
    return 1.15 * max([*medians, budget, 1.0])


def _models_figure(out: Path, rounds: Sequence[Mapping[str, Any]]) -> Image:
    """Which generator and surrogate version each round used (a new colour for each new version), and the
    rounds whose fine-tune was promoted."""
    fig = Figure(figsize=(10.0, 2.6), layout="constrained")
    ax = fig.add_subplot()
    for row, kind in enumerate(("generator", "surrogate")):
        colours: dict[str, str] = {}
        for r in rounds:
            version = str(r["models"].get(kind) or "?")
            colour = colours.setdefault(version, f"C{len(colours) % 10}")
            ax.barh(row, 0.9, left=r["round"] - 0.45, color=colour)
            label = version if len(version) <= 30 else f"{version[:13]}…{version[-13:]}"
            ax.annotate(label, (r["round"], row), ha="center", va="center", fontsize=7)
    promoted = [r["round"] for r in rounds if r["promoted"]]
    if promoted:
        ax.plot(promoted, [1.55] * len(promoted), "v", color="#3a9d5d", label="its fine-tune promoted")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_yticks([0, 1], ["generator", "surrogate"])
    ax.set_ylim(-0.6, 1.9)
    _rounds_axis(ax, rounds)
    return _figure(out, "models.png", fig, "the model versions each round used")
