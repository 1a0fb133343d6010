"""How fast the store takes a 10,000-circuit dataset and its results (SQLite file, or --url PostgreSQL).

    .venv/bin/python benchmarks/store_insert.py
    .venv/bin/python benchmarks/store_insert.py --url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from storage import Store
from storage.models import circuits
from storage.testing import fake_performance, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        data = rows(args.n, seed=3)
        with Store.open(url) as store:
            did = store.ensure_dataset(f"bench-{time.time_ns()}", 3, args.n, {"bench": True})
            t0 = time.perf_counter()
            store.add_dataset_circuits(did, data)
            rows_s = time.perf_counter() - t0
            with store.engine.connect() as conn:
                keys = list(conn.execute(select(circuits.c.key)).scalars())
            t0 = time.perf_counter()
            store.add_simulations("bench", "1", [(k, fake_performance(k), None) for k in keys])
            sims_s = time.perf_counter() - t0
    print(f"{args.n} dataset rows in {rows_s:.2f} s, {len(keys)} results in {sims_s:.2f} s ({url.split(':')[0]})")


if __name__ == "__main__":
    main()
