"""Generator checkpoints (``surrogate.training.checkpoints`` writes and reads them, as for the surrogate).

Keys: ``format`` ("cktloop-generator"), ``format_version``, ``version`` (the model version string),
``epoch``, ``train_config`` / ``model_config`` (dicts), ``spec_classes``, ``train_classes``, ``model``
(state dict), ``optimizer``, ``scheduler``, ``rng`` (python/numpy/torch states), ``data`` (fingerprint
of the training rows) and, once trained, ``latent_bank``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from circuits.config import from_mapping
from circuits.errors import CktLoopError
from generator.config import CktGenConfig
from generator.model import CktGen
from surrogate.training.checkpoints import CheckpointFormat

MODEL_FAMILY = "cktgen"
FORMAT = CheckpointFormat("cktloop-generator", 1, ("version", "epoch", "model_config", "model"))


def config_digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


def model_version(model_config: dict[str, Any], seed: int, epoch: int) -> str:
    """E.g. ``cktgen-1-3fa9c0d2e1-e600``: family, format, config+seed digest, epoch."""
    return f"{MODEL_FAMILY}-{FORMAT.version}-{config_digest({'model': model_config, 'seed': seed})}-e{epoch}"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomic write (temporary file, then rename), so an interrupted save never leaves a torn file."""
    FORMAT.save(path, state)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return FORMAT.load(path, map_location)


def model_from_checkpoint(path: str | Path, state: dict[str, Any], device: str | torch.device = "cpu") -> CktGen:
    """Build the model from the checkpoint's config and load its weights, naming the file on any mismatch."""
    config = from_mapping(state["model_config"], CktGenConfig, where=f"{path}: model_config")
    model = CktGen(config)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise CktLoopError(f"{path}: weights do not match the stored model config ({detail[:300]})") from None
    return model.to(device)
