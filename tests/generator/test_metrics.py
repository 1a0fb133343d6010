"""Generator metrics on cases whose answers are known in closed form."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import linalg

from circuits.encoding import PAD_TYPE, encode
from circuits.family import random_sizing, random_topology
from circuits.specs import spec_classes
from generator.metrics import (
    cosine_similarity_matrix,
    diversity_across_specs,
    diversity_within_spec,
    fid,
    frechet_distance,
    gaussian_fit,
    graph_signature,
    matching_distance,
    mean_pairwise_distance,
    novelty,
    recon_accuracy,
    retrieval_precision,
    retrieval_precision_rounds,
    same_graph,
    sim_spec_accuracy,
    spec_accuracy,
    spec_accuracy_per_axis,
    validity,
)


def unit(deg: float) -> np.ndarray:
    return np.array([math.cos(math.radians(deg)), math.sin(math.radians(deg))])


# --- retrieval precision -------------------------------------------------------------------


def test_retrieval_identity_embeddings_is_one():
    e = np.eye(7)
    for k in (1, 2, 3):
        assert retrieval_precision(e, e, k) == 1.0
    # cosine ignores scale
    assert retrieval_precision(3.0 * e, e, 1) == 1.0


def test_retrieval_derangement_is_zero():
    e = np.eye(6)
    perm = np.roll(np.arange(6), 1)  # no fixed point: circuit i looks exactly like spec i−1
    circuits = e[perm]
    assert retrieval_precision(circuits, e, 1) == 0.0
    # the own spec has cosine 0, tied with n−2 others: ties count against, so it ranks last
    assert retrieval_precision(circuits, e, 5) == 0.0
    assert retrieval_precision(circuits, e, 6) == 1.0


def test_retrieval_known_ranks():
    specs = np.stack([unit(0), unit(40), unit(90)])
    # c0 at 35°: closest spec is 40° (own rank 1); c1 on its own spec (rank 0); c2 at 0°: own spec 90° is last (rank 2)
    circuits = np.stack([unit(35), unit(40), unit(0)])
    assert retrieval_precision(circuits, specs, 1) == pytest.approx(1 / 3)
    assert retrieval_precision(circuits, specs, 2) == pytest.approx(2 / 3)
    assert retrieval_precision(circuits, specs, 3) == pytest.approx(1.0)


def test_retrieval_against_all_specs_when_circuits_were_dropped():
    specs = np.stack([unit(0), unit(40), unit(90)])
    # circuit for spec 1 was invalid and dropped: c0 at 35° (own spec 0, rank 1), c2 at 80° (own spec 2, rank 0)
    circuits = np.stack([unit(35), unit(80)])
    assert retrieval_precision(circuits, specs, 1, targets=[0, 2]) == pytest.approx(1 / 2)
    assert retrieval_precision(circuits, specs, 2, targets=[0, 2]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="targets"):
        retrieval_precision(circuits, specs, 1, targets=[0, 3])


def test_retrieval_constant_embeddings_score_zero_not_one():
    ones = np.ones((4, 3))
    assert retrieval_precision(ones, ones, 1) == 0.0


def test_retrieval_rounds_average_and_errors():
    e = np.eye(4)
    assert retrieval_precision_rounds([(e, e), (e[[1, 0, 3, 2]], e)], 1) == 0.5
    with pytest.raises(ValueError):
        retrieval_precision_rounds([], 1)
    with pytest.raises(ValueError):
        retrieval_precision(e, e[:3], 1)
    with pytest.raises(ValueError):
        retrieval_precision(e, e, 0)


def test_cosine_matrix_zero_rows_give_zero():
    s = cosine_similarity_matrix(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[1.0, 1.0], [0.0, 5.0]]))
    np.testing.assert_allclose(s, [[0.0, 0.0], [math.sqrt(0.5), 0.0]], atol=1e-15)


# --- spec accuracy -----------------------------------------------------------------------------


def test_spec_accuracy_joint_and_per_axis():
    target = np.array([[1, 2, 3]] * 4)
    pred = np.array([[1, 2, 3], [1, 2, 0], [0, 2, 3], [1, 2, 3]])
    assert spec_accuracy(pred, target) == 0.5
    np.testing.assert_allclose(spec_accuracy_per_axis(pred, target), [0.75, 1.0, 0.75])
    # per-axis is unconditional: a wrong gain does not hide a right pm
    np.testing.assert_allclose(spec_accuracy_per_axis([[0, 2, 3]], [[1, 2, 3]]), [0.0, 1.0, 1.0])
    assert spec_accuracy([1, 2, 3], [1, 0, 3]) == pytest.approx(2 / 3)  # 1-D: one axis
    with pytest.raises(ValueError):
        spec_accuracy(pred, target[:3])


# --- MM-D --------------------------------------------------------------------------------------


def test_matching_distance_closed_forms():
    x = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 2.0]])
    assert matching_distance(x, x) == pytest.approx(0.0, abs=1e-15)
    assert matching_distance(x, 7.0 * x) == pytest.approx(0.0, abs=1e-15)
    assert matching_distance(np.eye(3), np.eye(3)[[1, 2, 0]]) == pytest.approx(1.0)
    assert matching_distance(x, -x) == pytest.approx(2.0)
    assert matching_distance(np.stack([unit(0), unit(45)]), np.stack([unit(45), unit(45)])) == pytest.approx(
        (1 - math.sqrt(0.5)) / 2
    )


# --- FID ---------------------------------------------------------------------------------------


def exact_samples(mean: np.ndarray, cov: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n rows whose sample mean and ddof-1 sample covariance are exactly ``mean`` and ``cov``."""
    d = mean.shape[0]
    z = np.random.default_rng(seed).standard_normal((n, d))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whitened: identity covariance
    return z @ np.linalg.cholesky(cov).T + mean


