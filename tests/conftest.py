"""Suite-wide options and fixtures.

``--require-ngspice`` / ``--require-postgres`` turn "skip when missing" into "fail when missing",
so CI, where both exist, can never pass by skipping. One Ray session serves the whole run.
"""

from __future__ import annotations

import itertools
import os

import pytest

PG_URL = os.environ.get("CKTLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-ngspice", action="store_true", help="fail, not skip, when ngspice is missing")
    parser.addoption("--require-postgres", action="store_true", help="fail, not skip, when PostgreSQL is unreachable")


@pytest.fixture(scope="session")
def ngspice_available(request: pytest.FixtureRequest) -> bool:
    from simulator.ngspice import NgspiceBackend

    if NgspiceBackend.available():
        return True
    if request.config.getoption("--require-ngspice"):
        pytest.fail("ngspice's shared library is missing but --require-ngspice was given")
    pytest.skip("ngspice's shared library is not installed")


@pytest.fixture(autouse=True)
def _needs_ngspice(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("ngspice"):
        request.getfixturevalue("ngspice_available")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole run: starting one costs seconds and a gigabyte."""
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray

    from orchestrator.distributed.runtime import ensure_ray

    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def amp():  # type: ignore[no-untyped-def]
    """Build a small op-amp: In=0, Out=1, the stages at 2.., side nodes after them wired src -> side -> dst."""
    from circuits import Circuit, Node

    def build(*extra, stages=None):  # type: ignore[no-untyped-def]
        stages = stages or (Node(6, 2, gm=10), Node(6, 3, gm=20))
        nodes = [Node(0, 0), Node(1, 1), *stages]
        spine = [0, *range(2, 2 + len(stages)), 1]
        edges = list(itertools.pairwise(spine))
        for node, src, dst in extra:
            nodes.append(node)
            edges += [(src, len(nodes) - 1), (len(nodes) - 1, dst)]
        return Circuit(tuple(nodes), tuple(edges))

    return build
