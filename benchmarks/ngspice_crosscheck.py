#!/usr/bin/env python3
"""Cross-check the independent MNA solver against ngspice on random OCB circuits (netlist per reference 1.6).

python benchmarks/ngspice_crosscheck.py [--n 20] [--seed 3]
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import independent_ocb as io

NET = {io.IN: "in", io.N1: "n1", io.N2: "n2", io.OUT: "out"}


def netlist(circ):
    L = ["* ocb"]
    for k, (t, a, b, kr, kc, kg) in enumerate(circ, start=1):
        if t in io.FB_GM:
            a, b = b, a
        A, B = NET[a], NET[b]
        R, C = io.R_BASIS * kr, io.C_BASIS * kc
        if t in (2, 5, 14, 15, 16, 17, 18, 19, 20, 21):
            L.append(f"R{k} {A} {B} {R:.6g}")
        if t in (3, 5, 10, 11, 12, 13, 18, 19, 20, 21):
            L.append(f"C{k} {A} {B} {C:.6g}")
        if t in (4, 22, 23, 24, 25):
            L += [f"R{k} {A} x{k} {R:.6g}", f"C{k} x{k} {B} {C:.6g}"]
        if t in io.HAS_GM:
            gm = io.GM_BASIS * kg * (-1 if t in io.NEG_GM else 1)
            L += [f"G{k} {B} 0 {A} 0 {gm:.6g}", f"RL{k} {B} 0 1e6", f"CL{k} {B} 0 50e-15"]
    L += ["V1 in 0 dc 0 ac 1", ".control", "ac dec 100 1 100G", "wrdata %s vr(out) vi(out)", "quit", ".endc", ".end"]
    return "\n".join(L)


ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=20)
ap.add_argument("--seed", type=int, default=3)
a = ap.parse_args()
circs = io.generate(a.n, a.seed, K=1)
H = io.simulate(circs)
worst = 0
with tempfile.TemporaryDirectory() as d:
    for i, c in enumerate(circs):
        out = os.path.join(d, f"o{i}.txt")
        cir = os.path.join(d, f"c{i}.cir")
        with open(cir, "w") as fh:
            fh.write(netlist(c) % out)
        subprocess.run(["ngspice", "-b", cir], capture_output=True, check=True)
        x = np.loadtxt(out)
        hs = x[:, 1] + 1j * x[:, 3]
        err = np.max(np.abs(hs - H[i]) / np.maximum(np.abs(H[i]), 1e-6))
        worst = max(worst, err)
        print(f"circuit {i}: {len(c)} subgraphs, max rel err vs ngspice {err:.2e}")
print(f"worst {worst:.2e}")
