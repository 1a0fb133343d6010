"""``cktloop serve`` stopped by SIGTERM shuts down what it started: it exits 0 with one line, and nothing of its
session is left (Serve's controller, proxy and replicas, the local Ray instance's GCS, raylet and workers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.orchestrator.serve.test_restart import Service

pytestmark = pytest.mark.slow  # Serve starts: 30-130 s on the loaded 2-core machine; the stop itself takes seconds


def test_sigterm_stops_serve_and_the_local_ray_it_started(tmp_path: Path) -> None:
    service = Service(tmp_path, f"sqlite:///{tmp_path}/stop.db", "stop")
    try:
        assert len(service.session()) > 3  # the command, Ray's GCS and raylet, Serve's actors
        service.proc.terminate()
        assert service.proc.wait(timeout=120) == 0
        deadline = time.monotonic() + 30
        while (left := service.session()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], "processes of the service's session outlived it"
        last = (tmp_path / "stop.log").read_text().strip().splitlines()[-1]
        assert last == "cktloop: stopped: Serve shut down; the local Ray instance stopped"
    finally:
        service.kill()
