"""Issue 19's figures for finished campaigns, on any store (SQLite or PostgreSQL):

    .venv/bin/python benchmarks/campaign_figures.py --db URL [--surrogate CKPT] [--dataset NAME] CAMPAIGN ...

One JSON line per campaign: targets met, simulations, median (and, over the met targets, mean) simulations
to the first met circuit (``orchestrator.design.outcomes``), and with ``--surrogate`` that checkpoint's
errors on the campaign's verified candidates outside the dataset's training split. Read each campaign in
a store no later campaign wrote to (a circuit measured later would count as measured).
"""

from __future__ import annotations

import argparse
import json

from orchestrator.design.outcomes import campaign_outcome, fresh_errors, issue_figures
from storage import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--surrogate", help="a checkpoint whose errors on the verified candidates to add")
    parser.add_argument("--dataset", default="ocb101-seed0", help="its training split is left out of the errors")
    parser.add_argument("campaign", nargs="+")
    args = parser.parse_args()
    model = None
    if args.surrogate:
        from surrogate.predict import Surrogate

        model = Surrogate.load(args.surrogate, device="cpu")
    with Store.open(args.db) as store:
        trained = store.dataset_keys(args.dataset, "train") if model else set()
        for name in args.campaign:
            out = {"campaign": name, **campaign_outcome(store, name)}
            if model is not None:
                errors, _ = fresh_errors(store, name, model, trained)
                out.update(issue_figures(errors))
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
