"""Where a model runs and how many CPU threads torch uses: one choice for training, evaluation and actors."""

from __future__ import annotations

from typing import Literal

import torch

from circuits.errors import CktLoopError

DEVICES = ("auto", "cpu", "cuda")
Device = Literal["auto", "cpu", "cuda"]


def choose_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when torch sees a GPU, else the CPU; ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in DEVICES:
        raise CktLoopError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise CktLoopError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def set_threads(threads: int) -> None:
    """Torch's intra-op CPU threads; 0 keeps torch's default (use 1 on a shared, busy machine)."""
    if threads > 0:
        torch.set_num_threads(threads)
