#!/usr/bin/env python3
"""Independent, numpy-only re-implementation of the OCB (CktGNN) behavioural op-amp family.

Written from /work/shared/docs/reference-ocb-and-cktgen.md (sections 1, 2, 3, 6) alone; it imports nothing from
the project's packages (circuits/, simulator/, ...) so that it can serve as an independent cross-check of them.

Pieces
  * generate(...)     random OCB circuits following reference section 1.4 (plus optional variants for the
                      OCB-101 gap study, see --help)
  * simulate(...)     modified-nodal AC analysis, vectorised over frequency and over circuits
  * measure(...)      gain / UGF / PM extraction exactly as specified in the brief (reference section 2.4)
  * self_check()      closed-form checks of the measurement and of the solver

CLI
  python benchmarks/independent_ocb.py --n 10000 --seed 7 --out FILE.jsonl [variant options]
  python benchmarks/independent_ocb.py --self-check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------------------------------------------
# Family definition (reference section 1)
# --------------------------------------------------------------------------------------------------------------
MAIN_TYPES = (6, 7, 10, 11)
FREE_TYPES = tuple(range(2, 26))
PASSIVE_TYPES = (2, 3, 4, 5)
FF_GM = {6, 7, 10, 11, 14, 15, 18, 19, 22, 23}
FB_GM = {8, 9, 12, 13, 16, 17, 20, 21, 24, 25}
NEG_GM = {7, 9, 11, 13, 15, 17, 19, 21, 23, 25}
# which of (R, C, gm) a type carries
HAS_R = {2, 4, 5} | set(range(14, 26))
HAS_C = {3, 4, 5} | set(range(10, 14)) | set(range(18, 26))
HAS_GM = FF_GM | FB_GM

R_BASIS = 0.1e6  # ohm per k
C_BASIS = 10e-15  # farad per k
GM_BASIS = 0.1e-3  # siemens per k
R_LOAD = 1e6
C_LOAD = 50e-15
GMIN = 1e-12  # SPICE-like gmin on every node (keeps matrices regular; negligible vs the 1 uS loads)
G_SHORT = 1e4  # conductance used for R = 0 (continuous grid only): a 0.1 mOhm "short"

# net indices in the MNA matrix: 0 = in (known, 1 V), 1 = n1, 2 = n2, 3 = OUT, 4.. internal series nodes
IN, N1, N2, OUT = 0, 1, 2, 3
NMAX = 7  # in, n1, n2, OUT + up to 3 internal nodes (slot A, slot C, slot B)

FREQS = 10.0 ** (np.arange(1101) / 100.0)  # 1 Hz .. 100 GHz, 100 points/decade


# --------------------------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------------------------
def draw_topology(rng: np.random.Generator, p3: float = 0.8, p_slot: float = 0.6) -> dict:
    """One topology per reference section 1.4. Returns stages and slots with their (a, b) net spans."""
    s1 = int(rng.choice(MAIN_TYPES))
    s2 = int(rng.choice(MAIN_TYPES))
    three = rng.uniform() <= p3
    s3 = int(rng.choice(MAIN_TYPES)) if three else None
    slot_a = int(rng.choice(FREE_TYPES)) if rng.uniform() <= p_slot else None
    slot_c = int(rng.choice(PASSIVE_TYPES)) if rng.uniform() <= p_slot else None
    slot_b = int(rng.choice(FREE_TYPES)) if rng.uniform() <= p_slot else None

    subs = []  # (type, a, b) with a = input (earlier) net, b = output (later) net
    if three:
        subs += [(s1, IN, N1), (s2, N1, N2), (s3, N2, OUT)]
        anchors = [IN, N1, N2, OUT]  # order In < stage1 < stage2 ; Out handled separately
    else:
        subs += [(s1, IN, N1), (s2, N1, OUT)]
        anchors = [IN, N1, OUT]
    pairs = [(anchors[i], anchors[j]) for i in range(len(anchors)) for j in range(i + 1, len(anchors))]

    def free_span():
        a, b = pairs[int(rng.integers(len(pairs)))]
        # anchors list is already ordered In < n1 < n2 < OUT, so (a, b) = earlier -> later, and Out is always b
        return a, b

    if slot_a is not None:
        subs.append((slot_a, *free_span()))
    if slot_c is not None:
        src = N1 if not three else (N1 if rng.uniform() < 0.5 else N2)
        subs.append((slot_c, src, OUT))
    if slot_b is not None:
        subs.append((slot_b, *free_span()))
    return {"stages": 3 if three else 2, "subs": subs}


class Grid:
    """Device-value grid: returns k (feature) arrays; physical value = basis * k."""

    def __init__(self, kind: str = "int101"):
        self.kind = kind

    def sample(self, rng, size):
        if self.kind == "int101":  # documented discrete generator: integers 1..101
            return rng.integers(1, 102, size=size).astype(float)
        if self.kind == "int100":  # integers 1..100 (max 10.0 mS)
            return rng.integers(1, 101, size=size).astype(float)
        if self.kind == "continuous":  # integers 0..1000 / 10 -> 0.0 .. 100.0
            return rng.integers(0, 1001, size=size) / 10.0
        if self.kind == "cont_trunc":  # continuous then int() truncation (igraph attributes) -> 0..100
            return np.floor(rng.integers(0, 1001, size=size) / 10.0)
        if self.kind == "cont_nozero":  # continuous grid without zeros (0.1 .. 100.0)
            return rng.integers(1, 1001, size=size) / 10.0
        if self.kind == "loguniform":  # log-uniform on [0.1, 100]
            return 10.0 ** rng.uniform(-1, 2, size=size)
        if self.kind == "loguniform1":  # log-uniform on [1, 101]
            return 10.0 ** rng.uniform(0, np.log10(101), size=size)
        raise ValueError(self.kind)


def sizing(rng, grid: Grid, topo: dict) -> list:
    """Independent per-device values for a topology: list of (type, a, b, kr, kc, kg)."""
    out = []
    for t, a, b in topo["subs"]:
        kr, kc, kg = grid.sample(rng, 3)
        out.append([t, a, b, kr if t in HAS_R else 0.0, kc if t in HAS_C else 0.0, kg if t in HAS_GM else 0.0])
    return out


def perturb(rng, grid: Grid, circ: list, mode: str) -> list:
    """Second member of a pair (variants for the 101 pairing study)."""
    c2 = [list(s) for s in circ]
    devs = [
        (i, j)
        for i, s in enumerate(c2)
        for j, has in ((3, s[0] in HAS_R), (4, s[0] in HAS_C), (5, s[0] in HAS_GM))
        if has
    ]
    if mode == "one":  # redraw one device chosen at random
        i, j = devs[int(rng.integers(len(devs)))]
        c2[i][j] = grid.sample(rng, 1)[0]
    elif mode == "one_gm":  # redraw one gm device
        g = [d for d in devs if d[1] == 5]
        i, j = g[int(rng.integers(len(g)))]
        c2[i][j] = grid.sample(rng, 1)[0]
    elif mode == "last_gm":  # redraw the gm of the last main stage
        idx = next(i for i, s in enumerate(c2) if s[2] == OUT and s[0] in FF_GM)
        c2[idx][5] = grid.sample(rng, 1)[0]
    elif mode == "same":
        pass
    else:
        raise ValueError(mode)
    return c2


def generate(
    n: int, seed: int, K: int = 20, grid: str = "int101", p3: float = 0.8, p_slot: float = 0.6, pairs: str | None = None
) -> list:
    """n circuits; a topology is redrawn every K circuits. With pairs=mode, circuits come in pairs
    (2j, 2j+1) = (base sizing, perturbed sizing) and topologies are redrawn every K circuits (K even)."""
    rng = np.random.default_rng(seed)
    g = Grid(grid)
    circs, topo = [], None
    i = 0
    while len(circs) < n:
        if i % K == 0:
            topo = draw_topology(rng, p3, p_slot)
        c = sizing(rng, g, topo)
        circs.append(c)
        i += 1
        if pairs and len(circs) < n:
            circs.append(perturb(rng, g, c, pairs))
            i += 1
    return circs[:n]


# --------------------------------------------------------------------------------------------------------------
# MNA AC solver
# --------------------------------------------------------------------------------------------------------------
def stamp(circ: list):
    """Return real (G, C) matrices (NMAX x NMAX, node 0 = in; ground eliminated) for one circuit."""
    G = np.zeros((NMAX, NMAX))
    C = np.zeros((NMAX, NMAX))
    nxt = [4]

    def y2(M, p, q, y):  # two-terminal admittance between p and q (q may be None = ground)
        M[p, p] += y
        if q is not None:
            M[q, q] += y
            M[p, q] -= y
            M[q, p] -= y

    def gR(kr):
        r = R_BASIS * kr
        return G_SHORT if r <= 0 else min(1.0 / r, G_SHORT)

    for t, a, b, kr, kc, kg in circ:
        if t in FB_GM:  # feedback: whole subgraph swapped (senses b, drives a)
            a, b = b, a
        r_val, c_val = gR(kr), C_BASIS * kc
        if t in (2, 5, 14, 15, 16, 17, 18, 19, 20, 21):
            y2(G, a, b, r_val)
        if t in (3, 5, 10, 11, 12, 13, 18, 19, 20, 21):
            y2(C, a, b, c_val)
        if t in (4, 22, 23, 24, 25):  # series R (a side) - internal node x - C (b side)
            x = nxt[0]
            nxt[0] += 1
            y2(G, a, x, r_val)
            y2(C, x, b, c_val)
        if t in HAS_GM:
            gm = GM_BASIS * kg * (-1.0 if t in NEG_GM else 1.0)
            G[b, a] += gm  # current gm*V(a) pulled out of node b (SPICE G b 0 a 0 gm)
            y2(G, b, None, 1.0 / R_LOAD)  # fixed load on the driven net
            y2(C, b, None, C_LOAD)
    for k in range(1, NMAX):
        G[k, k] += GMIN
    return G, C


def simulate(circs: list, freqs: np.ndarray = FREQS, chunk: int = 128) -> np.ndarray:
    """Complex H = V(OUT)/V(in) for every circuit at every frequency -> array (n, nf)."""
    n = len(circs)
    GG = np.empty((n, NMAX, NMAX))
    CC = np.empty((n, NMAX, NMAX))
    for i, c in enumerate(circs):
        GG[i], CC[i] = stamp(c)
    w = 2 * np.pi * freqs
    H = np.empty((n, len(freqs)), dtype=complex)
    for s in range(0, n, chunk):
        g, c = GG[s : s + chunk], CC[s : s + chunk]
        Y = g[:, None, :, :] + 1j * w[None, :, None, None] * c[:, None, :, :]
        A = Y[:, :, 1:, 1:]
        rhs = -Y[:, :, 1:, 0:1]  # V(in) = 1
        V = np.linalg.solve(A, rhs)[..., 0]
        H[s : s + chunk] = V[:, :, OUT - 1]
    return H


# --------------------------------------------------------------------------------------------------------------
# Measurement (brief / reference 2.4)
# --------------------------------------------------------------------------------------------------------------
def measure(H: np.ndarray, freqs: np.ndarray = FREQS, ugf_interp: bool = True) -> dict:
    """Vectorised measurement over rows of H (n, nf). Returns dict of arrays; NaN where not defined."""
    H = np.atleast_2d(H)
    lf = np.log10(freqs)
    mag = np.abs(H)
    with np.errstate(divide="ignore"):
        db = 20 * np.log10(mag)
    gain = db[:, 0]
    cross = (mag[:, :-1] >= 1) & (mag[:, 1:] < 1)
    has = cross.any(axis=1)
    i = np.argmax(cross, axis=1)
    rows = np.arange(H.shape[0])
    d0, d1 = db[rows, i], db[rows, i + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(np.isfinite(d1), d0 / (d0 - d1), 0.0)
    t = np.clip(np.nan_to_num(t), 0.0, 1.0)
    if not ugf_interp:
        t = np.zeros_like(t)
    ugf = 10 ** (lf[i] + t * (lf[i + 1] - lf[i]))
    sgn = np.where(H[:, 0].real < 0, -1.0, 1.0)
    ph = np.unwrap(np.angle(H * sgn[:, None]), axis=1)
    ph_u = ph[rows, i] + t * (ph[rows, i + 1] - ph[rows, i])
    pm = 180.0 + np.degrees(ph_u)
    # extra: raw wrapped phase of H (no sign flip) at UGF, for OCB-PM convention studies
    raw = np.angle(H[rows, i] * (1 - t) + H[rows, i + 1] * t, deg=True)
    pm_ocb = (raw + 360.0) % 360.0 - 180.0  # wrap(180 + angle H) into [-180, 180)
    out = {
        "gain_db": gain,
        "ugbw_hz": np.where(has, ugf, np.nan),
        "pm_deg": np.where(has, pm, np.nan),
        "raw_phase_deg": np.where(has, raw, np.nan),
        "pm_ocb_deg": np.where(has, pm_ocb, np.nan),
        "inverting": sgn < 0,
        "ok": has,
    }
    return out


def ocb_fom(m: dict) -> np.ndarray:
    """OCB FoM = 1.2|G_dB|/100 + 1.6 PM_ocb/(-90) + 10 UGF_GHz, with PM_ocb = wrap(180 + angle H(UGF)) (the
    convention that best matches the published PM column, see docs/ocb-101-gap.md); failures get -inf, as in
    CktGNN's graph_to_fom."""
    f = 1.2 * np.abs(m["gain_db"]) / 100 + 1.6 * m["pm_ocb_deg"] / -90 + 10 * m["ugbw_hz"] / 1e9
    return np.where(m["ok"], f, -np.inf)


