"""The shipped generator checkpoints, named once and free of torch, so a caller that only needs a
path (the campaign driver, the CLI) does not load the model stack (see docs/models.md)."""

from pathlib import Path

_DIR = Path(__file__).parent / "checkpoints"

# Trained with the cpu preset on the 10,000-circuit ocb101 dataset.
SHIPPED_CHECKPOINT = _DIR / "cktgen-cpu.pt"
# The same preset trained on the cktloop classes (standard phase margin): what design campaigns use.
DESIGN_CHECKPOINT = _DIR / "cktgen-design-cpu.pt"
# The reconstruction-only VAE (cpu-vae preset): the model the paper's Recon-Acc and prior sampling measure.
VAE_CHECKPOINT = _DIR / "cktgen-vae-cpu.pt"
