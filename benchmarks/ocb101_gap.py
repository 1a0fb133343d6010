#!/usr/bin/env python3
"""OCB-101 gap study: KS of variants of the independent generator against perform101.csv.

    python benchmarks/ocb101_gap.py [--n 10000] [--seeds 7] [--variants doc,continuous,...] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from scipy.stats import ks_2samp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import independent_ocb as io  # noqa: E402

CSV = "/work/shared/data/ocb/perform101.csv"


def load101(path=CSV):
    d = np.genfromtxt(path, delimiter=",", skip_header=1)
    _, valid, gain, pm, bw, fom = d.T
    G = 100 * (gain - 1.19531)
    P = -90 * (pm - 2.00001)
    U = (bw - 1e-5) * 1e9
    zero = (np.abs(G) < 1e-6) & (np.abs(P) < 1e-6) & (U < 1)
    return {"gain_db": G, "pm_ocb": P, "ugbw_hz": U, "zero": zero}


def ocb_like_pm(m):
    """Candidate mapping of our measurement to OCB's PM number (see doc)."""
    return m["pm_deg"]


VARIANTS = {
    "doc":            dict(),
    "int100":         dict(grid="int100"),
    "continuous":     dict(grid="continuous"),
    "cont_trunc":     dict(grid="cont_trunc"),
    "cont_nozero":    dict(grid="cont_nozero"),
    "loguniform":     dict(grid="loguniform"),
    "K1":             dict(K=1),
    "K2":             dict(K=2),
    "K100":           dict(K=100),
    "p3=0.5":         dict(p3=0.5),
    "pslot=0.3":      dict(p_slot=0.3),
    "pslot=0.9":      dict(p_slot=0.9),
    "no_interp":      dict(ugf_interp=False),
    "pairs_one":      dict(pairs="one", K=2),
    "pairs_one_gm":   dict(pairs="one_gm", K=2),
    "pairs_last_gm":  dict(pairs="last_gm", K=2),
}


def ks_table(m, ref):
    ok = m["ok"]
    okr = ~ref["zero"]
    out = {"ok_frac": float(ok.mean())}
    out["ks_gain"] = ks_2samp(m["gain_db"][ok], ref["gain_db"][okr]).statistic
    out["ks_ugbw"] = ks_2samp(m["ugbw_hz"][ok], ref["ugbw_hz"][okr]).statistic
    out["ks_abspm"] = ks_2samp(np.abs(m["pm_deg"][ok]), np.abs(ref["pm_ocb"][okr])).statistic
    return {k: float(v) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seeds", default="7")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    ref = load101()
    res = {}
    for v in a.variants.split(","):
        kw = VARIANTS[v]
        rows = []
        for s in [int(x) for x in a.seeds.split(",")]:
            t0 = time.time()
            m, _ = io.run(a.n, s, **kw)
            rows.append(ks_table(m, ref))
        r = {k: float(np.mean([x[k] for x in rows])) for k in rows[0]}
        res[v] = r
        print(f"{v:<16} ok {r['ok_frac']:.4f}  KS gain {r['ks_gain']:.4f}  UGBW {r['ks_ugbw']:.4f}  "
              f"|PM| {r['ks_abspm']:.4f}   ({time.time()-t0:.0f}s)", flush=True)
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
