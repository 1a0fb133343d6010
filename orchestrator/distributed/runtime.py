"""Starting or joining Ray with the quiet, local-first defaults CktLoop wants.

Joining a cluster that does not answer fails fast: before Ray is asked, the address is reached with a
plain TCP connection (refused at once, unroutable within ``PROBE_TIMEOUT_S``), and Ray itself makes one
connection attempt instead of its default twenty (``RAY_gcs_server_port_wait_time_s``), which waits up
to Ray's GCS connect timeout: ``RAY_py_gcs_connect_timeout_s``, 30 s by default, made 10 s here when
Ray is not yet imported (it reads the setting once, on import). Either variable, set by the user,
wins. A Ray that CktLoop did not start is never stopped here.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from circuits import CktLoopError

PROBE_TIMEOUT_S = 10.0
JOIN_ATTEMPTS_ENV = "RAY_gcs_server_port_wait_time_s"  # read by Ray when it connects: attempts, about 1 s apart
JOIN_TIMEOUT_ENV = "RAY_py_gcs_connect_timeout_s"  # read by Ray once, when ray._raylet is imported
JOIN_TIMEOUT_S = 10


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start a local Ray (or join ``address``) unless this process is already connected; whether this call
    connected it (so the caller knows whether ``ray.shutdown()`` is its to call).

    ``address`` is ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``; one that nothing answers at raises
    :class:`CktLoopError` naming it, before Ray is touched.
    """
    if address and address != "auto":
        probe(address)
    if address and "ray._raylet" not in sys.modules:
        os.environ.setdefault(JOIN_TIMEOUT_ENV, str(JOIN_TIMEOUT_S))
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    kwargs: dict[str, Any] = {
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
        with _one_join_attempt(bool(address)):
            ray.init(**kwargs)
    except Exception as exc:  # Ray raises plain Exception too (a local node that does not register within 30 s)
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise CktLoopError(f"cannot start or join {where}: {str(exc).splitlines()[0]}") from None
    return True


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`CktLoopError` unless something accepts a TCP connection at ``HOST:PORT`` (or ``ray://HOST:PORT``)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return
    except TimeoutError:
        reason = f"no answer within {timeout_s:g} s"
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
    raise CktLoopError(f"cannot join the Ray cluster at {address}: {reason} (is Ray running there?)")


@contextmanager
def _one_join_attempt(joining: bool) -> Iterator[None]:
    """While joining a cluster, ask Ray for one GCS connection attempt unless the user chose a number."""
    if not joining or JOIN_ATTEMPTS_ENV in os.environ:
        yield
        return
    os.environ[JOIN_ATTEMPTS_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(JOIN_ATTEMPTS_ENV, None)
