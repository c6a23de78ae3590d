#!/usr/bin/env bash
# Drives one running server with wrk and with `recsys bench load`, back to back, REPS times, on
# the same request bodies, and prints each client's throughput, latency and its own CPU time per
# request — the client's overhead. wrk's is user+sys of the whole process (/usr/bin/time; a C
# program has no warm-up to speak of); recsys reports its own process CPU time over the
# measured window (after a 3 s warm-up, so the JIT is not in it).
#
# wrk is closed-loop (CONNS requests always outstanding, so it runs at whatever rate the server
# allows); recsys bench is open-loop, and an open loop at a closed loop's saturated rate queues
# without bound. So recsys runs at FRACTION of the rate wrk just achieved, with evenly spaced
# arrivals: the latencies are of two different experiments, the CPU per request is comparable.
#
# usage: bench/wrk/compare.sh URL MODEL MODELS_DIR [CONNS=4] [SECONDS=15] [REPS=3] [BATCH=fixed:16] [FRACTION=0.5]
#   RECSYS="dotnet src/Recsys/bin/Release/net10.0/recsys.dll" bench/wrk/compare.sh http://127.0.0.1:8080 demo models
set -euo pipefail
url=${1:?URL}; model=${2:?MODEL}; models=${3:?MODELS_DIR}
conns=${4:-4}; seconds=${5:-15}; reps=${6:-3}; batch=${7:-fixed:16}; fraction=${8:-0.5}
recsys=${RECSYS:-recsys}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

$recsys bench load --url "$url" --model "$model" --models "$models" --batch-dist "$batch" --distinct-bodies 64 --save-bodies "$work/bodies" >/dev/null

printf '%-6s %-7s %9s %9s %9s %9s %12s\n' rep client rps p50_ms p99_ms errors cpu_us/req
for rep in $(seq 1 "$reps"); do
  /usr/bin/time -o "$work/wrk.time" -f '%U %S' \
    wrk -t1 -c"$conns" -d"${seconds}s" -s "$here/rank.lua" "$url/v1/models/$model/rank" -- "$work/bodies" 64 > "$work/wrk.out"
  rps=$(awk '/^rps /{print $2}' "$work/wrk.out")
  requests=$(awk '/^requests /{gsub(",","",$2); print $2}' "$work/wrk.out")
  errors=$(awk '/^requests /{gsub(",","",$4); print $4}' "$work/wrk.out")
  read -r p50 p99 < <(awk '/^latency ms/{print $4, $8}' "$work/wrk.out")
  cpu=$(awk -v n="$requests" '{printf "%.1f", ($1+$2)*1e6/n}' "$work/wrk.time")
  printf '%-6s %-7s %9.1f %9s %9s %9s %12s\n' "$rep" wrk "$rps" "$p50" "$p99" "$errors" "$cpu"

  $recsys bench load --url "$url" --model "$model" --models "$models" --batch-dist "$batch" --distinct-bodies 64 \
      --qps "$(awk -v r="$rps" -v f="$fraction" 'BEGIN{printf "%.1f", r*f}')" --arrivals fixed --duration "${seconds}s" --warmup 3s --json --quiet > "$work/recsys.json"
  python3 - "$work/recsys.json" "$rep" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
server = (r.get("server") or {}).get("stages", {}).get("total", {}).get("mean_ms", float("nan"))
print(f'{sys.argv[2]:<6} {"recsys":<7} {r["qps"]:9.1f} {r["p50"]:9.3f} {r["p99"]:9.3f} {r["error_count"]:9d} {r["client_cpu_us_per_request"]:12.1f}   server total mean {server:.1f} ms, client lag p99 {r["client_lag_p99_ms"]:.1f} ms')
PY
done
