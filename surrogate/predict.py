"""``Surrogate``: a trained DIGIN checkpoint as a plain predictor (no Ray; an actor can wrap it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circuits import Circuit, CktLoopError
from circuits.specs import SpecClasses
from surrogate import checkpoint as ckpt
from surrogate.data import Normalisation, classify_specs, encode_batch, pm_field, predicted_specs
from surrogate.ensemble import STD_NAMES, load_members, load_scale, spread
from surrogate.model import DIGIN
from surrogate.paths import DESIGN_CHECKPOINT, SHIPPED_CHECKPOINT  # noqa: F401 (re-exported)
from surrogate.training.device import choose_device


class Surrogate:
    """Predicts spec class, FoM and (gain, UGBW, PM) of circuits, and embeds circuits and specs."""

    def __init__(
        self,
        model: DIGIN,
        classes: SpecClasses,
        norm: Normalisation,
        version: str,
        train_classes: Sequence[tuple[int, ...]] = (),
        device: torch.device | str | None = None,
        members: Sequence[DIGIN] = (),
        std_scale: torch.Tensor | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else choose_device()
        self.model = model.to(self.device).eval()
        self.members = [m.to(self.device).eval() for m in members]  # an ensemble's other members
        self.std_scale = std_scale if std_scale is not None else torch.ones(len(STD_NAMES))
        self.classes = classes
        self.norm = norm
        self.train_classes = [tuple(int(x) for x in c) for c in train_classes]
        self.pm_field = pm_field(classes)
        self._version = version

    @classmethod
    def load(cls, checkpoint: str | Path, device: torch.device | str | None = None) -> Surrogate:
        device = torch.device(device) if device is not None else choose_device()
        data = ckpt.load(checkpoint, device)
        model, classes, norm = ckpt.build_model(data, checkpoint)
        members = load_members(data, model, classes.sizes, checkpoint)
        scale = load_scale(data, checkpoint)
        return cls(model, classes, norm, str(data["version"]), data["train_classes"], device, members, scale)

    @property
    def version(self) -> str:
        return self._version

    @torch.inference_mode()
    def predict(self, circuits: Sequence[Circuit], batch_size: int = 256) -> list[dict[str, Any]]:
        """One dict per circuit: ``spec_class`` (tuple, one index per axis), ``class_prob`` (product over axes
        of the class heads' probability of that class), ``fom``, ``gain_db``, ``ugbw_hz``, the preset's PM
        field (e.g. ``pm_ocb_deg``), ``embedding`` (float32 numpy vector); an ensemble checkpoint adds
        ``std``, the spread of its members' predictions (``surrogate.ensemble``): a dict with ``gain_db``,
        ``ugbw_dec`` (decades), the PM field and ``fom`` (a plain checkpoint answers without it). The class
        is the heads' top-1, or with ``class_source: regression`` the bin the regressed specs fall in; all
        answers but ``std`` come from the first member."""
        if batch_size < 1:
            raise CktLoopError(f"batch_size must be >= 1, got {batch_size}")
        results: list[dict[str, Any]] = []
        for start in range(0, len(circuits), batch_size):
            inputs = encode_batch(circuits[start : start + batch_size], self.model.config.encoder)
            out, _ = self.model({k: v.to(self.device) for k, v in inputs.items()})
            spec = predicted_specs(out["reg"], self.norm, self.model.config.pm_circular)
            if self.model.config.class_source == "regression":
                chosen = classify_specs(self.classes, spec)
            else:
                chosen = torch.stack([lg.argmax(dim=-1) for lg in out["logits"]], dim=-1)
            per_axis = [torch.softmax(lg, dim=-1).gather(1, chosen[:, i : i + 1]) for i, lg in enumerate(out["logits"])]
            conf = torch.cat(per_axis, dim=-1).prod(dim=-1).cpu().tolist()
            cls = chosen.cpu().tolist()
            fom = self.norm.fom_from_z(out["fom"]).cpu().tolist()
            specs = spec.cpu().tolist()
            emb = out["embedding"].float().cpu().numpy()
            std = self._spread(inputs, spec, out["fom"]) if self.members else None
            for i in range(len(cls)):
                results.append(
                    {
                        "spec_class": tuple(cls[i]),
                        "class_prob": conf[i],
                        "fom": fom[i],
                        "gain_db": specs[i][0],
                        "ugbw_hz": specs[i][1],
                        self.pm_field: specs[i][2],
                        "embedding": emb[i],
                    }
                )
                if std is not None:
                    results[-1]["std"] = dict(zip(self._std_names, std[i]))
        return results

    @property
    def _std_names(self) -> tuple[str, ...]:
        return tuple(self.pm_field if n == "pm" else n for n in STD_NAMES)

    def _spread(self, inputs: dict[str, torch.Tensor], spec: torch.Tensor, fom_z: torch.Tensor) -> list[list[float]]:
        specs, foms = [spec], [self.norm.fom_from_z(fom_z)]
        for member in self.members:
            out, _ = member({k: v.to(self.device) for k, v in inputs.items()})
            specs.append(predicted_specs(out["reg"], self.norm, member.config.pm_circular))
            foms.append(self.norm.fom_from_z(out["fom"]))
        return (spread(specs, foms).cpu() * self.std_scale).tolist()

    @torch.no_grad()
    def embed_specs(self, spec_classes: Sequence[Sequence[int]]) -> np.ndarray:
        """Spec embeddings (n, embed_dim) of joint classes, for CktGen's retrieval metrics (R@k, MM-D)."""
        if not spec_classes:
            return np.zeros((0, self.model.config.embed_dim), dtype=np.float32)
        cls = torch.tensor([list(c) for c in spec_classes], dtype=torch.long)
        sizes = torch.tensor(self.classes.sizes)
        if cls.ndim != 2 or cls.shape[1] != len(sizes) or (cls < 0).any() or (cls >= sizes).any():
            raise CktLoopError(f"spec classes must be {len(sizes)} indices below {tuple(sizes.tolist())}")
        return self.model.encode_specs(cls.to(self.device)).float().cpu().numpy()

    def __repr__(self) -> str:
        return f"Surrogate(version={self.version!r}, classes={self.classes.name!r}, device={self.device})"
