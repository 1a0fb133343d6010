"""The gate in front of a replica's ``@serve.batch`` method: requests wait while a model call runs, then enter
Serve's batch queue together, and a free model waits a moment for the requests its last batch predicts.

Serve forms a batch from what arrives within ``batch_wait_timeout_s`` and queues it behind the running call, so
under load its batches stay small (1.4 requests on average at 20 clients, measured); held at the gate while the
model is busy, the requests that arrive meanwhile enter together when it is free and make one batch. When a
batch's answers go out, its clients send again within milliseconds, not all at once: a model that took the first
two of twenty would leave eighteen to wait a whole call (batches of 2 and 18 in turn, seen at 20 clients on the
loaded 2-core machine). So a request that finds the model free waits until as many requests are there as the
last batch had plus those that came during its call (the clients answered come back; those that waited are
here), or ``fill_s`` has passed since the first of them: a quarter of the last call's time, 20 ms at most. One
client's batches are of one request and nothing comes during its calls: it never waits.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

FILL_CAP_S = 0.02  # the longest a free model waits for the requests its last batch predicts
FILL_SHARE = 0.25  # and at most this share of the last call's time


class Batching:
    """A ``@serve.batch`` method ``_batched`` fed through the gate, its calls (``_call``) run in a worker thread."""

    def __init__(self) -> None:
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # requests per call, the latest last
        self.call_s: deque[float] = deque(maxlen=1000)  # each call's time in its worker thread
        self.request_s: deque[float] = deque(maxlen=1000)  # each request's time in this replica
        self._idle = asyncio.Event()  # no call running
        self._idle.set()
        self._expected = 1  # requests in the last batch and those that came during its call: what the next waits for
        self._held = 0  # requests waiting for the running call to end
        self._arrived = 0  # requests past the idle gate since the last batch started
        self._filled = asyncio.Event()  # the next batch may start
        self._filled.set()
        self._timer: asyncio.TimerHandle | None = None

    def fill_s(self) -> float:
        """How long a free model waits for the requests the last batch predicts."""
        return min(FILL_CAP_S, FILL_SHARE * self.call_s[-1]) if self.call_s else 0.0

    async def _submit(self, item: Any) -> Any:
        """``item`` through the gate into ``@serve.batch``'s queue; its answer."""
        start = time.perf_counter()
        self._held += 1
        try:
            await self._idle.wait()
        finally:
            self._held -= 1
        await self._fill()
        try:
            return await self._batched(item)  # type: ignore[attr-defined]
        finally:
            self.request_s.append(time.perf_counter() - start)

    async def _fill(self) -> None:
        self._arrived += 1
        if self._arrived >= self._expected:
            self._release()
        elif self._arrived == 1:
            self._filled.clear()
            self._timer = asyncio.get_running_loop().call_later(self.fill_s(), self._release)
        await self._filled.wait()

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._filled.set()

    async def _call(self, size: int, fn: Any, *args: Any) -> Any:
        """A batch of ``size`` requests run in a worker thread (the event loop takes requests meanwhile)."""
        self.batch_sizes.append(size)
        self._idle.clear()
        self._expected, self._arrived = size, 0
        self._release()
        try:
            return await asyncio.to_thread(self._timed, fn, *args)
        finally:
            self._expected = size + self._held
            self._idle.set()

    def _timed(self, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.call_s.append(time.perf_counter() - start)
