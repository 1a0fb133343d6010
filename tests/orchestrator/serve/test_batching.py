"""The gate in front of ``@serve.batch`` (``orchestrator.serve.batching``), in plain asyncio: closed-loop clients
that come back a few milliseconds apart make full batches, one client never waits, and every answer is its own."""

from __future__ import annotations

import asyncio
import random
import time
from types import SimpleNamespace
from typing import Any

import pytest
from ray import serve

from orchestrator.serve import batching
from orchestrator.serve.batching import Batching

CALL_S = 0.03  # one model call


@pytest.fixture(autouse=True)
def replica_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``@serve.batch`` reads of its replica (its request limit), outside Serve."""
    context = SimpleNamespace(_deployment_config=SimpleNamespace(max_ongoing_requests=256))
    monkeypatch.setattr(serve, "get_replica_context", lambda: context)


def _model(items: list[int]) -> list[int]:
    time.sleep(CALL_S)
    return [2 * i for i in items]


def _doubler() -> type[Batching]:
    """A replica class of its own for each test: ``@serve.batch`` keeps one queue per decorated method, its task
    on the event loop of its first call."""

    class Doubler(Batching):
        @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
        async def _batched(self, items: list[int]) -> list[int]:
            return await self._call(len(items), _model, items)

        async def ask(self, item: int) -> int:
            return await self._submit(item)

    return Doubler


async def _clients(replica: Any, clients: int, rounds: int, jitter_s: float) -> list[float]:
    """``clients`` closed-loop clients, each sending again ``0-jitter_s`` after its answer; their latencies."""
    rng = random.Random(1)
    latencies: list[float] = []

    async def client(k: int) -> None:
        for r in range(rounds):
            item = 1000 * k + r
            start = time.perf_counter()
            assert await replica.ask(item) == 2 * item
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(rng.uniform(0, jitter_s))

    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies


def test_clients_that_come_back_apart_still_make_full_batches() -> None:
    replica = _make()
    asyncio.run(_clients(replica, 20, 6, jitter_s=0.004))
    sizes = list(replica.batch_sizes)
    assert sum(sizes) == 120
    assert sizes[2:] == [20] * (len(sizes) - 2), sizes  # after the first two (1, then the 19 that waited)


def test_without_the_fill_wait_they_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same clients with the wait off: what the fill is for (batches of a few and the rest in turn)."""
    monkeypatch.setattr(batching, "FILL_CAP_S", 0.0)
    replica = _make()
    asyncio.run(_clients(replica, 20, 6, jitter_s=0.004))
    assert min(list(replica.batch_sizes)[2:]) < 20


def test_one_client_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "FILL_CAP_S", 5.0)  # a wait, were there one, would show
    monkeypatch.setattr(batching, "FILL_SHARE", 1000.0)
    replica = _make()
    latencies = asyncio.run(_clients(replica, 1, 10, jitter_s=0.0))
    assert list(replica.batch_sizes) == [1] * 10
    assert sum(latencies) < 5.0


def _make() -> Any:
    return _doubler()()
