"""Re-simulate a design job's winners independently: each netlist the service returned is run by a
separate ``ngspice -b`` process and measured by ``independent_ocb.py`` (no CktLoop code), then compared
with the ``measured`` specs the service returned: gain within 0.01 dB, UGBW within 0.5 %, PM within 0.5°.

    curl -s http://127.0.0.1:8000/v1/designs/1 > job.json
    .venv/bin/python benchmarks/verify_design_job.py job.json

or let it submit and poll the job itself with curl:

    .venv/bin/python benchmarks/verify_design_job.py --url http://127.0.0.1:8000 --submit job-request.json

Exit status 0 when every winner agrees (and at least one target has a winner), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from verify_export import TOLERANCE, resimulate


def curl(*args: str) -> Any:
    """One curl call (failing on HTTP errors), its JSON answer."""
    out = subprocess.run(["curl", "-sS", "--fail-with-body", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"curl {' '.join(args)}: {out.stdout.strip() or out.stderr.strip()}")
    return json.loads(out.stdout)


def run_job(url: str, request: Path, timeout_s: float, token: str | None) -> dict[str, Any]:
    """Submit ``request`` (a design-job JSON file) with curl, poll it until it ends; the final answer."""
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    headers = ["-H", "Content-Type: application/json", *auth]
    job_id = curl("-X", "POST", *headers, "--data-binary", f"@{request}", f"{url}/v1/designs")["id"]
    deadline = time.monotonic() + timeout_s
    while True:
        job = curl(*auth, f"{url}/v1/designs/{job_id}")
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {job['status']} after {timeout_s:g} s")
        time.sleep(2)


def check(job: dict[str, Any]) -> tuple[list[str], dict[str, float], int]:
    """Failures, the largest differences, and how many winners were checked."""
    worst = {"gain_db": 0.0, "ugbw_rel": 0.0, "pm_deg": 0.0}
    failures: list[str] = []
    winners = [t for t in job["targets"] if t.get("netlist")]
    with tempfile.TemporaryDirectory() as tmp:
        for k, target in enumerate(winners):
            stored = target["measured"]
            got = resimulate({"id": f"t{k}", "netlist": target["netlist"]}, Path(tmp), [])
            if got["status"] != stored["status"]:
                failures.append(f"{target['name']}: status {stored['status']} returned, {got['status']} re-simulated")
                continue
            errors = {"gain_db": abs(got["gain_db"] - stored["gain_db"])}
            if stored["status"] == "ok":
                errors["ugbw_rel"] = abs(got["ugbw_hz"] / stored["ugbw_hz"] - 1)
                errors["pm_deg"] = abs(got["pm_deg"] - stored["pm_deg"])
            for name, err in errors.items():
                worst[name] = max(worst[name], err)
                if err > TOLERANCE[name]:
                    failures.append(f"{target['name']}: {name} off by {err:.4g}")
    return failures, worst, len(winners)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", nargs="?", type=Path, help="a GET /v1/designs/{id} answer (JSON file)")
    parser.add_argument("--url", help="the service's base URL, to submit and poll with curl")
    parser.add_argument("--submit", type=Path, help="a design-job request (JSON file) to submit to --url")
    parser.add_argument("--token", help="API token, when the service needs one")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job (default 1800)")
    parser.add_argument("--save", type=Path, help="write the job's final answer here")
    args = parser.parse_args()
    if args.submit:
        if not args.url:
            parser.error("--submit needs --url")
        job = run_job(args.url.rstrip("/"), args.submit, args.timeout, args.token)
    elif args.job:
        job = json.loads(args.job.read_text())
    else:
        parser.error("give a job answer file, or --url and --submit")
    if args.save:
        args.save.write_text(json.dumps(job, indent=1))
    failures, worst, checked = check(job)
    met = sum(bool(t.get("met")) for t in job["targets"])
    print(
        f"job {job['id']} {job['status']}: {met} of {len(job['targets'])} targets met; {checked} winners re-simulated"
    )
    print(
        f"largest differences: gain {worst['gain_db']:.2e} dB, UGBW {100 * worst['ugbw_rel']:.2e} %, "
        f"PM {worst['pm_deg']:.2e} deg (tolerances 0.01 dB, 0.5 %, 0.5 deg)"
    )
    print(f"{checked - len(failures)} passed, {len(failures)} failed")
    for line in failures:
        print("  " + line)
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
