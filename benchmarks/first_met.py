"""Targets met and simulations to the first met circuit, for campaigns in a store:

    .venv/bin/python benchmarks/first_met.py --db URL CAMPAIGN [CAMPAIGN ...]

Per campaign: targets met; the median simulations to the first met circuit counted per circuit (issue 19's
count, ``orchestrator.design.outcomes.first_met``; targets stored before it was recorded count per batch)
and per batch (up to the end of the verification or refinement batch that held it, as the loop counted
before); how many targets had their first met circuit within 5, 20, 40 and 60 simulations; and how many
had a circuit reused from the store (source ``store``, ``--reuse``) that met them; and the median
simulations to the first met circuit over the other targets (an unmet one counts as never), the part of
the count that reuse does not settle and the models' proposals and ranking do.
"""

from __future__ import annotations

import argparse
import statistics

from circuits.targets import Target
from orchestrator.design.outcomes import first_met
from storage import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("campaigns", nargs="+")
    args = parser.parse_args()
    with Store.open(args.db) as store:
        for name in args.campaigns:
            rows = store.campaign_targets(name)
            per_circuit = [first_met(r.summary) for r in rows]
            per_batch = [first_met({"history": (r.summary or {}).get("history", [])}) for r in rows]
            within = "/".join(str(sum(f <= n for f in per_circuit)) for n in (5, 20, 40, 60))
            by_reuse = [
                bool(r.met)
                and any(
                    c.source == "store" and Target.from_mapping(r.name, r.bounds).met_by(c.measured.to_dict())
                    for c in store.candidates(r.id)
                )
                for r in rows
            ]
            searched = [f for f, reused in zip(per_circuit, by_reuse) if not reused]
            searched_median = f"{statistics.median(searched):g} over {len(searched)}" if searched else "none"
            print(
                f"{name}: met {sum(bool(r.met) for r in rows)}/{len(rows)}, median simulations to the first met "
                f"{statistics.median(per_circuit):g} per circuit, {statistics.median(per_batch):g} per batch; "
                f"first met within 5/20/40/60: {within}; met by a reused circuit: {sum(by_reuse)}; median to the first "
                f"met of the other targets {searched_median}; "
                f"simulations {sum(r.n_simulations or 0 for r in rows)}"
            )


if __name__ == "__main__":
    main()
