#!/usr/bin/env bash
# A Recsys cluster of separate processes on loopback: redis-server (membership table),
# N embedding silos, M front ends.
#
#   cluster-config/local.sh up   [--embedding N] [--frontend M] [--models DIR] [--dir RUN] [--redis-port P] [--port-base B] [-- extra serve options]
#   cluster-config/local.sh down [--dir RUN]
#   cluster-config/local.sh status [--dir RUN]
#
# Ports: redis P (6390), front end i HTTP B+i (8080), embedding j HTTP B+100+j; silo 11111+k,
# gateway 30000+k for the k-th process. RUN defaults to /tmp/recsys-cluster, models to RUN/models
# (the demo model is written there when empty). All silos share RUN/data, so a shard that moves to a
# survivor recovers the checkpoint its old silo wrote (see docs/DEPLOY.md). Logs and pids: RUN/.
# The recsys binary: $RECSYS (a command, e.g. "dotnet /path/recsys.dll"), else the Release or
# Debug build under src/Recsys/bin (built when missing).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

cmd="${1:-}"; shift || true
embedding=2; frontend=1; run="${TMPDIR:-/tmp}/recsys-cluster"; models=""; redis_port=6390; port_base=8080
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --embedding) embedding="$2"; shift 2 ;;
    --frontend) frontend="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --dir) run="$2"; shift 2 ;;
    --redis-port) redis_port="$2"; shift 2 ;;
    --port-base) port_base="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "local.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

recsys_command() {
  if [[ -n "${RECSYS:-}" ]]; then echo "$RECSYS"; return; fi
  for config in Release Debug; do
    dll="$repo/src/Recsys/bin/$config/net10.0/recsys.dll"
    if [[ -f "$dll" ]]; then echo "dotnet $dll"; return; fi
  done
  echo "local.sh: building src/Recsys (Release) ..." >&2
  dotnet build -c Release "$repo/src/Recsys" >&2
  echo "dotnet $repo/src/Recsys/bin/Release/net10.0/recsys.dll"
}

# Waits until URL answers 200, or the process PID dies, or SECONDS pass.
wait_http() {
  local url="$1" pid="$2" seconds="$3" name="$4"
  for ((i = 0; i < seconds * 4; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then echo "local.sh: $name (pid $pid) exited; see its log in $run" >&2; return 1; fi
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.25
  done
  echo "local.sh: $name did not answer $url within ${seconds}s" >&2
  return 1
}

up() {
  if [[ -f "$run/pids" ]]; then echo "local.sh: $run/pids exists: a cluster is up (run 'down' first)" >&2; exit 1; fi
  command -v redis-server >/dev/null || { echo "local.sh: redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
  [[ -n "$models" ]] || models="$run/models"
  mkdir -p "$run/data" "$models"
  local recsys; recsys="$(recsys_command)"
  : > "$run/pids"
  trap 'echo "local.sh: start failed, stopping what started" >&2; down' ERR

  # Foreground redis in the background of this shell (not --daemonize: its pid is the one we stop).
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$run/redis.log" 2>&1 &
  echo "redis $! $redis_port" >> "$run/pids"
  for ((i = 0; i < 40; i++)); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.25; done
  redis-cli -p "$redis_port" ping >/dev/null

  local cluster="redis://127.0.0.1:$redis_port" k=0
  common=(--cluster "$cluster" --cluster-id "local-$redis_port" --models "$models" --data "$run/data")
  # start_silo ROLE INDEX HTTP: the k-th silo of the cluster takes silo port 11111+k and gateway 30000+k.
  start_silo() {
    $recsys serve --role "$1" "${common[@]}" --port "$3" --silo-port $((11111 + k)) --gateway-port $((30000 + k)) "${extra[@]}" \
      >"$run/$1-$2.log" 2>&1 &
    echo "$1-$2 $! $3" >> "$run/pids"
    k=$((k + 1))
  }
  for ((j = 0; j < embedding; j++)); do start_silo embedding "$j" $((port_base + 100 + j)); done
  while read -r name pid http; do
    [[ "$name" == embedding-* ]] && wait_http "http://127.0.0.1:$http/v2/health/live" "$pid" 120 "$name"
  done < "$run/pids"

  for ((f = 0; f < frontend; f++)); do start_silo frontend "$f" $((port_base + f)); done
  while read -r name pid http; do
    [[ "$name" == frontend-* ]] && wait_http "http://127.0.0.1:$http/v2/health/ready" "$pid" 600 "$name"
  done < "$run/pids"
  trap - ERR
  status
}

# SIGTERM each silo (front ends first: they finish in-flight requests), wait for it, then redis.
down() {
  [[ -f "$run/pids" ]] || { echo "local.sh: no cluster recorded in $run/pids"; return 0; }
  local order=()
  while read -r name pid _; do [[ "$name" == frontend-* ]] && order+=("$pid"); done < "$run/pids"
  while read -r name pid _; do [[ "$name" == embedding-* ]] && order+=("$pid"); done < "$run/pids"
  for pid in "${order[@]}"; do stop_pid "$pid" 40; done
  while read -r name pid _; do [[ "$name" == redis ]] && stop_pid "$pid" 10; done < "$run/pids"
  rm -f "$run/pids"
  echo "local.sh: cluster stopped (logs and data stay in $run)"
}

stop_pid() {
  local pid="$1" seconds="$2"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < seconds * 4; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  echo "local.sh: pid $pid ignored SIGTERM for ${seconds}s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

status() {
  [[ -f "$run/pids" ]] || { echo "no cluster recorded in $run/pids"; return 0; }
  while read -r name pid port; do
    local state=down; kill -0 "$pid" 2>/dev/null && state=up
    if [[ "$name" == redis ]]; then echo "$name pid $pid port $port $state"
    else echo "$name pid $pid http://127.0.0.1:$port $state"; fi
  done < "$run/pids"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
