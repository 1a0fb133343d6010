"""Distributions of a dataset, side by side with Ckt-Bench-101's published labels.

OCB columns are converted to physical units with the fixed constants of reference §2.3. Rows
whose result is exactly zero (0 dB, 0°, 0 Hz: OCB's failed or degenerate simulations) are
counted apart, like our non-OK statuses. OCB's phase margin is compared with our
``pm_ocb_deg`` (the same reading of the phase; see docs/ocb-101-gap.md), not with our
standard ``pm_deg``.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from circuits import CktLoopError
from circuits.specs import TARGET_FIELDS
from storage.records import DatasetEntry

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
SPECS = (*TARGET_FIELDS, "pm_ocb_deg")
COMPARED = {"gain_db": "gain_db", "ugbw_hz": "ugbw_hz", "pm_ocb_deg": "pm_deg"}  # ours -> OCB's column


def default_ocb_path() -> Path:
    """``$CKTLOOP_SHARED/data/ocb/perform101.csv``, else ``../shared`` beside the repository."""
    shared = os.environ.get("CKTLOOP_SHARED")
    root = Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared"
    return root / "data" / "ocb" / "perform101.csv"


def load_ocb(path: Path) -> dict[str, np.ndarray]:
    """Published OCB labels in physical units, plus a mask of the all-zero (failed) rows."""
    try:
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise CktLoopError(f"{path}: no such file (pass the published labels with --ocb)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CktLoopError(f"{path}: cannot read the OCB labels ({exc.__class__.__name__})") from None
    try:
        gain = np.array([float(r["gain"]) for r in rows])
        pm = np.array([float(r["pm"]) for r in rows])
        bw = np.array([float(r["bw"]) for r in rows])
        valid = np.array([int(float(r["valid"])) for r in rows])
    except (KeyError, ValueError) as exc:
        raise CktLoopError(f"{path}: not an OCB label file ({exc})") from None
    gain_db = 100.0 * (gain - 1.19531)
    pm_deg = -90.0 * (pm - 2.00001)
    ugbw_hz = (bw - 0.00001) * 1e9
    zero = (np.abs(gain_db) < 1e-6) & (np.abs(pm_deg) < 1e-3) & (np.abs(ugbw_hz) < 1e3)
    ok = (valid == 1) & ~zero
    if not ok.any():
        raise CktLoopError(f"{path}: not an OCB label file (no valid labelled row among {len(rows)})")
    return {"gain_db": gain_db, "ugbw_hz": ugbw_hz, "pm_deg": pm_deg, "ok": ok}


def _quantiles(values: np.ndarray) -> list[float] | None:
    return [float(v) for v in np.quantile(values, QUANTILES)] if values.size else None


def stats(rows: Sequence[DatasetEntry], ocb_path: Path | None) -> dict[str, Any]:
    """Status counts, split counts, quantiles per spec, and KS distances to OCB-101 if given."""
    from scipy.stats import ks_2samp

    statuses = Counter(str(r.measured.status) for r in rows)
    splits = Counter(r.split for r in rows)
    ok = [r.measured.to_dict() for r in rows if r.measured.status == "ok"]
    ours = {name: np.array([r.get(name) for r in ok], dtype=float) for name in SPECS}
    ours = {name: values[np.isfinite(values)] for name, values in ours.items()}
    result: dict[str, Any] = {
        "circuits": len(rows),
        "statuses": dict(statuses),
        "splits": dict(splits),
        "ok_fraction": len(ok) / len(rows) if rows else 0.0,
        "quantiles": {"levels": list(QUANTILES), **{k: _quantiles(v) for k, v in ours.items()}},
    }
    if ocb_path is not None:
        ocb = load_ocb(ocb_path)
        mask = ocb["ok"]
        comparison: dict[str, Any] = {"file": str(ocb_path), "rows": int(mask.size), "ok_fraction": float(mask.mean())}
        for name, column in COMPARED.items():
            theirs = ocb[column][mask]
            entry: dict[str, Any] = {"ocb": _quantiles(theirs)}
            if ours[name].size:
                entry["ks"] = float(ks_2samp(ours[name], theirs).statistic)
            comparison[name] = entry
        result["ocb101"] = comparison
        result["_ocb_samples"] = {name: ocb[column][mask] for name, column in COMPARED.items()}
    result["_samples"] = ours
    return result


def render(result: dict[str, Any]) -> str:
    """Markdown tables a person reads in a terminal."""
    lines = [f"dataset {result.get('dataset', '')}: {result['circuits']} circuits"]
    lines.append("statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(result["statuses"].items())))
    lines.append("splits: " + ", ".join(f"{k} {v}" for k, v in sorted(result["splits"].items())))
    lines.append("")
    levels = result["quantiles"]["levels"]
    header = "| quantity | " + " | ".join(_level_name(q) for q in levels) + " |"
    lines += ["Our distributions (status ok):", "", header, "|---" * (len(levels) + 1) + "|"]
    for name in SPECS:
        q = result["quantiles"][name]
        if q:
            lines.append(f"| {name} | " + " | ".join(_fmt(name, v) for v in q) + " |")
    comparison = result.get("ocb101")
    if comparison:
        lines += ["", f"Beside Ckt-Bench-101's published labels ({comparison['rows']} rows):", ""]
        lines += ["| quantity | source | " + " | ".join(_level_name(q) for q in levels) + " | KS |"]
        lines.append("|---" * (len(levels) + 3) + "|")
        ok_line = f"ours {result['ok_fraction']:.3f} / OCB {comparison['ok_fraction']:.3f}"
        for name in COMPARED:
            ours, entry = result["quantiles"][name], comparison[name]
            ks = f"{entry['ks']:.3f}" if "ks" in entry else "-"
            if ours:
                lines.append(f"| {name} | ours | " + " | ".join(_fmt(name, v) for v in ours) + f" | {ks} |")
            lines.append(f"| {name} | OCB-101 | " + " | ".join(_fmt(name, v) for v in entry["ocb"]) + " | |")
        lines += [
            "",
            f"share with a measurable unity-gain crossing: {ok_line}",
            "pm_ocb_deg is our phase read as OCB's labels read it; see docs/ocb-101-gap.md",
        ]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Empirical CDFs of gain, UGBW and PM: ours against OCB-101."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    labels = {
        "gain_db": "DC gain [dB]",
        "ugbw_hz": "unity-gain bandwidth [Hz]",
        "pm_ocb_deg": "phase margin, OCB reading [deg]",
    }
    for ax, name in zip(axes, COMPARED):
        for source, samples, style in (
            ("CktLoop", result["_samples"], "-"),
            ("OCB-101 (published)", result.get("_ocb_samples", {}), "--"),
        ):
            values = np.sort(samples.get(name, np.array([])))
            if values.size:
                ax.plot(values, np.arange(1, values.size + 1) / values.size, style, label=source)
        if name == "ugbw_hz":
            ax.set_xscale("log")
        ks = result.get("ocb101", {}).get(name, {}).get("ks")
        ax.set_title(labels[name] + (f"   KS {ks:.3f}" if ks is not None else ""))
        ax.set_ylabel("fraction of circuits")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"dataset {result.get('dataset', '')}: {result['circuits']} circuits")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise CktLoopError(f"{path}: cannot write the plot ({exc.strerror})") from None
    finally:
        plt.close(fig)


def _level_name(q: float) -> str:
    return {0.0: "min", 0.5: "median", 1.0: "max"}.get(q, f"p{round(q * 100)}")


def _fmt(name: str, value: float) -> str:
    return f"{value:.3e}" if name == "ugbw_hz" else f"{value:.2f}"
