"""Generator checkpoints: one ``torch.save`` dict of plain types and tensors (loadable with ``weights_only``).

Keys: ``format`` ("cktloop-generator"), ``format_version``, ``version`` (the model version string),
``epoch``, ``train_config`` / ``model_config`` (dicts), ``spec_classes``, ``model`` (state dict),
``optimizer``, ``scheduler``, ``rng`` (python/numpy/torch states), ``data`` (fingerprint of the
training rows). Any problem reading one is a ``CktLoopError`` naming the file and the problem; the
atomic write and the checked read are the surrogate's (``surrogate.checkpoint``), shared by both models.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circuits.errors import CktLoopError
from generator.config import CktGenConfig
from generator.model import CktGen
from surrogate.checkpoint import read_checked, write_atomic

FORMAT = "cktloop-generator"
FORMAT_VERSION = 1
MODEL_FAMILY = "cktgen"
REQUIRED = ("format", "format_version", "version", "epoch", "model_config", "model")


def config_digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


def model_version(model_config: dict[str, Any], seed: int, epoch: int) -> str:
    """E.g. ``cktgen-1-3fa9c0d2e1-e600``: family, format, config+seed digest, epoch."""
    return f"{MODEL_FAMILY}-{FORMAT_VERSION}-{config_digest({'model': model_config, 'seed': seed})}-e{epoch}"


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomic write (temporary file, then rename), so an interrupted save never leaves a torn file."""
    write_atomic(path, {"format": FORMAT, "format_version": FORMAT_VERSION, **state})


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return read_checked(path, FORMAT, FORMAT_VERSION, REQUIRED, map_location)


def model_from_checkpoint(path: str | Path, state: dict[str, Any], device: str | torch.device = "cpu") -> CktGen:
    """Build the model from the checkpoint's config and load its weights, naming the file on any mismatch."""
    raw = state["model_config"]
    if not isinstance(raw, dict):
        raise CktLoopError(f"{path}: model_config is not a mapping")
    try:
        config = CktGenConfig(**raw)
    except TypeError as exc:
        raise CktLoopError(f"{path}: model_config does not match this CktGen version ({exc})") from None
    except CktLoopError as exc:
        raise CktLoopError(f"{path}: {exc}") from None
    model = CktGen(config)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise CktLoopError(f"{path}: weights do not match the stored model config ({detail[:300]})") from None
    return model.to(device)
