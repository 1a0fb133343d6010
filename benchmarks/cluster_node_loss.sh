#!/usr/bin/env bash
# A worker node lost mid-campaign (issue 18): the same 20-target campaign and seed run undisturbed and with
# worker node 3 killed (`local_cluster.sh kill-worker 3`) once 5 targets are done, on a head + 3 worker
# nodes of scripts/local_cluster.sh; then compares the two stores (targets met, candidates, results) and
# says where the simulations ran. Random search (no models), SQLite stores (one machine), so only the
# cluster's behaviour is measured. Run by hand; CI runs the test of the same (test_cluster_campaigns.py).
#
#   benchmarks/cluster_node_loss.sh [BUDGET [PORT]]      # defaults 300 and 35380; writes under $OUT (a temp dir)
set -u
cd "$(dirname "$0")/.."
BUDGET=${1:-300} PORT=${2:-35380}
OUT=${OUT:-$(mktemp -d /tmp/nodeloss.XXXX)}
export CKTLOOP_CLUSTER_DIR=$OUT/c RAY_AUTH_MODE=disabled
PY=.venv/bin/python
uptime
bash scripts/local_cluster.sh up --workers 3 --port "$PORT" | tail -1 || exit 1
trap 'bash scripts/local_cluster.sh down | tail -1; uptime' EXIT
$PY - "$OUT" "$BUDGET" <<'PY'
import sys, yaml
demo = yaml.safe_load(open("orchestrator/campaigns/demo.yaml"))
for name in ("calm", "killed"):
    spec = {"name": name, "budget": int(sys.argv[2]), "targets": demo["targets"][:20]}
    yaml.safe_dump(spec, open(f"{sys.argv[1]}/{name}.yaml", "w"))
PY
run() {
  $PY -m orchestrator.cli campaign run "$OUT/$1.yaml" --address "127.0.0.1:$PORT" --db "sqlite:///$OUT/$1.db" \
    --no-progress --random --workers 4 --searches-per-worker 2 --simulator-cpus 0.5
}
done_targets() {
  $PY -c "import sqlite3,sys
try: print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from campaign_targets where status='done'\").fetchone()[0])
except Exception: print(0)" "$OUT/killed.db"
}
start=$(date +%s.%N); run calm | tail -1; echo "calm: $(echo "$(date +%s.%N) - $start" | bc) s wall"
start=$(date +%s.%N); run killed >"$OUT/killed.out" 2>&1 &
driver=$!
until [[ $(done_targets) -ge 5 ]]; do sleep 0.2; done
echo "killing worker node 3 at $(done_targets) targets done, $(echo "$(date +%s.%N) - $start" | bc) s"
bash scripts/local_cluster.sh kill-worker 3
wait $driver; tail -1 "$OUT/killed.out"; echo "killed: $(echo "$(date +%s.%N) - $start" | bc) s wall"
$PY - "$OUT" <<'PY'
import sqlite3, sys
def read(db):
    c = sqlite3.connect(db)
    q = lambda sql: c.execute(sql).fetchall()
    return (
        q("select name, met, n_simulations, status from campaign_targets order by position"),
        q("select t.name, ci.key from candidates x join campaign_targets t on t.id = x.target_id"
          " join circuits ci on ci.id = x.circuit_id order by 1, 2"),
        q("select ci.key, s.status, s.gain_db, s.ugbw_hz, s.pm_deg from simulations s join circuits ci on ci.id = s.circuit_id order by 1"),
        q("select node, count(*) from simulations group by node order by 2 desc"),
    )
a, b = (read(f"{sys.argv[1]}/{n}.db") for n in ("calm", "killed"))
print(f"same targets, verdicts and simulation counts: {a[0] == b[0]}; same candidates: {a[1] == b[1]};"
      f" same results: {a[2] == b[2]}")
print(f"met {sum(r[1] for r in a[0])} / {sum(r[1] for r in b[0])}, candidates {len(a[1]):,} / {len(b[1]):,},"
      f" simulations {len(a[2]):,} / {len(b[2]):,} (calm / killed)")
print("simulations by node, calm:  ", " ".join(f"{n[:8]}:{k}" for n, k in a[3]))
print("simulations by node, killed:", " ".join(f"{n[:8]}:{k}" for n, k in b[3]))
PY
