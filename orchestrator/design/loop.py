"""The closed loop (issue 19): rounds of fresh targets, a campaign, the surrogate scored on what the
campaign verified, a fine-tune on it, and a promotion gate.

Round k:

1. **draw** ``n`` targets as ``cktloop campaign draw`` draws them, with seed ``seed * 1000 + k``; window
   targets are drawn around circuits of the dataset's held-out split no earlier round drew around, so
   no round's targets were trained on before they are scored. The file is written once (``round-k.yaml``).
   A loop over a fixed campaign file (draw ``file``) runs the file's targets every round instead;
2. **campaign** ``<name>-r<k>`` with the current surrogate (resumable: finished targets are skipped);
3. **score**: its outcome (targets met, simulations, simulations to the first met circuit) and the
   current surrogate's errors on the round's verified candidates, leaving out every circuit it could
   have trained on (the dataset's training split, every training circuit the fine-tunes replay and every
   earlier round's candidates): measured before any training on them, and kept in the state file;
4. **fine-tune** the current surrogate on the loop's verified rows (``surrogate.finetune``: the rows new
   since the current version, earlier rounds' rows, and rows of the datasets' training splits replayed, a
   sample of its own each round), registered in the store with its parent once its checkpoint is written;
5. **gate**: promote the new version only if it is better than its parent on the held-out slice of the
   new rows (the mean of its UGBW, PM and FoM MAE ratios below 1) and no worse than the shipped surrogate
   on the dataset's held-out split by more than ``gate_points`` (joint-class accuracy in points, each
   regression MAE in per cent). Round k+1 uses the promoted version, and the promotion is recorded in the
   store's ``promotions`` table (by ``loop NAME``, round k, with the gate figures), where campaigns,
   ``design`` and ``serve`` find it (``--models promoted``, their default).

Everything a round decided is kept in ``state.json`` (written whole, atomically, after each step; a copy goes
to the store, ``Store.save_loop_state``, so ``cktloop loop report`` works when the folder is gone); killed
at any point and re-run with the same settings, the loop goes on from the last step it finished: the
campaign resumes without duplicate rows, the fine-tune resumes its members' checkpoints, and a version
is registered only once its checkpoint exists (registering again is a no-op); a promotion is recorded
once per (loop, round): a re-run records every finished round's promotion again, which adds nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from circuits import CktLoopError

STATE = "state.json"
DRAWS = ("window", "paper", "file")
GATED_MAE = ("gain_mae_db", "ugbw_mae_dec", "pm_mae_deg", "fom_mae")
FRESH_MAE = ("ugbw_mae_dec", "pm_mae_deg", "fom_mae")


@dataclass(frozen=True)
class LoopConfig:
    """What a loop runs; a re-run must give the same (it is kept in the state file)."""

    name: str
    draw: str = "window"
    n: int = 100
    rounds: int = 5
    seed: int = 0
    budget: int = 100
    dataset: str = "ocb101-seed0"
    gate_points: float = 1.0
    file: str | None = None  # draw "file": the campaign file whose targets every round runs

    def __post_init__(self) -> None:
        if self.draw not in DRAWS:
            raise CktLoopError(f"unknown draw {self.draw!r} (known: {', '.join(DRAWS)})")
        if (self.draw == "file") != (self.file is not None):
            raise CktLoopError("loop: a campaign file goes with draw 'file', and only with it")
        for name in ("n", "rounds", "budget"):
            if getattr(self, name) < 1:
                raise CktLoopError(f"loop: {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as kept in the state file (no ``file`` key for a drawn loop, as before it existed)."""
        data = asdict(self)
        if data["file"] is None:
            del data["file"]
        return data

    @property
    def promoted_by(self) -> str:
        """How its promotions are named in the store."""
        return f"loop {self.name}"


def campaign_name(config: LoopConfig, k: int) -> str:
    return f"{config.name}-r{k}"


