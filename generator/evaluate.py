"""The paper's evaluation of a trained generator (reference §4.4), plus simulation-judged accuracy.

* ``cond_gen``: S target classes (one per class of the cleaned test split), ``rounds`` rounds; each
  round samples one ground-truth test circuit per class and generates one circuit per class. The
  surrogate judges Spec-Acc, retrieval R@1..3, MM-D, FID and the two diversities (named by what
  they measure, see ``generator.metrics``); ngspice judges Sim-Spec-Acc when a ``simulate``
  function is given, and ``judge_agreement`` says how often the surrogate's class of a generated
  circuit is ngspice's. Validity is reported for the grammar-constrained decoder CktLoop uses and for
  the paper's free decoder.
* ``recon``: each test circuit encoded to its mean latent and decoded once (Recon-Acc, validity).
* ``prior``: latents drawn from the prior rescaled by the training means' statistics (validity,
  novelty against training topologies, uniqueness).

Invalid circuits count as misses in every share; embedding metrics use the valid ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from circuits import Circuit, CktLoopError, Performance
from circuits.encoding import encode
from generator import metrics as m
from generator.data import Splits
from generator.predict import Generator
from generator.sampling import Sampling, SamplingLike
from surrogate.predict import Surrogate

Simulate = Callable[[Sequence[Circuit]], list[Performance]]


def _valid(results: Sequence[Any]) -> list[bool]:
    return [isinstance(r, Circuit) for r in results]


def _free_validity(generator: Generator, specs: Sequence[tuple[int, ...]], seed: int) -> float:
    """Validity of the paper's unconstrained decoder on one round of the same specs."""
    model = generator.model
    config = model.config
    model.config = config.replace(grammar=False)
    try:
        return m.validity(_valid(generator.generate(specs, 1, seed=seed)))
    finally:
        model.config = config


