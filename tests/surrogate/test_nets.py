"""The nets view of a circuit and the GIN that reads it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from circuits import Circuit, Node
from circuits.specs import spec_classes
from surrogate.config import SurrogateConfig
from surrogate.data import build
from surrogate.model import DIGIN
from surrogate.nets import MAX_NETS, PAIR_FEATURES, encode_nets, net_features

NETS = SurrogateConfig(
    encoder="nets", hidden=16, rounds=3, graph_dim=16, embed_dim=16, spec_emb_dim=8, head_hidden=16, dropout=0.0
)
F = {name: i for i, name in enumerate(PAIR_FEATURES)}
INP, N1, N2, OUT = range(4)
STAGES = (Node(6, 2, gm=10), Node(7, 3, gm=20))  # +gm 1 mS, then −gm 2 mS


def test_stage_transconductance_and_loads_in_closed_form(amp) -> None:
    role, mask, pair = net_features(amp(stages=STAGES))  # +gm 1 mS inp→n1, −gm 2 mS n1→out; no n2
    assert mask.tolist() == [1, 1, 0, 1, 0, 0, 0, 0]
    assert role[[INP, N1, OUT]].argmax(-1).tolist() == [0, 1, 3]
    g1, g2 = pair[INP, N1], pair[N1, OUT]
    assert (g1[F["gm"]], g1[F["gm_sign"]], g1[F["log_gm"]]) == (1.0, 1.0, pytest.approx(0.0, abs=1e-6))
    assert (g2[F["gm"]], g2[F["gm_sign"]], g2[F["log_gm"]]) == (1.0, -1.0, pytest.approx(math.log10(2), abs=1e-6))
    assert pair[N1, INP, F["gm"]] == 0  # the VCCS senses inp and drives n1, not the other way
    for net in (N1, OUT):  # each driven net carries its stage's 1 MΩ ∥ 50 fF load to ground
        assert pair[net, net, F["log_g"]] == pytest.approx(0.0, abs=1e-6)
        assert pair[net, net, F["log_c"]] == pytest.approx(math.log10(50e-15) + 13, abs=1e-6)
    assert pair[INP, INP].sum() == 0 and not pair[N2].any() and not pair[:, N2].any()


def test_parallel_elements_add_and_series_branches_get_an_internal_net(amp) -> None:
    two_r = amp((Node(2, 5, r=10), 0, 1), (Node(2, 7, r=40), 0, 1))  # 1 MΩ and 4 MΩ, both inp→out
    _, _, pair = net_features(two_r)
    assert pair[INP, OUT, F["log_g"]] == pytest.approx(math.log10(1e-6 + 0.25e-6) + 6, abs=1e-6)
    assert pair[OUT, INP, F["log_g"]] == pair[INP, OUT, F["log_g"]]  # a resistor joins both ways
    _, mask, pair = net_features(amp((Node(4, 6, r=3, c=7), 2, 1)))  # series R–C from n1 to out
    assert mask[4] == 1 and mask[5:].sum() == 0
    assert pair[N1, 4, F["log_g"]] == pytest.approx(math.log10(1 / 3e5) + 6, abs=1e-6)
    assert pair[4, OUT, F["log_c"]] == pytest.approx(math.log10(70e-15) + 13, abs=1e-6)
    assert pair[N1, OUT, F["r"]] == 0 and pair[N1, OUT, F["c"]] == 0


def test_feedback_gm_senses_the_later_net(amp) -> None:
    _, _, pair = net_features(amp((Node(9, 5, gm=5), 2, 1)))  # −gm− from n1 to out: senses out, drives n1
    assert pair[OUT, N1, F["gm"]] == 1 and pair[OUT, N1, F["gm_sign"]] == -1
    assert pair[N1, N1, F["log_g"]] == pytest.approx(math.log10(2e-6) + 6, abs=1e-6)  # two loads on n1 now


def test_features_do_not_depend_on_the_node_order(rows: list[dict]) -> None:
    for row in rows[:20]:
        c = Circuit.from_dict(row["circuit"])
        perm = list(reversed(range(len(c.nodes))))
        new = {old: i for i, old in enumerate(perm)}
        shuffled = Circuit(tuple(c.nodes[i] for i in perm), tuple((new[u], new[v]) for u, v in c.edges), grid=c.grid)
        for x, y in zip(net_features(c), net_features(shuffled)):
            np.testing.assert_array_equal(x, y)


def test_nets_encoder_ignores_padding_and_batch_company(rows: list[dict]) -> None:
    torch.manual_seed(0)
    model = DIGIN(NETS, spec_classes("ocb").sizes).eval()
    circuits = [Circuit.from_dict(r["circuit"]) for r in rows[:6]]
    small = encode_nets(circuits[:1])
    noisy = {k: v.clone() for k, v in small.items()}
    absent = noisy["net_mask"][0] == 0
    noisy["net_pair"][0][absent] = 0.7  # garbage in masked slots, both as source and as target
    noisy["net_pair"][0][:, absent] = -0.3
    noisy["net_role"][0][absent] = 1.0
    with torch.no_grad():
        a, _ = model(small)
        b, _ = model(noisy)
        c, _ = model(encode_nets([*circuits[1:4], circuits[0], *circuits[4:]]))
    torch.testing.assert_close(a["reg"], b["reg"])
    torch.testing.assert_close(a["reg"], c["reg"][3:4], atol=1e-6, rtol=1e-5)
    assert absent.any() and small["net_pair"].shape == (1, MAX_NETS, MAX_NETS, len(PAIR_FEATURES))


@pytest.mark.slow
def test_nets_encoder_trains_and_fits_a_batch(rows: list[dict]) -> None:
    torch.manual_seed(0)
    classes = spec_classes("ocb")
    data = build(rows, classes, encoder="nets")
    assert set(data.train.inputs) == {"net_role", "net_mask", "net_pair"}
    wide = NETS.replace(hidden=64, graph_dim=64, embed_dim=64, head_hidden=64, reg_beta=0.05, pm_circular=True)
    model = DIGIN(wide, classes.sizes)
    assert not hasattr(model, "size_code")  # the subgraph layers are not built
    inputs, targets = data.train.batch(torch.arange(min(48, len(data.train))))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(200):
        _, loss = model(inputs, targets)
        first = first if first is not None else float(loss["reg"].detach())
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        _, loss = model(inputs, targets)
    assert float(loss["reg"]) < 0.1 * first, (float(loss["reg"]), first)


@pytest.mark.parametrize("bad", [{"encoder": "devices"}, {"rounds": 0}, {"reg_beta": 0.0}])
def test_nets_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        SurrogateConfig(**bad)
