"""Evaluation metrics of the spec-conditioned generator (the CktGen paper's Tables 2, 3 and 5), numpy/scipy only.

Every metric is a small pure function on arrays; the caller runs the model, the evaluator and the
simulator and hands over embeddings, classes, validity flags, graphs or measured rows.

Naming (reference §4.4, §6.13): CktGen's code calls diversity *across* specs "Intra-D" and diversity
*within* one spec "Inter-D" (the paper's text uses the opposite, conventional meaning). Here the
functions are named by what they measure: ``diversity_across_specs`` (the code's "Intra-D", the
paper's "Inter-D") and ``diversity_within_spec`` (the code's "Inter-D", the paper's "Intra-D").

Deliberate differences from the reference code:

* diversity never pairs a sample with itself (the reference draws both indices of a pair
  independently, so a pair can be (i, i) and contribute a distance of 0);
* retrieval counts ties against the circuit (a degenerate, constant embedding scores 0, not 1);
* per-axis spec accuracy is unconditional (the reference counts bw only when gain was right, and
  pm only when gain and bw were right);
* ``sim_spec_accuracy`` judges generated circuits by simulation, not by the learned evaluator.

Empty inputs raise ``ValueError`` rather than returning NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import linalg

from circuits.encoding import PAD_TYPE

_EPS = 1e-12


# --- embedding consistency ------------------------------------------------------------------


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; an all-zero row stays zero (its cosine with anything is 0)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, _EPS)


def _paired_2d(a: Any, b: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{what}: need two (n, d) arrays of the same shape, got {a.shape} and {b.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{what}: no rows")
    return a, b


def cosine_similarity_matrix(circuit_emb: Any, spec_emb: Any) -> np.ndarray:
    """S[i, j] = cos(circuit_emb[i], spec_emb[j]) for (n, d) and (m, d) inputs; zero rows give 0."""
    a, b = np.asarray(circuit_emb, dtype=np.float64), np.asarray(spec_emb, dtype=np.float64)
    return _unit_rows(a) @ _unit_rows(b).T


def retrieval_precision(circuit_emb: Any, spec_emb: Any, k: int, targets: Sequence[int] | None = None) -> float:
    """Top-k retrieval precision R@k of one round (paper eqs. 11-12).

    Row i of ``circuit_emb`` (n, d) is the embedding of the circuit generated for spec i, whose
    embedding is row i of ``spec_emb`` (n, d); or, with ``targets``, row ``targets[i]`` of ``spec_emb``
    (m, d), so a round whose invalid circuits were dropped still ranks against all m specs. The circuit
    is a hit when its own spec ranks within the top k of its cosine similarities to all specs. Rank =
    the number of *other* specs whose similarity is greater than or equal to the own spec's (ties count
    against the circuit), so a hit means rank < k. R@k = hits / n. Average rounds with
    ``retrieval_precision_rounds``.
    """
    if targets is None:
        a, b = _paired_2d(circuit_emb, spec_emb, "retrieval_precision")
        rows = np.arange(a.shape[0])
    else:
        a, b = np.asarray(circuit_emb, dtype=np.float64), np.asarray(spec_emb, dtype=np.float64)
        rows = np.asarray(targets, dtype=np.int64)
        if a.ndim != 2 or b.ndim != 2 or rows.shape != (a.shape[0],) or (rows < 0).any() or (rows >= len(b)).any():
            raise ValueError(f"retrieval_precision: targets must index spec rows, one per circuit, got {rows.shape}")
    if k < 1:
        raise ValueError(f"retrieval_precision: k must be >= 1, got {k}")
    sim = cosine_similarity_matrix(a, b)
    own = sim[np.arange(len(rows)), rows]
    rank = (sim >= own[:, None]).sum(axis=1) - 1  # minus the own spec itself
    return float(np.mean(rank < k))


def retrieval_precision_rounds(rounds: Iterable[tuple[Any, Any]], k: int) -> float:
    """Mean of ``retrieval_precision`` over rounds, each a (circuit_emb, spec_emb) pair (CktGen: 120 rounds)."""
    values = [retrieval_precision(c, s, k) for c, s in rounds]
    if not values:
        raise ValueError("retrieval_precision_rounds: no rounds")
    return float(np.mean(values))


def matching_distance(circuit_emb: Any, spec_emb: Any) -> float:
    """MM-D: mean over rows i of 1 − cos(circuit_emb[i], spec_emb[i]), inputs (n, d).

    0 for identical directions, 1 for orthogonal, 2 for opposite. CktGen averages it over rounds;
    with equal round sizes that equals this function on all rounds stacked.
    """
    a, b = _paired_2d(circuit_emb, spec_emb, "matching_distance")
    cos = np.sum(_unit_rows(a) * _unit_rows(b), axis=1)
    return float(np.mean(1.0 - cos))


# --- spec accuracy --------------------------------------------------------------------------


def _class_arrays(predicted: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(predicted), np.asarray(target)
    p = p[:, None] if p.ndim == 1 else p
    t = t[:, None] if t.ndim == 1 else t
    if p.ndim != 2 or p.shape != t.shape:
        raise ValueError(f"spec_accuracy: need two (n, axes) arrays of the same shape, got {p.shape} and {t.shape}")
    if p.shape[0] == 0:
        raise ValueError("spec_accuracy: no rows")
    return p, t


def spec_accuracy(predicted_classes: Any, target_classes: Any) -> float:
    """Spec-Acc: the share of rows whose predicted class equals the target on *every* axis (joint).

    Inputs (n, axes) integer classes, e.g. axes = (gain, bw, pm) predicted by the evaluator.
    """
    p, t = _class_arrays(predicted_classes, target_classes)
    return float(np.mean(np.all(p == t, axis=1)))


def spec_accuracy_per_axis(predicted_classes: Any, target_classes: Any) -> np.ndarray:
    """Per-axis accuracy, shape (axes,): the share of rows whose class is right on that axis alone.

    Unconditional, unlike the reference's sequential counters (bw counted only if gain was right, ...).
    """
    p, t = _class_arrays(predicted_classes, target_classes)
    return np.mean(p == t, axis=0)


# --- distribution distance ------------------------------------------------------------------


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues clipped to 0)."""
    w, v = linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu_a: Any, cov_a: Any, mu_b: Any, cov_b: Any) -> float:
    """Fréchet distance between N(mu_a, cov_a) and N(mu_b, cov_b).

    d² = |mu_a − mu_b|² + tr(cov_a + cov_b − 2 (cov_a cov_b)^{1/2}).

    tr (cov_a cov_b)^{1/2} is computed as tr (A^{1/2} cov_b A^{1/2})^{1/2} with A = cov_a: the two
    matrices are similar, the second is symmetric PSD, so its square root comes from an eigendecomposition
    with real, non-negative eigenvalues. This is exact for singular covariances, needs no eps·I shift,
    and never yields the spurious imaginary parts that ``scipy.linalg.sqrtm(cov_a @ cov_b)`` can
    produce. Round-off can make d² a hair below 0; it is clipped to 0.
    """
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, dtype=np.float64)), np.atleast_1d(np.asarray(mu_b, dtype=np.float64))
    cov_a, cov_b = (
        np.atleast_2d(np.asarray(cov_a, dtype=np.float64)),
        np.atleast_2d(np.asarray(cov_b, dtype=np.float64)),
    )
    d = mu_a.shape[0]
    if mu_b.shape != (d,) or cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise ValueError(f"frechet_distance: shapes disagree: {mu_a.shape}, {cov_a.shape}, {mu_b.shape}, {cov_b.shape}")
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    w = linalg.eigvalsh((middle + middle.T) / 2.0)
    tr_cross = float(np.sum(np.sqrt(np.clip(w, 0.0, None))))
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_cross)
    return max(value, 0.0)