def draw_round(rows: list[dict[str, Any]], config: LoopConfig, k: int, used: set[str]) -> list[Any]:
    """Round ``k``'s targets (see the module doc); ``used``: dataset circuits earlier rounds drew around."""
    from circuits.specs import spec_classes
    from circuits.target_sets import paper_targets, window_source, window_targets

    seed = config.seed * 1000 + k
    if config.file is not None:
        from orchestrator.design.campaign_file import load_campaign

        return list(load_campaign(config.file).targets)
    if config.draw == "window":
        source = [r for r in window_source(rows) if r["id"] not in used]
        targets = window_targets(source, config.n, seed=seed)
    else:
        classes = spec_classes("cktloop")
        present = {c for c in (classes.classify(r) for r in rows) if c is not None}
        targets = paper_targets(classes, present, config.n, seed=seed)
    if not targets:
        raise CktLoopError(f"round {k}: no {config.draw} targets left to draw from dataset {config.dataset!r}")
    return targets


def gate(metrics: dict[str, Any], shipped: dict[str, Any], points: float) -> dict[str, Any]:
    """The promotion decision for a fine-tune's registered ``metrics`` (see the module doc), with why."""
    held, parent, data = metrics.get("heldout", {}), metrics.get("parent_heldout", {}), metrics["dataset_test"]
    ratios = [held[k] / parent[k] for k in FRESH_MAE if held.get(k) is not None and parent.get(k) and parent[k] > 0]
    fresh = sum(ratios) / len(ratios) if len(ratios) == len(FRESH_MAE) else math.nan
    reasons = []
    if not fresh < 1.0:
        reasons.append(f"not better on the new held-out rows (mean MAE ratio {fresh:.3f})")
    drop = (shipped["joint_acc"] - data["joint_acc"]) * 100
    if drop > points:
        reasons.append(f"dataset joint-class accuracy {drop:.2f} points below the shipped surrogate's")
    for k in GATED_MAE:
        worse = (data[k] / shipped[k] - 1) * 100 if shipped.get(k) else 0.0
        if worse > points:
            reasons.append(f"dataset {k} {worse:.2f} % above the shipped surrogate's")
    return {"promoted": not reasons, "fresh_mae_ratio": fresh, "why_not": reasons}


class LoopState:
    """``state.json``: the config, the shipped surrogate's dataset figures, the current model, the rounds;
    each save copied to ``store`` too when given (non-finite figures as null)."""

    def __init__(self, folder: Path, config: LoopConfig, start: dict[str, Any], store: Any = None) -> None:
        self.path, self.store, self.name = folder / STATE, store, config.name
        wanted = {"config": config.to_dict(), "start": start}
        if self.path.is_file():
            self.data: dict[str, Any] = json.loads(self.path.read_text())
            have = {k: self.data.get(k) for k in wanted}
            if have != wanted:
                raise CktLoopError(f"{folder}: holds a loop with other settings ({have}); pick another --out")
        else:
            self.data = {**wanted, "current": dict(start), "rounds": []}
            folder.mkdir(parents=True, exist_ok=True)
            self.save()

    def round(self, k: int) -> dict[str, Any]:
        rounds = self.data["rounds"]
        if len(rounds) < k:
            rounds.append({"round": k})
        return dict(rounds[k - 1])

    def put(self, k: int, record: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        self.data["rounds"][k - 1] = record
        if current is not None:
            self.data["current"] = current
        self.save()

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)
        if self.store is not None:
            self.store.save_loop_state(self.name, _finite(self.data))


