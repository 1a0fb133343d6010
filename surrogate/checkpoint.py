"""Surrogate checkpoints (``surrogate.training.checkpoints`` writes and reads them): the model weights and
everything needed to rebuild and use the model (architecture config, spec-class preset, label statistics,
training classes, version), plus, for resuming, the optimiser, scheduler, epoch and RNG states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from circuits import CktLoopError
from circuits.config import from_mapping
from circuits.specs import SpecClasses
from surrogate.config import SurrogateConfig
from surrogate.data import Normalisation
from surrogate.model import DIGIN, MODEL_NAME
from surrogate.training.checkpoints import CheckpointFormat

REQUIRED = (
    "version",
    "epoch",
    "model_config",
    "spec_classes",
    "norm",
    "train_classes",
    "model",
)
FORMAT = CheckpointFormat("cktloop-surrogate", 1, REQUIRED, {"model_name": MODEL_NAME})


def save(path: str | Path, payload: dict[str, Any]) -> None:
    FORMAT.save(path, payload)


def load(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read and check a surrogate checkpoint; raises ``CktLoopError`` naming the file and the problem."""
    return FORMAT.load(path, device)


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
