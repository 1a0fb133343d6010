"""The generator's sampling choices, named once (``generator.predict.Generator.generate`` takes them).

Free of torch, so the CLI's parser and the design search import them without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuits.errors import CktLoopError

SAMPLING = ("bank", "spec")  # latents around training circuits of the class (bank), or the paper's spec latent
BANK_VALUES = ("clean", "noisy")  # bank sampling reads device values from the unperturbed or the perturbed latent
BANK_NOISE = 0.3  # noise around a bank latent, in units of the prior's per-dimension std


@dataclass(frozen=True)
class Sampling:
    """How ``Generator.generate`` draws its latents.

    ``kind``: ``spec`` draws the spec latent (the paper); ``bank`` decodes around the latent of a random
    training circuit of the class (``generator.latent_bank``) with ``bank_noise`` prior standard
    deviations of noise, the spec latent where the class has none. ``bank_values``: ``clean`` reads the
    device values from the unperturbed bank latent, so the noise moves the structure and the sizing stays
    the banked circuit's (bank-sampled Sim-Spec-Acc 28 % -> 43 % at the same share of new topologies,
    docs/models.md); ``noisy`` decodes them from the perturbed one. Bad values raise ``CktLoopError``.
    """

    kind: str = "spec"
    bank_noise: float = BANK_NOISE
    bank_values: str = "clean"

    def __post_init__(self) -> None:
        if self.kind not in SAMPLING:
            raise CktLoopError(f"unknown sampling {self.kind!r} (known: {', '.join(SAMPLING)})")
        if not self.bank_noise >= 0:
            raise CktLoopError(f"bank_noise must be >= 0, got {self.bank_noise}")
        if self.bank_values not in BANK_VALUES:
            raise CktLoopError(f"unknown bank_values {self.bank_values!r} (known: {', '.join(BANK_VALUES)})")

    @classmethod
    def of(cls, sampling: Sampling | str) -> Sampling:
        """``sampling`` itself, or the defaults of the kind it names."""
        return sampling if isinstance(sampling, Sampling) else cls(sampling)


SamplingLike = Sampling | str  # a Sampling, or the name of its kind (with its defaults)