def test_fid_of_identical_sets_is_zero():
    x = np.random.default_rng(0).standard_normal((200, 5))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    assert fid(x, x[::-1]) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_diagonal_closed_form():
    # |Δμ|² + Σ (√a − √b)² = 25 + (1 − 2)² + (2 − 3)² = 27
    assert frechet_distance([0, 0], np.diag([1, 4]), [3, 4], np.diag([4, 9])) == pytest.approx(27.0)


def test_frechet_distance_non_commuting_closed_form():
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    b = np.array([[1.0, -0.3], [-0.3, 3.0]])
    m = a @ b
    assert not np.allclose(m, b @ a)  # the covariances do not commute
    # a 2×2 matrix with eigenvalues λ1, λ2 ≥ 0 has tr √M = √λ1 + √λ2 = √(tr M + 2 √det M)
    tr_root = math.sqrt(np.trace(m) + 2 * math.sqrt(np.linalg.det(m)))
    expected = 0.5**2 + 1.0**2 + np.trace(a) + np.trace(b) - 2 * tr_root
    assert frechet_distance([1.0, 0.0], a, [0.5, 1.0], b) == pytest.approx(expected, rel=1e-12)
    # and agrees with the textbook scipy.linalg.sqrtm formula on this well-conditioned case
    assert np.trace(linalg.sqrtm(m)).real == pytest.approx(tr_root, rel=1e-10)


def test_fid_of_samples_with_exact_moments_equals_closed_form():
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    cov_a, cov_b = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0])
    a, b = exact_samples(mu_a, cov_a, 50, 1), exact_samples(mu_b, cov_b, 80, 2)
    m, c = gaussian_fit(a)
    np.testing.assert_allclose(m, mu_a, atol=1e-12)
    np.testing.assert_allclose(c, cov_a, atol=1e-12)
    # |Δμ|² = 1 + 0 + 4 = 5; Σ (√a − √b)² = 1 + 1 + 0 = 2
    assert fid(a, b) == pytest.approx(7.0, rel=1e-10)


def test_fid_one_dimension():
    # a: mean 1, var 2; b: mean 2, var 8 (ddof 1) → 1 + (√2 − √8)² = 3
    assert fid([0.0, 2.0], [0.0, 4.0]) == pytest.approx(3.0)
    assert fid(np.array([[0.0], [2.0]]), np.array([[0.0], [4.0]])) == pytest.approx(3.0)


def test_fid_singular_covariances():
    t = np.linspace(-1.0, 1.0, 9)
    line = np.stack([t, t], axis=1)  # rank-1 covariance
    assert fid(line, line + np.array([1.0, 0.0])) == pytest.approx(1.0, abs=1e-9)
    # a constant set has zero covariance: FD = |Δμ|² + tr Σ_b
    point = np.tile([2.0, -1.0], (5, 1))
    b = exact_samples(np.zeros(2), np.array([[2.0, 1.0], [1.0, 3.0]]), 40, 3)
    assert fid(point, b) == pytest.approx(5.0 + 5.0, rel=1e-10)
    assert fid(b, point) == pytest.approx(10.0, rel=1e-10)
    assert fid(point, point) == 0.0
    # fully degenerate: more dimensions than samples
    x = np.random.default_rng(4).standard_normal((3, 10))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    assert math.isfinite(fid(x, np.random.default_rng(5).standard_normal((4, 10))))


