"""Generator checkpoints: one ``torch.save`` dict of plain types and tensors (loadable with ``weights_only``).

Keys: ``format`` ("cktloop-generator"), ``format_version``, ``version`` (the model version string),
``epoch``, ``train_config`` / ``model_config`` (dicts), ``spec_classes``, ``model`` (state dict),
``optimizer``, ``scheduler``, ``rng`` (python/numpy/torch states), ``data`` (fingerprint of the
training rows). Any problem reading one is a ``CktLoopError`` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circuits.errors import CktLoopError
from generator.model import CktGen, CktGenConfig

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
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CktLoopError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CktLoopError(f"{path}: not a readable generator checkpoint ({first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CktLoopError(f"{path}: not a CktLoop generator checkpoint (no format {FORMAT!r} marker)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CktLoopError(
            f"{path}: checkpoint format version {state.get('format_version')!r} is not supported"
            f" (expected {FORMAT_VERSION})"
        )
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CktLoopError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return state


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
