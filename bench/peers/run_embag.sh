#!/bin/sh
# Back-to-back embedding-bag comparison: C gather limit, ours, PyTorch; ROUNDS rounds, one thread each.
# Usage (from the repository root): sh bench/peers/run_embag.sh [ROUNDS=3] [LOG=/tmp/embag-bench/run.log]
# Builds gather_cpu (a copy of /work/shared/baselines/gather.c that also reports CPU-time rates) and the
# Release bench; every RESULT line goes to LOG. Tables: 16,777,216 rows x D=64 (4 GiB as fp32) in every
# format, huge pages advised, uniform random ids, 16384 bags per batch.
set -e
ROUNDS=${1:-3}
LOG=${2:-${TMPDIR:-/tmp}/embag-bench/run.log}
OUT=${TMPDIR:-/tmp}/embag-bench
mkdir -p "$OUT" "$(dirname "$LOG")"
gcc -O3 -march=native -fopenmp bench/peers/gather_cpu.c -o "$OUT/gather_cpu"
# the same kernels as a library, run inside the C# bench batch by batch against ours (RATIO lines)
gcc -O3 -march=native -shared -fPIC -DGATHER_LIB bench/peers/gather_cpu.c -o "$OUT/gather.so"
dotnet build -c Release bench/Recsys.Benchmarks -v q -nologo >/dev/null
BIN=bench/Recsys.Benchmarks/bin/Release/net10.0/Recsys.Benchmarks
: > "$LOG"
for r in $(seq 1 "$ROUNDS"); do
  echo "ROUND $r $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
  OMP_NUM_THREADS=1 "$OUT/gather_cpu" f32 64 1 1 1,20,80 16,32 4 16384 12 | sed 's/^/C /' | tee -a "$LOG"
  # int8 rows: same row count as the fp32 table (16,777,216 x 72 B = 1.125 GiB)
  OMP_NUM_THREADS=1 "$OUT/gather_cpu" i8 64 1 1 1,20,80 16,32 1.125 16384 12 | sed 's/^/C /' | tee -a "$LOG"
  "$BIN" embag --gib 4 --p 1,20,80 --pf 16,32 --batches 12 --peer "$OUT/gather.so" | sed 's/^/CS /' | tee -a "$LOG"
  env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/peers/torch_embag.py --gib 4 --formats fp32,fp16 --p 20,80 --batches 12 --huge 1 | sed 's/^/PT /' | tee -a "$LOG"
  env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/peers/torch_embag.py --gib 4 --formats fp32 --p 20,80 --batches 12 --huge 0 | sed 's/^/PT /' | tee -a "$LOG"
  env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/peers/torch_embag.py --gib 4 --formats int8,int4 --p 20,80 --batches 4 --huge 1 | sed 's/^/PT /' | tee -a "$LOG"
done
echo "DONE $(date -u +%H:%M:%S)" | tee -a "$LOG"
