"""``cktloop serve``: the Ray Serve application (API v1, design jobs, the web page) until interrupted."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from orchestrator.cli.options import database_url, input_file, models_option, ray_address


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
    serve.add_argument(
        "--generator", type=input_file, metavar="CKPT", help="generator checkpoint (default: the one --models picks)"
    )
    serve.add_argument(
        "--surrogate", type=input_file, metavar="CKPT", help="surrogate checkpoint (default: the one --models picks)"
    )
    models_option(serve)  # the serve config's checkpoints win over the default, not over an explicit --models
    serve.set_defaults(run=_serve)


def _models(config: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """The config with the checkpoints to serve, and which they are in words: --generator/--surrogate, else an
    explicit --models, else the serve config's checkpoint, else the promoted version (or the shipped one)."""
    from orchestrator.design.models import ModelChoice, describe, resolve_models
    from storage import Store

    paths = {"generator": args.generator, "surrogate": args.surrogate}
    if args.models is None:  # the config's checkpoints stand unless --models is given
        paths = {k: v or getattr(config, k).checkpoint for k, v in paths.items()}
    with Store.open(config.db_url()) as store:
        chosen = resolve_models(store, args.models, paths)
    for kind, v in paths.items():
        if args.models is None and v is not None and getattr(args, kind) is None:
            chosen[kind] = ModelChoice(kind, chosen[kind].path, "config")
    checkpoints = {k: getattr(config, k).replace(checkpoint=c.path).model_dump() for k, c in chosen.items()}
    config = config.replace(**checkpoints)
    return config, describe(chosen)


class _Stop(Exception):
    """SIGTERM or SIGINT arrived: the service shuts down."""


def _serve(args: argparse.Namespace) -> int:
    from orchestrator.distributed.runtime import ensure_ray
    from orchestrator.serve.config import load_serve_config
    from orchestrator.serve.deployments import deploy, environment_for
    from storage.engine import mask

    config = load_serve_config(args.config, host=args.host, port=args.port, address=args.address, db=args.db)
    config.check_exposure(config.read_token())  # before anything starts: one line, exit status 2
    config, models = _models(config, args)
    direct = environment_for(config)  # Serve's settings; direct ingress where this command starts Ray
    connected = ensure_ray(config.address)  # False where this process was connected already (called in-process)
    joined = config.address is not None
    serve_was_running = (joined or not connected) and _serve_running()
    signals = _on_stop_signals()  # after ray.init, which puts its own SIGTERM handler in place
    try:
        deploy(config, direct=direct)
        store = mask(config.db_url())
        print(f"cktloop: serving on http://{config.host}:{config.port}/ (API docs /docs; store {store})")
        print(f"cktloop: {models}")
        print("cktloop: Ctrl-C or SIGTERM stops the service", flush=True)
        while True:
            time.sleep(3600)
    except _Stop:
        pass
    finally:
        for sig in signals:  # a second signal does not cut the shutdown short
            signal.signal(sig, signal.SIG_IGN)
        try:
            what = _shut_down(joined, connected, serve_was_running)
        finally:  # called in-process (tests), the caller keeps its handlers, whatever the shutdown raised
            for sig, previous in signals.items():
                signal.signal(sig, previous)
    print(f"cktloop: stopped: {what}", flush=True)
    return 0


def _on_stop_signals() -> dict[signal.Signals, Any]:
    """SIGTERM and SIGINT raise ``_Stop`` in the main thread; the handlers they had, to put back. A SIGINT
    ignored when the command started (a background job of a script) stays ignored, as for any command."""

    def stop(signum: int, _frame: Any) -> None:
        raise _Stop(signal.Signals(signum).name)

    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signals.append(signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, stop)
    return previous


def _serve_running() -> bool:
    """Whether Serve already runs on the connected cluster (its controller actor exists)."""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return False
    return True


def _shut_down(joined: bool, connected: bool, serve_was_running: bool) -> str:
    """Stop what this command started: Serve (only this application where Serve ran before it), then the local
    Ray instance it started (a cluster joined with --address is left running, and a Ray connection this process
    had before the command is kept); what was done, in words."""
    import ray
    from ray import serve

    from orchestrator.serve.deployments import APP_NAME

    if serve_was_running:
        serve.delete(APP_NAME)
        what = f"application {APP_NAME!r} deleted, Serve left running"
    else:
        serve.shutdown()
        what = "Serve shut down"
    if not connected:
        return f"{what}; the Ray connection this process had before is kept"
    ray.shutdown()  # a Ray this process started: its processes stop; a joined cluster: disconnects only
    return f"{what}; " + ("the Ray cluster joined left running" if joined else "the local Ray instance stopped")
