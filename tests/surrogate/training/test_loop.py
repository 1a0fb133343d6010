"""The shared training loop on a toy regression: resume reproduces a straight run, the log is trimmed,
lr_drops act, and a checkpoint of another config, other data or old knob names is handled."""

import json
from pathlib import Path

import pytest
import torch
from pydantic import Field
from torch import nn

from circuits import CktLoopError
from circuits.config import ConfigModel
from surrogate.training.checkpoints import CheckpointFormat
from surrogate.training.loop import Run, seed_everything
from surrogate.training.metrics import Panel
from surrogate.training.settings import TrainSettings

FMT = CheckpointFormat("cktloop-toy", 1, ("model",))
X = torch.linspace(-1, 1, 40)[:, None]
Y = 3 * X - 1


class Toy(ConfigModel):
    hidden: int = 4


class ToyConfig(TrainSettings):
    model: Toy = Field(default_factory=Toy)


def _run(out: Path, resume: bool = True, stop_after: int | None = None, data: str = "d1", **knobs) -> Run:
    config = ToyConfig(**{"epochs": 4, "batch_size": 8, "lr": 0.05, "checkpoint_every": 2, "progress": False, **knobs})
    seed_everything(config.seed)
    model = nn.Sequential(nn.Linear(1, config.model.hidden), nn.Dropout(0.2), nn.Linear(config.model.hidden, 1))
    run = Run(config, FMT, out / "c.pt", model, {"fingerprint": data}, lambda epoch: {"version": f"toy-e{epoch}"})
    run.start(resume, torch.device("cpu"), "toy.yaml")

    def train_epoch(shuffle: torch.Generator, desc: str) -> dict[str, float]:
        model.train()
        total = 0.0
        for index in torch.randperm(len(X), generator=shuffle).split(config.batch_size):
            loss = ((model(X[index]) - Y[index]) ** 2).mean()
            run.optimiser.zero_grad()
            loss.backward()
            run.optimiser.step()
            total += float(loss.detach())
        return {"total": total, "parts": [total, 2 * total]}

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            return {"mse": float(((model(X) - Y) ** 2).mean())}

    run.fit(train_epoch, evaluate, (Panel("loss", ("train.*", "test.mse")),), stop_after=stop_after)
    return run


def _logged(out: Path) -> list[dict]:
    """The metrics log without the wall-clock seconds."""
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def _weights(run: Run) -> dict[str, torch.Tensor]:
    return FMT.load(run.checkpoint)["model"]


def test_resume_reproduces_a_straight_run(tmp_path):
    straight = _run(tmp_path / "a")
    first = _run(tmp_path / "b", stop_after=1)  # killed after epoch 1: the checkpoint holds it
    assert first.epoch == 1 and FMT.load(first.checkpoint)["epoch"] == 1
    with (tmp_path / "b" / "metrics.jsonl").open("a") as fh:
        fh.write('{"epoch": 2, "train": {}}\n{"epo')  # logged after the checkpoint, then a line cut by the kill
    resumed = _run(tmp_path / "b")
    assert resumed.seconds and len(resumed.seconds) == 3 and resumed.epoch == 4
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train"] for r in resumed.records] == [r["train"] for r in straight.records]
    assert _logged(tmp_path / "b") == _logged(tmp_path / "a") and len(_logged(tmp_path / "a")) == 4
    assert (tmp_path / "a" / "metrics.png").stat().st_size > 0
    again = _run(tmp_path / "b")  # a finished run trains nothing
    assert again.seconds == [] and again.epoch == 4 and len(again.records) == 4
    fresh = _run(tmp_path / "b", resume=False, epochs=1)
    assert fresh.epoch == 1 and len(fresh.records) == 1


def test_lr_drops_and_cosine(tmp_path):
    dropped = _run(tmp_path / "d", lr_drops=(2,))
    assert [r["lr"] for r in dropped.records] == pytest.approx([0.05, 0.05, 0.005, 0.005])
    cosine = _run(tmp_path / "c", lr_schedule="cosine")
    assert [r["lr"] for r in cosine.records] == pytest.approx(
        [0.05 * (1 + c) / 2 for c in (0.7071068, 0, -0.7071068, -1)]
    )


def test_resume_refuses_another_config_or_other_data(tmp_path):
    _run(tmp_path, epochs=2)
    with pytest.raises(CktLoopError, match=r"c\.pt: cannot resume with toy\.yaml: it differs in lr \(0\.05 → 0\.1\)"):
        _run(tmp_path, lr=0.1)
    with pytest.raises(CktLoopError, match=r"c\.pt: cannot resume .* model\.hidden \(4 → 8\)"):
        _run(tmp_path, model=Toy(hidden=8))
    with pytest.raises(CktLoopError, match=r"c\.pt: trained on different data"):
        _run(tmp_path, data="d2")
    with pytest.raises(CktLoopError, match=r"c\.pt: cannot resume .* lr_drops change at epochs \[1\]"):
        _run(tmp_path, lr_drops=(1,))
    assert _run(tmp_path, epochs=3, lr_drops=(2,), threads=1, device="cpu").epoch == 3  # resumable knobs


def test_a_checkpoint_with_old_knob_names_resumes(tmp_path):
    _run(tmp_path, epochs=2)
    state = FMT.load(tmp_path / "c.pt")
    stored = state.pop("train_config")
    stored["num_threads"] = stored.pop("threads")
    state["config"] = stored  # the surrogate's key before the loop was shared
    FMT.save(tmp_path / "c.pt", state)
    assert _run(tmp_path, epochs=3).epoch == 3
    state = FMT.load(tmp_path / "c.pt")
    del state["optimizer"]
    FMT.save(tmp_path / "c.pt", state)
    with pytest.raises(CktLoopError, match=r"c\.pt: checkpoint lacks optimizer and cannot be resumed"):
        _run(tmp_path, epochs=4)


def test_step_clips_the_gradient_norm(tmp_path):
    config = ToyConfig(grad_clip=0.5, progress=False)
    model = nn.Linear(1, 1)
    run = Run(config, FMT, tmp_path / "c.pt", model, {}, lambda epoch: {})
    run.step(((model(X) - 100 * Y) ** 2).mean())
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert float(norm) == pytest.approx(0.5, rel=1e-5)
