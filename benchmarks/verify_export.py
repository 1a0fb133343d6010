"""Re-simulate exported circuits independently and compare with the stored specs.

For a random sample of an export, each circuit's netlist is run by a separate ``ngspice -b`` process
and measured by the independent implementation in ``independent_ocb.py`` (which shares no code with
CktLoop). A dataset export (``cktloop dataset export``) is netlisted by the ``cktloop netlist``
command; a campaign export (``cktloop campaign export``) carries each winner's netlist, which is run
as it stands. The stored values must agree: gain within 0.01 dB, UGBW within 0.5 %, PM within 0.5°.

    .venv/bin/python benchmarks/verify_export.py out/ocb-seed0.jsonl --n 200
    .venv/bin/python benchmarks/verify_export.py out/demo.jsonl --n 1000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from independent_ocb import measure

TOLERANCE = {"gain_db": 0.01, "ugbw_rel": 0.005, "pm_deg": 0.5}


def read_raw(path: Path) -> dict[str, np.ndarray]:
    """Vectors of an ngspice binary raw file with one complex AC plot."""
    blob = path.read_bytes()
    head, _, body = blob.partition(b"Binary:\n")
    lines = head.decode().splitlines()
    n_vars = int(next(line for line in lines if line.startswith("No. Variables:")).split(":")[1])
    n_points = int(next(line for line in lines if line.startswith("No. Points:")).split(":")[1])
    start = lines.index("Variables:") + 1
    names = [lines[start + k].split()[1] for k in range(n_vars)]
    data = np.frombuffer(body[: n_points * n_vars * 16], dtype=np.complex128).reshape(n_points, n_vars)
    return {name.lower(): data[:, k] for k, name in enumerate(names)}


def resimulate(row: dict, workdir: Path, cktloop: list[str]) -> dict:
    circuit_file = workdir / f"{row['id']}.json"
    if "netlist" in row:
        deck = row["netlist"]
    else:
        circuit_file.write_text(json.dumps(row))
        cmd = [*cktloop, "netlist", str(circuit_file)]
        deck = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    deck_file, raw_file = circuit_file.with_suffix(".cir"), circuit_file.with_suffix(".raw")
    deck_file.write_text(deck)
    subprocess.run(["ngspice", "-b", "-r", str(raw_file), str(deck_file)], capture_output=True, check=True)
    vectors = read_raw(raw_file)
    m = measure(vectors["v(out)"] / vectors["v(inp)"], vectors["frequency"].real)
    ok = bool(m["ok"][0])
    return {
        "status": "ok" if ok else "no_crossing",
        "gain_db": float(m["gain_db"][0]),
        "ugbw_hz": float(m["ugbw_hz"][0]) if ok else None,
        "pm_deg": float(m["pm_deg"][0]) if ok else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="JSONL of `cktloop dataset export` or `cktloop campaign export`")
    parser.add_argument("--n", type=int, default=200, help="circuits to check (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cktloop", default=str(Path(sys.executable).parent / "cktloop"), help="cktloop executable")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.export.read_text().splitlines()]
    if rows and "winner" in rows[0]:  # a campaign export: check every winner against its own netlist
        rows = [
            {"id": f"{r['campaign']}-{r['name']}", "netlist": r["winner"]["netlist"], **r["winner"]["measured"]}
            for r in rows
            if r.get("winner")
        ]
    sample = random.Random(args.seed).sample(rows, min(args.n, len(rows)))
    worst = {"gain_db": 0.0, "ugbw_rel": 0.0, "pm_deg": 0.0}
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in sample:
            got = resimulate(row, Path(tmp), [args.cktloop])
            if got["status"] != row["status"]:
                failures.append(f"{row['id']}: status {row['status']} stored, {got['status']} re-simulated")
                continue
            errors = {"gain_db": abs(got["gain_db"] - row["gain_db"])}
            if row["status"] == "ok":
                errors["ugbw_rel"] = abs(got["ugbw_hz"] / row["ugbw_hz"] - 1)
                errors["pm_deg"] = abs(got["pm_deg"] - row["pm_deg"])
            for name, err in errors.items():
                worst[name] = max(worst[name], err)
                if err > TOLERANCE[name]:
                    failures.append(f"{row['id']}: {name} off by {err:.4g}")
    statuses = {s: sum(r["status"] == s for r in sample) for s in {r["status"] for r in sample}}
    print(f"checked {len(sample)} circuits {statuses}")
    print(
        f"largest differences: gain {worst['gain_db']:.2e} dB, UGBW {100 * worst['ugbw_rel']:.2e} %, "
        f"PM {worst['pm_deg']:.2e} deg (tolerances 0.01 dB, 0.5 %, 0.5 deg)"
    )
    print(f"{len(sample) - len(failures)} passed, {len(failures)} failed")
    for line in failures[:20]:
        print("  " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
