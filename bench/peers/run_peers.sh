#!/usr/bin/env bash
# Verify imgx and the peers against the float64 reference, then time them (f32, 1 and 2 threads)
# in one run, each run started only on an idle machine. Build imgx first: cargo build --release.
# usage: PY=/path/to/venv/bin/python bench/peers/run_peers.sh [IMAGE] [OUTDIR] [REPEATS]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PY:-python3}"
IMAGE="${1:-$HERE/../../../shared/images/mandrill.tiff}"
OUT="${2:-$(mktemp -d)}"
REPEATS="${3:-3}"
mkdir -p "$OUT"
echo "output in $OUT" >&2
PEERS="${PEERS:-imgx torch jax}"
for p in $PEERS; do
  "$PY" "$HERE/${p}_inverse.py" --image "$IMAGE" --steps 200 --threads 2 --dtype f64 --warmup 3 > "$OUT/${p}_f64.jsonl"
  "$PY" "$HERE/${p}_inverse.py" --image "$IMAGE" --steps 200 --threads 2 --dtype f32 --warmup 3 > "$OUT/${p}_f32.jsonl"
done
"$PY" "$HERE/check_reference.py" "$OUT"/*_f64.jsonl "$OUT"/*_f32.jsonl
# how near each other the host placed the two vCPUs, before each timed run (needs rustc)
PROBE=()
if rustc --edition 2021 -O "$HERE/../nearness.rs" -o "$OUT/nearness" 2>/dev/null; then
  PROBE=(--probe "$OUT/nearness")
fi
"$PY" "$HERE/bench_quiet.py" --image "$IMAGE" --rounds "$REPEATS" --steps 200 --warmup 10 \
  --threads 1 2 --peers $PEERS --out "$OUT/bench_f32.jsonl" ${PROBE[@]+"${PROBE[@]}"}
