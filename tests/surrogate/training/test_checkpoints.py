"""Checkpoint files: atomic writes, checked reads naming the file, RNG states, shipping."""

import random

import numpy as np
import pytest
import torch

from circuits import CktLoopError
from surrogate.training.checkpoints import CheckpointFormat, rng_state, set_rng_state, ship, write_atomic

FMT = CheckpointFormat("cktloop-thing", 2, ("model",), {"model_name": "thing"})


def test_round_trip_and_atomic_overwrite(tmp_path):
    path = tmp_path / "sub" / "c.pt"
    FMT.save(path, {"model": {"w": torch.ones(2)}, "epoch": 1})
    FMT.save(path, {"model": {"w": torch.zeros(2)}, "epoch": 2})
    data = FMT.load(path)
    assert data["epoch"] == 2 and torch.equal(data["model"]["w"], torch.zeros(2))
    assert (data["format"], data["format_version"], data["model_name"]) == ("cktloop-thing", 2, "thing")
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"random bytes, not a checkpoint", r"bad\.pt: not a readable thing checkpoint"),
        ({"weights": 1}, r"bad\.pt: not a CktLoop thing checkpoint \(no format 'cktloop-thing' marker\)"),
        ({"format": "cktloop-thing", "format_version": 1}, r"bad\.pt: checkpoint format version 1 is not supported"),
        ({"format": "cktloop-thing", "format_version": 2}, r"bad\.pt: checkpoint lacks model$"),
        (
            {"format": "cktloop-thing", "format_version": 2, "model": {}, "model_name": "other"},
            r"bad\.pt: checkpoint holds model_name 'other', expected 'thing'",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, payload, message):
    path = tmp_path / "bad.pt"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(CktLoopError, match=message):
        FMT.load(path)
    with pytest.raises(CktLoopError, match=r"none\.pt: no such checkpoint file"):
        FMT.load(tmp_path / "none.pt")


def test_random_bytes_are_never_a_traceback(tmp_path):
    path = tmp_path / "noise.pt"
    rng = np.random.default_rng(0)
    for n in (1, 7, 64, 4096):
        for _ in range(25):
            path.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            with pytest.raises(CktLoopError, match=r"noise\.pt: "):
                FMT.load(path)
            with pytest.raises(CktLoopError, match=r"noise\.pt: "):
                ship(path, tmp_path / "out.pt")
    path.write_bytes(b"\x80\x02" + bytes(range(256)) * 4)  # a pickle header, then garbage
    with pytest.raises(CktLoopError, match=r"noise\.pt: "):
        FMT.load(path)


def test_rng_states_restore_every_stream(tmp_path):
    torch.manual_seed(3)
    path = tmp_path / "rng.pt"
    write_atomic(path, {"rng": rng_state()})
    first = (random.random(), np.random.rand(), torch.rand(2))
    set_rng_state(torch.load(path, weights_only=True)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_ship_drops_the_resume_state(tmp_path):
    src, dst = tmp_path / "c.pt", tmp_path / "shipped.pt"
    FMT.save(src, {"model": {}, "optimizer": {"x": torch.zeros(100)}, "scheduler": {}, "rng": rng_state()})
    assert ship(src, dst, {"acc": 0.5}) == dst.stat().st_size
    shipped = FMT.load(dst)
    assert not {"optimizer", "scheduler", "rng"} & set(shipped) and shipped["metrics"] == {"acc": 0.5}
    torch.save({"weights": 1}, src)
    with pytest.raises(CktLoopError, match=r"c\.pt: not a CktLoop checkpoint"):
        ship(src, dst)
