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
from typing import Any

from circuits import CktLoopError
from circuits.config import read_yaml
from circuits.targets import Target

DEFAULT_BUDGET = 500


@dataclass(frozen=True)
class Campaign:
    name: str
    budget: int
    targets: tuple[Target, ...]


def load_campaign(path: str | Path) -> Campaign:
    """Read and validate a campaign file; every error names the file, and the target and field at fault."""
    data = read_yaml(path, "campaign")
    try:
        return parse_campaign(data)
    except CktLoopError as exc:
        raise CktLoopError(f"{path}: {exc}") from None


def parse_campaign(data: Any) -> Campaign:
    if not isinstance(data, dict):
        raise CktLoopError("a campaign is a mapping with 'name', optional 'budget' and 'targets'")
    unknown = sorted(set(data) - {"name", "budget", "targets"})
    if unknown:
        raise CktLoopError(f"unknown campaign key(s) {', '.join(unknown)} (known: name, budget, targets)")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CktLoopError("the campaign needs a non-empty 'name'")
    budget = data.get("budget", DEFAULT_BUDGET)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise CktLoopError(f"'budget' must be a positive integer (simulations per target), got {budget!r}")
    raw_targets = data.get("targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        raise CktLoopError("'targets' must be a non-empty list")
    targets, seen = [], set()
    for i, raw in enumerate(raw_targets):
        if not isinstance(raw, dict):
            raise CktLoopError(f"target {i + 1} must be a mapping with 'name' and 'specs'")
        extra = sorted(set(raw) - {"name", "specs"})
        label = raw.get("name", f"#{i + 1}")
        if extra:
            raise CktLoopError(f"target {label!r}: unknown key(s) {', '.join(extra)} (known: name, specs)")
        if not isinstance(raw.get("name"), str) or not raw["name"].strip():
            raise CktLoopError(f"target {i + 1} needs a non-empty 'name'")
        if raw["name"] in seen:
            raise CktLoopError(f"target {raw['name']!r} appears twice")
        seen.add(raw["name"])
        targets.append(Target.from_mapping(raw["name"], raw.get("specs")))
    return Campaign(name.strip(), budget, tuple(targets))