def _take(m: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in m.items()}


def run(n, seed, K=20, grid="int101", p3=0.8, p_slot=0.6, pairs=None, ugf_interp=True, select=None):
    """Generate + simulate + measure. select='minmax': for every topology simulate K sizings and keep the pair
    (best FoM, worst FoM) as rows (2j, 2j+1); select='max': keep only the best sizing of each topology;
    select='min': only the worst."""
    if select:
        per = 2 if select == "minmax" else 1
        nt = -(-n // per)
        circs = generate(nt * K, seed, K=K, grid=grid, p3=p3, p_slot=p_slot)
        m = measure(simulate(circs), ugf_interp=ugf_interp)
        f = ocb_fom(m).reshape(nt, K)
        # ties (e.g. several failures) -> first index, like a plain argmax/argmin
        best = np.argmax(f, axis=1) + K * np.arange(nt)
        worst = np.argmin(f, axis=1) + K * np.arange(nt)
        if select == "minmax":
            idx = np.stack([best, worst], axis=1).ravel()[:n]
        else:
            idx = (best if select == "max" else worst)[:n]
        return _take(m, idx), [circs[i] for i in idx]
    circs = generate(n, seed, K=K, grid=grid, p3=p3, p_slot=p_slot, pairs=pairs)
    H = simulate(circs)
    return measure(H, ugf_interp=ugf_interp), circs


def to_rows(m: dict) -> list:
    rows = []
    for k in range(len(m["ok"])):
        if m["ok"][k]:
            rows.append(
                {
                    "status": "ok",
                    "gain_db": float(m["gain_db"][k]),
                    "ugbw_hz": float(m["ugbw_hz"][k]),
                    "pm_deg": float(m["pm_deg"][k]),
                    "pm_ocb_deg": float(m["pm_ocb_deg"][k]),
                    "inverting": bool(m["inverting"][k]),
                }
            )
        else:
            g = m["gain_db"][k]
            rows.append(
                {
                    "status": "no_crossing",
                    "gain_db": float(g) if np.isfinite(g) else None,
                    "ugbw_hz": None,
                    "pm_deg": None,
                }
            )
    return rows


# --------------------------------------------------------------------------------------------------------------
# Self checks
# --------------------------------------------------------------------------------------------------------------
def self_check() -> bool:
    ok = True
    s = 2j * np.pi * FREQS
    # 1) textbook three-pole loop, measured on the analytic H directly
    w1, w2, w3 = 2 * np.pi * np.array([1e3, 1e5, 1e8])
    H = 1000 / ((1 + s / w1) * (1 + s / w2) * (1 + s / w3))
    m = measure(H)
    print(f"3-pole: UGF {m['ugbw_hz'][0] / 1e3:.2f} kHz (expect 308.42), PM {m['pm_deg'][0]:.2f} deg (expect 17.97)")
    ok &= abs(m["ugbw_hz"][0] / 308.42e3 - 1) < 2e-3 and abs(m["pm_deg"][0] - 17.97) < 0.1
    # 2) single gm stage: H = -gm R /(1 + s R C); positive gm -> inverting
    gm = 1e-3
    circ = [[6, IN, OUT, 0, 0, gm / GM_BASIS]]
    Hc = simulate([circ])[0]
    Ha = -gm * R_LOAD / (1 + s * R_LOAD * C_LOAD)
    err = np.max(np.abs(Hc - Ha) / np.abs(Ha))
    mc = measure(Hc)
    fu = np.sqrt((gm * R_LOAD) ** 2 - 1) / (2 * np.pi * R_LOAD * C_LOAD)
    pm_exact = 180 - np.degrees(np.arctan(2 * np.pi * fu * R_LOAD * C_LOAD))
    print(
        f"1-stage: max rel err vs analytic {err:.1e}; gain {mc['gain_db'][0]:.3f} dB (expect 60.000); "
        f"UGF {mc['ugbw_hz'][0] / 1e9:.4f} GHz (expect {fu / 1e9:.4f}); "
        f"PM {mc['pm_deg'][0]:.3f} (expect {pm_exact:.3f})"
    )
    ok &= err < 1e-5 and abs(mc["gain_db"][0] - 60) < 1e-4 and abs(mc["pm_deg"][0] - pm_exact) < 0.05
    ok &= abs(mc["ugbw_hz"][0] / fu - 1) < 2e-3
    # 3) two-stage with Miller C across stage 2 (type 10) + passive R in slot C: compare to a hand-written nodal solve
    g1, g2, Cm, Rc = 1e-3, -2e-3, 200e-15, 0.5e6
    # type 11 is a negative-gm type: the stored feature is the magnitude, the sign comes from the type
    circ = [
        [6, IN, N1, 0, 0, g1 / GM_BASIS],
        [11, N1, OUT, 0, Cm / C_BASIS, abs(g2) / GM_BASIS],
        [2, N1, OUT, Rc / R_BASIS, 0, 0],
    ]
    Hc = simulate([circ])[0]
    GL, YL = 1 / R_LOAD, s * C_LOAD
    Yc = s * Cm + 1 / Rc
    # node n1: (GL+YL+Yc) V1 - Yc Vo + g1*1 = 0 ; node OUT: (GL+YL+Yc) Vo - Yc V1 + g2 V1 = 0  (g2 signed)
    a11, a12 = GL + YL + Yc, -Yc
    a21, a22 = -Yc + g2, GL + YL + Yc
    det = a11 * a22 - a12 * a21
    Vo = (-a21 * (-g1)) / det
    err = np.max(np.abs(Hc - Vo) / np.abs(Vo))
    print(f"2-stage Miller: max rel err vs hand nodal solve {err:.1e}")
    ok &= err < 1e-5
    # 4) feedback gm from OUT into 'in' is a no-op (ideal source)
    base = [[6, IN, N1, 0, 0, 10], [7, N1, OUT, 0, 0, 20]]
    Hb = simulate([base])[0]
    Hf = simulate([[*base, [9, IN, OUT, 0, 0, 50]]])[0]
    err = np.max(np.abs(Hb - Hf) / np.abs(Hb))
    print(f"feedback gm driving 'in' is a no-op: max rel diff {err:.1e}")
    ok &= err < 1e-9
    print("SELF CHECK", "PASS" if ok else "FAIL")
    return bool(ok)


# --------------------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None)
    ap.add_argument("--K", type=int, default=20, help="sizings per topology (documented: 20)")
    ap.add_argument(
        "--grid",
        default="int101",
        choices=["int101", "int100", "continuous", "cont_trunc", "cont_nozero", "loguniform", "loguniform1"],
        help="device value grid: int101 = documented k in 1..101; continuous = k in 0..1000 /10; "
        "cont_trunc = continuous then int() (0..100); cont_nozero = 0.1..100.0; loguniform(1)",
    )
    ap.add_argument("--p3", type=float, default=0.8, help="probability of a third stage")
    ap.add_argument("--p-slot", type=float, default=0.6, help="probability of each extra slot")
    ap.add_argument(
        "--pairs",
        default=None,
        choices=["one", "one_gm", "last_gm", "same"],
        help="emit circuits in pairs: second = first with one device redrawn",
    )
    ap.add_argument(
        "--select",
        default=None,
        choices=["minmax", "max", "min"],
        help="per topology simulate K sizings and keep (best, worst) FoM as a pair / only the best / only the worst",
    )
    ap.add_argument("--no-ugf-interp", action="store_true", help="UGF = last sweep point with |H|>=1")
    ap.add_argument("--self-check", action="store_true")
    a = ap.parse_args(argv)
    if a.self_check:
        return 0 if self_check() else 1
    t0 = time.time()
    m, _ = run(
        a.n,
        a.seed,
        K=a.K,
        grid=a.grid,
        p3=a.p3,
        p_slot=a.p_slot,
        pairs=a.pairs,
        ugf_interp=not a.no_ugf_interp,
        select=a.select,
    )
    rows = to_rows(m)
    dt = time.time() - t0
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if a.out:
        Path(a.out).write_text(text)
    else:
        sys.stdout.write(text)
    print(f"{a.n} circuits in {dt:.1f} s; ok fraction {np.mean(m['ok']):.4f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
