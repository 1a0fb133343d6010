"""Starting or joining Ray with the quiet, local-first defaults CktLoop wants."""

from __future__ import annotations

import logging
import os

from circuits import CktLoopError


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start a local Ray (or join ``address``) unless this process is already connected."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    kwargs: dict[str, object] = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray instance"
        raise CktLoopError(f"cannot start or join {where}: {str(exc).splitlines()[0]}") from None
