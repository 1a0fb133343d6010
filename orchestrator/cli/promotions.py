"""``cktloop models promote|rollback|promoted``: promote or roll back a registered model version by hand.

The store's promotions (``storage.promotions``) say which registered version of each kind campaigns, ``design``,
``serve`` and a loop's first round use by default (``--models promoted``). ``cktloop loop`` promotes what passes
its gate; these commands let a team running the service do it by hand, keeping every step in the history.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from circuits import CktLoopError
from orchestrator.cli.options import db_option
from orchestrator.cli.sources import open_store
from orchestrator.design.models import KINDS


def add_commands(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="promote or roll back a registered model version by hand; list the promotions",
        description="Which registered generator and surrogate versions are promoted: campaigns, design, serve and "
        "a loop's first round use them by default (--models promoted). cktloop loop promotes a fine-tune that "
        "passes its gate; these commands do it by hand. Nothing is deleted: each promotion and each rollback is a "
        "new row in the store's promotions table, and the newest says what is in use.",
    )
    sub = models.add_subparsers(title="models commands", metavar="COMMAND", required=True)
    promote = sub.add_parser(
        "promote",
        help="make a registered version its kind's promoted version",
        description="Promote registered VERSION (a generator or a surrogate: the registry says which) by hand: a "
        "promotion row with promoted_by 'hand', numbered after the kind's earlier ones, and the time. The version "
        "must be registered and its checkpoint file must exist. Promoting the version that is promoted already "
        "adds nothing.",
    )
    promote.add_argument("version", metavar="VERSION", help="a registered generator or surrogate version")
    promote.add_argument("--why", metavar="TEXT", help="the reason, kept with the promotion (shown by `promoted`)")
    db_option(promote)
    promote.set_defaults(run=_promote)

    rollback = sub.add_parser(
        "rollback",
        help="make the version promoted before the current one current again (or the shipped model)",
        description="Roll the kind back one promotion: the version promoted before the current one is promoted "
        "again (a new 'rollback' row, so the history is kept; rolling back twice goes two promotions back). With "
        "no promotion before it, the kind goes back to its shipped model ('rollback to shipped'). Nothing "
        "promoted is an error.",
    )
    rollback.add_argument("kind", choices=KINDS, help="which model")
    db_option(rollback)
    rollback.set_defaults(run=_rollback)

    promoted = sub.add_parser(
        "promoted",
        help="each kind's promoted version and its promotion history",
        description="For the generator and the surrogate: the version in use by default (promoted, or shipped "
        "when none is) and every promotion and rollback of the kind, oldest first, with what made it and when.",
    )
    promoted.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    db_option(promoted)
    promoted.set_defaults(run=_promoted)


def _kind_of(store: Any, version: str) -> str:
    """The kind ``version`` is registered as, its checkpoint checked; a one-line error naming it otherwise."""
    registered = [m for m in store.model_versions() if m.kind in KINDS]
    found = [m for m in registered if m.version == version]
    if not found:
        known = sorted({m.version for m in registered})
        listing = ", ".join(known[-5:]) if known else "none registered"
        raise CktLoopError(
            f"models promote: no generator or surrogate version {version!r} is registered (latest: {listing})"
        )
    if len(found) > 1:
        raise CktLoopError(f"models promote: {version!r} is registered as both a generator and a surrogate")
    if not Path(found[0].path).is_file():
        raise CktLoopError(
            f"models promote: {found[0].kind} version {version!r} is registered with checkpoint {found[0].path}, "
            "which is missing: not promoted"
        )
    return str(found[0].kind)


def _promote(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        kind = _kind_of(store, args.version)
        before = store.promoted(kind)
        made = store.promote_by_hand(kind, args.version, args.why)
    if made is None:
        print(f"{kind} {args.version} is the promoted version already: nothing recorded")
        return 0
    was = "the shipped model" if before is None else before.version
    print(f"promoted {kind} {made.version} by hand at {made.created_at:%Y-%m-%d %H:%M:%S} (was: {was})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        made = store.rollback(args.kind)
    if made.promoted_by == "rollback":
        rolled = made.gate["rolled_back"] if made.gate else "?"
        print(f"rolled {args.kind} back from {rolled}: {made.version} is the promoted version again")
        if not Path(made.path).is_file():
            print(f"warning: its checkpoint {made.path} is missing; commands using it will refuse until it is back")
    else:
        print(f"rolled {args.kind} back from {made.version}: none promoted before it, the shipped model is in use")
    return 0


def _promoted(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        report = {kind: _kind_report(store, kind) for kind in KINDS}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for kind, r in report.items():
        current = f"promoted {r['current']} ({r['path']})" if r["current"] else "shipped (none promoted)"
        print(f"{kind}: {current}")
        for p in r["history"]:
            print(f"  {p['created_at']}  {_step(p)}")
    return 0


def _step(p: dict[str, Any]) -> str:
    """One row of the history, in words."""
    gate = p["gate"] or {}
    if p["promoted_by"] == "rollback to shipped":
        return f"shipped (rolled back from {p['version']})"
    if p["promoted_by"] == "rollback":
        return f"{p['version']} (rolled back from {gate.get('rolled_back', '?')})"
    if p["promoted_by"] == "hand":
        return f"{p['version']} (by hand" + (f": {gate['why']})" if "why" in gate else ")")
    figures = f"; gate {json.dumps(gate)}" if gate else ""
    return f"{p['version']} (by {p['promoted_by']} round {p['round']}{figures})"


def _kind_report(store: Any, kind: str) -> dict[str, Any]:
    current = store.promoted(kind)
    history = [
        {
            "version": p.version,
            "promoted_by": p.promoted_by,
            "round": p.round,
            "gate": p.gate,
            "created_at": p.created_at.isoformat(timespec="seconds"),
        }
        for p in store.promotions(kind)
    ]
    return {
        "current": None if current is None else current.version,
        "path": None if current is None else current.path,
        "history": history,
    }
