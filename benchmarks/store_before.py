"""A copy of a SQLite store that holds only the named campaigns, for A/B runs of a later round's targets:

    .venv/bin/python benchmarks/store_before.py SRC.db DST.db --keep lw-r1

A loop's store after round k holds rounds 1..k; to run round 2's targets again with other settings on the
store as round 2 found it (``--reuse`` reads every other campaign), every campaign but round 1's must go.
Datasets, simulations and registered models stay (a simulation is never reused by itself: only
candidates are).
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

CAMPAIGN_TARGETS = (
    "select t.id from campaign_targets t join campaigns c on c.id = t.campaign_id where c.name not in ({})"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--keep", nargs="+", required=True, metavar="CAMPAIGN")
    args = parser.parse_args()
    if args.dst.exists():
        parser.error(f"{args.dst} exists")
    with sqlite3.connect(args.src) as src, sqlite3.connect(args.dst) as dst:
        src.backup(dst)
        marks = ",".join("?" * len(args.keep))
        targets = CAMPAIGN_TARGETS.format(marks)
        for table in ("refinements", "candidates"):
            dst.execute(f"delete from {table} where target_id in ({targets})", args.keep)
        dst.execute(f"delete from campaign_targets where id in ({targets})", args.keep)
        dst.execute(f"delete from campaigns where name not in ({marks})", args.keep)
        kept = [name for (name,) in dst.execute("select name from campaigns order by id")]
    print(f"{args.dst}: campaigns {', '.join(kept)}")


if __name__ == "__main__":
    main()
