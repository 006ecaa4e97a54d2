#!/usr/bin/env bash
# Step time and peak memory of the inverse problem at n = 256 … 4096 (f32), with 1 and 2
# threads: median ms per Adam step (from imgx's own --json), the ratio to the previous size
# (n³ predicts 8), and peak RSS with bytes per pixel. Build first: cargo build --release.
# usage: bench/scaling.sh [SIZES…]   (default 256 512 1024 2048 4096)
set -euo pipefail
cd "$(dirname "$0")/.."
IMGX=${IMGX:-target/release/imgx}
SIZES=${*:-256 512 1024 2048 4096}
printf "%-6s %-8s %12s %8s %12s %14s\n" size threads ms/step ratio "peak MiB" "bytes/pixel"
for t in 1 2; do
  prev=""
  for n in $SIZES; do
    steps=$(( n >= 4096 ? 5 : (n >= 2048 ? 9 : 30) ))
    log=$(mktemp)
    /usr/bin/time -f "%M" -o "$log" "$IMGX" run bench/scaling.imgx --json --quiet --threads "$t" \
      --set size="$n" --set n_steps="$steps" --out "$(mktemp -d)" > "$log.json"
    ms=$(python3 -c "import json,sys; print([json.loads(l) for l in open('$log.json') if 'optimized' in l][0]['median_step_ms'])")
    kib=$(tail -1 "$log")
    ratio=$( [ -n "$prev" ] && python3 -c "print(f'{$ms/$prev:.2f}')" || echo "-")
    printf "%-6s %-8s %12.3f %8s %12.1f %14.1f\n" "$n" "$t" "$ms" "$ratio" "$(echo "$kib/1024" | bc -l)" "$(echo "$kib*1024/($n*$n)" | bc -l)"
    prev=$ms
  done
done
