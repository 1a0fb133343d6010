"""Surrogate checkpoints: written atomically, read with ``weights_only``, validated with messages that name the file.

A checkpoint is a dict (``torch.save``) holding the model weights and everything needed to rebuild and
use the model (architecture config, spec-class preset, label statistics, training classes, version),
plus, for resuming, the optimiser, scheduler, epoch and RNG states.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from circuits import CktLoopError
from circuits.config import from_mapping
from circuits.specs import SpecClasses
from surrogate.data import Normalisation
from surrogate.model import DIGIN, MODEL_NAME, SurrogateConfig

FORMAT = "cktloop-surrogate"
FORMAT_VERSION = 1
REQUIRED = (
    "format",
    "format_version",
    "model_name",
    "version",
    "epoch",
    "model_config",
    "spec_classes",
    "norm",
    "train_classes",
    "model",
)


def write_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` via a temporary file and a rename, so a kill never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checked(
    path: str | Path, fmt: str, version: int, required: tuple[str, ...], device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written with ``format``/``format_version`` markers and check its keys.

    Shared by the surrogate and the generator; every problem is a ``CktLoopError`` naming the file.
    """
    path = Path(path)
    what = fmt.removeprefix("cktloop-")
    if not path.is_file():
        raise CktLoopError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CktLoopError(f"{path}: not a readable {what} checkpoint ({first[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise CktLoopError(f"{path}: not a CktLoop {what} checkpoint (no format {fmt!r} marker)")
    if data.get("format_version") != version:
        raise CktLoopError(
            f"{path}: checkpoint format version {data.get('format_version')!r} is not supported (expected {version})"
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise CktLoopError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return data


def save(path: str | Path, payload: dict[str, Any]) -> None:
    write_atomic(path, {"format": FORMAT, "format_version": FORMAT_VERSION, "model_name": MODEL_NAME, **payload})


def load(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read and check a surrogate checkpoint; raises ``CktLoopError`` naming the file and the problem."""
    data = read_checked(path, FORMAT, FORMAT_VERSION, REQUIRED, device)
    if data["model_name"] != MODEL_NAME:
        raise CktLoopError(f"{path}: checkpoint holds model {data['model_name']!r}, expected {MODEL_NAME!r}")
    return data


def build_model(data: dict[str, Any], path: str | Path) -> tuple[DIGIN, SpecClasses, Normalisation]:
    """The model (weights loaded), spec classes and label statistics of a loaded checkpoint."""
    try:
        config = from_mapping(data["model_config"], SurrogateConfig, where=f"{path}: model_config")
        classes = SpecClasses.from_dict(data["spec_classes"])
        norm = Normalisation.from_dict(data["norm"])
    except (CktLoopError, KeyError, TypeError, ValueError) as exc:
        raise CktLoopError(f"{path}: bad checkpoint metadata ({exc})") from None
    model = DIGIN(config, classes.sizes)
    try:
        model.load_state_dict(data["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        raise CktLoopError(f"{path}: weights do not fit the stored model config ({' '.join(first[:2])})") from None
    return model, classes, norm


TRAINING_STATE = ("optimizer", "scheduler", "rng")


def ship(src: str | Path, dst: str | Path, metrics: dict[str, Any] | None = None) -> int:
    """Copy a checkpoint without what only resuming needs (optimiser, scheduler, RNG states), with the
    evaluation ``metrics`` it reached, for shipping with the package; returns the bytes written.

    Works for either model: both checkpoints are plain dicts with a ``format`` marker.
    """
    src, dst = Path(src), Path(dst)
    try:
        data = torch.load(src, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CktLoopError(f"{src}: not a readable checkpoint ({str(exc).strip()[:200]})") from None
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("cktloop-"):
        raise CktLoopError(f"{src}: not a CktLoop checkpoint")
    shipped = {k: v for k, v in data.items() if k not in TRAINING_STATE}
    if metrics is not None:
        shipped["metrics"] = metrics
    write_atomic(dst, shipped)
    return dst.stat().st_size
