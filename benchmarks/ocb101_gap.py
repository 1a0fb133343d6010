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
import independent_ocb as io

CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "ocb", "perform101.csv")


def load101(path=CSV):
    d = np.genfromtxt(path, delimiter=",", skip_header=1)
    _, _valid, gain, pm, bw, _fom = d.T
    G = 100 * (gain - 1.19531)
    P = -90 * (pm - 2.00001)
    U = (bw - 1e-5) * 1e9
    zero = (np.abs(G) < 1e-6) & (np.abs(P) < 1e-6) & (U < 1)
    return {"gain_db": G, "pm_ocb": P, "ugbw_hz": U, "zero": zero}


def ocb_like_pm(m):
    """Candidate mapping of our measurement to OCB's PM number (see doc)."""
    return m["pm_deg"]


VARIANTS = {
    "doc": dict(),
    "int100": dict(grid="int100"),
    "continuous": dict(grid="continuous"),
    "cont_trunc": dict(grid="cont_trunc"),
    "cont_nozero": dict(grid="cont_nozero"),
    "loguniform": dict(grid="loguniform"),
    "K1": dict(K=1),
    "K2": dict(K=2),
    "K100": dict(K=100),
    "p3=0.5": dict(p3=0.5),
    "pslot=0.3": dict(p_slot=0.3),
    "pslot=0.9": dict(p_slot=0.9),
    "no_interp": dict(ugf_interp=False),
    "pairs_one": dict(pairs="one", K=2),
    "pairs_one_gm": dict(pairs="one_gm", K=2),
    "pairs_last_gm": dict(pairs="last_gm", K=2),
    "minmax_K20": dict(select="minmax", K=20),
    "minmax_K10": dict(select="minmax", K=10),
    "minmax_K5": dict(select="minmax", K=5),
    "minmax_K2": dict(select="minmax", K=2),
    "minmax_K20_cont": dict(select="minmax", K=20, grid="continuous"),
    "minmax_K20_trunc": dict(select="minmax", K=20, grid="cont_trunc"),
    "minmax_K30": dict(select="minmax", K=30),
}


def ks_table(m, ref):
    ok = m["ok"]
    okr = ~ref["zero"]
    out = {"ok_frac": float(ok.mean())}
    out["ks_gain"] = ks_2samp(m["gain_db"][ok], ref["gain_db"][okr]).statistic
    out["ks_ugbw"] = ks_2samp(m["ugbw_hz"][ok], ref["ugbw_hz"][okr]).statistic
    out["ks_abspm"] = ks_2samp(np.abs(m["pm_deg"][ok]), np.abs(ref["pm_ocb"][okr])).statistic
    out["ks_pm_ocb"] = ks_2samp(m["pm_ocb_deg"][ok], ref["pm_ocb"][okr]).statistic
    out.update(pair_stats(np.where(ok, m["ugbw_hz"], 0.0), np.where(ok, m["gain_db"], 0.0), ~ok))
    return {k: float(v) for k, v in out.items()}


def pair_stats(U, G, fail):
    """Statistics of rows (2j, 2j+1): frac U_even > U_odd, failure fraction of even / odd rows, median
    log10(U_odd/U_even) and median gain difference over pairs where both succeeded, gain correlation."""
    n = len(U) // 2 * 2
    e, o = np.arange(0, n, 2), np.arange(1, n, 2)
    both = ~fail[e] & ~fail[o]
    return {
        "pair_Ue>Uo": np.mean(U[e] > U[o]),
        "fail_even": fail[e].mean(),
        "fail_odd": fail[o].mean(),
        "pair_med_logU": np.median(np.log10(U[o][both] / U[e][both])),
        "pair_med_dG": np.median(G[o][both] - G[e][both]),
        "pair_corrG": np.corrcoef(G[e][both], G[o][both])[0, 1],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seeds", default="7")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    ref = load101()
    r0 = pair_stats(np.where(ref["zero"], 0.0, ref["ugbw_hz"]), ref["gain_db"], ref["zero"])
    print("OCB-101 itself: ok %.4f | " % (1 - ref["zero"].mean()) + " ".join(f"{k} {v:.3f}" for k, v in r0.items()))
    res = {"ocb101": {k: float(v) for k, v in r0.items()}}
    for v in a.variants.split(","):
        kw = VARIANTS[v]
        rows = []
        for s in [int(x) for x in a.seeds.split(",")]:
            t0 = time.time()
            m, _ = io.run(a.n, s, **kw)
            rows.append(ks_table(m, ref))
        r = {k: float(np.mean([x[k] for x in rows])) for k in rows[0]}
        res[v] = r
        print(
            f"{v:<16} ok {r['ok_frac']:.4f} KS gain {r['ks_gain']:.4f} UGBW {r['ks_ugbw']:.4f} "
            f"|PM| {r['ks_abspm']:.4f} PMocb {r['ks_pm_ocb']:.4f} | pairs Ue>Uo {r['pair_Ue>Uo']:.3f} "
            f"fail e/o {r['fail_even']:.3f}/{r['fail_odd']:.3f} medlogU {r['pair_med_logU']:.2f} "
            f"medDG {r['pair_med_dG']:.1f} corrG {r['pair_corrG']:.2f} ({time.time() - t0:.0f}s)",
            flush=True,
        )
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
