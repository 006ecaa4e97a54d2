#!/usr/bin/env python3
"""End to end: `imgx run examples/inverse.imgx` on an image (load, 227 steps, every output:
GIF, plot, checkpoint, PNGs, npy, manifest), wall time per run on a shared, noisy machine.

Each run starts only when the machine is idle and is tagged with the CPU other processes
(and the host, as steal time) used meanwhile; runs where they used more than --max-foreign
cores are left out of the median.  Several binaries are taken in turn in each round (an A/B
in one run).

Each run also says where its time went, from the times its `--json` events arrive: "outside"
is the run but for its optimisation's loop (start-up, the target, and every output after the
loop), "loop extra" is the loop beyond its steps (the median step times the steps: the frames
recorded between steps, and steps slower than the median).

usage: python3 bench/e2e.py --image ../shared/images/mandrill.tiff [--rounds 7]
                            [--threads 2] [--bin target/release/imgx ...]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
from bench_quiet import timed, wait_idle  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", nargs="+", default=[os.path.join(HERE, "..", "target", "release", "imgx")])
    ap.add_argument("--script", default=os.path.join(HERE, "..", "examples", "inverse.imgx"))
    ap.add_argument("--max-foreign", type=float, default=0.05)
    a = ap.parse_args()
    image = os.path.abspath(a.image)
    walls = {b: [] for b in a.bin}
    splits = {b: ([], []) for b in a.bin}
    for rnd in range(a.rounds):
        for b in a.bin:
            out = tempfile.mkdtemp(prefix="imgx-e2e-")
            wait_idle()

            def one_run():
                start = time.time()
                run = subprocess.Popen([b, "run", a.script, "--set", f"image={image}", "--threads",
                                        str(a.threads), "--json", "--out", out],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                first = looped = None
                for line in run.stdout:
                    event = json.loads(line)
                    if first is None:
                        first = time.time()
                    if event["event"] == "optimized":
                        looped = time.time()
                        steps_ms = event["steps"] * event["median_step_ms"]
                if run.wait() != 0:
                    sys.exit(f"{b} failed")
                # the run but for its loop, and the loop beyond its steps
                return (time.time() - start) - (looped - first), (looped - first) - steps_ms / 1e3

            (outside, extra), wall, foreign = timed(one_run)
            shutil.rmtree(out)
            clean = foreign < a.max_foreign
            if clean:
                walls[b].append(wall)
                splits[b][0].append(outside)
                splits[b][1].append(extra)
            print(f"round {rnd} {b}: {wall:.3f} s wall (outside the loop {outside:.3f} s, loop "
                  f"extra {extra:.3f} s), other processes used {foreign:.2f} cores"
                  + ("" if clean else " (left out)"), file=sys.stderr)
    print(f"\nend to end, --threads {a.threads}, median of clean runs:")
    for b, w in walls.items():
        med = f"{statistics.median(w):.3f} s" if w else "no clean run"
        print(f"  {b}: {med} ({', '.join('%.3f' % x for x in w)})")
        if w:
            outside, extra = splits[b]
            print(f"    outside the loop {statistics.median(outside):.3f} s, loop extra "
                  f"{statistics.median(extra):.3f} s")


if __name__ == "__main__":
    main()
