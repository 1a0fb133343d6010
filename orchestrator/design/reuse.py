"""Reuse: a target's search starts from the store's verified circuits nearest to it (issue 19).

Every campaign leaves thousands of circuits that ngspice measured, most of them near the targets it
searched. A later target whose bounds lie near an earlier one's is best started from those circuits:
``Library.nearest`` picks, per target, the stored circuits whose *measured* specs come closest to its
bounds (met first, then the highest FoM; otherwise the smallest worst normalised violation, the scale
refinement judges by, ``orchestrator.design.constraints``), one per topology, so refinement gets
distinct seeds, each with its stored measurement. The search simulates again those whose measurement
meets the target, counted against its budget like any other circuit (the store proposes, ngspice decides
in this campaign); the others are known misses that refinement can start from without a simulation
(ngspice is deterministic: simulating a stored miss again only repeats it). Refinement then resizes the
best.

What a library holds is the caller's choice (``build_library``): the verified candidates of the
store's other campaigns and, by default, the training split of every dataset in the store (a built
dataset is tens of thousands of circuits ngspice already measured across the whole family: on 100 window
targets at budget 100 reusing the ocb101 pool's training split took the share met from 81 to 97 and the
median simulations to the first met circuit from 49 to 12). Never a circuit of any dataset's held-out
split: those stay for measuring. A campaign never reuses its own rows, so a re-run proposes what the
first run did.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from circuits import Circuit, Performance, SimStatus
from circuits.performance import figure_of_merit
from circuits.targets import Target
from orchestrator.design.constraints import constraint_sides, normalised
from orchestrator.design.search import StoredCircuit
from storage import EVERY_DATASET

_COLUMNS = ("gain_db", "ugbw_hz", "pm_deg", "fom")


@dataclass(frozen=True)
class Library:
    """Verified circuits (``circuits``, as dicts) and their measured specs (one row each, ``_COLUMNS``)."""

    circuits: tuple[Mapping[str, Any], ...]
    specs: np.ndarray  # (n, 4) float: gain_db, ugbw_hz, pm_deg, fom

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Library:
        """Rows in the dataset row shape (``id``, ``circuit`` and the measured fields); only those measured ok
        with finite specs are kept, each circuit (``id``) once."""
        seen: set[str] = set()
        kept, specs = [], []
        for r in rows:
            values = [r.get(f) for f in _COLUMNS[:3]]
            if r.get("status") != "ok" or any(v is None or not math.isfinite(v) for v in values):
                continue
            if r["id"] in seen:
                continue
            seen.add(r["id"])
            gain, ugbw, pm = (float(v) for v in values)  # type: ignore[arg-type]
            fom = r.get("fom")
            kept.append(r["circuit"])
            specs.append([gain, ugbw, pm, fom if fom is not None else figure_of_merit(gain, ugbw, pm)])
        return cls(tuple(kept), np.asarray(specs, dtype=float).reshape(-1, 4))

    def __len__(self) -> int:
        return len(self.circuits)

    def nearest(self, target: Target, k: int) -> list[StoredCircuit]:
        """Up to ``k`` circuits of distinct topologies, the closest to ``target`` by measurement first, each
        with its measurement."""
        if not len(self) or k < 1:
            return []
        worst, met = np.zeros(len(self)), np.ones(len(self), dtype=bool)
        for field, side, limit in constraint_sides(target):
            column = self.specs[:, _COLUMNS.index(field)]
            gap = normalised(field, limit) - normalised(field, column)
            worst = np.maximum(worst, gap if side == "min" else -gap)
            met &= column >= limit if side == "min" else column <= limit  # exactly as Target.met_by
        # met first, by FoM; then the rest by their worst violation
        order = np.lexsort((np.where(met, -self.specs[:, 3], worst), ~met))
        picked: list[StoredCircuit] = []
        topologies: set[str] = set()
        for i in order:
            circuit = Circuit.from_dict(self.circuits[int(i)])
            if circuit.topology_key not in topologies:
                topologies.add(circuit.topology_key)
                gain, ugbw, pm = (float(v) for v in self.specs[int(i), :3])
                picked.append(StoredCircuit(circuit, Performance(SimStatus.OK, gain, ugbw, pm)))
                if len(picked) == k:
                    break
        return picked


class DatasetRows:
    """Datasets' training rows, read once and kept (a long-running service's jobs share one): a dataset is
    read again only when its member or simulated counts change (a build resumed). A 100,000-circuit pool
    takes about 9 s to read and about 360 MB to keep."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Any, list[Mapping[str, Any]]]] = {}
        self._lock = threading.Lock()  # jobs run in threads: one reads a dataset, the others wait for it

    def training_rows(self, store: Any, info: Any) -> list[Mapping[str, Any]]:
        """The training split of the dataset ``info`` (``Store.datasets``' answer) in the dataset row shape."""
        state = (info.members, sorted(info.simulated.items()))
        with self._lock:
            kept = self._kept.get(info.name)
            if kept is None or kept[0] != state:
                kept = (state, [e.to_dict() for e in store.dataset_rows(info.name) if e.split == "train"])
                self._kept[info.name] = kept
            return kept[1]


def build_library(
    store: Any, exclude: Sequence[str] = (), dataset: str | None = EVERY_DATASET, datasets: DatasetRows | None = None
) -> Library:
    """The store's verified campaign candidates, less the campaigns named in ``exclude``, and the training
    split of ``dataset`` (of every dataset in the store with ``EVERY_DATASET``; of none with None), read
    through ``datasets`` when given. No circuit of any dataset's held-out split is ever in it, whichever
    rows hold it."""
    names = [c.name for c in store.campaigns() if c.name not in set(exclude)]
    rows: list[Mapping[str, Any]] = store.verified_rows(names) if names else []
    reader = datasets or DatasetRows()
    for info in store.chosen_datasets(dataset, "reuse") if dataset else []:
        rows += reader.training_rows(store, info)
    held_out = store.held_out_keys() if rows else set()
    return Library.from_rows(r for r in rows if r["id"] not in held_out)
