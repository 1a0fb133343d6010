"""Helpers that several test modules share, so that no test module imports another's: a tiny surrogate
trained in-process; a store with a tiny dataset and one verified campaign; killing a process at a chosen
moment; a free port range for a local cluster; the campaign driver stand-in that reports what ``cktloop
campaign run`` loads and the settings it runs with."""

from __future__ import annotations

import random
import signal
import socket
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


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base(workers: int) -> int:
    """A base port whose derived ports (see scripts/local_cluster.sh's header) are all free now."""
    for _ in range(50):
        base = random.randrange(20000, 40000, 10)
        ports = [base, base + 1]
        ports += [base + 10 + 10 * i + k for i in range(workers + 1) for k in range(6)]
        ports += range(base + 1000, base + 1200 + 200 * workers)
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range found")


REPO = Path(__file__).resolve().parents[1]

# Runs `campaign run FILE` through the CLI up to the campaign itself, which is replaced by a stand-in
# that imports what the real one imports on the driver side (Ray, the workers' and actors' classes,
# the store) and reports the modules loaded by then.
KNOBS = ("workers", "searches_per_worker", "simulator_cpus", "target_timeout_s", "call_timeout_s", "startup_timeout_s")
DRIVER = (
    f"KNOBS = {KNOBS!r}\n"
    + """
import json, sys
import orchestrator.design.campaign as campaign

def run_campaign(store, spec, settings, **kwargs):
    import ray
    from orchestrator.distributed import bandit_worker, model_actors, runtime, simulation_pool
    from storage import CandidateRecord
    names = ("torch", "torch_geometric", "generator.predict", "surrogate.predict")
    heavy = sorted(m for m in names if m in sys.modules)
    knobs = {f: getattr(settings, f) for f in KNOBS}
    print(json.dumps({"heavy": heavy, "generator": settings.generator, "surrogate": settings.surrogate, **knobs}))
    return {"name": spec.name, "id": 1, "met": 0, "targets": 1, "done": 0, "failed": 0, "wall_s": 0.0, "rerun": 0}

campaign.run_campaign = run_campaign
from orchestrator.cli.app import main
sys.exit(main(sys.argv[1:]))
"""
)
