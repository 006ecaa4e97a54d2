#!/usr/bin/env python3
"""Compare peer output (JSON lines from torch_inverse.py / jax_inverse.py) with the float64 reference.

usage: python3 check_reference.py [--reference PATH] OUT.jsonl [...]   (or JSON lines on stdin)
f64 runs must match losses_after_k_updates[k] for k <= 200 within 1e-9 relative,
f32 runs within 1e-3 for k <= 100.  Exit status 1 if any run fails.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REF = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "reference",
                                            "mandrill-inverse-f64.json"))
TOL = {"f64": (200, 1e-9), "f32": (100, 1e-3)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reference", default=os.environ.get("IMGX_INVERSE_REFERENCE", DEFAULT_REF))
    p.add_argument("files", nargs="*")
    a = p.parse_args()
    ref = json.load(open(a.reference))["losses_after_k_updates"]
    lines = []
    for f in a.files or ["-"]:
        src = sys.stdin if f == "-" else open(f)
        lines += [ln for ln in src if ln.strip().startswith("{")]
    ok = True
    for ln in lines:
        r = json.loads(ln)
        kmax, tol = TOL[r["dtype"]]
        n = min(kmax, len(r["losses"]) - 1, len(ref) - 1)
        devs = [abs(r["losses"][k] - ref[k]) / abs(ref[k]) for k in range(n + 1)]
        worst = max(range(n + 1), key=lambda k: devs[k])
        good = devs[worst] <= tol
        ok &= good
        print(f"{r['peer']:6s} {r['dtype']} threads={r['threads']} k<={n}: max rel dev {devs[worst]:.3e} "
              f"at k={worst} (tol {tol:g}) {'OK' if good else 'FAIL'}; median {r['median_step_ms']} ms/step")
    sys.exit(0 if ok and lines else 1)


if __name__ == "__main__":
    main()
