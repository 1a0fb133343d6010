"""Each round of a ``cktloop loop`` scored again, its surrogate beside the shipped one on the same rows:

    .venv/bin/python benchmarks/loop_fresh.py --db URL --state runs/loop/NAME/state.json

Round k's rows are the verified candidates of its campaign measured by the time its fine-tune read the store
(``upto_simulation``), less the dataset's training split and every earlier round's candidates: the rows
the loop scored before training on them. The round's own surrogate answers as the loop reported it; the
shipped surrogate on the same rows tells how hard that round's targets were, so the ratio between the
two is the loop's gain, whatever the round's targets. With ``--by-source`` each round's rows are also split
by where the circuit came from (the source of its first candidate: generator, random (the family arm),
refine or store (reused)) and whether its topology was among those the round's model could have trained on.
"""

from __future__ import annotations

import argparse
import json

from circuits import Circuit
from storage import Store
from surrogate.fresh import error_metrics
from surrogate.paths import DESIGN_CHECKPOINT
from surrogate.predict import Surrogate

NAMES = ("ugbw_mae_dec", "pm_mae_deg", "gain_mae_db", "fom_mae", "fom_spearman")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--state", required=True, help="the loop's state.json")
    parser.add_argument("--by-source", action="store_true", help="also split each round's rows by source")
    args = parser.parse_args()
    with open(args.state) as f:
        state = json.load(f)
    start = state["start"]
    shipped = Surrogate.load(DESIGN_CHECKPOINT, device="cpu")
    with Store.open(args.db) as store:
        train = [e for e in store.dataset_rows(state["config"]["dataset"]) if e.split == "train"]
        seen = {e.id for e in train}
        topologies = {e.topology for e in train}
        for r in state["rounds"]:
            if "rows" not in r:
                break
            rows = store.verified_rows([r["campaign"]], upto_simulation=r["rows"]["upto_simulation"])
            fresh = [x for x in rows if x["id"] not in seen]
            seen |= {x["id"] for x in rows}
            circuits = [Circuit.from_dict(x["circuit"]) for x in fresh]
            known = [c.topology_key in topologies for c in circuits]
            topologies |= {Circuit.from_dict(x["circuit"]).topology_key for x in rows}
            version = r["models"]["surrogate"]
            ours_at = start["checkpoint"] if version == start["version"] else None
            path = ours_at or store.model_version("surrogate", version).path
            model = Surrogate.load(path, device="cpu")
            predicted, baseline = model.predict(circuits), shipped.predict(circuits)
            groups: dict[str, list[int]] = {"all": list(range(len(fresh)))}
            if args.by_source:
                for i, (x, k) in enumerate(zip(fresh, known)):
                    groups.setdefault(f"{x['source']} ({'known' if k else 'new'} topology)", []).append(i)
            for group, idx in sorted(groups.items()):
                rows_in = [fresh[i] for i in idx]
                ours = error_metrics([predicted[i] for i in idx], rows_in, model.pm_field)
                base = error_metrics([baseline[i] for i in idx], rows_in, shipped.pm_field)
                out = {"round": r["round"], "model": version, "rows": group, "n": ours["n"]}
                for name in NAMES:
                    out[name] = [round(base[name], 4), round(ours[name], 4)]
                print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