def test_fid_errors():
    with pytest.raises(ValueError):
        fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        fid(np.zeros((4, 3)), np.zeros((5, 2)))


# --- diversity ---------------------------------------------------------------------------------


def test_pairwise_distance_exhaustive_on_a_lattice():
    # 1-D lattice 0, 1, 2, 3: distances 1, 2, 3, 1, 2, 1 → 10/6
    x = np.arange(4.0)[:, None]
    assert mean_pairwise_distance(x, pairs=None) == pytest.approx(10 / 6)
    assert mean_pairwise_distance(x, pairs=100) == pytest.approx(10 / 6)  # more pairs than exist → all of them
    # unit square corners: 4 sides of 1, 2 diagonals of √2
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert mean_pairwise_distance(square, pairs=None) == pytest.approx((4 + 2 * math.sqrt(2)) / 6)


def test_pairwise_distance_never_pairs_a_sample_with_itself():
    # the scaled standard basis: every distinct pair is 3√2 apart; a self-pair would pull the mean down
    simplex = 3.0 * np.eye(150)
    for seed in range(5):
        assert mean_pairwise_distance(simplex, pairs=100, rng=seed) == pytest.approx(3 * math.sqrt(2))
    x = np.array([[0.0], [1.0], [3.0]])
    draws = {mean_pairwise_distance(x, pairs=1, rng=seed) for seed in range(50)}
    assert draws == {1.0, 2.0, 3.0}


def test_pairwise_distance_rng_is_reproducible():
    x = np.random.default_rng(0).standard_normal((60, 4))
    assert mean_pairwise_distance(x, 100, rng=11) == mean_pairwise_distance(x, 100, rng=np.random.default_rng(11))


def test_diversity_across_specs_averages_rounds():
    rounds = [np.arange(4.0)[:, None], 2.0 * np.eye(120)]
    expected = (10 / 6 + 2 * math.sqrt(2)) / 2
    assert diversity_across_specs(rounds, pairs=100, rng=0) == pytest.approx(expected)
    assert diversity_across_specs(np.stack([np.eye(5), 4 * np.eye(5)]), pairs=None) == pytest.approx(
        5 * math.sqrt(2) / 2
    )


def test_diversity_within_spec():
    # a deterministic generator repeats one circuit per spec: no diversity
    same = [np.tile(v, (120, 1)) for v in np.eye(3)]
    assert diversity_within_spec(same, pairs=100, rng=0) == 0.0
    # specs with a single sample are skipped; the others are averaged unweighted
    groups = [np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[1.0, 1.0]]), np.arange(4.0)[:, None]]
    assert diversity_within_spec(groups, pairs=None) == pytest.approx((5.0 + 10 / 6) / 2)
    with pytest.raises(ValueError):
        diversity_within_spec([np.zeros((1, 2))])


# --- validity, novelty, same-graph, recon -------------------------------------------------------


def test_validity():
    assert validity([True, False, True, True]) == 0.75
    assert validity(np.array([False, False])) == 0.0
    with pytest.raises(TypeError):
        validity([1, 0])
    with pytest.raises(ValueError):
        validity([])


def test_novelty_with_circuit_keys():
    # 4 valid generated graphs (None = invalid, left out); 2 of them ("a" twice) are training graphs
    assert novelty(["a", "b", "c", None, "a"], {"a", "x"}) == 0.5
    assert novelty(["b"], []) == 1.0
    assert novelty(["x", "x"], ["x"]) == 0.0
    with pytest.raises(ValueError):
        novelty([None], ["a"])


