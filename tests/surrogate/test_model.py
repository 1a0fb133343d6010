from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from circuits import Circuit
from circuits.circuit import MAX_NODES
from circuits.encoding import PAD_TYPE, encode
from circuits.specs import spec_classes
from surrogate.config import SurrogateConfig
from surrogate.data import build, classify_specs, encode_batch, predicted_specs, value_scales
from surrogate.model import DIGIN, info_nce, same_class_mask

TINY = SurrogateConfig(type_dim=8, pos_dim=8, hidden=16, readout_hidden=32, graph_dim=16, size_hidden=16, size_dim=4,
                       node_values=True, embed_dim=16, spec_emb_dim=8, head_hidden=16, dropout=0.0)


def _permuted(c: Circuit, perm: list[int]) -> Circuit:
    """The same circuit with its node list reordered (perm[new] = old)."""
    new = {old: i for i, old in enumerate(perm)}
    return Circuit(tuple(c.nodes[i] for i in perm), tuple((new[u], new[v]) for u, v in c.edges), grid=c.grid)


def test_shapes_follow_the_preset(rows: list[dict]) -> None:
    for preset in ("ocb", "cktloop"):
        classes = spec_classes(preset)
        data = build(rows, classes)
        model = DIGIN(TINY, classes.sizes)
        inputs, targets = data.train.batch(torch.arange(5))
        out, loss = model(inputs, targets)
        assert out["embedding"].shape == (5, TINY.embed_dim)
        assert [lg.shape for lg in out["logits"]] == [(5, k) for k in classes.sizes]
        assert out["fom"].shape == (5,) and out["reg"].shape == (5, 3)
        assert set(loss) == {"align", "nce", "class", "fom", "reg", "total"}
        assert all(torch.isfinite(v) for v in loss.values())
        assert model.encode_specs(targets["cls"]).shape == (5, TINY.embed_dim)
        assert data.train.inputs["types"].shape == (len(data.train), MAX_NODES)


def test_only_ok_rows_are_training_data(rows: list[dict]) -> None:
    data = build(rows, spec_classes("ocb"))
    ok_train = sum(r["status"] == "ok" and r["split"] == "train" for r in rows)
    assert len(data.train) == ok_train
    assert data.train.seen.all()
    assert abs(float(data.train.fom.mean())) < 1e-4  # z-scored with the training statistics


def test_held_out_rows_never_share_a_topology_with_training(rows: list[dict]) -> None:
    twin = dict(next(r for r in rows if r["split"] == "train" and r["status"] == "ok"), id="twin", split="test")
    data = build([*rows, twin], spec_classes("ocb"))
    assert "twin" not in data.test.ids and data.n_dropped["test topology in training"] >= 1
    train_topologies = {Circuit.from_dict(r["circuit"]).topology_key for r in rows if r["split"] == "train"}
    test_rows = {r["id"]: r for r in rows}
    assert data.test.ids
    assert not any(Circuit.from_dict(test_rows[i]["circuit"]).topology_key in train_topologies for i in data.test.ids)


@pytest.mark.parametrize(
    "config", [TINY, TINY.replace(value_features="both", pm_circular=True)]
)
def test_padding_and_node_order_do_not_change_predictions(rows: list[dict], config: SurrogateConfig) -> None:
    torch.manual_seed(0)
    model = DIGIN(config, spec_classes("ocb").sizes).eval()
    circuits = [Circuit.from_dict(r["circuit"]) for r in rows[:6]]
    small = next(c for c in circuits if len(c.nodes) < MAX_NODES)
    base = encode_batch([small])
    # Garbage in padding rows: values, positions, adjacency among and into padding nodes.
    noisy = {k: v.clone() for k, v in base.items()}
    pad = noisy["types"][0] == PAD_TYPE
    noisy["values"][0][pad] = 0.7
    noisy["pos"][0][pad] = 3
    noisy["adj"][0][:, pad] = 1.0
    noisy["adj"][0][pad, :] = 1.0
    with torch.no_grad():
        a = model.encode_circuits(**base)
        b = model.encode_circuits(**noisy)
        # Reordered node lists encode identically (canonical order first), so predict identically.
        perm = list(reversed(range(len(small.nodes))))
        c = model.encode_circuits(**encode_batch([_permuted(small, perm)]))
        # A circuit predicts the same alone and inside a batch of others.
        d = model.encode_circuits(**encode_batch([*circuits[:3], small, *circuits[3:]]))[3:4]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    torch.testing.assert_close(a, d, atol=1e-6, rtol=1e-5)


def test_value_features_are_grid_indices_on_linear_and_log_scales(rows: list[dict]) -> None:
    circuit = Circuit.from_dict(rows[0]["circuit"])
    inputs = encode_batch([circuit])
    k = torch.tensor(encode(circuit.canonical()).values, dtype=torch.float32)
    torch.testing.assert_close(inputs["values"][0], k / 101)
    expected = torch.log(k.clamp(min=1.0)) / math.log(101)  # absent devices (k = 0) and k = 1 both give 0
    torch.testing.assert_close(inputs["log_values"][0], expected)
    # Doubling a value moves the log feature by the same step wherever it starts.
    step = value_scales(np.array([5, 40]), "ocb")[1]
    np.testing.assert_allclose(value_scales(np.array([10, 80]), "ocb")[1] - step, math.log(2) / math.log(101))
    log = DIGIN(TINY.replace(value_features="log"), (4, 33, 5)).value_features(inputs["values"], inputs["log_values"])
    torch.testing.assert_close(log, inputs["log_values"])
    both = DIGIN(TINY.replace(value_features="both"), (4, 33, 5)).value_features(inputs["values"], inputs["log_values"])
    torch.testing.assert_close(both, torch.cat([inputs["values"], inputs["log_values"]], dim=-1))