def record_promotion(store: Any, config: LoopConfig, record: dict[str, Any]) -> None:
    """Record round ``record``'s promotion, if it promoted a version, in the store (idempotent)."""
    if not record.get("promoted"):
        return
    figures = {k: record.get(k) for k in ("gate", "heldout", "parent_heldout", "dataset_test")}
    figures["parent"] = record["models"]["surrogate"]
    store.promote("surrogate", record["promoted"], config.promoted_by, record["round"], _finite(figures))


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as None (the store keeps strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass
class LoopSteps:
    """How a round's campaign runs and a fine-tune is set up (the CLI builds these from its options)."""

    run_campaign: Callable[[Any, Path, str], dict[str, Any]]  # (campaign, surrogate checkpoint, round label)
    finetune_config: Callable[[str], Any]  # parent checkpoint -> FinetuneConfig


def run_loop(
    store: Any,
    folder: Path,
    config: LoopConfig,
    steps: LoopSteps,
    start: dict[str, Any],
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the loop's rounds (see the module doc); ``start``: the surrogate round 1 uses
    (``version``, ``checkpoint``); returns one record per round, each also given to ``on_round``.
    ``on_start`` is called once the settings are checked against the store and the loop folder."""
    from surrogate.finetune import dataset_metrics, replay_keys
    from surrogate.predict import Surrogate

    rows = [e.to_dict() for e in store.dataset_rows(config.dataset)]
    if not rows:
        raise CktLoopError(f"dataset {config.dataset!r} has no rows in the store (build it first)")
    # what any round's surrogate could have trained on: the dataset's training split (the shipped one's) and
    # every training circuit its fine-tunes replay (every dataset's, by default); left out of every score
    trained_on = {r["id"] for r in rows if r.get("split") == "train"}
    trained_on |= replay_keys(store, steps.finetune_config(start["checkpoint"]).replay)
    state = LoopState(folder, config, start, store)
    if on_start:
        on_start()
    if "start_dataset_test" not in state.data:
        first = Surrogate.load(start["checkpoint"], device="cpu")
        seen = {tuple(c) for c in first.train_classes}
        state.data["start_dataset_test"] = dataset_metrics(first, rows, seen)
        state.save()
    out = []
    for k in range(1, config.rounds + 1):
        record = state.round(k)
        name = campaign_name(config, k)
        if not record.get("done"):
            record = _round(store, folder, config, steps, state, rows, trained_on, k)
        trained_on |= {r["id"] for r in store.verified_rows([name])}
        record_promotion(store, config, record)
        out.append(record)
        if on_round:
            on_round(record)
    return out


def _round(
    store: Any,
    folder: Path,
    config: LoopConfig,
    steps: LoopSteps,
    state: LoopState,
    rows: list[dict[str, Any]],
    trained_on: set[str],
    k: int,
) -> dict[str, Any]:
    import yaml

    from circuits.target_sets import to_campaign
    from orchestrator.design.campaign_file import load_campaign
    from orchestrator.design.outcomes import campaign_outcome, fresh_errors, issue_figures
    from surrogate.finetune import finetune
    from surrogate.predict import Surrogate

    record, current = state.round(k), dict(state.data["current"])
    name = campaign_name(config, k)
    path = folder / f"round-{k}.yaml"
    if "models" not in record:  # 1. draw, once
        used = {s for r in state.data["rounds"][: k - 1] for s in r.get("sources", [])}
        targets = draw_round(rows, config, k, used)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(to_campaign(name, targets, config.budget), sort_keys=False))
        tmp.replace(path)
        sources = [t.name.split("-", 2)[2] for t in targets] if config.draw == "window" else []
        record.update(campaign=name, file=str(path), sources=sources, models={"surrogate": current["version"]})
        state.put(k, record)
    if "outcome" not in record:  # 2. the campaign, with the current surrogate; 3. its figures
        steps.run_campaign(load_campaign(path), Path(current["checkpoint"]), f"round {k}/{config.rounds}")
        model = Surrogate.load(current["checkpoint"], device="cpu")
        errors, _ = fresh_errors(store, name, model, trained_on)
        record.update(outcome=campaign_outcome(store, name), fresh=errors, **issue_figures(errors))
        used = {t.summary.get("generator") for t in store.campaign_targets(name) if t.summary}
        record["models"] = {**record["models"], "generator": used.pop() if len(used) == 1 else None}
        state.put(k, record)
    # 4. fine-tune on every round so far (new rows since the current version, earlier ones replayed)
    since = current["version"] if current.get("finetuned") else None
    campaigns = [campaign_name(config, j) for j in range(1, k + 1)]
    tune = steps.finetune_config(current["checkpoint"])
    tune = tune.replace(seed=tune.seed * 1000 + k)  # each round replays its own sample of the datasets
    result = finetune(store, folder / f"round-{k}" / "finetune", campaigns, since, tune)
    decision = gate(result["metrics"], state.data["start_dataset_test"], config.gate_points)
    new = {"version": result["version"], "checkpoint": result["checkpoint"], "finetuned": True}
    record.update(
        candidate=new["version"],
        rows=result["rows"],
        heldout=result["metrics"]["heldout"],
        parent_heldout=result["metrics"]["parent_heldout"],
        dataset_test=result["metrics"]["dataset_test"],
        gate=decision,
        promoted=new["version"] if decision["promoted"] else None,
        done=True,
    )
    state.put(k, record, new if decision["promoted"] else current)  # 5. the gate's decision, with the round
    return record
