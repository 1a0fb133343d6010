#!/usr/bin/env python3
"""Two-sample comparison of two OCB-family JSONL exports (e.g. the project's export vs independent_ocb.py).

Each line: {"status": ..., "gain_db": ..., "ugbw_hz": ..., "pm_deg": ...}; other keys are ignored.
For gain_db, ugbw_hz, pm_deg (over status == "ok" rows) prints the two-sample KS statistic (scipy.stats.ks_2samp),
its p-value and sample sizes; for the ok-fraction prints both fractions and the KS statistic of the 0/1 indicator
(which equals |difference of the ok fractions|).

    python benchmarks/compare_family.py OURS.jsonl THEIRS.jsonl
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy.stats import ks_2samp

from circuits.specs import SPEC_FIELDS


def load(path: str) -> dict:
    status, cols = [], {k: [] for k in SPEC_FIELDS}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            ok = r.get("status") == "ok"
            status.append(ok)
            if ok:
                for k in SPEC_FIELDS:
                    v = r.get(k)
                    cols[k].append(np.nan if v is None else float(v))
    out = {k: np.asarray(v, float) for k, v in cols.items()}
    out["ok"] = np.asarray(status, bool)
    return out


def compare(ours_jsonl: str, theirs_jsonl: str, quiet: bool = False) -> dict:
    a, b = load(ours_jsonl), load(theirs_jsonl)
    res = {}
    for k in SPEC_FIELDS:
        x, y = a[k][np.isfinite(a[k])], b[k][np.isfinite(b[k])]
        if len(x) and len(y):
            r = ks_2samp(x, y)
            res[k] = {
                "ks": float(r.statistic),
                "p": float(r.pvalue),
                "n_ours": len(x),
                "n_theirs": len(y),
                "median_ours": float(np.median(x)),
                "median_theirs": float(np.median(y)),
            }
        else:
            res[k] = {"ks": float("nan"), "p": float("nan"), "n_ours": len(x), "n_theirs": len(y)}
    r = ks_2samp(a["ok"].astype(float), b["ok"].astype(float))
    res["ok_fraction"] = {
        "ks": float(r.statistic),
        "p": float(r.pvalue),
        "n_ours": len(a["ok"]),
        "n_theirs": len(b["ok"]),
        "frac_ours": float(a["ok"].mean()),
        "frac_theirs": float(b["ok"].mean()),
    }
    if not quiet:
        print(f"{'quantity':<12} {'KS':>7} {'p':>10} {'n_ours':>8} {'n_theirs':>9}  medians (ours / theirs)")
        for k in SPEC_FIELDS:
            d = res[k]
            med = f"{d['median_ours']:.4g} / {d['median_theirs']:.4g}" if "median_ours" in d else "-"
            print(f"{k:<12} {d['ks']:7.4f} {d['p']:10.3g} {d['n_ours']:8d} {d['n_theirs']:9d}  {med}")
        d = res["ok_fraction"]
        print(
            f"{'ok_fraction':<12} {d['ks']:7.4f} {d['p']:10.3g} {d['n_ours']:8d} {d['n_theirs']:9d}  "
            f"{d['frac_ours']:.4f} / {d['frac_theirs']:.4f}"
        )
    return res


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    compare(sys.argv[1], sys.argv[2])
