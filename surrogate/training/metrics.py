"""The metrics log of a training run (``metrics.jsonl``, one record per epoch) and its plot (``metrics.png``).

A record is ``{"epoch", "lr", "seconds", "train": {term: value}, "test": {metric: value}}``. On resume
the log keeps only the epochs the checkpoint covers (later ones are trained again), so it never holds an
epoch twice; a line cut by a kill is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSONL of epoch records."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def restart(self, upto: int) -> list[dict[str, Any]]:
        """Keep the records of epochs ``<= upto`` (none for a fresh run) and return them."""
        kept = []
        if upto > 0 and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                    if record["epoch"] <= upto:
                        kept.append(record)
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


@dataclass(frozen=True)
class Panel:
    """One plot panel: ``series`` are ``section.key`` names (``train.*`` for every training term but those
    starting with one of ``exclude``; a list-valued key draws one line per element)."""

    title: str
    series: tuple[str, ...]
    scale: str = "log"
    exclude: tuple[str, ...] = ()


def _lines(records: Sequence[dict[str, Any]], panel: Panel) -> list[tuple[str, list[float]]]:
    lines = []
    for name in panel.series:
        section, key = name.split(".", 1)
        keys = [k for k in records[0].get(section, {}) if not k.startswith(panel.exclude)] if key == "*" else [key]
        for k in keys:
            first = records[0].get(section, {}).get(k)
            if isinstance(first, list):
                for i in range(len(first)):
                    lines.append((f"{section} {k} {i}", [r[section][k][i] for r in records]))
            elif first is not None:
                lines.append((f"{section} {k}", [r.get(section, {}).get(k, float("nan")) for r in records]))
    return lines


def plot_metrics(records: Sequence[dict[str, Any]], path: Path, panels: Sequence[Panel]) -> None:
    """The records' curves against the epoch, a panel each (matplotlib, Agg); nothing for no records."""
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, ys in _lines(records, panel):
            ax.plot(epochs, ys, "--" if label.startswith("test") else "-", label=label)
        ax.set_yscale(panel.scale)
        ax.set_xlabel("epoch")
        ax.set_title(panel.title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
