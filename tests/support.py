"""Helpers that several test modules share, so that no test module imports another's: a tiny surrogate
trained in-process, a store with a tiny dataset and one verified campaign, and killing a process at a
chosen moment."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from circuits import generate
from simulator.mna import MnaBackend
from storage import CandidateRecord, DatasetRow, Store
from surrogate.train import train


def tiny_parent(folder: Path) -> Path:
    """A tiny surrogate on the cktloop classes, trained one epoch on 96 MNA-labelled family circuits."""
    import json

    from tests.surrogate.conftest import TINY_MODEL, make_rows

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_rows(120, n_test=24)))
    config = folder / "tiny.yaml"
    config.write_text(
        "epochs: 1\nbatch_size: 16\nlr: 3.0e-3\nseed: 3\ndevice: cpu\nprogress: false\nspec_classes: cktloop\n"
        + TINY_MODEL
    )
    return Path(train(config, data, None, folder / "run")["checkpoint"])


def finetune_store(url: str, rows: list[dict]) -> Store:
    """A store with dataset 'tiny' (``rows``) and campaign 'camp' of 40 fresh circuits, all simulated."""
    store = Store.open(url)
    samples = {s.circuit.key: s for s in generate(120, 7)}
    store.ensure_dataset("tiny", 7, len(rows), {})
    store.add_dataset_circuits(
        "tiny", [DatasetRow.from_sample(samples[r["id"]], r["split"]) for r in rows if r["id"] in samples]
    )
    fresh = list(dict.fromkeys(s.circuit for s in generate(60, 99)))[:40]
    perfs = MnaBackend().simulate(fresh)
    labels = {r["id"]: r for r in rows}
    from circuits import Performance, SimStatus

    def perf(r: dict) -> Performance:
        return Performance(SimStatus(r["status"]), r["gain_db"], r["ugbw_hz"], r["pm_deg"], pm_ocb_deg=r["pm_ocb_deg"])

    store.add_simulations("ngspice", "test", [(k, perf(labels[k]), None) for k in labels if k in samples])
    tid = store.ensure_targets(
        store.ensure_campaign("camp", {}), [{"name": "t", "bounds": {"gain_db": {"min": 0.0, "max": None}}}]
    )["t"]
    store.add_candidates(tid, [CandidateRecord(c, "generator") for c in fresh])
    store.add_simulations("ngspice", "test", [(c.key, p, None) for c, p in zip(fresh, perfs)])
    return store


def kill_when(process: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (failing if it ends or times out first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the loop never got there"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
