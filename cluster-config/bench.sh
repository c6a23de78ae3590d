#!/usr/bin/env bash
# Same ranking load on 1 process (role all) vs 1 front end + 2 embedding silos (local.sh), back to back.
#   cluster-config/bench.sh [rounds]   (env: RECSYS = server command, BENCH = client command with the `bench` verb,
#                                       QPS_ARGS = extra bench args, OUT = results dir)
# Prints the bench reports and lookup payload bytes per request from the front end's /metrics, plus
# the TCP bytes the front end received from the embedding silos (ss counters) per request.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rounds="${1:-1}"
RECSYS="${RECSYS:-dotnet $here/../src/Recsys/bin/Release/net10.0/recsys.dll}"
BENCH="${BENCH:-$RECSYS}"
OUT="${OUT:-/tmp/recsys-bench-cluster}"
MODE_ARGS="${MODE_ARGS:-capacity --sla-ms 100 --start-qps 40 --step-duration 5s --max-steps 8 --batch-dist fixed:64}"
# Unmeasured traffic first: JIT, connections and shard caches of fresh processes.
WARM_ARGS="${WARM_ARGS:-load --qps 40 --duration 10s --warmup 0s --batch-dist fixed:64}"
mkdir -p "$OUT"
models="$OUT/models"
[[ -f "$models/demo/1/model.json" ]] || $RECSYS demo-model --out "$models" --name demo --preset kaggle-small >/dev/null

metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 ~ "^"m"[{ ]" || $1 == m {s += $2} END {printf "%.0f\n", s}'; }
requests() { curl -s "$1/metrics" | awk '$1 ~ /^recsys_requests_total/ {s += $2} END {printf "%.0f\n", s}'; }

# Bytes received by PID's sockets from the given remote ports (ss -tinp counters).
tcp_in() {
  local pid="$1"; shift
  local ports="$*"
  ss -tinp 2>/dev/null | awk -v pid="pid=$pid," -v ports=" $ports " '
    /^ESTAB/ { split($5, a, ":"); port = a[length(a)]; keep = (index($0, pid) > 0 && index(ports, " " port " ") > 0); next }
    keep { if (match($0, /bytes_received:[0-9]+/)) { s += substr($0, RSTART + 15, RLENGTH - 15) } keep = 0 }
    END { printf "%.0f\n", s }'
}

run_single() {
  local url=http://127.0.0.1:8090
  $RECSYS serve --models "$models" --data "$OUT/data-single" --port 8090 --silo-port 12111 --gateway-port 32111 >"$OUT/single.log" 2>&1 &
  local pid=$!
  until curl -fs -o /dev/null "$url/v2/health/ready"; do kill -0 $pid || { cat "$OUT/single.log"; exit 1; }; sleep 0.5; done
  $BENCH bench $WARM_ARGS --url "$url" --model demo --models "$models" --quiet >/dev/null
  $BENCH bench $MODE_ARGS --url "$url" --model demo --models "$models" --quiet | tee "$OUT/single-$1.txt"
  kill -TERM $pid; wait $pid || true
}

run_cluster() {
  local url=http://127.0.0.1:8300
  "$here/local.sh" up --embedding 2 --frontend 1 --models "$models" --dir "$OUT/cluster" --port-base 8300 --redis-port 6391 >/dev/null
  local fe; fe=$(awk '$1=="frontend-0"{print $2}' "$OUT/cluster/pids")
  $BENCH bench $WARM_ARGS --url "$url" --model demo --models "$models" --quiet >/dev/null
  local r0 b0 t0; r0=$(requests $url); b0=$(metric $url recsys_lookup_bytes_received_total); t0=$(tcp_in "$fe" 11111 11112)
  $BENCH bench $MODE_ARGS --url "$url" --model demo --models "$models" --quiet | tee "$OUT/cluster-$1.txt"
  local r1 b1 t1; r1=$(requests $url); b1=$(metric $url recsys_lookup_bytes_received_total); t1=$(tcp_in "$fe" 11111 11112)
  echo "cluster round $1: $((r1 - r0)) requests; lookup payload received $(( (b1 - b0) / (r1 - r0 > 0 ? r1 - r0 : 1) )) B/request; TCP from embedding silos $(( (t1 - t0) / (r1 - r0 > 0 ? r1 - r0 : 1) )) B/request" | tee -a "$OUT/cluster-$1.txt"
  "$here/local.sh" down --dir "$OUT/cluster" >/dev/null
}

for ((r = 1; r <= rounds; r++)); do
  echo "=== round $r: single process"; run_single "$r"
  echo "=== round $r: 1 front end + 2 embedding silos"; run_cluster "$r"
done
