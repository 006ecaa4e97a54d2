#!/usr/bin/env bash
# Verify both peers against the float64 reference, then time them (f32, 1 and 2 threads).
# usage: PY=/path/to/venv/bin/python bench/peers/run_peers.sh [IMAGE] [OUTDIR] [REPEATS]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PY:-python3}"
IMAGE="${1:-$HERE/../../../shared/images/mandrill.tiff}"
OUT="${2:-$(mktemp -d)}"
REPEATS="${3:-3}"
mkdir -p "$OUT"
echo "output in $OUT" >&2
for p in torch jax; do
  "$PY" "$HERE/${p}_inverse.py" --image "$IMAGE" --steps 200 --threads 2 --dtype f64 --warmup 3 > "$OUT/${p}_f64.jsonl"
  "$PY" "$HERE/${p}_inverse.py" --image "$IMAGE" --steps 200 --threads 2 --dtype f32 --warmup 3 > "$OUT/${p}_f32.jsonl"
done
"$PY" "$HERE/check_reference.py" "$OUT"/torch_f64.jsonl "$OUT"/jax_f64.jsonl "$OUT"/torch_f32.jsonl "$OUT"/jax_f32.jsonl
"$PY" "$HERE/bench_quiet.py" --image "$IMAGE" --rounds "$REPEATS" --steps 200 --warmup 10 \
  --threads 1 2 --peers torch jax --out "$OUT/bench_f32.jsonl"
