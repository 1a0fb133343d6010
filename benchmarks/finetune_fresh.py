"""A surrogate's errors on campaigns it never trained on: the verified candidates of each campaign named,
minus any circuit a fine-tuned model trained on, predicted by the parent and by the fine-tuned version
(issue 19's fresh_* figures, and the ensemble's calibration there).

    .venv/bin/python benchmarks/finetune_fresh.py --db sqlite:////work/data/h7/ocb.db \
        --version digin-ft-... --campaign h7-paper30-b --campaign h7-window30-c
"""

from __future__ import annotations

import argparse
import json

from circuits import Circuit
from storage import Store
from surrogate.finetune import held_out
from surrogate.fresh import error_metrics
from surrogate.predict import Surrogate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--version", required=True, help="a registered fine-tuned surrogate")
    parser.add_argument("--campaign", action="append", required=True)
    parser.add_argument("--baseline", action="append", default=[], help="another checkpoint to score alongside")
    args = parser.parse_args()
    with Store.open(args.db) as store:
        info = store.model_version("surrogate", args.version)
        rows = info.config["rows"]
        fraction = info.config["finetune"]["holdout_fraction"]
        trained = {
            r["id"]
            for r in store.verified_rows(
                rows["campaigns"], after_candidate=rows["after_candidate"], upto_simulation=rows.get("upto_simulation")
            )
            if r["candidate_id"] <= rows["upto_candidate"] and not held_out(r["id"], fraction)
        }
        child = Surrogate.load(info.path, device="cpu")
        parent = Surrogate.load(info.config["finetune"]["base"], device="cpu")
        baselines = {b: Surrogate.load(b, device="cpu") for b in args.baseline}
        out = {}
        for name in args.campaign:
            fresh = [r for r in store.verified_rows([name]) if r["id"] not in trained]
            circuits = [Circuit.from_dict(r["circuit"]) for r in fresh]
            out[name] = {
                "n_trained_left_out": len(store.verified_rows([name])) - len(fresh),
                "parent": error_metrics(parent.predict(circuits), fresh, parent.pm_field),
                "finetuned": error_metrics(child.predict(circuits), fresh, child.pm_field),
                **{b: error_metrics(m.predict(circuits), fresh, m.pm_field) for b, m in baselines.items()},
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
