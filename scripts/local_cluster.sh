#!/usr/bin/env bash
# A multi-node Ray cluster on one machine, for tests, benchmarks and trying the cluster path.
#
#   scripts/local_cluster.sh up --workers N [--port P] [--cpus C] [--object-store-mb M] [--model-node I]
#                                            # head + N worker nodes; the last line printed is HOST:PORT
#   scripts/local_cluster.sh status          # each node: running or not, and the address
#   scripts/local_cluster.sh kill-worker I   # SIGKILL worker node I (1..N) and every process it started
#   scripts/local_cluster.sh down            # stop every node this script started
#   scripts/local_cluster.sh commands [up's options]  # print each node's port, resource and role flags
#
# Every node is its own `ray start --block` process in a session of its own (setsid), with its own
# ports (derived from --port, default 26380; the GCS is never on 6379) and its own --temp-dir under
# the state folder ($CKTLOOP_CLUSTER_DIR, default .cluster/ in the repository). `down` and
# `kill-worker` signal only the sessions recorded there: Ray instances this script did not
# start (another test's `ray.init()`, a `ray start` of your own) are never touched, and `ray stop`,
# which stops every Ray on the machine, is never called. The head records its address in its own
# temp dir, not /tmp/ray, so a plain `ray.init()` elsewhere on the machine never joins this cluster:
# connect with the printed address.
#
# Resources: `sim` = --cpus on every node, `model` = 1 on node --model-node only (default 0: the head;
# a worker node, to try losing the model actors' node with kill-worker). Ports of node i (head 0):
# GCS P (head), Ray client P+1 (head); node manager P+10+10i, object manager +1, dashboard agent
# listen +2, agent gRPC +3, metrics +4, runtime-env agent +5; worker ports P+1000+200i .. +199.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${CKTLOOP_CLUSTER_DIR:-$ROOT/.cluster}"
RAY="${CKTLOOP_RAY:-$ROOT/.venv/bin/ray}"
HOST=127.0.0.1
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0

die() { echo "local_cluster.sh: $*" >&2; exit 2; }

alive() {  # a process that is running (a zombie left unreaped by a container's init is not)
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $stat && $stat != Z* ]]
}

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# The processes of one node: its session (setsid made the `ray start` pid the session id). Ray puts
# each worker process in a process group of its own, but they stay in the node's session.
session_pids() { ps -eo pid=,sid=,stat= | awk -v s="$1" '$2 == s && $3 !~ /^Z/ { print $1 }'; }

signal_node() {  # signal, session id
  local pids
  pids=$(session_pids "$2")
  [[ -n $pids ]] || return 1
  # shellcheck disable=SC2086
  kill "-$1" $pids 2>/dev/null || true
}

gone_within() {  # session id, tenths of a second: 0 once no process of the session is left
  local i
  for ((i = 0; i < $2; i++)); do
    [[ -n $(session_pids "$1") ]] || return 0
    sleep 0.1
  done
  return 1
}

# Stop one node: SIGTERM its processes, then SIGKILL what is left after a grace period.
stop_node() {
  signal_node TERM "$1" || return 0
  gone_within "$1" $(($2 * 10)) && return 0
  signal_node KILL "$1" || return 0
  gone_within "$1" 50 || echo "local_cluster.sh: node session $1 still has processes after SIGKILL" >&2
}

node_ports() {  # node index -> the port flags of that node
  local i=$1 base=$2 n
  n=$((base + 10 + 10 * i))
  echo "--node-manager-port=$n --object-manager-port=$((n + 1)) --dashboard-agent-listen-port=$((n + 2))" \
    "--dashboard-agent-grpc-port=$((n + 3)) --metrics-export-port=$((n + 4)) --runtime-env-agent-port=$((n + 5))" \
    "--min-worker-port=$((base + 1000 + 200 * i)) --max-worker-port=$((base + 1199 + 200 * i))"
}

# The `ray start` flags of node i (0: the head) that any machine would use: ports, resources, role.
# `up` adds the flags that only one-machine clusters need (--block, --temp-dir, --node-ip-address,
# --num-cpus, --object-store-memory); `commands` prints these for comparing with ray_cluster.yaml.
node_flags() {  # index, base port, sim per node
  local i=$1 base=$2 sim=$3 resources
  resources="{\"sim\":$sim}"
  [[ $i -eq ${MODEL_NODE:-0} ]] && resources="{\"sim\":$sim,\"model\":1}"
  if [[ $i -eq 0 ]]; then
    echo "--head --port=$base --ray-client-server-port=$((base + 1)) --include-dashboard=false" \
      "--resources=$resources $(node_ports 0 "$base")"
  else
    echo "--address=$HOST:$base --resources=$resources $(node_ports "$i" "$base")"
  fi
}

