"""The shipped surrogate checkpoints, named once and free of torch, so a caller that only needs a
path (the campaign driver, the CLI) does not load the model stack (see docs/models.md)."""

from pathlib import Path

_DIR = Path(__file__).parent / "checkpoints"

# Trained with the cpu preset on the 10,000-circuit ocb101 dataset.
SHIPPED_CHECKPOINT = _DIR / "digin-cpu.pt"
# The same preset trained on the cktloop classes (standard phase margin): what design campaigns use.
DESIGN_CHECKPOINT = _DIR / "digin-design-cpu.pt"
