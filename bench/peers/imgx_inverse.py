#!/usr/bin/env python3
"""imgx as a "peer": runs examples/inverse.imgx through the release binary with the same
arguments as torch_inverse.py / jax_inverse.py and prints the same JSON record, so
bench_quiet.py and check_reference.py treat all three alike.

The per-step times come from imgx's own `--json` step events (`ms`: forward + backward + update
of that step); `--warmup` is accepted for symmetry and ignored (imgx has no JIT to warm up; the
median is robust to the first step, which also computes the target).
"""
import json
import os
import subprocess
import sys
import tempfile

from _common import emit, parse_args, setup_threads

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    a = parse_args("imgx")
    setup_threads(a.threads, pin=not a.no_pin)
    binary = os.environ.get("IMGX", os.path.join(ROOT, "target", "release", "imgx"))
    with tempfile.TemporaryDirectory() as out:
        cmd = [binary, "run", os.path.join(ROOT, "examples", "inverse.imgx"), "--json", "--quiet",
               "--set", f"image={os.path.abspath(a.image)}", "--set", f"n_steps={a.steps}",
               "--threads", str(a.threads), "--out", out]
        if a.dtype == "f64":
            cmd.append("--f64")
        res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"imgx failed: {res.stderr}")
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    steps = [e for e in events if e["event"] == "step"]
    done = next(e for e in events if e["event"] == "optimized")
    losses = [e["loss"] for e in steps] + [done["loss"]]
    step_ms = [e["ms"] for e in steps if "ms" in e] or [done["median_step_ms"]]
    emit("imgx", a.dtype, a.threads, a.steps, losses, step_ms)


if __name__ == "__main__":
    main()