def cond_gen(
    generator: Generator,
    surrogate: Surrogate,
    splits: Splits,
    rounds: int = 120,
    seed: int = 0,
    simulate: Simulate | None = None,
    sampling: SamplingLike = "spec",
) -> dict[str, Any]:
    """Conditional generation metrics on the test split's classes (see the module docstring).

    ``sampling`` is passed to ``Generator.generate`` (a ``generator.sampling.Sampling``): ``spec`` as the
    paper samples, ``bank`` around the training circuits of each class; ``novel_circuits`` and
    ``novel_topologies`` say how many generated circuits (values included) and topologies are not in the
    training split.
    """
    if surrogate.classes.sizes != generator.spec_classes.sizes:
        raise CktLoopError(
            f"generator classes {generator.spec_classes.name!r} {generator.spec_classes.sizes} and surrogate "
            f"classes {surrogate.classes.name!r} {surrogate.classes.sizes} differ"
        )
    by_class: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, cls in enumerate(splits.test.classes):
        by_class[tuple(cls)].append(i)
    specs = sorted(by_class)
    s = len(specs)
    rng = np.random.default_rng(seed)
    truth = [[by_class[c][int(rng.integers(len(by_class[c])))] for c in specs] for _ in range(rounds)]
    # spec-major: spec j, round r at j·rounds + r
    how = Sampling.of(sampling)
    generated = generator.generate(specs, rounds, seed=seed, sampling=how)
    grid = [[generated[j * rounds + r] for j in range(s)] for r in range(rounds)]
    flat = [c for row in grid for c in row]
    targets = [specs[j] for _ in range(rounds) for j in range(s)]
    valid = _valid(flat)
    circuits = [c for c in flat if isinstance(c, Circuit)]
    predicted = surrogate.predict(circuits)
    spec_emb = surrogate.embed_specs(specs)
    emb_dim = spec_emb.shape[1]
    it = iter(predicted)
    pred_full = [next(it) if ok else None for ok in valid]
    hits = [p is not None and tuple(p["spec_class"]) == t for p, t in zip(pred_full, targets)]
    axis_hits = np.array(
        [[p is not None and p["spec_class"][k] == t[k] for k in range(len(t))] for p, t in zip(pred_full, targets)]
    )
    emb: list[Any] = [p["embedding"] if p is not None else None for p in pred_full]

    rounds_emb, r_at = [], {1: list[float](), 2: list[float](), 3: list[float]()}
    mmd = []
    for r in range(rounds):
        idx = [r * s + j for j in range(s) if emb[r * s + j] is not None]
        if not idx:
            continue
        e = np.stack([emb[i] for i in idx])
        target_rows = [i - r * s for i in idx]
        rounds_emb.append(e)
        for k in r_at:
            r_at[k].append(m.retrieval_precision(e, spec_emb, k, targets=target_rows))
        mmd.append(m.matching_distance(e, spec_emb[target_rows]))
    per_spec = [
        np.stack([emb[r * s + j] for r in range(rounds) if emb[r * s + j] is not None]).reshape(-1, emb_dim)
        for j in range(s)
    ]
    truth_circuits = [splits.test_circuits[i] for row in truth for i in row]
    truth_emb = np.stack([p["embedding"] for p in surrogate.predict(truth_circuits)])
    gen_emb = np.stack([e for e in emb if e is not None]) if circuits else np.zeros((0, emb_dim))
    result: dict[str, Any] = {
        "generator": generator.version,
        "surrogate": surrogate.version,
        "classes": generator.spec_classes.name,
        "n_specs": s,
        "rounds": rounds,
        "n_generated": len(flat),
        "validity": m.validity(valid),
        "validity_free_decoder": _free_validity(generator, specs, seed),
        "spec_acc": float(np.mean(hits)),
        "spec_acc_per_axis": [float(x) for x in axis_hits.mean(0)],
        "r_at_1": float(np.mean(r_at[1])) if r_at[1] else 0.0,
        "r_at_2": float(np.mean(r_at[2])) if r_at[2] else 0.0,
        "r_at_3": float(np.mean(r_at[3])) if r_at[3] else 0.0,
        "mm_d": float(np.mean(mmd)) if mmd else float("nan"),
        "fid": m.fid(gen_emb, truth_emb) if len(gen_emb) > 1 else float("nan"),
        "diversity_across_specs": m.diversity_across_specs(rounds_emb, rng=seed) if rounds_emb else 0.0,
        "diversity_within_spec": m.diversity_within_spec(per_spec, rng=seed) if rounds > 1 else 0.0,
        "unique_share": len({c.key for c in circuits}) / len(flat),
        "sampling": how.kind,
        "bank_noise": how.bank_noise if how.kind == "bank" else None,
        "bank_values": how.bank_values if how.kind == "bank" else None,
        "novel_circuits": (
            m.novelty([c.key for c in circuits], (c.key for c in splits.train_circuits)) if circuits else 0.0
        ),
        "novel_topologies": (
            m.novelty([c.topology_key for c in circuits], (c.topology_key for c in splits.train_circuits))
            if circuits
            else 0.0
        ),
        "predicted_fom_mean": float(np.mean([p["fom"] for p in predicted])) if predicted else float("nan"),
    }
    if simulate is not None:
        unique = {c.key: c for c in circuits}
        measured = dict(zip(unique, simulate(list(unique.values()))))
        rows = [measured[c.key].to_dict() if isinstance(c, Circuit) else None for c in flat]
        classify = generator.spec_classes.classify
        result["sim_spec_acc"] = m.sim_spec_accuracy(rows, targets, classify)
        got = [classify(r) if r is not None else None for r in rows]
        result["sim_spec_acc_per_axis"] = [
            float(np.mean([g is not None and g[k] == t[k] for g, t in zip(got, targets)])) for k in range(len(specs[0]))
        ]
        # How far the surrogate's verdict can be trusted here: its class against ngspice's, per circuit.
        result["judge_agreement"] = float(
            np.mean([p is not None and g is not None and tuple(p["spec_class"]) == g for p, g in zip(pred_full, got)])
        )
        result["sim_ok_share"] = float(np.mean([r is not None and r["status"] == "ok" for r in rows]))
        result["n_simulated"] = len(unique)
    return result


