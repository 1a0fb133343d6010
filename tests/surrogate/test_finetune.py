"""Fine-tuning from the store: the rows it reads (verified candidates, a stable held-out slice, replay
from the datasets' training splits), the ensemble checkpoint it writes, what it registers, resuming, and
one-line errors. A tiny parent trained in-process; labels from the MNA backend, stored as ngspice's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from circuits import Circuit, CktLoopError, generate
from simulator.mna import MnaBackend
from storage import CandidateRecord, DatasetRow, Store, StoreError
from surrogate import checkpoint as ckpt
from surrogate.finetune import RESULT, FinetuneConfig, finetune, held_out
from surrogate.predict import Surrogate
from tests.support import finetune_store, tiny_parent


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_parent(tmp_path_factory.mktemp("parent"))


@pytest.fixture
def store(tmp_path: Path, rows: list[dict]) -> Iterator[Store]:
    s = finetune_store(f"sqlite:///{tmp_path / 'ft.db'}", rows)
    yield s
    s.close()


def _config(parent: Path, **kw: object) -> FinetuneConfig:
    base = {"base": str(parent), "dataset": "tiny", "members": 2, "epochs": 2, "batch_size": 16, "progress": False}
    return FinetuneConfig(**{**base, **kw})


def test_held_out_is_a_stable_share_of_keys() -> None:
    keys = [f"{i:032x}" for i in range(4000)]
    picked = [k for k in keys if held_out(k, 0.2)]
    assert 0.17 < len(picked) / len(keys) < 0.23
    assert picked == [k for k in keys if held_out(k, 0.2)]
    assert set(k for k in keys if held_out(k, 0.1)) <= set(picked)  # a smaller share is a subset


@pytest.mark.slow
def test_finetune_trains_an_ensemble_and_registers_it_with_its_lineage(
    store: Store, parent: Path, tmp_path: Path
) -> None:
    config = _config(parent, replay_ratio=0.5)
    result = finetune(store, tmp_path / "ft", config=config)
    verified = store.verified_rows(["camp"])
    ok = [r for r in verified if r["status"] == "ok"]
    n_held = sum(held_out(r["id"], 0.2) for r in ok)
    rows = result["rows"]
    assert (rows["n_train"], rows["n_heldout"]) == (len(ok) - n_held, n_held) and n_held > 0
    assert rows["n_replay"] == round(0.5 * rows["n_train"])
    assert rows["upto_candidate"] == store.last_candidate_id()

    info = store.model_version("surrogate", result["version"])
    parent_model = Surrogate.load(parent, device="cpu")
    assert info.parent_version == parent_model.version == result["parent_version"]
    assert info.data_fingerprint == result["data_fingerprint"]
    assert info.data_fingerprint.startswith(f"{rows['n_train'] + rows['n_replay']}:")
    assert Path(info.path) == (tmp_path / "ft" / RESULT).resolve()
    metrics = info.metrics
    for part in ("heldout", "parent_heldout"):
        assert metrics[part]["n"] == n_held
        assert {"ugbw_mae_dec", "pm_mae_deg", "gain_mae_db", "fom_mae", "fom_spearman"} <= set(metrics[part])
    assert "calibration" in metrics["heldout"] and "calibration" not in metrics["parent_heldout"]
    # the spread's scale is fitted on the held-out slice: about two thirds of its errors within one deviation
    assert set(metrics["heldout"]["std_scale"]) == {"gain_db", "ugbw_dec", "pm", "fom"}
    assert abs(metrics["heldout"]["calibration"]["fom"]["within_1sd"] - 0.68) <= 1.5 / n_held + 0.01
    for part in ("dataset_test", "parent_dataset_test"):
        assert metrics[part]["n"] > 0 and 0.0 <= metrics[part]["joint_acc"] <= 1.0

    model = Surrogate.load(info.path, device="cpu")
    assert model.version == result["version"] and len(model.members) == 1
    circuits = [Circuit.from_dict(r["circuit"]) for r in ok[:6]]
    preds = model.predict(circuits)
    assert all(set(p["std"]) == {"gain_db", "ugbw_dec", "pm_deg", "fom"} for p in preds)
    assert all(v >= 0 and math.isfinite(v) for p in preds for v in p["std"].values())
    assert any(p["std"]["fom"] > 0 for p in preds)  # members trained on different resamples disagree
    assert not torch.equal(
        model.model.state_dict()["fom_head.0.weight"], parent_model.model.state_dict()["fom_head.0.weight"]
    )


@pytest.mark.slow
def test_a_rerun_resumes_and_registers_nothing_twice(store: Store, parent: Path, tmp_path: Path) -> None:
    tid = store.campaign_targets("camp")[0].id
    late = [s.circuit for s in generate(30, 123)][:3]
    store.add_candidates(tid, [CandidateRecord(c, "generator") for c in late])  # not measured yet
    straight = finetune(store, tmp_path / "a", config=_config(parent), register=False)
    # as if killed while member 1 trained, before the result was written and registered
    out = tmp_path / "b"
    real_save = ckpt.save

    def dies(path: object, payload: object) -> None:
        raise KeyboardInterrupt

    ckpt.save = dies  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            finetune(store, out, config=_config(parent), register=True)
    finally:
        ckpt.save = real_save  # type: ignore[assignment]
    assert not (out / RESULT).exists()
    assert store.model_versions("surrogate") == []  # no version without its checkpoint
    resumed = finetune(store, out, config=_config(parent))
    assert resumed["version"] == straight["version"] and resumed["metrics"] == straight["metrics"]
    a, b = ckpt.load(tmp_path / "a" / RESULT), ckpt.load(out / RESULT)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert len(store.model_versions("surrogate")) == 1
    # the rows are fixed at the first call: candidates added or measured later do not change a resumed run
    store.add_candidates(tid, [CandidateRecord(s.circuit, "generator") for s in generate(40, 321)][-2:])
    store.add_simulations("ngspice", "test", [(c.key, p, None) for c, p in zip(late, MnaBackend().simulate(late))])
    again = finetune(store, out, config=_config(parent))
    assert again["rows"] == resumed["rows"] and again["data_fingerprint"] == resumed["data_fingerprint"]


@pytest.mark.slow
def test_since_reads_only_newer_candidates(store: Store, parent: Path, tmp_path: Path) -> None:
    first = finetune(store, tmp_path / "one", config=_config(parent, members=1, epochs=1))
    with pytest.raises(CktLoopError, match="no verified candidates"):
        finetune(store, tmp_path / "two", since=first["version"], config=_config(parent, members=1, epochs=1))
    with pytest.raises(StoreError, match="no surrogate model version 'nope'"):
        finetune(store, tmp_path / "three", since="nope", config=_config(parent, members=1, epochs=1))


@pytest.mark.slow
def test_bad_input_is_one_line(store: Store, parent: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no campaign named 'ghost'"):
        finetune(store, tmp_path / "x", campaigns=["ghost"], config=_config(parent))
    with pytest.raises(CktLoopError, match="no such checkpoint"):
        finetune(store, tmp_path / "y", config=_config(tmp_path / "missing.pt"))
    finetune(store, tmp_path / "z", config=_config(parent, members=1, epochs=1))
    with pytest.raises(CktLoopError, match="holds a fine-tune of other rows"):
        finetune(store, tmp_path / "z", campaigns=["camp"], config=_config(parent, members=1, epochs=1))


def test_since_replays_the_earlier_verified_rows_but_never_their_held_out_ones(store: Store, parent: Path) -> None:
    from surrogate.finetune import gather_rows

    everything = store.verified_rows()
    after = everything[len(everything) // 2]["candidate_id"]
    spec = {"campaigns": [], "after_candidate": after, "upto_candidate": store.last_candidate_id()}
    spec["upto_simulation"] = store.last_simulation_id()
    config = _config(parent, earlier_ratio=0.5, replay_ratio=1.0, holdout_fraction=0.3)
    train, held, replay, _ = gather_rows(store, spec, config)
    earlier = [r for r in replay if "candidate_id" in r]
    assert train and all(r["candidate_id"] > after for r in train + held)
    assert len(earlier) == round(0.5 * len(train)) and all(r["candidate_id"] <= after for r in earlier)
    assert not any(held_out(r["id"], 0.3) for r in earlier)
    assert len(replay) - len(earlier) == len(train)  # the dataset's share, as before
    _, _, none, _ = gather_rows(store, spec, _config(parent, earlier_ratio=0.0, replay_ratio=1.0, holdout_fraction=0.3))
    assert not [r for r in none if "candidate_id" in r]


def test_replay_reads_every_datasets_training_split_and_never_a_held_out_circuit(
    store: Store, rows: list[dict], parent: Path
) -> None:
    """A second dataset holds three of tiny's training circuits in its held-out split and ten circuits of its
    own: every dataset's split leaves the three out wherever they are listed; the replay takes its share from
    each dataset, each circuit once; a name not in the store is one line."""
    from surrogate.finetune import gather_rows, replay_keys, replay_splits

    samples = {s.circuit.key: s for s in generate(120, 7)}
    tiny_train = [r["id"] for r in rows if r["split"] == "train" and r["id"] in samples]
    held_there = tiny_train[:3]
    own = list(dict.fromkeys(s.circuit for s in generate(12, 42)))[:10]
    store.ensure_dataset("other", 42, 13, {})
    store.add_dataset_circuits(
        "other",
        [DatasetRow.from_sample(samples[k], "test") for k in held_there]
        + [DatasetRow(100 + i, 0, i, "train", c) for i, c in enumerate(own)],
    )
    store.add_simulations("ngspice", "test", [(c.key, p, None) for c, p in zip(own, MnaBackend().simulate(own))])

    splits = {name: {r["id"] for r in split} for name, split in replay_splits(store, "all").items()}
    assert splits == {"tiny": set(tiny_train) - set(held_there), "other": {c.key for c in own}}
    assert {r["id"] for r in replay_splits(store, "tiny")["tiny"]} == splits["tiny"]
    assert replay_keys(store, "all") == splits["tiny"] | splits["other"]  # the same rule, keys only
    assert replay_keys(store, "tiny") == splits["tiny"]
    with pytest.raises(CktLoopError, match=r"replay dataset 'ghost' is not in the store \(datasets there: "):
        replay_splits(store, "ghost")

    spec = {"campaigns": [], "after_candidate": 0, "upto_candidate": store.last_candidate_id()}
    spec["upto_simulation"] = store.last_simulation_id()
    train, _, replay, _ = gather_rows(store, spec, _config(parent, replay_ratio=0.25))
    ids = [r["id"] for r in replay]
    assert len(ids) == len(set(ids)) == 2 * round(0.25 * len(train))  # as many from each dataset
    assert len(set(ids) & splits["other"]) == round(0.25 * len(train)) and not set(ids) & set(held_there)
    _, _, one, _ = gather_rows(store, spec, _config(parent, replay_ratio=0.25, replay="tiny"))
    assert {r["id"] for r in one} <= splits["tiny"] and len(one) == round(0.25 * len(train))
