"""Checkpoint files of both models: one ``torch.save`` dict of plain types and tensors, loadable with
``weights_only``, marked with its ``format`` and ``format_version``; written atomically and read back with
every problem a ``CktLoopError`` naming the file. RNG states travel in it, so a resumed run continues
the same random streams."""

from __future__ import annotations

import os
import pickle
import random
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circuits.errors import CktLoopError

TRAINING_STATE = ("optimizer", "scheduler", "rng")  # what only resuming needs; a shipped checkpoint drops it
# what torch.load raises on a file that is not a checkpoint (random bytes reach the unpickler's internals)
_READ_ERRORS = (
    pickle.UnpicklingError,
    RuntimeError,
    EOFError,
    ValueError,
    OSError,
    AttributeError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
    zipfile.BadZipFile,
)


def write_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` via a temporary file and a rename, so a kill never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _read(path: Path, device: torch.device | str, what: str) -> Any:
    if not path.is_file():
        raise CktLoopError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except _READ_ERRORS as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CktLoopError(f"{path}: not a readable {what}checkpoint ({first[:200]})") from None


@dataclass(frozen=True)
class CheckpointFormat:
    """A model's checkpoint kind: its ``format`` marker and version, the keys a usable one holds, and
    constant ``marks`` (e.g. the model's name) written into each and checked on reading."""

    name: str
    version: int
    required: tuple[str, ...]
    marks: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path, state: dict[str, Any]) -> None:
        write_atomic(path, {**state, "format": self.name, "format_version": self.version, **self.marks})

    def load(self, path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
        """Read and check a checkpoint of this format; raises ``CktLoopError`` naming the file and the problem."""
        path = Path(path)
        what = self.name.removeprefix("cktloop-")
        data = _read(path, device, f"{what} ")
        if not isinstance(data, dict) or data.get("format") != self.name:
            raise CktLoopError(f"{path}: not a CktLoop {what} checkpoint (no format {self.name!r} marker)")
        if data.get("format_version") != self.version:
            raise CktLoopError(
                f"{path}: checkpoint format version {data.get('format_version')!r} is not supported "
                f"(expected {self.version})"
            )
        missing = [k for k in self.required if k not in data]
        if missing:
            raise CktLoopError(f"{path}: checkpoint lacks {', '.join(missing)}")
        for key, value in self.marks.items():
            if data.get(key) != value:
                raise CktLoopError(f"{path}: checkpoint holds {key} {data.get(key)!r}, expected {value!r}")
        return data


def rng_state() -> dict[str, Any]:
    """Python's, numpy's, torch's and (when present) CUDA's RNG states, as ``weights_only`` types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved (a state a checkpoint lacks is left as it is)."""
    if "python" in state:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def ship(src: str | Path, dst: str | Path, metrics: dict[str, Any] | None = None) -> int:
    """Copy a checkpoint of either model without what only resuming needs (optimiser, scheduler, RNG
    states), with the evaluation ``metrics`` it reached, for shipping with the package; returns the bytes written.
    """
    src, dst = Path(src), Path(dst)
    data = _read(src, "cpu", "")
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("cktloop-"):
        raise CktLoopError(f"{src}: not a CktLoop checkpoint")
    shipped = {k: v for k, v in data.items() if k not in TRAINING_STATE}
    if metrics is not None:
        shipped["metrics"] = metrics
    write_atomic(dst, shipped)
    return dst.stat().st_size
