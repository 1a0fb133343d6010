"""The random OCB family (reference §1.4): determinism, validity and the draw probabilities.

The statistical tests use fixed seeds, so they are deterministic; their tolerances are still
derived from binomial standard errors (at least 4.5 sigma, or a chi-square p-value of 1e-6) so
that an equally correct change of draw order keeps them green while a wrong probability fails.
"""

import itertools
import math
from collections import Counter
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from scipy import stats

from circuits import Circuit, FamilyConfig, Sample, generate, random_sizing, random_topology, structure_problems
from circuits.family import FREE_SLOT_TYPES, MAIN_STAGE_TYPES, PASSIVE_SLOT_TYPES
from circuits.subgraphs import subgraph_type

N_SIGMA = 4.5
P_MIN = 1e-6
N_CIRCUITS = 20_000  # = 1,000 topologies of K = 20
N_TOPOLOGIES = 10_000

# Spine labels by position: In, Out, stage 1, stage 2, stage 3.
LABEL = {0: "In", 1: "Out", 2: "S1", 3: "S2", 4: "S3"}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stream() -> list[Sample]:
    return list(generate(N_CIRCUITS, seed=2024))


@pytest.fixture(scope="module")
def topologies() -> list[Circuit]:
    rng = np.random.default_rng(99)
    return [random_topology(rng) for _ in range(N_TOPOLOGIES)]


@pytest.fixture(scope="module")
def sides(topologies) -> dict[int, list[tuple[Circuit, str, str, int]]]:
    """Side nodes by position: (circuit, source label, destination label, type) per occurrence."""
    out: dict[int, list[tuple[Circuit, str, str, int]]] = {5: [], 6: [], 7: []}
    for c in topologies:
        for i in c.side_nodes():
            (src,), (dst,) = c.predecessors(i), c.successors(i)
            out[c.nodes[i].pos].append((c, LABEL[c.nodes[src].pos], LABEL[c.nodes[dst].pos], c.nodes[i].type))
    return out


# --- helpers ------------------------------------------------------------------------------------


def assert_fraction(successes: int, trials: int, p: float) -> None:
    """successes/trials within N_SIGMA binomial standard errors of p."""
    assert trials > 0
    se = math.sqrt(p * (1 - p) / trials)
    got = successes / trials
    assert abs(got - p) <= N_SIGMA * se, f"fraction {got:.4f} over {trials} trials, expected {p} ± {N_SIGMA * se:.4f}"


def assert_uniform(counts: Counter, support) -> None:
    """Observations lie in ``support`` and are uniform over it (chi-square p > P_MIN)."""
    support = list(support)
    assert set(counts) <= set(support), f"values outside the support: {set(counts) - set(support)}"
    observed = [counts.get(v, 0) for v in support]
    assert min(observed) > 0, f"never drawn: {[v for v in support if counts.get(v, 0) == 0]}"
    p = stats.chisquare(observed).pvalue
    assert p > P_MIN, f"not uniform over {support}: counts {observed}, chi-square p = {p:.2e}"


def n_stages(c: Circuit) -> int:
    return c.n_stages


# --- config and API ------------------------------------------------------------------------------


