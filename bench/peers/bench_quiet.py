#!/usr/bin/env python3
"""Time the peers (f32) on a shared, noisy machine: one run at a time, each started only
when the machine is idle, and each run tagged with how much CPU other processes used
while it ran (from /proc/stat minus the run's own rusage, plus the steal time the host
took from this VM).  Runs where others used
more than --max-foreign (cores on average) are reported but left out of the medians.
With --probe (bench/nearness.rs, compiled), each run is also tagged with how near each other
the host had placed the two vCPUs just before it (a cache line's round trip in ns; the
placement can change during a run), and the summary gives medians by placement, found in the
run's own round trips (see placements()).

usage: python3 bench_quiet.py --image IMG [--rounds 5] [--steps 200] [--warmup 10]
                              [--threads 1 2] [--peers torch jax] [--out runs.jsonl]
                              [--probe /tmp/nearness]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def placements(trips_ns, gap=1.5):
    """The host's placements of the two vCPUs seen in a run, from bench/nearness.rs's round
    trips (ns): the sorted trips cut wherever one is at least `gap` times the one before, as
    [(least ns, most ns)], nearest first. What a round trip means depends on the machine (on
    the AMD EPYC about 30 ns was one core's two hardware threads, 70 cores sharing an L3 cache
    and 410 cores that do not; on the Intel Xeon all read 115-155 ns), so the states are the
    clusters a run finds, not fixed thresholds."""
    trips = sorted(trips_ns)
    states = [[trips[0], trips[0]]] if trips else []
    for t in trips[1:]:
        if t >= gap * states[-1][1]:
            states.append([t, t])
        else:
            states[-1][1] = t
    return [tuple(s) for s in states]


def cpu_busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / hz


def steal_seconds():
    """CPU time the hypervisor gave to other guests while this VM wanted it (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[7] / os.sysconf("SC_CLK_TCK") if len(v) > 7 else 0.0


def wait_idle(max_busy=0.1, window=1.0, timeout=300):
    t_end = time.time() + timeout
    while True:
        b0 = cpu_busy_seconds()
        time.sleep(window)
        busy = (cpu_busy_seconds() - b0) / window
        if busy <= max_busy or time.time() > t_end:
            return busy


def timed(run):
    """run() and what it cost: (its result, wall seconds, cores that other processes in this
    VM and the host's other guests (as steal time) used meanwhile, on average). Children that
    run() starts must be waited for inside it: their CPU counts as its own."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0, w0, s0 = cpu_busy_seconds(), time.time(), steal_seconds()
    result = run()
    b1, w1, s1 = cpu_busy_seconds(), time.time(), steal_seconds()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return result, w1 - w0, (max(0.0, (b1 - b0) - own) + (s1 - s0)) / (w1 - w0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--peers", nargs="+", default=["torch", "jax"])
    ap.add_argument("--max-foreign", type=float, default=0.05)
    ap.add_argument("--out", default=None)
    ap.add_argument("--probe", default=None,
                    help="bench/nearness.rs compiled: tag runs with the vCPUs' round trip")
    a = ap.parse_args()
    py = sys.executable
    runs = []
    out = open(a.out, "a") if a.out else None
    for rnd in range(a.rounds):
        for t in a.threads:
            for p in a.peers:
                idle_before = wait_idle()
                trip = None
                if a.probe:
                    trip = float(subprocess.run([a.probe], capture_output=True, text=True,
                                                check=True).stdout)
                res, _, foreign = timed(lambda: subprocess.run(
                    [py, os.path.join(HERE, f"{p}_inverse.py"), "--image", a.image,
                     "--steps", str(a.steps), "--threads", str(t), "--dtype", a.dtype,
                     "--warmup", str(a.warmup)],
                    capture_output=True, text=True, check=True))
                rec = json.loads(res.stdout.strip().splitlines()[-1])
                rec.update(round=rnd, foreign_cores=round(foreign, 3), idle_before=round(idle_before, 3),
                           round_trip_ns=trip)
                runs.append(rec)
                if out:
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                print(f"round {rnd} {p:5s} threads={t}: median {rec['median_step_ms']:.3f} ms/step, "
                      f"other processes used {foreign:.2f} cores"
                      + ("" if trip is None else f", vCPUs' round trip {trip:.0f} ns"),
                      file=sys.stderr)
    states = placements([r["round_trip_ns"] for r in runs]) if a.probe else []
    print("\nsummary (" + a.dtype + ", runs with other processes < %.2f cores):" % a.max_foreign)
    if a.probe:
        print("  vCPU placements (round trips clustered): "
              + ", ".join(f"{lo:.0f}-{hi:.0f} ns" for lo, hi in states))
    for t in a.threads:
        for p in a.peers:
            rs = [r for r in runs if r["peer"] == p and r["threads"] == t]
            clean = [r for r in rs if r["foreign_cores"] < a.max_foreign]
            if not clean:
                print(f"  {p:5s} threads={t}: no clean run of {len(rs)}")
                continue
            meds = [r["median_step_ms"] for r in clean]
            print(f"  {p:5s} threads={t}: median of run medians {statistics.median(meds):.3f} ms/step "
                  f"(runs {', '.join('%.2f' % m for m in meds)}; {len(clean)}/{len(rs)} clean)")
            for lo, hi in states if len(states) > 1 else []:
                m = [r["median_step_ms"] for r in clean if lo <= r["round_trip_ns"] <= hi]
                if m:
                    print(f"      vCPUs {lo:.0f}-{hi:.0f} ns: median {statistics.median(m):.3f} "
                          f"ms/step ({len(m)} runs)")


if __name__ == "__main__":
    main()
