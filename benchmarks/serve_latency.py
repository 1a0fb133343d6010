"""Latency and throughput of /v1/generate against the same work done in-process, in one run.

Run by hand (not a test), on a machine as idle as you can get:

    .venv/bin/python benchmarks/serve_latency.py                 # starts `cktloop serve` on a free port
    .venv/bin/python benchmarks/serve_latency.py --url http://127.0.0.1:8123   # a service already running

One request is issue 17's: 10 circuits for a target (``--target``), each with the surrogate's prediction,
a fresh seed per request. On a shared machine the load changes from second to second, so the two sides are
interleaved finely, ``--rounds`` times, each round:

1. latency, in pairs: one request in-process (the plain classes the service wraps, ``Generator`` and
   ``Surrogate``, through the function the service's generator replica runs, ``generate_answers``: draw, rank,
   answer JSON), then the same kind of request to the service from one client (keep-alive, as a client does),
   the order swapped every pair; ``--requests`` pairs;
2. throughput, in alternating blocks: in-process batches of 1-32 requests (one generator and one surrogate call
   per batch; the best circuits/s over the sizes is the batched reference), each size's block followed by a
   block of the service at ``max(--clients)`` concurrent clients; the service's circuits/s is over all its
   blocks, its p50/p99 over all their requests;
3. the service at the other concurrencies, and ``POST /v1/echo`` with the same body at each: what HTTP and
   Serve cost by themselves.

Each ratio the issue asks for is taken within a round; the median over rounds is reported, with every
round's figures (``--json`` writes them all). The models use ``--torch-threads`` threads in-process, the
service's ``torch_threads`` setting (default 1) in its replicas. The service idles while the in-process
side runs, and the in-process models idle while the service is measured. The clients (aiohttp, in this
process, at normal priority) run on the same cores as the service: their CPU time per request is reported
(``client_cpu_ms``) and counts against the service, as it would not where clients are other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = {"gain_db": {"min": 60}, "ugbw_hz": {"min": 1e8}, "pm_deg": {"min": 60, "max": 90}}
BATCHES = (1, 2, 4, 8, 16, 32)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by linear interpolation."""
    xs = sorted(values)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(latencies: list[float], wall: float, circuits: int) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "circuits_per_s": circuits / wall,
        "wall_s": wall,
    }


