"""``cktloop loop`` end to end, killed with SIGKILL during a round's campaign and during its fine-tune, and
re-run: it finishes with no duplicate rows, every registered version has its checkpoint, and a re-run of
the finished loop adds nothing. Tiny: a surrogate trained in-process on 96 MNA-labelled circuits, the
shipped generator, one round of 3 window targets at budget 40, one ensemble member; the loop processes
join this session's Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Store
from storage.testing import SAME_ROW, duplicate_rows, targets_done
from tests.support import finetune_store, kill_when, tiny_parent

pytestmark = [pytest.mark.ray, pytest.mark.ngspice, pytest.mark.slow]


def start(argv: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    args = [sys.executable, "-m", "orchestrator.cli", "loop", *argv]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_loop_killed_in_a_campaign_and_in_a_fine_tune_resumes_to_the_end_without_duplicates(ray_session, tmp_path):
    from tests.surrogate.conftest import make_rows

    url = f"sqlite:///{tmp_path / 'loop.db'}"
    finetune_store(url, make_rows(120, n_test=24)).close()
    parent = tiny_parent(tmp_path / "parent")
    out = tmp_path / "loop"
    argv = ["--name", "kl", "--n", "3", "--rounds", "1", "--budget", "40", "--dataset", "tiny"]
    argv += ["--surrogate", str(parent), "--members", "1", "--epochs", "30", "--seed", "2"]
    argv += ["--workers", "1", "--searches-per-worker", "1", "--address", ray_session.get_runtime_context().gcs_address]
    argv += ["--db", url, "--out", str(out), "--no-progress", "--json"]
    member = out / "round-1" / "finetune" / "member-0" / "checkpoint.pt"

    def state() -> dict:
        return json.loads((out / "state.json").read_text())

    def registered() -> list:
        with Store.open(url) as store:
            return store.model_versions("surrogate")

    with Store.open(url) as store:
        kill_when(start(argv), lambda: targets_done(store, "kl-r1") >= 1)  # the round's campaign has one target done
        assert targets_done(store, "kl-r1") < 3
    assert "outcome" not in state()["rounds"][0]

    kill_when(start(argv), member.is_file)  # the round's fine-tune has written its first epoch
    assert "done" not in state()["rounds"][0] and "outcome" in state()["rounds"][0]
    assert all(Path(v.path).is_file() for v in registered())

    run = start(argv)
    printed, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]
    (summary,) = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert summary["round"] == 1 and summary["targets"] == 3 and summary["fresh_rows"] > 0
    (version,) = registered()
    assert version.version == summary["finetuned"] and Path(version.path).is_file()
    assert version.parent_version == summary["models"]["surrogate"]
    assert state()["current"]["version"] == (summary["promoted"] or summary["models"]["surrogate"])
    with Store.open(url) as store:
        assert duplicate_rows(store.engine) == dict.fromkeys(SAME_ROW, 0)
        assert all(r.status == "done" for r in store.campaign_targets("kl-r1"))
        candidates = store.last_candidate_id()
        # the promotion, if the gate gave one, is in the store, where campaigns find it (--models promoted)
        promotions = [(p.version, p.promoted_by, p.round) for p in store.promotions()]
        assert promotions == ([(summary["promoted"], "loop kl", 1)] if summary["promoted"] else [])
        # every candidate the round's surrogate ranked records it, beside the generator that proposed it
        ranked = [c for t in store.campaign_targets("kl-r1") for c in store.candidates(t.id) if c.predicted]
        assert ranked and {c.surrogate_version for c in ranked} == {summary["models"]["surrogate"]}
        kept = store.loop_state("kl")  # the state's copy in the store, as the folder has it
        assert kept is not None and kept["current"] == state()["current"]
        assert kept["rounds"][0]["done"] and kept["rounds"][0]["candidate"] == state()["rounds"][0]["candidate"]

    again = start(argv)  # the loop is finished: the same round, nothing new
    printed_again, err = again.communicate(timeout=600)
    assert again.returncode == 0 and printed_again == printed, err[-3000:]
    assert registered() == [version]
    with Store.open(url) as store:
        assert store.last_candidate_id() == candidates
        assert [(p.version, p.promoted_by, p.round) for p in store.promotions()] == promotions

    report = tmp_path / "report"
    argv_report = ["loop", "report", "--out", str(report), "--loop", str(out), "--db", url]
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", *argv_report], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {"index.html", "errors.png", "outcomes.png", "models.png"} <= {p.name for p in report.iterdir()}
