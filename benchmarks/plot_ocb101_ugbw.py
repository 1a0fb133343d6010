#!/usr/bin/env python3
"""UGBW CDFs (log axis) of OCB-101 vs the documented rules vs the best-/worst-of-K=20 selection variant.

python benchmarks/plot_ocb101_ugbw.py [--n 10000] [--seed 7] [--out docs/img/ocb101_ugbw.png]
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import ks_2samp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import independent_ocb as io
import ocb101_gap as gap

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=10000)
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--out", default="docs/img/ocb101_ugbw.png")
a = ap.parse_args()

ref = gap.load101()
u101 = ref["ugbw_hz"][~ref["zero"]]
m_doc, _ = io.run(a.n, a.seed)
m_sel, _ = io.run(a.n, a.seed, select="minmax", K=20)
curves = [(f"OCB-101 (published, {len(u101)} non-zero rows)", u101, "k", "-")]
for name, m, col in [
    ("documented rules (K=20, k=1..101)", m_doc, "tab:blue"),
    ("best+worst FoM of K=20 sizings per topology", m_sel, "tab:red"),
]:
    u = m["ugbw_hz"][m["ok"]]
    ks = ks_2samp(u, u101).statistic
    curves.append((f"{name}: KS {ks:.3f}", u, col, "--"))
fig, ax = plt.subplots(figsize=(7.5, 4.8))
for lab, u, col, ls in curves:
    x = np.sort(u)
    ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", color=col, ls=ls, label=lab)
ax.set_xscale("log")
ax.set_xlabel("unity-gain bandwidth [Hz]")
ax.set_ylabel("CDF (rows with a 0 dB crossing)")
ax.set_title(f"OCB-101 UGBW vs independent re-implementation (n={a.n}, seed {a.seed})")
ax.grid(True, which="both", alpha=0.3)
ax.legend(loc="upper left", fontsize=8)
fig.tight_layout()
fig.savefig(a.out, dpi=130)
print("wrote", a.out)