def test_default_config_is_cktgnn():
    cfg = FamilyConfig()
    assert (cfg.p_third_stage, cfg.p_slot, cfg.sizings_per_topology, cfg.grid) == (0.8, 0.6, 20, "ocb")
    assert (
        (6, 7, 10, 11),
        tuple(range(2, 26)),
        (2, 3, 4, 5),
    ) == (MAIN_STAGE_TYPES, FREE_SLOT_TYPES, PASSIVE_SLOT_TYPES)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"p_third_stage": 1.5}, r"p_third_stage must lie in \[0, 1\], got 1.5"),
        ({"p_third_stage": -0.1}, r"p_third_stage must lie in \[0, 1\]"),
        ({"p_slot": 2.0}, r"p_slot must lie in \[0, 1\], got 2.0"),
        ({"sizings_per_topology": 0}, r"sizings_per_topology must be >= 1, got 0"),
        ({"grid": "nope"}, r"unknown value grid 'nope'"),
    ],
)
def test_bad_config_is_rejected(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        FamilyConfig(**kwargs)


def test_config_is_frozen():
    with pytest.raises(FrozenInstanceError):
        FamilyConfig().p_slot = 0.5  # type: ignore[misc]


def test_negative_n_is_rejected():
    with pytest.raises(ValueError, match=r"n must be >= 0, got -1"):
        list(generate(-1, seed=0))


def test_zero_n_is_empty():
    assert list(generate(0, seed=0)) == []


def test_generate_is_lazy():
    it = generate(10**9, seed=0)
    assert next(it).index == 0


# --- determinism --------------------------------------------------------------------------------


def keys(samples) -> list[str]:
    return [s.circuit.key for s in samples]


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_same_seed_same_stream(seed):
    a, b = list(generate(100, seed)), list(generate(100, seed))
    assert a == b
    assert keys(a) == keys(b)


@pytest.mark.parametrize("seed", [0, 7])
def test_shorter_stream_is_a_prefix(seed):
    short, long = list(generate(100, seed)), list(generate(200, seed))
    assert long[:100] == short
    assert keys(long[:100]) == keys(short)


def test_prefix_property_across_block_boundaries():
    long = list(generate(95, seed=3))
    for n in (1, 19, 20, 21, 40, 57):
        assert list(generate(n, seed=3)) == long[:n]


def test_different_seeds_differ():
    assert keys(generate(40, 0)) != keys(generate(40, 1))


def test_random_topology_and_sizing_are_rng_driven():
    a = random_topology(np.random.default_rng(5))
    b = random_topology(np.random.default_rng(5))
    assert a == b
    s1 = random_sizing(np.random.default_rng(6), a)
    s2 = random_sizing(np.random.default_rng(6), a)
    assert s1 == s2
    assert s1.topology_key == a.topology_key


# --- validity and stream structure -----------------------------------------------------------


def test_every_generated_circuit_is_valid(stream):
    for s in stream:
        c = s.circuit
        assert isinstance(c, Circuit)
        assert structure_problems(c.nodes, c.edges, c.grid) == []
        assert c.grid == "ocb"


def test_round_trip_of_generated_circuits(stream):
    for s in stream[::97]:
        assert Circuit.from_json(s.circuit.to_json()).key == s.circuit.key


def test_sample_numbering(stream):
    for s in stream:
        assert (s.topology, s.sizing) == divmod(s.index, 20)
    assert [s.index for s in stream] == list(range(N_CIRCUITS))


def test_node_order_follows_positions(stream):
    """Stored order is [In, Out, stage 1, stage 2, (stage 3), (A), (C), (B)] with absent ones skipped."""
    for s in stream[::20]:
        positions = [n.pos for n in s.circuit.nodes]
        assert positions[:4] == [0, 1, 2, 3]
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)


def test_blocks_of_k_share_a_topology_and_redraw_values(stream):
    blocks = [stream[i : i + 20] for i in range(0, N_CIRCUITS, 20)]
    assert len(blocks) == 1_000
    duplicate_sizings = 0
    for block in blocks:
        first, last = block[0].circuit, block[-1].circuit
        assert first.topology_key == last.topology_key
        shape = ([(n.type, n.pos) for n in first.nodes], first.edges)
        assert all(([(n.type, n.pos) for n in s.circuit.nodes], s.circuit.edges) == shape for s in block)
        assert len({s.topology for s in block}) == 1
        duplicate_sizings += 20 - len({s.circuit.nodes for s in block})
    # A repeated sizing needs every device value to coincide (≤ 1/101² per pair of the smallest circuit).
    assert duplicate_sizings <= 5
    block_keys = [b[0].circuit.topology_key for b in blocks]
    repeats = sum(a == b for a, b in itertools.pairwise(block_keys))
    # The most likely topology has probability 0.2·0.4³/16 ≈ 0.0008, so consecutive repeats are rare.
    assert repeats <= 10
    assert len(set(block_keys)) >= 900


