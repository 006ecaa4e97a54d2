#!/usr/bin/env python3
"""Step time and peak memory of the poster's inverse problem (bench/scaling.imgx, f32, a
generated input) at n = 256 … 4096, with 1 and 2 threads, on a shared, noisy machine.

A step is about 3·n³ multiply-adds (the forward's half product and the backward's whole one)
plus passes over n² entries, so each doubling of n should multiply the step time by about 8.
One run per size is not enough to see that here: the host's other guests slow a run for
seconds at a time, and a doubling's ratio divides two runs. So the sizes are taken in turn in
each of several rounds, each run started only when the machine is idle and tagged with the
CPU that other processes (and the host, as steal time) used meanwhile, as bench/e2e.py and
bench/peers/bench_quiet.py do. Runs where they used more than --max-foreign cores are left
out of the medians.

Per size and thread count it prints the median over clean runs of imgx's own median ms per
step (`--json`), the ratio of those medians to the size before, the range of the ratios of
the rounds in which both sizes ran clean, and the peak RSS (the largest of the runs, with
bytes per pixel). Build first: cargo build --release.

usage: python3 bench/scaling.py [--sizes 256 512 1024 2048 4096] [--threads 1 2]
                                [--rounds 5] [--bin target/release/imgx]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
from bench_quiet import timed, wait_idle  # noqa: E402

# steps per run: enough for a median, few at the sizes where a step takes a second
STEPS = {4096: 7, 2048: 15}
# a doubling to 1024² or more within 8 ± 15% meets the project's target (from 256², the
# passes over n² entries and the per-step overheads are too large a share for n³)
LOW, HIGH, TARGET_FROM = 8 * 0.85, 8 * 1.15, 1024


def run(imgx, n, threads):
    """(median ms per step, peak RSS in bytes) of one run at size n."""
    with tempfile.TemporaryDirectory(prefix="imgx-scaling-") as out:
        p = subprocess.Popen([imgx, "run", os.path.join(HERE, "scaling.imgx"), "--json", "--quiet",
                              "--threads", str(threads), "--set", f"size={n}",
                              "--set", f"n_steps={STEPS.get(n, 30)}", "--out", out],
                             stdout=subprocess.PIPE, text=True)
        events = [json.loads(line) for line in p.stdout]
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{imgx} failed at n = {n}, {threads} thread(s)")
    ms = next(e["median_step_ms"] for e in events if e["event"] == "optimized")
    return ms, usage.ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "imgx"))
    ap.add_argument("--max-foreign", type=float, default=0.05)
    a = ap.parse_args()
    # runs[t][n]: one (ms, rss, clean) per round
    runs = {t: {n: [] for n in a.sizes} for t in a.threads}
    for rnd in range(a.rounds):
        for t in a.threads:
            for n in a.sizes:
                wait_idle()
                (ms, rss), _, foreign = timed(lambda: run(a.bin, n, t))
                clean = foreign < a.max_foreign
                runs[t][n].append((ms, rss, clean))
                print(f"round {rnd} n={n} threads={t}: {ms:.3f} ms/step, {rss / 2**20:.1f} MiB, "
                      f"other processes used {foreign:.2f} cores" + ("" if clean else " (left out)"),
                      file=sys.stderr)
    print(f"\nmedians of clean runs ({a.rounds} rounds; a doubling within "
          f"{LOW:.1f}–{HIGH:.1f} meets 8× ± 15%)")
    print(f"{'size':>6} {'threads':>7} {'ms/step':>10} {'ratio':>7} {'round ratios':>14} "
          f"{'clean':>6} {'peak MiB':>9} {'bytes/px':>9}")
    within = total = 0
    for t in a.threads:
        prev = None
        for n in a.sizes:
            rs = runs[t][n]
            clean = [ms for ms, _, ok in rs if ok]
            med = statistics.median(clean) if clean else None
            peak = max(rss for _, rss, _ in rs)
            ratio = spread = ""
            if med is not None and prev is not None and prev[1] is not None:
                r = med / prev[1]
                ratio = f"{r:.2f}"
                if n >= TARGET_FROM:
                    total += 1
                    within += LOW <= r <= HIGH
                pairs = [x[0] / y[0] for x, y in zip(rs, runs[t][prev[0]]) if x[2] and y[2]]
                if pairs:
                    spread = f"{min(pairs):.2f}–{max(pairs):.2f}"
            shown = f"{med:.3f}" if med is not None else "-"
            print(f"{n:>6} {t:>7} {shown:>10} {ratio or '-':>7} {spread or '-':>14} "
                  f"{len(clean):>3}/{len(rs):<2} {peak / 2**20:>9.1f} {peak / (n * n):>9.1f}")
            prev = (n, med)
    print(f"\n{within} of {total} doublings to {TARGET_FROM}² or more within 8× ± 15%")


if __name__ == "__main__":
    main()