def body(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    return {"target": args.target, "n": args.n, "seed": seed, "sampling": args.sampling}


# --- in-process ---------------------------------------------------------------------------------


class InProcess:
    """The same requests through the plain classes the service wraps."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from generator.predict import Generator
        from orchestrator.serve.config import load_serve_config
        from surrogate.predict import Surrogate

        torch.set_num_threads(args.torch_threads)
        config = load_serve_config(args.config)
        self.args = args
        self.generator = Generator.load(config.generator_checkpoint())
        self.surrogate = Surrogate.load(config.surrogate_checkpoint())
        self.seeds = iter(range(10**6, 10**9))
        self.serve(self.calls(args.warmup))

    def calls(self, count: int) -> list[Any]:
        from orchestrator.serve.schemas import GenerateRequest
        from orchestrator.serve.services import GenerateCall

        return [
            GenerateCall.of(GenerateRequest.model_validate(body(next(self.seeds), self.args))) for _ in range(count)
        ]

    def serve(self, batch: list[Any]) -> int:
        """``batch`` as one generator call and one surrogate call, each request's answer JSON made: what the
        service's generator replica runs for a batch (``generate_answers``); the circuits asked for."""
        from orchestrator.serve.services import generate_answers

        generate_answers(self.generator, self.surrogate, batch)
        return len(batch) * self.args.n

    def one(self) -> float:
        """One request's seconds."""
        (call,) = self.calls(1)
        start = time.perf_counter()
        self.serve([call])
        return time.perf_counter() - start

    def batched(self, size: int, requests: int) -> dict[str, float]:
        """circuits/s at batch ``size`` over ``requests`` requests (at least two batches)."""
        batches = [self.calls(size) for _ in range(max(2, requests // size))]
        start = time.perf_counter()
        done = sum(self.serve(batch) for batch in batches)
        return {"batch": size, "circuits_per_s": done / (time.perf_counter() - start)}


# --- over HTTP ----------------------------------------------------------------------------------


class Client:
    """HTTP requests to the service from this process: one at a time on a kept-alive connection, or as
    ``clients`` concurrent clients."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        import aiohttp

        self.url, self.args, self.aiohttp = url, args, aiohttp
        self.headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(self._session(1))

    async def _session(self, clients: int) -> Any:
        connector = self.aiohttp.TCPConnector(limit=clients)
        return self.aiohttp.ClientSession(connector=connector, timeout=self.aiohttp.ClientTimeout(total=600))

    async def _post(self, session: Any, path: str, payload: dict[str, Any]) -> float:
        """Seconds from sending the request to the answer's last byte (the in-process side stops at the answer's
        JSON bytes too: decoding them is the client's business either way); a failure ends the benchmark."""
        start = time.perf_counter()
        async with session.post(self.url + path, json=payload, headers=self.headers) as res:
            raw = await res.read()
        seconds = time.perf_counter() - start
        if res.status != 200 or ("circuits" not in json.loads(raw) and path.endswith("generate")):
            raise SystemExit(f"{path}: {res.status} {raw[:300]!r}")
        return seconds

    def one(self, path: str, payload: dict[str, Any]) -> float:
        return float(self.loop.run_until_complete(self._post(self.session, path, payload)))

    def load(self, path: str, clients: int, requests: int, make: Any) -> tuple[list[float], dict[str, float]]:
        """``requests`` POSTs of ``make()`` from ``clients`` concurrent clients: their latencies and a summary;
        circuits/s counts ``args.n`` a request (what was asked for, as in-process); ``client_cpu_ms``: this
        process's CPU a request."""
        return self.loop.run_until_complete(self._load(path, clients, requests, make))

    async def _load(self, path: str, clients: int, requests: int, make: Any) -> tuple[list[float], dict[str, float]]:
        latencies: list[float] = []
        counter = iter(range(requests))

        async def client(session: Any) -> None:
            for _ in counter:
                latencies.append(await self._post(session, path, make()))

        async with await self._session(clients) as session:
            cpu, start = time.process_time(), time.perf_counter()
            await asyncio.gather(*(client(session) for _ in range(clients)))
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        result = summary(latencies, wall, requests * self.args.n)
        result["requests_per_s"] = requests / wall
        result["client_cpu_ms"] = 1000 * cpu / requests
        return latencies, result

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


def merged(blocks: list[tuple[list[float], dict[str, float]]], n: int) -> dict[str, float]:
    """Blocks of one concurrency as one measurement: every request's latency, circuits over the blocks' time."""
    latencies = [x for lat, _ in blocks for x in lat]
    wall = sum(r["wall_s"] for _, r in blocks)
    out = summary(latencies, wall, len(latencies) * n)
    out["client_cpu_ms"] = statistics.mean(r["client_cpu_ms"] for _, r in blocks)
    out["blocks"] = len(blocks)
    return out


def one_round(k: int, http: Client, local: InProcess, args: argparse.Namespace, seeds: Any) -> dict[str, Any]:
    """Latency pairs, throughput blocks, the other concurrencies, echo: one round's figures."""
    out: dict[str, Any] = {"round": k, "load_average": os.getloadavg()[0], "generate": {}, "echo": {}}
    print(f"round {k}: load average {out['load_average']:.1f}", flush=True)
    mine: list[float] = []
    theirs: list[float] = []
    for i in range(args.requests):  # pairs, the order swapped every pair
        for side in ("local", "http") if i % 2 == 0 else ("http", "local"):
            if side == "local":
                mine.append(local.one())
            else:
                theirs.append(http.one("/v1/generate", body(next(seeds), args)))
    lo, hi = min(args.clients), max(args.clients)
    out["in_process"] = summary(mine, sum(mine), len(mine) * args.n)
    out["generate"][lo] = summary(theirs, sum(theirs), len(theirs) * args.n)
    print(f"  in-process, one at a time: {fmt(out['in_process'])}", flush=True)
    print(f"  generate, {lo:2d} client{'s' if lo > 1 else ''} (paired with it): {fmt(out['generate'][lo])}", flush=True)

    def make() -> dict[str, Any]:
        return body(next(seeds), args)

    blocks, out["batched"] = [], []
    for size in BATCHES:  # each in-process batch size, then a block of the service at `hi` clients
        out["batched"].append(local.batched(size, args.requests))
        blocks.append(http.load("/v1/generate", hi, max(args.requests, 6 * hi), make))
    out["generate"][hi] = merged(blocks, args.n)
    out["best_batched"] = max(out["batched"], key=lambda b: b["circuits_per_s"])
    sizes = ", ".join(f"{b['batch']}: {b['circuits_per_s']:.0f}" for b in out["batched"])
    print(f"  in-process batched, circuits/s by batch size: {sizes}", flush=True)
    print(f"  generate, {hi:2d} clients ({len(blocks)} blocks between them): {fmt(out['generate'][hi])}", flush=True)
    for clients in args.clients:
        if clients not in (lo, hi):
            _, res = http.load("/v1/generate", clients, max(args.requests, 3 * clients), make)
            out["generate"][clients] = res
            print(f"  generate, {clients:2d} clients: {fmt(res)}", flush=True)
    for clients in args.clients:
        _, res = http.load("/v1/echo", clients, max(args.requests, 3 * clients), make)
        out["echo"][clients] = res
        print(
            f"  echo,     {clients:2d} clients: p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, "
            f"{res['requests_per_s']:.0f} requests/s",
            flush=True,
        )
    out["ratios"] = ratios(out, args)
    for name, value in out["ratios"].items():
        print(f"  {name}: {value:.2f}", flush=True)
    return out


def ratios(r: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    lo, hi = min(args.clients), max(args.clients)
    at_lo, at_hi = r["generate"][lo], r["generate"][hi]
    return {
        f"p50 at {lo} client / in-process p50 (<= 1.3)": at_lo["p50_ms"] / r["in_process"]["p50_ms"],
        f"circuits/s at {hi} clients / in-process best batched (>= 0.6)": at_hi["circuits_per_s"]
        / r["best_batched"]["circuits_per_s"],
        f"p99 / p50 at {hi} clients (<= 3)": at_hi["p99_ms"] / at_hi["p50_ms"],
        f"echo p50 / generate p50 at {lo} client": r["echo"][lo]["p50_ms"] / at_lo["p50_ms"],
    }


def fmt(r: dict[str, float]) -> str:
    return f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {r['circuits_per_s']:.0f} circuits/s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    """`cktloop serve` on a free port; its URL once /healthz answers."""
    import urllib.request

    port = free_port()
    cmd = [str(ROOT / ".venv/bin/cktloop"), "serve", "--port", str(port)]
    if args.config:
        cmd += ["--config", args.config]
    if args.db:
        cmd += ["--db", args.db]
    log = open(args.log, "wb")  # noqa: SIM115 (it outlives this function: the service writes to it)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"cktloop serve exited with {proc.returncode}; see {args.log}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as res:
                if res.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(1)
    proc.terminate()
    raise SystemExit(f"cktloop serve did not answer /healthz within {args.start_timeout} s; see {args.log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person stops the service (Serve and Ray shut down); SIGTERM, then SIGKILL, if it lingers."""
    for sig, wait_s in ((signal.SIGINT, 90), (signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start `cktloop serve` on a free port)")
    parser.add_argument("--config", help="serve config file (both for the started service and the in-process models)")
    parser.add_argument("--db", help="the started service's store (default: a fresh SQLite file under /tmp)")
    parser.add_argument("--token", default=os.environ.get("CKTLOOP_API_TOKEN"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--requests", type=int, default=60, help="requests per measurement (at least 3 per client)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--n", type=int, default=10, help="circuits per request")
    parser.add_argument("--sampling", default="bank")
    parser.add_argument("--target", type=json.loads, default=TARGET, help="target bounds as JSON")
    parser.add_argument("--torch-threads", type=int, default=1, help="in-process torch threads (the service's default)")
    parser.add_argument("--start-timeout", type=float, default=300)
    parser.add_argument("--log", default="/tmp/serve_latency.log", help="the started service's output")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of in-process and service measurements")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()

    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"Python {platform.python_version()}",
        flush=True,
    )
    proc = None
    if args.url is None:
        args.db = args.db or f"sqlite:////tmp/serve_latency-{os.getpid()}.db"
        proc, url = start_service(args)
        print(f"started cktloop serve at {url} (log {args.log})", flush=True)
    else:
        url = args.url.rstrip("/")
    try:
        local = InProcess(args)
        seeds = iter(range(30_000, 10**6))
        http = Client(url, args)
        http.load("/v1/generate", max(args.clients), 2 * max(args.clients), lambda: body(next(seeds), args))  # warm-up
        rounds = [one_round(k, http, local, args, seeds) for k in range(1, args.rounds + 1)]
        http.close()
    finally:
        if proc is not None:
            stop(proc)
    print(f"median over {len(rounds)} rounds:")
    medians = {name: statistics.median(r["ratios"][name] for r in rounds) for name in rounds[0]["ratios"]}
    for name, value in medians.items():
        print(f"  {name}: {value:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds, "medians": medians}, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