start_node() {  # index, base port, cpus, object store bytes
  local i=$1 base=$2 cpus=$3 store=$4 dir="$STATE/n$1" p
  for p in $(node_ports "$i" "$base" | grep -o '=[0-9]*' | tr -d =); do
    if [[ $p -lt $((base + 1000)) ]] && port_in_use "$p"; then die "port $p (node $i) is in use; pick another --port"; fi
  done
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  setsid "$RAY" start --block --node-ip-address="$HOST" --num-cpus="$cpus" --object-store-memory="$store" \
    --temp-dir="$dir" --disable-usage-stats $(node_flags "$i" "$base" "$cpus") \
    >"$dir/start.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

# Nodes alive according to the GCS (a short Python call; the CLI's `ray status` needs the autoscaler).
count_alive() {
  "$ROOT/.venv/bin/python" - "$HOST:$1" <<'EOF' 2>/dev/null || echo 0
import sys
from ray._raylet import GcsClient
nodes = GcsClient(address=sys.argv[1]).get_all_node_info(timeout=5)
print(sum(1 for n in nodes.values() if n.state == 0))  # GcsNodeInfo.ALIVE
EOF
}

parse_options() {  # sets WORKERS, BASE, CPUS, STORE_MB, MODEL_NODE
  WORKERS=2 BASE=26380 CPUS=1 STORE_MB=100 MODEL_NODE=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --workers) WORKERS=${2:-}; shift 2 || shift ;;
      --port) BASE=${2:-}; shift 2 || shift ;;
      --cpus) CPUS=${2:-}; shift 2 || shift ;;
      --object-store-mb) STORE_MB=${2:-}; shift 2 || shift ;;
      --model-node) MODEL_NODE=${2:-}; shift 2 || shift ;;
      *) die "unknown option $1 (--workers N, --port P, --cpus C, --object-store-mb M, --model-node I)" ;;
    esac
  done
  [[ $WORKERS =~ ^[0-9]+$ ]] || die "--workers must be an integer >= 0, got '$WORKERS'"
  [[ $BASE =~ ^[0-9]+$ && $BASE -ge 1024 && $BASE -le 60000 && $BASE -ne 6379 ]] \
    || die "--port must be an integer in 1024..60000 other than 6379, got '$BASE'"
  [[ $((BASE + 1199 + 200 * WORKERS)) -le 65535 ]] || die "--port $BASE leaves no room for the worker ports of $WORKERS nodes"
  [[ $CPUS =~ ^[0-9]+$ && $CPUS -ge 1 ]] || die "--cpus must be an integer >= 1, got '$CPUS'"
  [[ $STORE_MB =~ ^[0-9]+$ && $STORE_MB -ge 80 ]] || die "--object-store-mb must be an integer >= 80, got '$STORE_MB'"
  [[ $MODEL_NODE =~ ^[0-9]+$ && $MODEL_NODE -le $WORKERS ]] \
    || die "--model-node must be a node index in 0..$WORKERS (0: the head), got '$MODEL_NODE'"
}

cmd_commands() {  # the machine-independent flags of every node, one line each
  local i
  parse_options "$@"
  for ((i = 0; i <= WORKERS; i++)); do
    echo "ray start $(node_flags "$i" "$BASE" "$CPUS")"
  done
}

cmd_up() {
  local workers base cpus store_mb i want
  parse_options "$@"
  workers=$WORKERS base=$BASE cpus=$CPUS store_mb=$STORE_MB
  if [[ -f $STATE/address ]]; then
    for f in "$STATE"/n*/pid; do
      [[ -f $f ]] && alive "$(cat "$f")" && die "a cluster is already up at $(cat "$STATE/address") (run down first)"
    done
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE"
  echo "$workers" >"$STATE/workers"
  echo "$MODEL_NODE" >"$STATE/model_node"
  local bytes=$((store_mb * 1024 * 1024))
  # The GCS must be up before the workers join. On a loaded machine a head can give up during start-up
  # (its own processes not answering in Ray's fixed time): it is started once more.
  await_head "$base" "$cpus" "$bytes" || await_head "$base" "$cpus" "$bytes" \
    || die "the head failed to start (twice); see $STATE/n0/start.log"
  echo "$HOST:$base" >"$STATE/address"
  # One node at a time, each awaited: on a loaded machine a raylet that cannot register with the GCS
  # within Ray's fixed 30 s gives up, so a node whose `ray start` died is started again (3 tries), after
  # what it left behind is stopped.
  for ((i = 1; i <= workers; i++)); do
    await_node "$i" "$base" "$cpus" "$bytes" || await_node "$i" "$base" "$cpus" "$bytes" \
      || await_node "$i" "$base" "$cpus" "$bytes" || die "worker node $i did not come up (3 tries); see $STATE/n$i/start.log*"
  done
  want=$((workers + 1))
  echo "$want nodes up (head + $workers workers; model on node $MODEL_NODE)"
  cat "$STATE/address"
}

