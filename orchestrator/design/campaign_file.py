"""Campaign files: a name, an optional budget, and targets with bounds; checked before any work starts.

```yaml
name: demo
budget: 500                 # simulations per target (optional)
targets:
  - name: fast-and-stable
    specs:
      gain_db: {min: 60}
      ugbw_hz: {min: 1.0e9}
      pm_deg: {min: 60, max: 90}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from circuits import CktLoopError
from circuits.config import ConfigModel, from_mapping, read_yaml
from circuits.targets import Target

DEFAULT_BUDGET = 500
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class TargetEntry(ConfigModel):
    """One target: a name and its bounds (``circuits.targets.Target.from_mapping`` reads them)."""

    name: Name
    specs: dict[str, Any]

    @model_validator(mode="after")
    def _bounds(self) -> TargetEntry:
        self.target()
        return self

    def target(self) -> Target:
        try:
            return Target.from_mapping(self.name, self.specs)
        except CktLoopError as exc:
            raise ValueError(str(exc)) from None


class CampaignFile(ConfigModel):
    """The file's schema: a name, simulations per target, and distinctly named targets."""

    name: Name
    budget: int = Field(DEFAULT_BUDGET, ge=1)  # simulations per target
    targets: list[TargetEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> CampaignFile:
        seen: set[str] = set()
        for entry in self.targets:
            if entry.name in seen:
                raise ValueError(f"target {entry.name!r} appears twice")
            seen.add(entry.name)
        return self


@dataclass(frozen=True)
class Campaign:
    name: str
    budget: int
    targets: tuple[Target, ...]


def load_campaign(path: str | Path) -> Campaign:
    """Read and validate a campaign file; every error names the file, and the target and field at fault."""
    return parse_campaign(read_yaml(path, "campaign"), where=str(path))


def parse_campaign(data: Any, where: str = "campaign") -> Campaign:
    checked = from_mapping(data, CampaignFile, where=where)
    return Campaign(checked.name, checked.budget, tuple(entry.target() for entry in checked.targets))
