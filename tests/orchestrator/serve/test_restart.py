"""A design job survives the service's death: ``cktloop serve`` (its own local Ray, a temporary SQLite
store, a free port) is killed with SIGKILL, process group and session, while a job runs; started again on
the same store it resumes the job, which ends done with the same targets met as the same job run
undisturbed, and with no row stored twice. That second service is then stopped with SIGTERM: exit 0, one line,
nothing of its session left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from storage.testing import SAME_ROW, duplicate_rows

pytestmark = [pytest.mark.ngspice, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
DEMO = yaml.safe_load((ROOT / "orchestrator" / "campaigns" / "demo.yaml").read_text())
JOB = {"name": "restart", "budget": 200, "targets": DEMO["targets"][:5]}
START_S, JOB_S = 300, 600
# one target at a time, so the job is caught with some targets done (searched at once, all five end together)
DESIGNS = {"random": True, "workers": 1, "searches_per_worker": 1}
SIMULATOR = {"workers": 1, "worker_cpus": 0}  # the service's own pool leaves the CPUs to the job's ngspice


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``cktloop serve`` in a session of its own (so its Ray, whatever process group each part takes, can
    be killed whole and nothing else with it)."""

    def __init__(self, tmp: Path, db: str, name: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "serve.yaml"
        config.write_text(yaml.safe_dump({"designs": DESIGNS, "simulator": SIMULATOR}))
        self.log = (tmp / f"{name}.log").open("w")
        cktloop = str(Path(sys.executable).parent / "cktloop")
        cmd = [cktloop, "serve", "--port", str(self.port), "--db", db, "--config", str(config)]
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        env.pop("RAY_ADDRESS", None)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + START_S
        while True:
            try:
                if self.call("GET", "/v1/designs") is not None:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"cktloop serve did not come up: {(tmp / f'{name}.log').read_text()[-3000:]}")
            time.sleep(1)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def session(self) -> list[int]:
        """The live processes of the service's session (its Ray included)."""
        out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
        return [int(p) for p, s in (line.split() for line in out.splitlines()) if int(s) == self.proc.pid]

    def kill(self) -> None:
        """SIGKILL to the process group, then to whatever else of the session is left (Ray's workers)."""
        with_group = [self.proc.pid]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        for _ in range(50):
            left = [p for p in self.session() if p not in with_group]
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        self.log.close()

    def stop(self) -> None:
        """SIGTERM (SIGINT may be ignored: a background job of a shell inherits that), then ``kill``."""
        self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=60)
        self.kill()


def _wait(service: Service, job_id: int, until: Any, timeout_s: float = JOB_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not until(job := service.call("GET", f"/v1/designs/{job_id}")):
        assert job["status"] not in ("failed", "cancelled"), f"{job['status']}: {job['error']}"
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def _candidates(db: str, campaign: str) -> dict[str, int]:
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.name, COUNT(c.id) FROM campaign_targets t JOIN campaigns p ON p.id = t.campaign_id"
                " LEFT JOIN candidates c ON c.target_id = t.id WHERE p.name = :name GROUP BY t.name"
            ),
            {"name": campaign},
        ).all()
    engine.dispose()
    return {name: n for name, n in rows}


def test_a_job_killed_with_the_service_completes_after_a_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'restart.db'}"
    first = Service(tmp_path, db, "first")
    try:
        job_id = first.call("POST", "/v1/designs", JOB)["id"]
        running = _wait(first, job_id, lambda j: j["status"] == "running" and j["targets_done"] >= 1)
    finally:
        first.kill()
    assert first.session() == []  # nothing of the first service is left
    done_before = running["targets_done"]

    second = Service(tmp_path, db, "second")
    try:
        resumed = _wait(second, job_id, lambda j: j["status"] == "done")
        again_id = second.call("POST", "/v1/designs", {**JOB, "name": "undisturbed"})["id"]
        undisturbed = _wait(second, again_id, lambda j: j["status"] == "done")
        _stops_cleanly_on_sigterm(second, tmp_path / "second.log")  # here, not in a test of its own: Serve
        # takes a minute or more to start on 2 cores, and CI's suite has 15
    finally:
        second.kill()

    assert resumed["targets_done"] == len(JOB["targets"]) and done_before < len(JOB["targets"])
    met = {t["name"]: t["met"] for t in resumed["targets"]}
    assert met == {t["name"]: t["met"] for t in undisturbed["targets"]}
    sims = {t["name"]: t["n_simulations"] for t in resumed["targets"]}
    assert sims == {t["name"]: t["n_simulations"] for t in undisturbed["targets"]}
    assert _candidates(db, resumed["campaign"]) == _candidates(db, undisturbed["campaign"])
    engine = create_engine(db)
    assert duplicate_rows(engine) == dict.fromkeys(SAME_ROW, 0)
    engine.dispose()
    print(
        f"killed with {done_before} of {len(met)} targets done; resumed and undisturbed both met {sum(met.values())}, "
        f"{resumed['simulations']} simulations"
    )


def _stops_cleanly_on_sigterm(service: Service, log: Path) -> None:
    """``cktloop serve`` stopped by SIGTERM shuts down what it started: it exits 0 with one line, and nothing of
    its session is left (Serve's controller, proxy and replicas, the local Ray instance's GCS, raylet and workers)."""
    assert len(service.session()) > 3  # the command, Ray's GCS and raylet, Serve's actors
    service.proc.terminate()
    assert service.proc.wait(timeout=120) == 0
    deadline = time.monotonic() + 30
    while (left := service.session()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], "processes of the service's session outlived it"
    last = log.read_text().strip().splitlines()[-1]
    assert last == "cktloop: stopped: Serve shut down; the local Ray instance stopped"
