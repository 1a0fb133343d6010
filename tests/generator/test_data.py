from __future__ import annotations

import torch

from circuits.circuit import MAX_NODES
from circuits.encoding import PAD_POS, PAD_TYPE
from circuits.specs import spec_classes
from generator.data import build_splits, same_class_filter


def test_splits_filter_failed_rows_and_unseen_test_classes(rows):
    spec = spec_classes("ocb")
    extra = dict(rows[-1], id="unseen", gain_db=-1e6)  # a class no training row has
    failed = dict(rows[0], id="failed", status="no_crossing")
    splits = build_splits([*rows, extra, failed], spec)
    ok_train = [r for r in rows if r["split"] == "train" and r["status"] == "ok"]
    assert len(splits.train) == len(ok_train)
    assert "unseen" not in splits.test.ids and "failed" not in splits.train.ids
    assert splits.dropped["not_ok"] >= 1 and splits.dropped["unseen_class"] >= 1
    train_classes = set(splits.train.classes)
    assert all(c in train_classes for c in splits.test.classes)


def test_held_out_rows_never_share_a_topology_with_training(rows):
    spec = spec_classes("ocb")
    twin = dict(next(r for r in rows if r["split"] == "train" and r["status"] == "ok"), id="twin", split="test")
    splits = build_splits([*rows, twin], spec)
    assert "twin" not in splits.test.ids and splits.dropped["topology_in_train"] >= 1
    train_topologies = {c.topology_key for c in splits.train_circuits}
    assert splits.test_circuits and not any(c.topology_key in train_topologies for c in splits.test_circuits)


def test_tensor_shapes_padding_and_normalisation(rows):
    t = build_splits(rows, "ocb").train.tensors
    n = len(t["types"])
    assert t["types"].shape == t["pos"].shape == t["mask"].shape == (n, MAX_NODES)
    assert t["topo"].shape == t["adj"].shape == (n, MAX_NODES, MAX_NODES)
    assert t["values"].shape == t["value_mask"].shape == (n, MAX_NODES, 3)
    assert t["spec"].shape == (n, 3)
    sizes = spec_classes("ocb").sizes
    assert all(int(t["spec"][:, k].max()) < sizes[k] for k in range(3))
    pad = ~t["mask"]
    assert (t["types"][pad] == PAD_TYPE).all() and (t["pos"][pad] == PAD_POS).all()
    assert (t["types"][:, 0] == 0).all()  # In first
    last = t["mask"].sum(1) - 1
    assert (t["types"][torch.arange(n), last] == 1).all()  # Out last
    assert torch.equal(t["adj"], t["adj"].triu(1))  # topological order: u < v
    assert (t["values"] >= 0).all() and (t["values"] <= 1).all()
    assert (t["values"][t["value_mask"] == 0] == 0).all()
    assert (t["topo"][pad] == 0).all()


def test_same_class_filter():
    spec = torch.tensor([[1, 0, 2], [1, 0, 2], [2, 0, 2]])
    m = same_class_filter(spec)
    assert m[0, 1] == m[1, 0] == float("-inf")
    assert m[0, 0] == m[0, 2] == m[2, 2] == 0
