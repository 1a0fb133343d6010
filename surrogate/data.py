"""Dataset rows → tensors for the DIGIN surrogate (reference §4.1, with the clean-up of §6).

Rows are flat dicts, as ``storage.rows.load_rows`` reads them: a line of a ``cktloop dataset export``
JSONL file, or ``DatasetEntry.to_dict()`` of the typed records ``storage.Store.dataset_rows`` yields
(``id``, ``split``, ``circuit`` in JSON form, ``status`` and the measured specs side by side).
Circuits are put in canonical node order and encoded with ``circuits.encoding`` (PAD tokens,
topological order), so a circuit's tensors do not depend on how its nodes were listed.

Labels, for ``status == "ok"`` rows only (failed simulations are not data, reference §6.3):

* ``cls``: the joint spec class, one index per axis of a ``SpecClasses`` preset;
* ``fom``: the figure of merit, z-scored with the training mean/std;
* ``reg``: (gain_db/100, log10 ugbw_hz, pm/90) where pm is the preset's phase-margin field, z-scored
  with the training mean/std (the model predicts z-scores; ``Normalisation`` maps them back);
* ``pm``: that phase-margin field in degrees, for a model that regresses it as an angle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from circuits import Circuit, CktLoopError
from circuits.circuit import MAX_NODES, N_POSITIONS
from circuits.encoding import PAD_TYPE, encode
from circuits.grid import value_grid
from circuits.specs import SpecClasses, filter_seen
from surrogate.nets import encode_nets

REG_NAMES = ("gain_db", "ugbw_hz", "pm")  # the three regression outputs, in order


class NoTrainingRows(CktLoopError):
    """The rows hold nothing to train on (both models raise it; the CLI names the data it read)."""


def pm_field(classes: SpecClasses) -> str:
    """The phase-margin field a preset bins (``pm_ocb_deg`` for ``ocb``, ``pm_deg`` for ``cktloop``)."""
    return next((f for f in classes.fields if f.startswith("pm")), "pm_deg")


@dataclass(frozen=True)
class Normalisation:
    """Training statistics the model's regression outputs are scaled by (kept in checkpoints)."""

    fom_mean: float
    fom_std: float
    reg_mean: tuple[float, float, float]
    reg_std: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fom_mean": self.fom_mean,
            "fom_std": self.fom_std,
            "reg_mean": list(self.reg_mean),
            "reg_std": list(self.reg_std),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalisation:
        return cls(
            float(data["fom_mean"]),
            float(data["fom_std"]),
            _triple(data["reg_mean"]),
            _triple(data["reg_std"]),
        )

    @classmethod
    def fit(cls, fom: np.ndarray, reg: np.ndarray) -> Normalisation:
        if len(fom) == 0:
            raise CktLoopError("no successfully simulated training rows to fit the label statistics on")
        fstd = float(fom.std()) or 1.0
        rstd = [float(s) or 1.0 for s in reg.std(axis=0)]
        return cls(float(fom.mean()), fstd, tuple(float(m) for m in reg.mean(axis=0)), tuple(rstd))  # type: ignore[arg-type]

    def fom_to_z(self, fom: np.ndarray) -> np.ndarray:
        return (fom - self.fom_mean) / self.fom_std

    def fom_from_z(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.fom_std + self.fom_mean

    def reg_to_z(self, reg: np.ndarray) -> np.ndarray:
        return (reg - np.asarray(self.reg_mean)) / np.asarray(self.reg_std)

    def reg_from_z(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.tensor(self.reg_std, device=z.device) + torch.tensor(self.reg_mean, device=z.device)


def _triple(values: Sequence[Any]) -> tuple[float, float, float]:
    a, b, c = (float(x) for x in values)
    return a, b, c


def regression_targets(row: Mapping[str, Any], pm_name: str) -> tuple[float, float, float] | None:
    """(gain_db/100, log10 ugbw_hz, pm/90), or None unless all are finite (and UGBW positive)."""
    g, u, p = row.get("gain_db"), row.get("ugbw_hz"), row.get(pm_name)
    if g is None or u is None or p is None or not all(math.isfinite(v) for v in (g, u, p)) or u <= 0:
        return None
    return (g / 100.0, math.log10(u), p / 90.0)


def spec_values(reg: torch.Tensor) -> torch.Tensor:
    """Physical (gain dB, UGBW Hz, PM deg) from un-z-scored regression targets."""
    return torch.stack([reg[..., 0] * 100.0, torch.pow(10.0, reg[..., 1]), reg[..., 2] * 90.0], dim=-1)


def predicted_specs(reg: torch.Tensor, norm: Normalisation, circular: bool) -> torch.Tensor:
    """Physical (gain dB, UGBW Hz, PM deg) from the regressor's output: z-scores, or with ``circular`` two
    z-scores then (cos, sin) of the phase margin, read back as an angle in [−180°, 180°]."""
    if not circular:
        return spec_values(norm.reg_from_z(reg))
    values = spec_values(norm.reg_from_z(torch.cat([reg[..., :2], torch.zeros_like(reg[..., :1])], dim=-1)))
    angle = torch.rad2deg(torch.atan2(reg[..., 3], reg[..., 2]))
    return torch.cat([values[..., :2], angle.unsqueeze(-1)], dim=-1)


def classify_specs(classes: SpecClasses, specs: torch.Tensor) -> torch.Tensor:
    """(N, n_axes) classes of physical specs (N, n_axes) through the preset's edges, as ``SpecClasses.classify``."""
    cols = []
    for i, axis in enumerate(classes.axes):
        edges = torch.tensor(axis.edges, dtype=torch.float64, device=specs.device)
        cols.append(torch.searchsorted(edges, axis.sign * specs[:, i].double(), right=True))
    return torch.stack(cols, dim=-1)


def value_scales(k: np.ndarray, grid: str) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices ``k`` on two scales in [0, 1]: k/k_max and log(k)/log(k_max) of the value grid ``grid``
    (absent devices, k = 0, read 0 on both)."""
    k_max = value_grid(grid).k_max
    return k / k_max, np.log(np.maximum(k, 1)) / np.log(k_max)


def encode_batch(circuits: Sequence[Circuit], encoder: str = "subgraphs") -> dict[str, torch.Tensor]:
    """Model inputs for circuits: for the ``subgraphs`` encoder ``types``/``pos`` (B, 8) long, ``adj`` (B, 8, 8),
    ``values`` and ``log_values`` (B, 8, 3) (``value_scales``); for ``nets`` those of ``surrogate.nets.encode_nets``."""
    if encoder == "nets":
        return encode_nets(circuits)
    n = len(circuits)
    types = np.full((n, MAX_NODES), PAD_TYPE, dtype=np.int64)
    pos = np.full((n, MAX_NODES), N_POSITIONS, dtype=np.int64)
    adj = np.zeros((n, MAX_NODES, MAX_NODES), dtype=np.float32)
    values = np.zeros((n, MAX_NODES, 3), dtype=np.float32)
    log_values = np.zeros((n, MAX_NODES, 3), dtype=np.float32)
    for i, circuit in enumerate(circuits):
        e = encode(circuit.canonical())
        types[i], pos[i], adj[i] = e.types, e.pos, e.adj
        values[i], log_values[i] = value_scales(e.values, circuit.grid)
    return {
        "types": torch.from_numpy(types),
        "pos": torch.from_numpy(pos),
        "adj": torch.from_numpy(adj),
        "values": torch.from_numpy(values),
        "log_values": torch.from_numpy(log_values),
    }


@dataclass
class Split:
    """Tensors for one split: inputs, labels, and which rows the class metrics count."""

    inputs: dict[str, torch.Tensor]
    cls: torch.Tensor  # (N, n_axes) long
    fom: torch.Tensor  # (N,) z-scored
    reg: torch.Tensor  # (N, 3) z-scored
    pm: torch.Tensor  # (N,) the preset's phase-margin field, degrees
    seen: torch.Tensor  # (N,) bool: joint class occurs in training (all True for the training split)
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, index: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        inputs = {k: v[index] for k, v in self.inputs.items()}
        return inputs, {"cls": self.cls[index], "fom": self.fom[index], "reg": self.reg[index], "pm": self.pm[index]}


@dataclass
class SurrogateData:
    train: Split
    test: Split
    classes: SpecClasses
    norm: Normalisation
    train_classes: list[tuple[int, ...]]  # distinct joint classes of the training split
    fingerprint: str  # identifies the training rows (checked on resume)
    n_dropped: dict[str, int]  # rows left out, by reason


def _labelled(rows: Iterable[Mapping[str, Any]], classes: SpecClasses, pm_name: str):
    """Usable rows as (row, class, FoM, regression targets, circuit) — each circuit parsed once — and drop counts."""
    kept = []
    dropped = {"not ok": 0, "incomplete labels": 0}
    for row in rows:
        cls = classes.classify(row)
        if cls is None:
            dropped["not ok" if row.get("status") != "ok" else "incomplete labels"] += 1
            continue
        reg = regression_targets(row, pm_name)
        fom = row.get("fom")
        if reg is None or fom is None or not math.isfinite(fom):
            dropped["incomplete labels"] += 1
            continue
        kept.append((row, cls, float(fom), reg, _circuit(row)))
    return kept, dropped


def _circuit(row: Mapping[str, Any]) -> Circuit:
    try:
        return Circuit.from_dict(row["circuit"])
    except (CktLoopError, KeyError) as exc:
        raise CktLoopError(f"dataset row {row.get('id', '?')}: bad circuit ({exc})") from None


def _split(kept: list, norm: Normalisation, seen: list[bool], encoder: str) -> Split:
    circuits = [k[4] for k in kept]
    n_axes = len(kept[0][1]) if kept else 3
    return Split(
        inputs=encode_batch(circuits, encoder),
        cls=torch.tensor([k[1] for k in kept], dtype=torch.long).reshape(len(kept), n_axes),
        fom=torch.tensor(norm.fom_to_z(np.array([k[2] for k in kept], dtype=np.float64)), dtype=torch.float32),
        reg=torch.tensor(
            norm.reg_to_z(np.array([k[3] for k in kept], dtype=np.float64).reshape(-1, 3)), dtype=torch.float32
        ),
        pm=torch.tensor([90.0 * k[3][2] for k in kept], dtype=torch.float32),
        seen=torch.tensor(seen, dtype=torch.bool),
        ids=[str(k[0].get("id", i)) for i, k in enumerate(kept)],
    )


def build(
    rows: Sequence[Mapping[str, Any]],
    classes: SpecClasses,
    norm: Normalisation | None = None,
    encoder: str = "subgraphs",
) -> SurrogateData:
    """Train/test tensors from dataset rows, encoded for ``encoder``; ``norm`` defaults to statistics fitted on
    the training rows."""
    import hashlib

    pm_name = pm_field(classes)
    train_kept, dropped_train = _labelled((r for r in rows if r.get("split") == "train"), classes, pm_name)
    test_kept, dropped_test = _labelled((r for r in rows if r.get("split") == "test"), classes, pm_name)
    if not train_kept:
        raise NoTrainingRows("no usable training rows (need split 'train', status 'ok' and complete labels)")
    # Held out means an unseen canonical topology (a split by topology number can put one on both sides).
    train_topologies = {k[4].topology_key for k in train_kept}
    n_test = len(test_kept)
    test_kept = [k for k in test_kept if k[4].topology_key not in train_topologies]
    if norm is None:
        norm = Normalisation.fit(np.array([k[2] for k in train_kept]), np.array([k[3] for k in train_kept]))
    train_classes = sorted({k[1] for k in train_kept})
    seen = filter_seen(train_classes, [k[1] for k in test_kept])
    digest = hashlib.sha256("\n".join(sorted(str(k[0].get("id")) for k in train_kept)).encode()).hexdigest()[:16]
    return SurrogateData(
        train=_split(train_kept, norm, [True] * len(train_kept), encoder),
        test=_split(test_kept, norm, seen, encoder),
        classes=classes,
        norm=norm,
        train_classes=train_classes,
        fingerprint=f"{len(train_kept)}:{digest}",
        n_dropped={"train " + k: v for k, v in dropped_train.items()}
        | {"test " + k: v for k, v in dropped_test.items()}
        | {"test topology in training": n_test - len(test_kept), "test unseen class": len(seen) - sum(seen)},
    )