def test_custom_k():
    samples = list(generate(30, seed=4, config=FamilyConfig(sizings_per_topology=7)))
    for block_start in range(0, 30, 7):
        block = samples[block_start : block_start + 7]
        assert len({s.circuit.topology_key for s in block}) == 1
        assert all(s.topology == block_start // 7 for s in block)


def test_placeholder_values_are_grid_minimum():
    c = random_topology(np.random.default_rng(0))
    for n in c.nodes:
        devices = subgraph_type(n.type).devices
        assert n.values() == tuple(1 if d in devices else 0 for d in ("r", "c", "gm"))


def test_sizing_keeps_topology_and_zeros():
    rng = np.random.default_rng(8)
    topo = random_topology(rng)
    sized = random_sizing(rng, topo)
    assert sized.topology_key == topo.topology_key
    assert [(n.type, n.pos) for n in sized.nodes] == [(n.type, n.pos) for n in topo.nodes]
    assert sized.edges == topo.edges
    for n in sized.nodes:
        for d, k in zip(("r", "c", "gm"), n.values(), strict=True):
            if d in subgraph_type(n.type).devices:
                assert 1 <= k <= 101
            else:
                assert k == 0


@pytest.mark.parametrize(
    ("cfg", "stages", "n_sides"),
    [
        (FamilyConfig(p_third_stage=0.0, p_slot=0.0), {2}, {0}),
        (FamilyConfig(p_third_stage=1.0, p_slot=0.0), {3}, {0}),
        (FamilyConfig(p_third_stage=1.0, p_slot=1.0), {3}, {3}),
        (FamilyConfig(p_third_stage=0.0, p_slot=1.0), {2}, {3}),
    ],
)
def test_extreme_probabilities(cfg, stages, n_sides):
    rng = np.random.default_rng(11)
    tops = [random_topology(rng, cfg) for _ in range(200)]
    assert {c.n_stages for c in tops} == stages
    assert {len(c.side_nodes()) for c in tops} == n_sides


# --- topology statistics (10,000 topologies) -------------------------------------------------


def test_third_stage_fraction(topologies):
    assert_fraction(sum(c.n_stages == 3 for c in topologies), N_TOPOLOGIES, 0.8)
    assert {c.n_stages for c in topologies} == {2, 3}


@pytest.mark.parametrize("pos", [5, 6, 7])
def test_slot_presence(topologies, pos):
    present = sum(any(n.pos == pos for n in c.nodes) for c in topologies)
    assert_fraction(present, N_TOPOLOGIES, 0.6)


def test_slots_are_independent(topologies):
    """All three slots present with p = 0.6³; none with 0.4³."""
    n_sides = Counter(len(c.side_nodes()) for c in topologies)
    assert_fraction(n_sides[3], N_TOPOLOGIES, 0.6**3)
    assert_fraction(n_sides[0], N_TOPOLOGIES, 0.4**3)


def test_mean_node_count(topologies):
    counts = np.array([len(c.nodes) for c in topologies])
    assert counts.min() == 4
    assert counts.max() == 8
    sd = math.sqrt(0.8 * 0.2 + 3 * 0.6 * 0.4)  # stage 3 and three slots, independent
    assert abs(counts.mean() - 6.6) <= N_SIGMA * sd / math.sqrt(N_TOPOLOGIES)


def test_main_stage_types_uniform(topologies):
    counts = Counter(n.type for c in topologies for n in c.nodes if n.pos in (2, 3, 4))
    assert_uniform(counts, MAIN_STAGE_TYPES)
    for pos in (2, 3, 4):  # and per stage
        assert_uniform(Counter(n.type for c in topologies for n in c.nodes if n.pos == pos), MAIN_STAGE_TYPES)


@pytest.mark.parametrize("pos", [5, 7])
def test_free_slot_types_uniform(sides, pos):
    assert_uniform(Counter(t for _, _, _, t in sides[pos]), range(2, 26))


def test_passive_slot_types_uniform(sides):
    assert_uniform(Counter(t for _, _, _, t in sides[6]), PASSIVE_SLOT_TYPES)


@pytest.mark.parametrize("pos", [5, 7])
def test_free_slot_anchor_pairs_two_stage(sides, pos):
    spans = Counter((a, b) for c, a, b, _ in sides[pos] if c.n_stages == 2)
    assert_uniform(spans, [("In", "S1"), ("In", "Out"), ("S1", "Out")])


@pytest.mark.parametrize("pos", [5, 7])
def test_free_slot_anchor_pairs_three_stage(sides, pos):
    spans = Counter((a, b) for c, a, b, _ in sides[pos] if c.n_stages == 3)
    pairs = [("In", "S1"), ("In", "S2"), ("In", "Out"), ("S1", "S2"), ("S1", "Out"), ("S2", "Out")]
    assert_uniform(spans, pairs)


def test_free_slots_place_independently(sides, topologies):
    """Both free slots may pick the same pair; in 3-stage amps that happens with p = 1/6."""
    same = trials = 0
    for c in topologies:
        if c.n_stages != 3:
            continue
        spans = {}
        for i in c.side_nodes():
            if c.nodes[i].pos in (5, 7):
                spans[c.nodes[i].pos] = (c.predecessors(i)[0], c.successors(i)[0])
        if len(spans) == 2:
            trials += 1
            same += spans[5] == spans[7]
    assert_fraction(same, trials, 1 / 6)


def test_passive_slot_source_three_stage(sides):
    spans = Counter((a, b) for c, a, b, _ in sides[6] if c.n_stages == 3)
    assert set(spans) <= {("S1", "Out"), ("S2", "Out")}
    assert_fraction(spans[("S1", "Out")], sum(spans.values()), 0.5)


def test_passive_slot_source_two_stage(sides):
    spans = Counter((a, b) for c, a, b, _ in sides[6] if c.n_stages == 2)
    assert set(spans) == {("S1", "Out")}
    assert spans[("S1", "Out")] > 500


def test_last_stage_is_never_an_anchor(topologies):
    for c in topologies:
        last = c.spine[-2]
        for i in c.side_nodes():
            assert last not in c.predecessors(i) + c.successors(i)


# --- value statistics (20,000 circuits) ---------------------------------------------------------


@pytest.mark.parametrize("device", ["r", "c", "gm"])
def test_values_uniform_on_grid(stream, device):
    values = [getattr(n, device) for s in stream for n in s.circuit.nodes if device in subgraph_type(n.type).devices]
    assert len(values) > 20_000
    arr = np.array(values)
    assert arr.min() == 1
    assert arr.max() == 101
    # Uniform on 1..101: mean 51, variance (101² - 1) / 12 = 850.
    assert abs(arr.mean() - 51) <= N_SIGMA * math.sqrt(850 / len(arr))
    assert_uniform(Counter(values), range(1, 102))


def test_values_independent_across_devices(stream):
    """Stage-1 and stage-2 gm values are uncorrelated."""
    g1 = np.array([s.circuit.nodes[2].gm for s in stream], dtype=float)
    g2 = np.array([s.circuit.nodes[3].gm for s in stream], dtype=float)
    r = np.corrcoef(g1, g2)[0, 1]
    assert abs(r) <= N_SIGMA / math.sqrt(len(stream))


def test_stream_topology_statistics(stream):
    """The 1,000 topologies of the stream follow the same law (coarse, stage count and node count)."""
    firsts = [s.circuit for s in stream[::20]]
    assert_fraction(sum(c.n_stages == 3 for c in firsts), len(firsts), 0.8)
    sd = math.sqrt(0.8 * 0.2 + 3 * 0.6 * 0.4)
    mean = np.mean([len(c.nodes) for c in firsts])
    assert abs(mean - 6.6) <= N_SIGMA * sd / math.sqrt(len(firsts))
