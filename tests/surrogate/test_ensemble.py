"""Ensemble checkpoints: the spread of members' answers, and plain checkpoints answering as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from circuits import Circuit, CktLoopError
from surrogate import checkpoint as ckpt
from surrogate.ensemble import spread, with_members
from surrogate.predict import Surrogate
from surrogate.train import train


def test_spread_is_the_unbiased_deviation_per_spec() -> None:
    a = torch.tensor([[60.0, 1e9, 50.0]])
    b = torch.tensor([[62.0, 1e10, 54.0]])
    s = spread([a, b], [torch.tensor([10.0]), torch.tensor([14.0])])
    # two members: std = |x - y| / sqrt(2)
    assert s[0].tolist() == pytest.approx([2 / 2**0.5, 1 / 2**0.5, 4 / 2**0.5, 4 / 2**0.5], rel=1e-6)
    with pytest.raises(ValueError, match="two or more"):
        spread([a], [torch.tensor([1.0])])


def test_members_add_a_std_and_leave_the_answer_alone(
    jsonl: Path, rows: list[dict], tiny_config, tmp_path: Path
) -> None:
    plain = Path(train(tiny_config(epochs=1), jsonl, None, tmp_path / "a")["checkpoint"])
    other = Path(train(tiny_config(epochs=1, seed=9), jsonl, None, tmp_path / "b")["checkpoint"])
    data = ckpt.load(plain)
    ckpt.save(tmp_path / "same.pt", with_members(data, [data["model"]]))
    ckpt.save(tmp_path / "ens.pt", with_members(data, [ckpt.load(other)["model"]]))
    circuits = [Circuit.from_dict(r["circuit"]) for r in rows[:4]]
    base = Surrogate.load(plain, device="cpu").predict(circuits)
    assert all("std" not in p for p in base)  # a plain checkpoint answers as before
    same = Surrogate.load(tmp_path / "same.pt", device="cpu").predict(circuits)
    assert all(p["std"] == {"gain_db": 0.0, "ugbw_dec": 0.0, "pm_ocb_deg": 0.0, "fom": 0.0} for p in same)
    ens = Surrogate.load(tmp_path / "ens.pt", device="cpu").predict(circuits)
    assert all(p["std"]["fom"] > 0 for p in ens)
    for p, q in zip(base, ens):  # member 0 answers
        assert p["fom"] == pytest.approx(q["fom"]) and p["spec_class"] == q["spec_class"]
    ckpt.save(tmp_path / "scaled.pt", with_members(data, [ckpt.load(other)["model"]], {"fom": 3.0, "gain_db": 0.5}))
    scaled = Surrogate.load(tmp_path / "scaled.pt", device="cpu").predict(circuits)
    for p, q in zip(ens, scaled):
        assert q["std"]["fom"] == pytest.approx(3 * p["std"]["fom"], rel=1e-5)
        assert q["std"]["gain_db"] == pytest.approx(0.5 * p["std"]["gain_db"], rel=1e-5)
        assert q["std"]["ugbw_dec"] == pytest.approx(p["std"]["ugbw_dec"], rel=1e-5)
    bad_scale = with_members(data, [data["model"]], {"fom": "wide"})  # type: ignore[dict-item]
    ckpt.save(tmp_path / "bad-scale.pt", bad_scale)
    with pytest.raises(CktLoopError, match="'std_scale' must map"):
        Surrogate.load(tmp_path / "bad-scale.pt", device="cpu")
    broken = with_members(data, [{"not": torch.zeros(1)}])
    ckpt.save(tmp_path / "broken.pt", broken)
    with pytest.raises(CktLoopError, match="ensemble member 1 does not fit"):
        Surrogate.load(tmp_path / "broken.pt", device="cpu")
