"""Fine-tune options compared offline: each option set fine-tunes the parent on one campaign's verified rows
(nothing registered) and is scored on another campaign's rows it never trained on, the way a loop scores
the next round (every dataset's training split and the training campaign's circuits left out):

    .venv/bin/python benchmarks/finetune_options.py --db URL --train ld-r1 --score ld-r2 \
        --options '{"replay_ratio": 4, "epochs": 6}' --options '{"replay_ratio": 8, "epochs": 3}'

Each option set is a JSON object of ``surrogate.finetune.FinetuneConfig`` fields (one member unless it
says otherwise); prints one JSON line per set: the options, the wall time, the fresh errors, and the
no-forgetting figures on the dataset's held-out split. Work folders go under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from circuits import Circuit
from storage import Store
from surrogate.finetune import FinetuneConfig, finetune, replay_keys
from surrogate.fresh import error_metrics
from surrogate.predict import Surrogate

FRESH = ("ugbw_mae_dec", "pm_mae_deg", "gain_mae_db", "fom_mae", "fom_spearman")
DATASET = ("joint_acc", "gain_mae_db", "ugbw_mae_dec", "pm_mae_deg", "fom_mae")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--train", required=True, help="the campaign whose verified rows are trained on")
    parser.add_argument("--score", required=True, help="the campaign whose fresh rows are scored")
    parser.add_argument("--options", action="append", required=True, help="a JSON object of FinetuneConfig fields")
    parser.add_argument("--out", default="out/finetune-options", help="work folders (one per option set)")
    args = parser.parse_args()
    with Store.open(args.db) as store:
        base = FinetuneConfig()  # what any set could have trained on, as the loop leaves it out of its scores
        left_out = {r["id"] for r in store.verified_rows([args.train])} | replay_keys(store, base.replay)
        left_out |= store.dataset_keys(base.dataset, "train")
        rows = [r for r in store.verified_rows([args.score]) if r["id"] not in left_out]
        circuits = [Circuit.from_dict(r["circuit"]) for r in rows]
        for i, text in enumerate(args.options):
            options = {"members": 1, "progress": False, **json.loads(text)}
            start = time.perf_counter()
            out = Path(args.out) / f"set-{i}"
            result = finetune(store, out, [args.train], None, FinetuneConfig(**options), register=False)
            took = time.perf_counter() - start
            model = Surrogate.load(result["checkpoint"], device="cpu")
            fresh = error_metrics(model.predict(circuits), rows, model.pm_field)
            dataset = result["metrics"]["dataset_test"]
            line = {
                "options": options,
                "wall_s": round(took),
                "fresh_rows": len(rows),
                "fresh": {k: round(fresh[k], 4) for k in FRESH},
                "dataset_test": {k: round(dataset[k], 4) for k in DATASET},
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