@pytest.mark.parametrize("preset", ["ocb", "cktloop"])
def test_classes_from_specs_match_the_preset(preset: str) -> None:
    classes = spec_classes(preset)
    gen = torch.Generator().manual_seed(0)
    n = 500
    specs = torch.stack(
        [torch.rand(n, generator=gen) * 350 - 100, 10 ** (torch.rand(n, generator=gen) * 7 + 4),
         torch.rand(n, generator=gen) * 360 - 180],
        dim=-1,
    ).double()
    # Values on and just beside every edge of every axis.
    for i, axis in enumerate(classes.axes):
        for edge in axis.edges:
            for v in (edge, edge * (1 + 1e-9) + 1e-9, edge * (1 - 1e-9) - 1e-9):
                row = specs[0].clone()
                row[i] = axis.sign * v
                specs = torch.cat([specs, row.unsqueeze(0)])
    fields = classes.fields
    expected = [classes.classify({"status": "ok", **dict(zip(fields, map(float, s)))}) for s in specs]
    assert classify_specs(classes, specs).tolist() == [list(c) for c in expected]


def test_circular_phase_margin_reads_back_as_an_angle(rows: list[dict]) -> None:
    norm = build(rows, spec_classes("ocb")).norm
    angles = torch.tensor([-179.0, -90.0, 0.0, 45.0, 170.0])
    rad = torch.deg2rad(angles)
    out = torch.stack([torch.zeros(5), torch.zeros(5), 3 * torch.cos(rad), 3 * torch.sin(rad)], dim=-1)
    specs = predicted_specs(out, norm, circular=True)
    torch.testing.assert_close(specs[:, 2], angles)
    assert specs[0, 0] == pytest.approx(100 * norm.reg_mean[0], rel=1e-5)  # z = 0 → the training mean
    assert specs[0, 1] == pytest.approx(10 ** norm.reg_mean[1], rel=1e-4)


def test_contrastive_mask_removes_same_class_negatives() -> None:
    cls = torch.tensor([[0, 1, 2], [0, 1, 2], [1, 1, 2]])
    mask = same_class_mask(cls)
    assert mask[0, 1] == float("-inf") and mask[1, 0] == float("-inf")
    assert mask[0, 0] == 0 and mask[0, 2] == 0 and mask[2, 2] == 0
    emb = torch.randn(3, 4)
    assert torch.isfinite(info_nce(emb, emb, cls, 0.1))


def test_overfits_64_circuits(rows: list[dict]) -> None:
    torch.manual_seed(0)
    classes = spec_classes("ocb")
    data = build(rows, classes)
    idx = torch.arange(min(64, len(data.train)))
    inputs, targets = data.train.batch(idx)
    config = SurrogateConfig(type_dim=16, pos_dim=16, hidden=32, readout_hidden=64, graph_dim=32, size_hidden=32,
                             size_dim=16, node_values=True, embed_dim=32, spec_emb_dim=16, head_hidden=32,
                             dropout=0.0, class_reduction="mean")
    model = DIGIN(config, classes.sizes)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(100):
        _, loss = model(inputs, targets)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out, _ = model(inputs)
    pred = torch.stack([lg.argmax(-1) for lg in out["logits"]], dim=-1)
    acc = float((pred == targets["cls"]).all(-1).float().mean())
    assert acc >= 0.9, acc


@pytest.mark.parametrize(
    "bad",
    [{"class_reduction": "max"}, {"hidden": 0}, {"dropout": 1.0}, {"value_features": "sqrt"},
     {"class_source": "oracle"}],
)
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        SurrogateConfig(**bad)


@pytest.mark.parametrize("detached", [False, True])
def test_detached_alignment_leaves_the_encoder_to_the_regression(rows: list[dict], detached: bool) -> None:
    torch.manual_seed(0)
    classes = spec_classes("ocb")
    data = build(rows, classes)
    model = DIGIN(TINY.replace(align_detached=detached), classes.sizes)
    inputs, targets = data.train.batch(torch.arange(16))
    _, loss = model(inputs, targets)
    alignment = loss["align"] + loss["nce"] + loss["class"]
    alignment.backward(retain_graph=True)
    encoder_grad = model.node_in.weight.grad
    assert (encoder_grad is None or not encoder_grad.any()) == detached
    assert model.spec_tables[0].weight.grad.any() and model.class_heads[0][0].weight.grad.any()
    assert (model.align_proj is not None and model.align_proj[0].weight.grad.any()) == detached
    model.zero_grad()
    loss["reg"].backward()
    assert model.node_in.weight.grad.any()  # the regression trains the encoder either way
    if detached:  # and not the projection the alignment terms train
        assert model.align_proj[0].weight.grad is None or not model.align_proj[0].weight.grad.any()
