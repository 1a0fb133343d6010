"""A campaign's wall time: this checkout against an older one, on the same campaign file, side by side.

    mkdir -p /tmp/old-c141696 && git archive c141696 | tar -x -C /tmp/old-c141696   # a folder nobody else writes
    .venv/bin/python benchmarks/campaign_wall_time.py /tmp/paper100.yaml --old /tmp/old-c141696 --rounds 2

Each round runs ``cktloop campaign run FILE`` once with the old code (``PYTHONPATH=OLD``, the same
Python) and once with this checkout, alternating which goes first, each into a fresh SQLite store,
with each CLI's own defaults (``--args`` adds options to both). It prints per run the process wall
time, the campaign's recorded wall time, the CPU seconds of its process tree, the targets met, the
simulations spent and the load average before and during the run (a run that fails, e.g. because Ray
did not start on an overloaded machine, is run again, and says so), then for wall time and CPU
seconds each pair's ratio (new / old), the median of those ratios and the ratio of the medians.
Run by hand; the figures are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = "import sys; from orchestrator.cli import main; sys.exit(main(sys.argv[1:]))"


TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int, seen: dict[int, float]) -> None:
    """Record the CPU seconds so far of ``root`` and every process descended from it (Ray's raylet,
    workers and actors are), by pid: a process's last reading stands once it is gone."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    for pid in tree & times.keys():
        seen[pid] = max(seen.get(pid, 0.0), times[pid])


class RunFailed(Exception):
    """A campaign run ended with a non-zero status (on an overloaded machine Ray can fail to start)."""


def run_campaign(code: Path, campaign: Path, db: Path, extra: list[str]) -> dict[str, float]:
    """One campaign run with the code at ``code``: its wall time, the CPU seconds of its whole process
    tree (sampled every 0.2 s, so a machine shared with other work can be judged by it too) and its
    verdicts, read from its store."""
    env = {**os.environ, "PYTHONPATH": str(code), "RAY_AUTH_MODE": "disabled"}
    command = [sys.executable, "-c", RUN, "campaign", "run", str(campaign), "--db", f"sqlite:///{db}", "--no-progress"]
    start = time.perf_counter()
    process = subprocess.Popen([*command, *extra], cwd=code, env=env, stdout=subprocess.DEVNULL)
    cpu: dict[int, float] = {}
    done = threading.Event()
    loads: list[float] = []

    def sample() -> None:
        while not done.wait(0.2):
            _tree_cpu(process.pid, cpu)
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample)
    sampler.start()
    status = process.wait()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if status:
        raise RunFailed(f"the campaign run with {code} failed (exit status {status})")
    with sqlite3.connect(db) as conn:
        (campaign_wall,) = conn.execute("SELECT wall_s FROM campaigns").fetchone()
        met, total, sims = conn.execute(
            "SELECT SUM(CASE WHEN met THEN 1 ELSE 0 END), COUNT(*), SUM(n_simulations) FROM campaign_targets"
        ).fetchone()
    return {
        "wall_s": wall,
        "cpu_s": sum(cpu.values()),
        "campaign_s": campaign_wall,
        "met": met,
        "targets": total,
        "simulations": sims,
        "load": statistics.mean(loads) if loads else os.getloadavg()[0],
    }


def _run_with_retries(code: Path, campaign: Path, tmp: Path, name: str, extra: list[str], tries: int = 3) -> dict:
    """``run_campaign`` into a fresh store, run again (said so) when it fails, up to ``tries`` times."""
    for attempt in range(1, tries + 1):
        load = os.getloadavg()[0]
        try:
            return {**run_campaign(code, campaign, tmp / f"{name}-{attempt}.db", extra), "load_before": load}
        except RunFailed as exc:
            print(f"{name}: {exc} at load {load:.1f} (try {attempt} of {tries})", flush=True)
    raise SystemExit(f"{name}: every try failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("campaign", type=Path, help="campaign YAML file (e.g. from `cktloop campaign draw paper`)")
    parser.add_argument("--old", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=1, help="old/new pairs, alternating which runs first")
    parser.add_argument("--args", default="", help="extra `campaign run` options for both, e.g. '--budget 500'")
    args = parser.parse_args()
    extra = args.args.split()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {time.strftime('%F %T %Z')}")
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = [("old", args.old), ("new", REPO)] if i % 2 == 0 else [("new", REPO), ("old", args.old)]
            for name, code in order:
                r = _run_with_retries(code.resolve(), args.campaign.resolve(), Path(tmp), f"{name}-{i}", extra)
                results[name].append(r)
                print(
                    f"round {i + 1} {name}: {r['wall_s']:.1f} s (campaign {r['campaign_s']:.1f} s), "
                    f"{r['cpu_s']:.0f} CPU s, {r['met']}/{r['targets']} met, {r['simulations']} simulations, "
                    f"load before {r['load_before']:.1f}, mean load during {r['load']:.1f}",
                    flush=True,
                )
    for what in ("wall_s", "cpu_s"):
        ratios = [n[what] / o[what] for o, n in zip(results["old"], results["new"])]
        old = statistics.median(r[what] for r in results["old"])
        new = statistics.median(r[what] for r in results["new"])
        print(
            f"{what}: ratio new/old per pair {', '.join(f'{r:.2f}' for r in ratios)}; median of the ratios "
            f"{statistics.median(ratios):.2f}; medians old {old:.1f}, new {new:.1f}, their ratio {new / old:.2f}"
        )


if __name__ == "__main__":
    main()