await_head() {  # base port, cpus, object store bytes: start the head and wait until its GCS port listens
  local i
  [[ -f $STATE/n0/start.log ]] && mv "$STATE/n0/start.log" "$STATE/n0/start.log.1"
  start_node 0 "$@"
  for ((i = 0; i < 1200; i++)); do
    port_in_use "$1" && return 0
    if ! alive "$(cat "$STATE/n0/pid")"; then
      echo "local_cluster.sh: the head exited during start-up" >&2
      stop_node "$(cat "$STATE/n0/pid")" 5  # whatever it started and left behind
      return 1
    fi
    sleep 0.1
  done
  stop_node "$(cat "$STATE/n0/pid")" 5
  return 1
}

await_node() {  # index, base port, cpus, object store bytes: start worker node i and wait until it is alive
  local i=$1 t
  [[ -f $STATE/n$i/start.log ]] && mv "$STATE/n$i/start.log" "$STATE/n$i/start.log.$(date +%s)"
  start_node "$@"
  for ((t = 0; t < 120; t++)); do
    [[ $(count_alive "$2") -ge $((i + 1)) ]] && return 0
    if ! alive "$(cat "$STATE/n$i/pid")"; then
      echo "local_cluster.sh: worker node $i exited during start-up" >&2
      stop_node "$(cat "$STATE/n$i/pid")" 5  # whatever it started and left behind, holding its ports
      return 1
    fi
    sleep 1
  done
  stop_node "$(cat "$STATE/n$i/pid")" 5
  return 1
}

cmd_status() {
  [[ -f $STATE/address ]] || { echo "no cluster (state folder $STATE)"; return 0; }
  local f pid i
  for f in "$STATE"/n*/pid; do
    pid=$(cat "$f"); i=$(basename "$(dirname "$f")"); i=${i#n}
    if alive "$pid"; then echo "node $i: running (session $pid, $(session_pids "$pid" | wc -l) processes)"
    else echo "node $i: stopped"; fi
  done
  [[ -f $STATE/model_node ]] && echo "model on node $(cat "$STATE/model_node")"
  echo "alive in the GCS: $(count_alive "$(cut -d: -f2 "$STATE/address")")"
  cat "$STATE/address"
}

cmd_kill_worker() {
  local i=${1:-}
  [[ $i =~ ^[0-9]+$ && $i -ge 1 ]] || die "kill-worker takes a worker index >= 1, got '$i'"
  [[ -f $STATE/n$i/pid ]] || die "no worker node $i in $STATE"
  local pid
  pid=$(cat "$STATE/n$i/pid")
  signal_node KILL "$pid" || die "worker node $i (session $pid) is not running"
  gone_within "$pid" 50 || true
  echo "killed worker node $i (session $pid)"
}

cmd_down() {
  [[ -d $STATE ]] || { echo "no cluster (state folder $STATE)"; return 0; }
  local f sid
  # The workers first, all at once (each given 10 s to stop, then killed), the head last.
  for f in "$STATE"/n[1-9]*/pid; do [[ -f $f ]] && { signal_node TERM "$(cat "$f")" || true; }; done
  for f in "$STATE"/n[1-9]*/pid; do
    [[ -f $f ]] || continue
    sid=$(cat "$f")
    gone_within "$sid" 100 || stop_node "$sid" 0
  done
  [[ -f $STATE/n0/pid ]] && stop_node "$(cat "$STATE/n0/pid")" 10
  # The sockets the nodes left: `ray up` reads every file under the checkout (to hash its file mounts) and
  # fails on a socket, and .cluster/ is under the checkout by default. The logs stay.
  find "$STATE" -type s -delete 2>/dev/null || true
  rm -f "$STATE/address"
  echo "down"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill-worker) shift; cmd_kill_worker "$@" ;;
  commands) shift; cmd_commands "$@" ;;
  *) die "usage: local_cluster.sh up --workers N [--port P] [--cpus C] [--object-store-mb M] [--model-node I] | down | status | kill-worker I | commands [up's options]" ;;
esac