def recon(generator: Generator, splits: Splits) -> dict[str, Any]:
    """Recon-Acc on the test circuits (CktGen's same-graph test: types and in-neighbours by index)."""
    originals = splits.test_circuits
    decoded = generator.reconstruct(originals)
    return {
        "generator": generator.version,
        "n": len(originals),
        "recon_acc": m.recon_accuracy(
            [encode(c) for c in originals], [encode(d) if isinstance(d, Circuit) else None for d in decoded]
        ),
        "validity": m.validity(_valid(decoded)),
        "exact_topology": float(
            np.mean([isinstance(d, Circuit) and d.topology_key == o.topology_key for o, d in zip(originals, decoded)])
        ),
    }


PRIOR_DRAWS, PRIOR_DECODES = 1_000, 10  # the paper's prior protocol (reference §4.4)


def prior(
    generator: Generator,
    splits: Splits,
    n: int = PRIOR_DRAWS,
    seed: int = 0,
    decodes: int = PRIOR_DECODES,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """Validity, novelty (against training graphs, CktGen's same-graph test) and uniqueness of prior samples.

    The defaults are the paper's protocol: 1,000 prior latents, each decoded 10 times, so the decoder's
    choices are drawn (``temperature`` 1); ``decodes=1, temperature=0`` decodes each latent greedily."""
    samples = generator.sample_prior(n, seed=seed, decodes=decodes, temperature=temperature)
    keys = [m.graph_signature(encode(c)) if isinstance(c, Circuit) else None for c in samples]
    train = {m.graph_signature(encode(c)) for c in splits.train_circuits}
    valid_keys = [k for k in keys if k is not None]
    return {
        "generator": generator.version,
        "draws": n,
        "decodes": decodes,
        "temperature": temperature,
        "n": len(samples),
        "validity": m.validity([k is not None for k in keys]),
        "novelty": m.novelty(keys, train) if valid_keys else 0.0,
        "unique_share": len(set(valid_keys)) / len(samples),
    }


LABELS = {
    "validity": ("validity", "{:.1%}"),
    "validity_free_decoder": ("validity, paper's free decoder", "{:.1%}"),
    "spec_acc": ("Spec-Acc (surrogate)", "{:.1%}"),
    "sim_spec_acc": ("Sim-Spec-Acc (ngspice)", "{:.1%}"),
    "judge_agreement": ("surrogate's class = ngspice's", "{:.1%}"),
    "r_at_1": ("R@1", "{:.1%}"),
    "r_at_2": ("R@2", "{:.1%}"),
    "r_at_3": ("R@3", "{:.1%}"),
    "mm_d": ("MM-D", "{:.3f}"),
    "fid": ("FID", "{:.3f}"),
    "diversity_across_specs": ("diversity across specs (paper: Inter-D)", "{:.3f}"),
    "diversity_within_spec": ("diversity within a spec (paper: Intra-D)", "{:.3f}"),
    "unique_share": ("unique circuits", "{:.1%}"),
    "novel_circuits": ("not a training circuit", "{:.1%}"),
    "novel_topologies": ("not a training topology", "{:.1%}"),
    "sampling": ("latent sampling", "{}"),
    "recon_acc": ("Recon-Acc", "{:.1%}"),
    "exact_topology": ("exact topology (positions too)", "{:.1%}"),
    "novelty": ("novelty", "{:.1%}"),
    "n_specs": ("target specs S", "{}"),
    "rounds": ("rounds", "{}"),
    "draws": ("prior latents", "{}"),
    "decodes": ("decodes per latent", "{}"),
    "temperature": ("decoding temperature (0: greedy)", "{}"),
    "n": ("circuits", "{}"),
}


def markdown_table(title: str, metrics: dict[str, Any]) -> str:
    rows = [(label, fmt.format(metrics[k])) for k, (label, fmt) in LABELS.items() if k in metrics]
    for key in ("spec_acc_per_axis", "sim_spec_acc_per_axis"):
        if key in metrics:
            rows.append((f"{key.replace('_', ' ')} (gain, UGBW, PM)", ", ".join(f"{x:.1%}" for x in metrics[key])))
    head = f"| {title} ({metrics.get('generator', '')}) | value |"
    return "\n".join([head, "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
