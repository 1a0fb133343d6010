"""``cktloop serve``: the Ray Serve application (API v1, design jobs, the web page) until interrupted."""

from __future__ import annotations

import argparse
import time
from typing import Any

from orchestrator.cli.options import database_url, input_file, ray_address


def port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


def add_commands(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve generation, prediction, simulation and design jobs over HTTP (Ray Serve)",
        description="Start the CktLoop service on Ray Serve and print its URL: API v1 (/v1/generate, /v1/predict, "
        "/v1/simulate, /v1/designs, /v1/models), OpenAPI at /openapi.json, docs at /docs, the page at /. It listens "
        "on 127.0.0.1 unless told otherwise; on any other address it needs an API token ($CKTLOOP_API_TOKEN or the "
        "config's token_file), which every request must then send as 'Authorization: Bearer TOKEN'.",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, or the config's)")
    serve.add_argument("--port", type=port, help="port (default 8000, or the config's)")
    serve.add_argument("--address", type=ray_address, help="a Ray cluster to join (default: start a local one)")
    serve.add_argument(
        "--db", type=database_url, metavar="URL", help="the store (default: $CKTLOOP_DB or sqlite:///cktloop.db)"
    )
    serve.add_argument("--config", type=input_file, metavar="FILE", help="serve settings (YAML; see docs/serve.md)")
    serve.add_argument("--generator", type=input_file, metavar="CKPT", help="generator checkpoint (default: shipped)")
    serve.add_argument("--surrogate", type=input_file, metavar="CKPT", help="surrogate checkpoint (default: shipped)")
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.serve.config import load_serve_config
    from orchestrator.serve.deployments import deploy, environment_for
    from storage.engine import mask

    config = load_serve_config(args.config, host=args.host, port=args.port, address=args.address, db=args.db)
    models = {"generator": args.generator, "surrogate": args.surrogate}
    config = config.replace(
        **{k: getattr(config, k).replace(checkpoint=str(v)).model_dump() for k, v in models.items() if v is not None}
    )
    config.check_exposure(config.read_token())  # before anything starts: one line, exit status 2
    environment_for(config)
    ensure_ray(config.address)
    deploy(config)
    print(f"cktloop: serving on http://{config.host}:{config.port}/ (API docs /docs; store {mask(config.db_url())})")
    print("cktloop: Ctrl-C stops the service", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        from ray import serve

        serve.shutdown()
