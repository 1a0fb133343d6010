"""What both models' fine-tunes from the store share (``surrogate.finetune``, ``generator.finetune``).

* which rows: the verified campaign candidates of the campaigns asked for (all by default), after the rows
  a registered version of the same kind read (``since``), bound by candidate and simulation id in
  ``rows.json`` at the first call with rows, so a killed run resumes on the same rows however many
  candidates and measurements the store has gained since (``rows_spec``, ``keep_rows_spec``, ``verified``);
* the held-out slice: the circuits whose key's SHA-256 falls below a share (``held_out``), the same on
  every call;
* replay draws (``sample``), the rows' fingerprint (``fingerprint``), a version string from the parent,
  the rows and the config (``version_of``), metrics as strict JSON (``json_safe``);
* registration only once the checkpoint is written (``conclude``), so no registered version lacks its
  file; registering the same version again with the same data adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from circuits.errors import CktLoopError

ROWS_FILE = "rows.json"


def held_out(key: str, fraction: float) -> bool:
    """Whether the circuit ``key`` is in the held-out slice: the first 8 bytes of its SHA-256 below ``fraction``."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) < fraction * 2**64


def rows_spec(
    store: Any, out: Path, kind: str, campaigns: Sequence[str], since: str | None, base: str
) -> dict[str, Any]:
    """Which candidate rows a fine-tune in ``out`` reads: what ``rows.json`` there fixed, or (first call) the
    candidates of ``campaigns`` after those the registered ``kind`` version ``since`` read, up to the store's
    last candidate and simulation now. ``out`` holding another request's rows is a ``CktLoopError``."""
    after = 0
    if since is not None:
        rows = store.model_version(kind, since).config.get("rows", {})
        if "upto_candidate" not in rows:
            raise CktLoopError(f"--since {since}: that version was not fine-tuned from the store's candidates")
        after = int(rows["upto_candidate"])
    wanted = {"campaigns": sorted(set(campaigns)), "since": since, "after_candidate": after, "base": base}
    path = out / ROWS_FILE
    if path.is_file():
        have = json.loads(path.read_text())
        if {k: have.get(k) for k in wanted} != wanted:
            raise CktLoopError(f"{out}: holds a fine-tune of other rows ({have}); pick another --out")
        return dict(have)
    return {**wanted, "upto_candidate": store.last_candidate_id(), "upto_simulation": store.last_simulation_id()}


def keep_rows_spec(out: Path, spec: dict[str, Any]) -> None:
    """Write ``rows.json`` (once there are rows to train on, so an empty first try binds nothing)."""
    path = out / ROWS_FILE
    if not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(spec, indent=1))
        tmp.replace(path)


def verified(store: Any, spec: dict[str, Any], after: bool = True) -> list[dict[str, Any]]:
    """The verified rows ``spec`` binds (``Store.verified_rows``, candidates up to its last, measured by its
    last simulation), after its ``after_candidate`` unless ``after`` is False."""
    rows = store.verified_rows(
        spec["campaigns"],
        after_candidate=spec["after_candidate"] if after else 0,
        upto_simulation=spec["upto_simulation"],
    )
    return [r for r in rows if r["candidate_id"] <= spec["upto_candidate"]]


def sample(rows: list[dict[str, Any]], n: float, seed: int) -> list[dict[str, Any]]:
    """``n`` (rounded, at most all) of ``rows`` drawn by ``seed``, in their order."""
    k = min(len(rows), round(n))
    pick = np.random.default_rng(seed).choice(len(rows), k, replace=False) if k else np.zeros(0)
    return [rows[i] for i in sorted(int(i) for i in pick)]


def as_train(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` marked as training rows (verified rows carry no split)."""
    return [{**r, "split": "train"} for r in rows]


def fingerprint(ids: Iterable[str]) -> str:
    """``n:sha256-prefix`` of the row ids, in any order (the surrogate's data fingerprint's form)."""
    keys = sorted(str(i) for i in ids)
    return f"{len(keys)}:{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:16]}"


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (the registry stores strict JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def version_of(prefix: str, parent: str, rows: str, config: dict[str, Any], suffix: str = "") -> str:
    """``prefix-<12 hex of parent, rows and config>suffix``: the same request gives the same version."""
    blob = json.dumps({"parent": parent, "rows": rows, **config, "progress": None}, sort_keys=True)
    return f"{prefix}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}{suffix}"


def _settled(value: Any) -> Any:
    """A config as the registry keeps it: without ``progress``, which changes nothing trained (so a re-run
    with or without bars is the same version with the same config)."""
    return {k: v for k, v in value.items() if k != "progress"} if isinstance(value, dict) else value


def conclude(
    store: Any,
    kind: str,
    version: str,
    checkpoint: Path,
    parent_version: str,
    data_fingerprint: str,
    config: dict[str, Any],
    rows: dict[str, Any],
    metrics: dict[str, Any],
    register: bool = True,
) -> dict[str, Any]:
    """Register ``version`` (with ``register``) with its lineage, its ``config`` and ``rows`` as the registry's
    config and its metrics, only if its ``checkpoint`` is on disk; return what a fine-tune reports."""
    if register:
        if not checkpoint.is_file():
            raise CktLoopError(f"{checkpoint}: no checkpoint written; {kind} {version} is not registered")
        store.register_model(
            kind,
            version,
            checkpoint.resolve(),
            {**{k: _settled(v) for k, v in config.items()}, "rows": rows},
            json_safe(metrics),
            parent_version=parent_version,
            data_fingerprint=data_fingerprint,
        )
    return {
        "version": version,
        "checkpoint": str(checkpoint),
        "parent_version": parent_version,
        "data_fingerprint": data_fingerprint,
        "rows": rows,
        "metrics": json_safe(metrics),
    }
