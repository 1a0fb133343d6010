"""Usage: .venv/bin/python benchmarks/campaign_outcomes.py --db /work/data/h7/ocb.db NAME [NAME ...]

Per campaign (campaigns ran one after another): targets met and simulations as the campaign recorded
them; median simulations to the first met circuit, counting per circuit the candidates the campaign itself
measured by the time its last target finished (an earlier campaign may have measured some), in candidate
order; the ranking surrogate's recorded predictions on those circuits against ngspice."""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics

from circuits.targets import Target
from surrogate.fresh import error_metrics

parser = argparse.ArgumentParser(description="targets met, simulations to the first met circuit, fresh errors")
parser.add_argument("--db", required=True, help="a SQLite store file (path)")
parser.add_argument("campaign", nargs="+")
args = parser.parse_args()
db = sqlite3.connect(args.db)
for name in args.campaign:
    (cid,) = db.execute("select id from campaigns where name=?", (name,)).fetchone()
    (start,) = db.execute(
        "select min(c.created_at) from candidates c join campaign_targets t on t.id=c.target_id where t.campaign_id=?",
        (cid,),
    ).fetchone()
    (end,) = db.execute("select max(finished_at) from campaign_targets where campaign_id=?", (cid,)).fetchone()
    firsts, met, sims, preds, meas, versions = [], 0, 0, [], [], set()
    for tid, tname, bounds, tmet, nsim in db.execute(
        "select id, name, bounds, met, n_simulations from campaign_targets where campaign_id=? order by position",
        (cid,),
    ).fetchall():
        b = json.loads(bounds)
        target = Target.from_mapping(tname, {f: {k: v for k, v in x.items() if v is not None} for f, x in b.items()})
        q = (
            "select c.circuit_id, c.source, c.predicted_gain_db, c.predicted_ugbw_hz, c.predicted_pm_deg,"
            " c.predicted_fom, c.model_version, s.status, s.gain_db, s.ugbw_hz, s.pm_deg, s.fom"
            " from candidates c join simulations s on s.circuit_id = c.circuit_id and s.simulator = 'ngspice'"
            " where c.target_id = ? and s.created_at <= ? order by c.id"
        )
        seen, k, first = set(), 0, math.inf
        for row in db.execute(q, (tid, end)):
            circ, src, pg, pu, pp, pf, mv, st, g, u, p, f = row
            if circ in seen:
                continue
            seen.add(circ)
            k += 1
            m = {"status": st, "gain_db": g, "ugbw_hz": u, "pm_deg": p, "fom": f}
            if first == math.inf and target.met_by(m):
                first = k
            if pg is not None and pu is not None and pp is not None and pf is not None:
                preds.append({"gain_db": pg, "ugbw_hz": pu, "pm_deg": pp, "fom": pf})
                meas.append(m)
                versions.add(mv)
        firsts.append(first)
        met += bool(tmet)
        sims += nsim or 0
    e = error_metrics(preds, meas)
    print(
        json.dumps(
            {
                "campaign": name,
                "targets": len(firsts),
                "met": met,
                "simulations": sims,
                "median_sims_to_first_met": statistics.median(firsts),
                "fresh": {k: round(v, 4) for k, v in e.items() if isinstance(v, float)} | {"n": e["n"]},
                "versions": sorted(v or "-" for v in versions),
            }
        )
    )
