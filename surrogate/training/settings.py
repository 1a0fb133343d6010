"""The training knobs both models share (one name for each), and the check that a resumed run keeps them."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from circuits.config import ConfigModel

# Old knob names still read from checkpoints written before the names were shared: old name → new name.
RENAMED = {"num_threads": "threads"}


class TrainSettings(ConfigModel):
    """Optimiser (AdamW), schedule, checkpointing and where to run; a model's train config adds its own."""

    # keys that may change between an interrupted run and its resumption without changing the result
    # (lr_drops only at epochs not yet trained: checked on resume)
    resumable: ClassVar[frozenset[str]] = frozenset(
        {"epochs", "checkpoint_every", "threads", "device", "progress", "lr_drops"}
    )

    seed: int = Field(1, ge=0)
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0.0)
    betas: tuple[Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]] = Field(
        (0.9, 0.99), strict=False
    )
    weight_decay: float = Field(0.0, ge=0.0)
    # "plateau" (paper): ReduceLROnPlateau on the training loss, stepped once per epoch;
    # "cosine": lr·½(1 + cos(π·epoch/epochs)), per epoch
    lr_schedule: Literal["plateau", "cosine"] = "plateau"
    plateau_factor: float = Field(0.1, gt=0.0, le=1.0)
    plateau_patience: int = Field(10, ge=0)
    # epochs after which the learning rate is multiplied by plateau_factor (the plateau scheduler
    # watches the training loss, which keeps falling, so it may never act)
    lr_drops: tuple[Annotated[int, Field(ge=1)], ...] = Field((), strict=False)
    grad_clip: float | None = Field(None, gt=0.0)  # gradient-norm clip (none by default)
    checkpoint_every: int = Field(10, ge=1)
    threads: int = Field(0, ge=0)  # torch intra-op CPU threads; 0 keeps torch's default
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda if torch sees a GPU
    progress: bool = True  # tqdm bar and a line per epoch

    @model_validator(mode="after")
    def _drops_need_plateau(self) -> TrainSettings:
        if self.lr_drops and self.lr_schedule != "plateau":
            raise ValueError("lr_drops work with lr_schedule 'plateau' only (cosine sets every epoch's lr)")
        return self


def renamed(stored: dict[str, Any]) -> dict[str, Any]:
    """A train config read from a checkpoint, with knobs stored under an old name (``RENAMED``) renamed."""
    out = dict(stored)
    for old, new in RENAMED.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out