def gaussian_fit(emb: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and sample covariance (d, d) (ddof = 1, as pytorch-fid's ``np.cov``) of (n, d) rows, n >= 2."""
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"gaussian_fit: need (n, d) rows with n >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def fid(emb_a: Any, emb_b: Any) -> float:
    """FID: ``frechet_distance`` between Gaussian fits (mean, ddof-1 covariance) of two sets of (n, d) rows.

    CktGen: evaluator embeddings of all generated circuits vs. those of the sampled ground-truth
    test circuits. The row counts may differ; the dimensions must agree.
    """
    mu_a, cov_a = gaussian_fit(emb_a)
    mu_b, cov_b = gaussian_fit(emb_b)
    return frechet_distance(mu_a, cov_a, mu_b, cov_b)


# --- diversity ------------------------------------------------------------------------------


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def mean_pairwise_distance(emb: Any, pairs: int | None = 100, rng: np.random.Generator | int | None = None) -> float:
    """Mean L2 distance between distinct rows of ``emb`` (m, d), m >= 2.

    ``pairs`` unordered pairs {i, j}, i ≠ j, are drawn uniformly without replacement from the
    m(m−1)/2 distinct pairs; when ``pairs`` is None or at least that many, every pair is used and the
    result is exact. A row is never paired with itself (the reference can, which lowers its value).
    """
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    m = x.shape[0]
    if x.ndim != 2 or m < 2:
        raise ValueError(f"mean_pairwise_distance: need (m, d) rows with m >= 2, got shape {x.shape}")
    if pairs is not None and pairs < 1:
        raise ValueError(f"mean_pairwise_distance: pairs must be >= 1 or None, got {pairs}")
    i, j = np.triu_indices(m, k=1)
    if pairs is not None and pairs < i.size:
        pick = _rng(rng).choice(i.size, size=pairs, replace=False)
        i, j = i[pick], j[pick]
    return float(np.mean(np.linalg.norm(x[i] - x[j], axis=1)))


def _mean_over_groups(groups: Iterable[Any], pairs: int | None, rng: Any, what: str) -> float:
    gen = _rng(rng)
    values = [mean_pairwise_distance(g, pairs, gen) for g in groups if np.asarray(g).shape[0] >= 2]
    if not values:
        raise ValueError(f"{what}: no group with at least two rows")
    return float(np.mean(values))


def diversity_across_specs(
    emb_per_round: Iterable[Any], pairs: int | None = 100, rng: np.random.Generator | int | None = None
) -> float:
    """Diversity across specs — the reference code's "Intra-D" (the paper's "Inter-D").

    ``emb_per_round``: per round an (S, d) array with one generated embedding per target spec (all
    specs of a round differ). Per round, the mean L2 distance between ``pairs`` random pairs of
    distinct rows (``mean_pairwise_distance``), then the unweighted mean over rounds. Unlike the
    reference, a pair never joins a sample with itself, and S >= 2 suffices (the reference needs S > 100).
    Rounds with fewer than two rows are skipped.
    """
    return _mean_over_groups(emb_per_round, pairs, rng, "diversity_across_specs")


def diversity_within_spec(
    emb_per_spec: Iterable[Any], pairs: int | None = 100, rng: np.random.Generator | int | None = None
) -> float:
    """Diversity within one spec — the reference code's "Inter-D" (the paper's "Intra-D").

    ``emb_per_spec``: per target spec an (m, d) array of the embeddings generated for it (CktGen:
    m = 120, one per round). Per spec, the mean L2 distance between ``pairs`` random pairs of distinct
    rows, then the unweighted mean over specs. Never pairs a sample with itself (the reference can).
    Specs with fewer than two samples are skipped. A deterministic generator scores 0.
    """
    return _mean_over_groups(emb_per_spec, pairs, rng, "diversity_within_spec")


# --- validity, novelty, reconstruction --------------------------------------------------------


def validity(results: Sequence[bool]) -> float:
    """The share of generated items that are valid; ``results`` holds one bool per generated item.

    Pass e.g. ``[c is not None for c in decoded]``; the denominator counts every item, invalid ones included.
    """
    flags = list(results)
    if not flags:
        raise ValueError("validity: no items")
    for f in flags:
        if not isinstance(f, bool | np.bool_):
            raise TypeError(f"validity: expected bools, got {type(f).__name__}")
    return float(np.mean(flags))


def novelty(generated_keys: Iterable[Hashable | None], training_keys: Iterable[Hashable]) -> float:
    """Novelty: 1 − the share of valid generated graphs identical to some training graph.

    Keys are any hashables naming a graph: ``Circuit.key`` (full circuit, values included),
    ``Circuit.topology_key`` (values ignored), or ``graph_signature`` (CktGen's recon/novelty test:
    types and in-neighbours by index, values and positions ignored). ``None`` marks an invalid
    generated graph: it is left out of the denominator. Duplicates among generated keys all count.
    """
    seen = set(training_keys)
    valid = [k for k in generated_keys if k is not None]
    if not valid:
        raise ValueError("novelty: no valid generated graphs")
    return 1.0 - sum(k in seen for k in valid) / len(valid)


GraphLike = Any  # an EncodedCircuit-like object (.types, .adj[, .n_nodes]) or a tuple (types, adj[, n_nodes])


def _as_graph(g: GraphLike, pad_type: int) -> tuple[np.ndarray, np.ndarray, int]:
    if hasattr(g, "types") and hasattr(g, "adj"):
        types, adj, n = g.types, g.adj, getattr(g, "n_nodes", None)
    else:
        types, adj, *rest = g
        n = rest[0] if rest else None
    types, adj = np.asarray(types).reshape(-1), np.asarray(adj)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or adj.shape[0] < types.shape[0]:
        raise ValueError(f"same_graph: adj must be square and cover the {types.shape[0]} types, got {adj.shape}")
    if n is None:
        pads = np.flatnonzero(types == pad_type)
        n = int(pads[0]) if pads.size else types.shape[0]
    return types, adj, int(n)


def graph_signature(g: GraphLike, pad_type: int = PAD_TYPE) -> tuple[int, tuple[int, ...], tuple[frozenset[int], ...]]:
    """A hashable form of CktGen's same-graph test: (node count, type per index, in-neighbour set per index).

    ``g`` is an encoded graph: ``types`` (N,), ``adj`` (N, N) with adj[u, v] != 0 for an edge u → v,
    and ``n_nodes`` (when absent: the index of the first ``pad_type`` entry, else N). Rows and columns
    at or beyond ``n_nodes`` are ignored, as are device values and positions. Comparison is by index
    (no isomorphism search), as in the reference.
    """
    types, adj, n = _as_graph(g, pad_type)
    in_nbrs = tuple(frozenset(int(u) for u in np.flatnonzero(adj[:n, v])) for v in range(n))
    return n, tuple(int(t) for t in types[:n]), in_nbrs


def same_graph(a: GraphLike, b: GraphLike, pad_type: int = PAD_TYPE) -> bool:
    """CktGen's reconstruction test: same node count, same type at every index, same in-neighbour set of every node.

    Sizes (device values) and positions are ignored; see ``graph_signature`` for the accepted inputs.
    """
    return graph_signature(a, pad_type) == graph_signature(b, pad_type)


def recon_accuracy(
    originals: Sequence[GraphLike], reconstructions: Sequence[GraphLike | None], pad_type: int = PAD_TYPE
) -> float:
    """Recon-Acc: the share of originals whose reconstruction passes ``same_graph``; a None reconstruction is a miss."""
    if len(originals) != len(reconstructions):
        raise ValueError(f"recon_accuracy: {len(originals)} originals but {len(reconstructions)} reconstructions")
    if not originals:
        raise ValueError("recon_accuracy: no graphs")
    hits = sum(r is not None and same_graph(o, r, pad_type) for o, r in zip(originals, reconstructions))
    return hits / len(originals)


# --- simulated spec accuracy --------------------------------------------------------------------


def sim_spec_accuracy(
    measured_rows: Sequence[Mapping[str, Any] | None],
    target_classes: Sequence[Sequence[int]] | np.ndarray,
    classify: Callable[[Mapping[str, Any]], Sequence[int] | None],
) -> float:
    """Simulated Spec-Acc: the share of generated circuits whose *simulated* specs fall in the requested joint class.

    ``measured_rows[i]`` is the exported simulation row of generated circuit i (status, gain_db,
    ugbw_hz, pm_deg, ...), or None when it was never simulated (e.g. invalid); ``target_classes[i]``
    is the class it was generated for. ``classify`` maps a row to its joint class or None (e.g.
    ``spec_classes("ocb").classify``, which returns None unless status is "ok"). A None row or a None
    class is a miss; the denominator counts every generated circuit.
    """
    if len(measured_rows) != len(target_classes):
        raise ValueError(f"sim_spec_accuracy: {len(measured_rows)} rows but {len(target_classes)} targets")
    if len(target_classes) == 0:
        raise ValueError("sim_spec_accuracy: no circuits")
    targets = [tuple(int(c) for c in np.atleast_1d(t)) for t in target_classes]
    hits = 0
    for row, target in zip(measured_rows, targets):
        if row is None:
            continue
        cls = classify(row)
        hits += cls is not None and tuple(int(c) for c in cls) == target
    return hits / len(targets)