def graph(types: list[int], edges: list[tuple[int, int]], size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Padded encoded arrays: types (size,), adj (size, size)."""
    t = np.full(size, PAD_TYPE)
    t[: len(types)] = types
    adj = np.zeros((size, size), dtype=int)
    for u, v in edges:
        adj[u, v] = 1
    return t, adj


BASE = graph([0, 2, 3, 1], [(0, 1), (1, 2), (2, 3)])


def test_same_graph_hand_made():
    assert same_graph(BASE, graph([0, 2, 3, 1], [(0, 1), (1, 2), (2, 3)]))
    assert same_graph(BASE, graph([0, 2, 3, 1], [(0, 1), (1, 2), (2, 3)], size=4))  # padding length is irrelevant
    # sizes and positions are ignored
    enc = SimpleNamespace(types=BASE[0], adj=BASE[1], pos=np.arange(8), values=np.full((8, 3), 9), n_nodes=4)
    assert same_graph(BASE, enc)
    assert not same_graph(BASE, graph([0, 2, 4, 1], [(0, 1), (1, 2), (2, 3)]))  # a type differs
    assert not same_graph(BASE, graph([0, 2, 3, 1], [(0, 1), (1, 2), (2, 3), (1, 3)]))  # an extra in-neighbour
    assert not same_graph(BASE, graph([0, 2, 3, 5, 1], [(0, 1), (1, 2), (2, 4), (2, 3), (3, 4)]))  # node count
    # an isomorphic graph with nodes in another order is a different graph to this index-wise test
    assert not same_graph(
        graph([0, 5, 2, 1], [(0, 2), (0, 1), (1, 2), (2, 3)]), graph([0, 2, 5, 1], [(0, 1), (0, 2), (2, 1), (1, 3)])
    )
    # an explicit n_nodes wins over padding detection; rows beyond it are ignored
    t, adj = BASE
    assert same_graph((t, adj, 3), graph([0, 2, 3], [(0, 1), (1, 2)]))


def test_same_graph_on_encoded_circuits():
    rng = np.random.default_rng(3)
    topology = random_topology(rng)
    a, b = random_sizing(rng, topology), random_sizing(rng, topology)
    assert a.key != b.key
    assert same_graph(encode(a), encode(b))  # same topology, other device values
    assert graph_signature(encode(a)) == graph_signature(encode(b))
    others = [random_topology(rng) for _ in range(30)]
    differing = [c for c in others if c.topology_key != topology.topology_key]
    assert differing and not any(same_graph(encode(topology), encode(c)) for c in differing)


def test_novelty_with_graph_signatures():
    training = [graph_signature(BASE), graph_signature(graph([0, 2, 1], [(0, 1), (1, 2)]))]
    generated = [
        graph_signature(graph([0, 2, 3, 1], [(0, 1), (1, 2), (2, 3)], size=5)),  # a training graph
        graph_signature(graph([0, 3, 1], [(0, 1), (1, 2)])),  # new
        None,  # invalid
    ]
    assert novelty(generated, training) == 0.5


def test_recon_accuracy():
    other = graph([0, 2, 1], [(0, 1), (1, 2)])
    originals = [BASE, other, BASE, other]
    recons = [
        graph([0, 2, 3, 1], [(0, 1), (1, 2), (2, 3)]),  # hit
        graph([0, 2, 1], [(0, 1), (1, 2), (0, 2)]),  # extra edge: miss
        None,  # failed to decode: miss
        SimpleNamespace(types=other[0], adj=other[1], n_nodes=3),  # hit
    ]
    assert recon_accuracy(originals, recons) == 0.5
    with pytest.raises(ValueError):
        recon_accuracy(originals, recons[:2])


# --- simulated spec accuracy -------------------------------------------------------------------


def classify_two_axes(row):
    if row.get("status") != "ok":
        return None
    return (int(row["gain_db"] >= 60.0), int(row["ugbw_hz"] >= 1e6))


def test_sim_spec_accuracy_hand_made_rows():
    rows = [
        {"status": "ok", "gain_db": 70.0, "ugbw_hz": 2e6, "pm_deg": 60.0},  # (1, 1): hit
        {"status": "ok", "gain_db": 70.0, "ugbw_hz": 5e5, "pm_deg": 60.0},  # (1, 0) but (1, 1) asked: miss
        {"status": "no_crossing", "gain_db": 70.0, "ugbw_hz": None, "pm_deg": None},  # failed: miss
        {"status": "sim_error", "gain_db": None, "ugbw_hz": None, "pm_deg": None},  # failed: miss
        None,  # never simulated: miss
        {"status": "ok", "gain_db": 20.0, "ugbw_hz": 5e5, "pm_deg": 80.0},  # (0, 0): hit
    ]
    targets = [(1, 1), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)]
    assert sim_spec_accuracy(rows, targets, classify_two_axes) == pytest.approx(2 / 6)
    assert sim_spec_accuracy(rows, np.array(targets), classify_two_axes) == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        sim_spec_accuracy(rows, targets[:2], classify_two_axes)


def test_sim_spec_accuracy_with_the_spec_class_presets():
    classes = spec_classes("cktloop")
    ok = {"status": "ok", "gain_db": 65.0, "ugbw_hz": 2e7, "pm_deg": 50.0}
    failed = {"status": "timeout", "gain_db": None, "ugbw_hz": None, "pm_deg": None}
    target = classes.classify(ok)
    assert target is not None
    assert sim_spec_accuracy([ok, failed], [target, target], classes.classify) == 0.5
