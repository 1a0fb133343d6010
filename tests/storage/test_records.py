"""Reads return typed, frozen records; the dict forms are explicit and match what files carry."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from circuits import Circuit
from storage import (
    CampaignInfo,
    CandidateInfo,
    CandidateRecord,
    DatasetEntry,
    DatasetInfo,
    Measured,
    ModelInfo,
    RefinementInfo,
    Store,
    TargetInfo,
)
from storage.rows import load_rows
from storage.testing import fake_performance, rows


def test_every_read_is_a_frozen_record(store: Store) -> None:
    data = rows(12)
    did = store.ensure_dataset("d", 1, 12, {"family": "default"})
    store.add_dataset_circuits(did, data)
    store.add_simulations("ngspice", "43", [(r.circuit.key, fake_performance(r.circuit.key), None) for r in data])
    store.register_model("surrogate", "v1", "/m.pt", {"layers": 3}, {"acc": 0.5})
    cid = store.ensure_campaign("c", {"budget": 5})
    (tid,) = store.ensure_targets(cid, [{"name": "t", "bounds": {"fom": {"min": 1.0}}}]).values()
    seed, result = store.add_candidates(tid, [CandidateRecord(r.circuit, "random") for r in data[:2]])
    store.add_refinement(tid, seed, result, 7, 1.0, 2.0, [1.0, 2.0])

    reads = {
        DatasetInfo: store.datasets()[0],
        DatasetEntry: next(iter(store.dataset_rows("d"))),
        ModelInfo: store.model_versions()[0],
        CampaignInfo: store.campaign("c"),
        TargetInfo: store.target(tid),
        CandidateInfo: store.candidates(tid)[0],
        RefinementInfo: store.refinements(tid)[0],
    }
    for kind, record in reads.items():
        assert type(record) is kind
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.id = 0  # type: ignore[misc]
    entry = reads[DatasetEntry]
    assert isinstance(entry, DatasetEntry) and isinstance(entry.measured, Measured)
    assert entry.measured.to_dict() == fake_performance(entry.id).to_dict()


def test_store_rows_and_export_lines_load_alike(tmp_path: Path) -> None:
    """Training reads a store or a ``dataset export`` file; both give the same rows."""
    data = rows(20)
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        did = store.ensure_dataset("d", 1, 20, {})
        store.add_dataset_circuits(did, data)
        store.add_simulations("ngspice", "43", [(r.circuit.key, fake_performance(r.circuit.key), 0.1) for r in data])
        entries = list(store.dataset_rows("d"))
    export = tmp_path / "d.jsonl"
    export.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in entries))

    from_store, from_file = load_rows(url, "d"), load_rows(export)
    assert from_store == from_file
    assert list(from_file[0]) == [
        "id",
        "position",
        "topology",
        "topology_number",
        "sizing",
        "split",
        "circuit",
        "status",
        "gain_db",
        "ugbw_hz",
        "pm_deg",
        "fom",
        "pm_ocb_deg",
        "error",
    ]
    assert [Circuit.from_dict(r["circuit"]).key for r in from_file] == [r.circuit.key for r in data]
