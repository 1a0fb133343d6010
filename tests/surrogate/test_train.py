from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from circuits import Circuit, CktLoopError
from circuits.specs import spec_classes
from surrogate import checkpoint as ckpt
from surrogate.evaluate import evaluate, markdown_table
from surrogate.predict import Surrogate
from surrogate.train import train


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_a_straight_run(jsonl: Path, tiny_config, tmp_path: Path) -> None:
    config = tiny_config(epochs=2)
    straight = train(config, jsonl, None, tmp_path / "straight")
    first = train(config, jsonl, None, tmp_path / "resumed", stop_after=1)  # as if killed after epoch 1
    assert first["epoch"] == 1
    # a later epoch logged before the "kill" is dropped and redone on resume
    with (tmp_path / "resumed" / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"epoch": 2, "train": {}, "test": {}}) + "\n{\"epo")
    resumed = train(config, jsonl, None, tmp_path / "resumed")
    assert resumed["epoch"] == straight["epoch"] == 2
    a, b = _weights(tmp_path / "straight" / "checkpoint.pt"), _weights(tmp_path / "resumed" / "checkpoint.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    lines = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert lines[1]["train"]["total"] == straight["train"]["total"]
    assert {"joint_acc", "axis_acc", "fom_mae", "gain_mae_db", "ugbw_mae_dec", "pm_mae_deg"} <= set(lines[1]["test"])
    assert (tmp_path / "straight" / "metrics.png").is_file()
    # a finished run re-run is a no-op; raising epochs extends it
    again = train(config, jsonl, None, tmp_path / "resumed")
    assert again["epoch"] == 2


def test_checkpoint_round_trip_and_evaluation(jsonl: Path, rows: list[dict], tiny_config, tmp_path: Path) -> None:
    result = train(tiny_config(epochs=1), jsonl, None, tmp_path / "run")
    surrogate = Surrogate.load(result["checkpoint"], device="cpu")
    assert surrogate.version == result["version"] and surrogate.version.startswith("digin-ocb-")
    circuits = [Circuit.from_dict(r["circuit"]) for r in rows[:5]]
    preds = surrogate.predict(circuits, batch_size=2)
    assert len(preds) == 5
    keys = {"spec_class", "class_prob", "fom", "gain_db", "ugbw_hz", "pm_ocb_deg", "embedding"}
    assert all(set(p) == keys for p in preds)
    assert all(len(p["spec_class"]) == 3 and p["ugbw_hz"] > 0 for p in preds)
    again = Surrogate.load(result["checkpoint"], device="cpu").predict(circuits)
    for p, q in zip(preds, again):
        assert p["spec_class"] == q["spec_class"] and p["fom"] == pytest.approx(q["fom"], rel=1e-5)
    assert surrogate.embed_specs([p["spec_class"] for p in preds]).shape == (5, preds[0]["embedding"].shape[0])
    metrics = evaluate(result["checkpoint"], jsonl)
    assert metrics["n"] > 0 and 0.0 <= metrics["joint_acc"] <= 1.0
    assert metrics["joint_acc"] == pytest.approx(result["test"]["joint_acc"])
    assert "joint-class accuracy" in markdown_table(metrics)


def test_bad_checkpoints_name_the_file(tmp_path: Path, jsonl: Path, tiny_config) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    for path in (garbage, foreign, tmp_path / "missing.pt"):
        with pytest.raises(CktLoopError, match=path.name):
            Surrogate.load(path, device="cpu")
    result = train(tiny_config(epochs=1), jsonl, None, tmp_path / "run")
    data = torch.load(result["checkpoint"], weights_only=True)
    data["model_config"]["hidden"] = 32  # weights no longer fit
    broken = tmp_path / "broken.pt"
    torch.save(data, broken)
    with pytest.raises(CktLoopError, match=r"broken\.pt.*do not fit"):
        Surrogate.load(broken, device="cpu")
    del data["norm"]
    ckpt.save(broken, data)
    with pytest.raises(CktLoopError, match=r"broken\.pt.*lacks norm"):
        Surrogate.load(broken, device="cpu")


def test_bad_configs_name_the_file(tmp_path: Path, jsonl: Path, tiny_config) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nlearning_rate: 0.1\n")
    with pytest.raises(CktLoopError, match=r"bad\.yaml.*learning_rate"):
        train(bad, jsonl, None, tmp_path / "run")
    bad.write_text("model:\n  hidden: many\n")
    with pytest.raises(CktLoopError, match=r"bad\.yaml.*hidden"):
        train(bad, jsonl, None, tmp_path / "run")
    bad.write_text("spec_classes: nope\n")
    with pytest.raises(CktLoopError, match=r"bad\.yaml.*nope"):
        train(bad, jsonl, None, tmp_path / "run")
    # resuming with a different architecture is refused, naming the checkpoint and the change
    train(tiny_config(epochs=1), jsonl, None, tmp_path / "run")
    with pytest.raises(CktLoopError, match=r"checkpoint\.pt.*lr"):
        train(tiny_config(epochs=1, lr=0.5), jsonl, None, tmp_path / "run")


def test_classes_read_off_the_regressed_specs(jsonl: Path, rows: list[dict], tiny_config, tmp_path: Path) -> None:
    config = tiny_config(epochs=1)
    config.write_text(config.read_text() + "  pm_circular: true\n  class_source: regression\n")
    result = train(config, jsonl, None, tmp_path / "run")
    assert result["test"]["joint_acc"] == result["test"]["regression"]["joint_acc"]
    assert set(result["test"]["heads"]) == {"joint_acc", "axis_acc"}
    surrogate = Surrogate.load(result["checkpoint"], device="cpu")
    preds = surrogate.predict([Circuit.from_dict(r["circuit"]) for r in rows[:20]])
    classes = spec_classes("ocb")
    for p in preds:
        assert -180.0 <= p["pm_ocb_deg"] <= 180.0
        assert p["spec_class"] == classes.classify({"status": "ok", **p})
        assert 0.0 < p["class_prob"] <= 1.0


def test_circular_phase_needs_a_wrapped_field(rows: list[dict], tiny_config, tmp_path: Path) -> None:
    unwrapped = [dict(r, pm_deg=250.0) if r["status"] == "ok" else r for r in rows]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in unwrapped))
    config = tiny_config(epochs=1, spec_classes="cktloop")
    config.write_text(config.read_text() + "  pm_circular: true\n")
    with pytest.raises(CktLoopError, match="pm_deg reaches 250"):
        train(config, path, None, tmp_path / "run")


def test_cosine_schedule_decays_to_zero(jsonl: Path, tiny_config, tmp_path: Path) -> None:
    result = train(tiny_config(epochs=4, lr_schedule="cosine"), jsonl, None, tmp_path / "run")
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    half_pi = [3e-3 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(1, 5)]
    assert lrs == pytest.approx(half_pi, abs=1e-12)
    assert result["lr"] == pytest.approx(0.0, abs=1e-12)
