"""Where one /v1/generate request's time goes: each stage measured in turn, interleaved, on a service of its own.

Run by hand (not a test):

    .venv/bin/python benchmarks/serve_profile.py [--samples 40]

Starts a local Ray and the service on a free port as ``cktloop serve`` does (Serve's direct ingress: the
Ingress replica takes the port itself; its own SQLite store under /tmp), then takes ``--samples``
rounds of: the in-process call the service makes for a request (``generate_answers``: draw, rank, answer
JSON), a bare handle call to the ingress replica (``stats``: the hop alone), the request through a handle
(``Ingress.generate``: hop, gate, batch queue, worker thread, model), ``POST /v1/echo`` (the replica's
HTTP server, FastAPI; no proxy) and ``POST /v1/generate`` (all of it), one request at a time. It prints p25
and p50 of each, and the replica's own times (model call in its thread, request in the replica). Compare
stages within one run: on a shared machine the load moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = {"gain_db": {"min": 60}, "ugbw_hz": {"min": 1e8}, "pm_deg": {"min": 60, "max": 90}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from orchestrator.serve.config import ServeConfig
    from orchestrator.serve.deployments import APP_NAME, deploy, environment_for

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ServeConfig(port=port, db=f"sqlite:////tmp/serve_profile-{os.getpid()}.db")
    direct = environment_for(config)  # as `cktloop serve`: direct ingress, the replica on `port` itself
    from orchestrator.distributed.runtime import ensure_ray

    ensure_ray(None)
    deploy(config, direct=direct)
    import torch
    from ray import serve

    from generator.predict import Generator
    from orchestrator.serve.schemas import GenerateRequest
    from orchestrator.serve.services import GenerateCall, generate_answers
    from surrogate.predict import Surrogate

    torch.set_num_threads(config.generator.torch_threads)
    generator = Generator.load(config.generator_checkpoint())
    surrogate = Surrogate.load(config.surrogate_checkpoint())
    ingress = serve.get_deployment_handle("Ingress", APP_NAME)
    url = f"http://127.0.0.1:{port}"

    def body(i: int) -> dict[str, Any]:
        return {"target": TARGET, "n": 10, "seed": 5000 + i, "sampling": "bank"}

    def call(i: int) -> GenerateCall:
        return GenerateCall.of(GenerateRequest.model_validate(body(i)))

    def post(path: str, i: int) -> bytes:
        request = urllib.request.Request(url + path, json.dumps(body(i)).encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(request) as answer:
            return answer.read()

    stages = {
        "in-process generate_answers": lambda i: generate_answers(generator, surrogate, [call(i)]),
        "handle Ingress.stats (the hop alone)": lambda i: ingress.stats.remote().result(),
        "handle Ingress.generate": lambda i: ingress.generate.remote(call(i)).result(),
        "HTTP POST /v1/echo": lambda i: post("/v1/echo", i),
        "HTTP POST /v1/generate": lambda i: post("/v1/generate", i),
    }
    for stage in stages.values():  # warm-up
        for i in range(3):
            stage(i)
    times: dict[str, list[float]] = {name: [] for name in stages}
    for i in range(args.samples):
        for name, stage in stages.items():
            start = time.perf_counter()
            stage(i)
            times[name].append(1000 * (time.perf_counter() - start))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.samples} samples of each stage")
    for name, values in times.items():
        p25, p50 = statistics.quantiles(values, n=4)[0], statistics.median(values)
        print(f"  {name:40s} p25 {p25:6.1f} ms   p50 {p50:6.1f} ms")
    stats = ingress.stats.remote().result()
    last = 2 * args.samples
    print(
        f"  in the replica: model call p50 {1000 * statistics.median(stats['call_s'][-last:]):.1f} ms, "
        f"request p50 {1000 * statistics.median(stats['request_s'][-last:]):.1f} ms"
    )
    serve.shutdown()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
