"""A small deep ensemble for the surrogate's uncertainty.

DIGIN has no dropout in its shipped configs (``dropout: 0.0``), so MC-dropout has nothing to sample; an
ensemble does not need one. ``cktloop finetune surrogate --members K`` fine-tunes K copies of the parent
checkpoint with different seeds, member 0 on the training rows and the others on bootstrap resamples of
them, and ships them in one checkpoint: member 0's weights under ``model`` (its answers are the point
predictions, so a one-member checkpoint answers exactly as before) and the others' under ``members``.
The spread of the K members' predictions is the uncertainty: per spec, the sample standard deviation
over members of gain (dB), UGBW (decades), the phase margin (degrees) and the FoM, times a per-spec
factor fitted on the held-out slice (``std_scale``: members that start from one parent agree more than
their errors warrant, so the raw spread ranks errors but is too narrow).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from circuits import CktLoopError
from surrogate.model import DIGIN

MEMBERS_KEY = "members"
SCALE_KEY = "std_scale"  # per spec name of STD_NAMES: the factor the raw spread is multiplied by (default 1)
STD_NAMES = ("gain_db", "ugbw_dec", "pm", "fom")  # "pm" is read as the preset's PM field


def load_members(data: dict[str, Any], model: DIGIN, n_classes: Sequence[int], path: str | Path) -> list[DIGIN]:
    """The extra members a checkpoint carries (none for a plain one), built like ``model``."""
    states = data.get(MEMBERS_KEY) or []
    if not isinstance(states, list):
        raise CktLoopError(f"{path}: '{MEMBERS_KEY}' must be a list of state dicts")
    members = []
    for i, state in enumerate(states):
        member = DIGIN(model.config, tuple(n_classes))
        try:
            member.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[:1]
            raise CktLoopError(
                f"{path}: ensemble member {i + 1} does not fit the model config ({' '.join(first)})"
            ) from None
        members.append(member.eval())
    return members


def spread(specs: Sequence[torch.Tensor], foms: Sequence[torch.Tensor]) -> torch.Tensor:
    """(B, 4) standard deviations over members (unbiased; at least two) of gain dB, log10 UGBW, PM and FoM,
    from each member's (B, 3) physical specs and (B,) FoM."""
    if len(specs) < 2 or len(specs) != len(foms):
        raise ValueError("spread needs the predictions of two or more members")
    s = torch.stack([torch.stack([x[:, 0], torch.log10(x[:, 1]), x[:, 2], f], dim=-1) for x, f in zip(specs, foms)])
    return s.double().std(dim=0, unbiased=True).float()


def with_members(
    payload: dict[str, Any], member_states: Sequence[dict[str, torch.Tensor]], scale: dict[str, float] | None = None
) -> dict[str, Any]:
    """A checkpoint payload (member 0's) that also carries ``member_states`` (and the spread's ``scale``)."""
    return {**payload, MEMBERS_KEY: [dict(s) for s in member_states], SCALE_KEY: dict(scale or {})}


def load_scale(data: dict[str, Any], path: str | Path) -> torch.Tensor:
    """The (4,) factors of a checkpoint's spread, in ``STD_NAMES`` order (1 where none is stored)."""
    scale = data.get(SCALE_KEY) or {}
    try:
        values = [float(scale.get(n, 1.0)) for n in STD_NAMES]
    except (AttributeError, TypeError, ValueError):
        raise CktLoopError(f"{path}: '{SCALE_KEY}' must map {', '.join(STD_NAMES)} to numbers") from None
    return torch.tensor(values)
