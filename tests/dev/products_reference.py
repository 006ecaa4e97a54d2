#!/usr/bin/env python3
"""Golden fixtures for the poster's forward "products" panels, computed with numpy in float64.

    pip install numpy tifffile
    python3 tests/dev/products_reference.py [--images DIR] [--out tests/fixtures/products-reference.json]

DIR defaults to ../shared/images relative to the repository root (the shared,
read-only images; they are never copied into the repository).  The JSON keeps
only summary statistics and 64 sampled values per panel.

Inputs (row-major, A[r, c], r = image row, 0-based in the JSON):
  m = gray(mandrill.tiff): Colors.jl gray at the 8-bit level,
      round(float32(0.001) * float32(299R + 587G + 114B)) with ties to even, / 255
  b = gray(jetplane.tif): the gray channel of the gray+alpha image / 255
      (its ExtraSamples tag is the malformed 999; the alpha channel is checked to be 255)
Panels:
  mm         normalize(m' m)
  mb         normalize(m b)
  sym_plus1  n = normalize(colnorm(m + 1));  normalize(n' n)
  asym_plus1 r = normalize(rownorm(b + 1));  normalize(r n)
  sym_exp    ne = normalize(softmax_cols(m)); normalize(ne' ne)
  asym_exp   re = normalize(softmax_rows(b)); normalize(re ne)
where colnorm divides each column by its sum, rownorm each row by its sum,
softmax_cols(X) = exp(X) with each column divided by its sum (no max shift),
softmax_rows likewise per row, normalize(X) = (X - min X) / (max X - min X).

As a cross-check every panel is recomputed in numpy's longdouble (x87 80-bit
on x86-64, no BLAS); the largest |float64 - longdouble| over the stored
numbers is written to the JSON as "max_abs_dev_vs_longdouble".
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
N_SAMPLES = 64


def read_tiff(path):
    import tifffile
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # jetplane.tif: ExtraSamples=999
    a = tifffile.imread(path)
    assert a.dtype == np.uint8, (path, a.dtype)
    return a


def gray_rgb_u8(rgb):
    s = (299 * rgb[..., 0].astype(np.int64) + 587 * rgb[..., 1].astype(np.int64)
         + 114 * rgb[..., 2].astype(np.int64))
    return np.rint(np.float32(0.001) * s.astype(np.float32)).astype(np.uint8)


def normalize(x):
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo)


def colnorm(x):
    return x / x.sum(axis=0, keepdims=True)


def rownorm(x):
    return x / x.sum(axis=1, keepdims=True)


def panels(m, b):
    n = normalize(colnorm(m + 1))
    r = normalize(rownorm(b + 1))
    ne = normalize(colnorm(np.exp(m)))
    re = normalize(rownorm(np.exp(b)))
    return {
        "mm": normalize(m.T @ m),
        "mb": normalize(m @ b),
        "sym_plus1": normalize(n.T @ n),
        "asym_plus1": normalize(r @ n),
        "sym_exp": normalize(ne.T @ ne),
        "asym_exp": normalize(re @ ne),
    }


def sample_coords(rows, cols):
    return [((37 * i + 5) % rows, (101 * i + 13) % cols) for i in range(N_SAMPLES)]


def summary(p):
    rows, cols = p.shape
    return {
        "rows": rows,
        "cols": cols,
        "min": float(p.min()),
        "max": float(p.max()),
        "mean": float(p.mean(dtype=np.float64)),
        "samples": [[r, c, float(p[r, c])] for r, c in sample_coords(rows, cols)],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=os.path.join(REPO, "..", "shared", "images"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "products-reference.json"))
    ap.add_argument("--no-longdouble-check", action="store_true")
    args = ap.parse_args()

    mandrill = read_tiff(os.path.join(args.images, "mandrill.tiff"))
    jet = read_tiff(os.path.join(args.images, "jetplane.tif"))
    assert mandrill.ndim == 3 and mandrill.shape[2] == 3, mandrill.shape
    assert jet.ndim == 3 and jet.shape[2] == 2, jet.shape
    assert (jet[..., 1] == 255).all(), "jetplane alpha is not 255 everywhere"
    m8 = gray_rgb_u8(mandrill)
    b8 = jet[..., 0]
    assert m8[0, 0] == 145, m8[0, 0]
    m = m8.astype(np.float64) / 255
    b = b8.astype(np.float64) / 255

    out = {
        "what": "Forward 'products' panels of the JuliaCon 2021 poster on gray(mandrill) and gray(jetplane), "
                "computed independently with numpy in float64 by tests/dev/products_reference.py",
        "definitions": {
            "m": "gray(mandrill.tiff): round(float32(0.001)*float32(299R+587G+114B)), ties to even, /255",
            "b": "gray channel of jetplane.tif (gray+alpha, alpha all 255) /255",
            "normalize": "(X - min X) / (max X - min X)",
            "colnorm": "each column divided by its sum",
            "rownorm": "each row divided by its sum",
            "softmax_cols": "exp(X), then each column divided by its sum",
            "softmax_rows": "exp(X), then each row divided by its sum",
            "mm": "normalize(m' m)",
            "mb": "normalize(m b)",
            "sym_plus1": "n = normalize(colnorm(m + 1)); normalize(n' n)",
            "asym_plus1": "r = normalize(rownorm(b + 1)); normalize(r n)",
            "sym_exp": "ne = normalize(softmax_cols(m)); normalize(ne' ne)",
            "asym_exp": "re = normalize(softmax_rows(b)); normalize(re ne)",
            "samples": "[r, c, value] at 0-based (r, c) = ((37 i + 5) mod rows, (101 i + 13) mod cols), i = 0..63",
        },
        "m_corner": m[:3, :3].tolist(),
        "b_corner": b[:3, :3].tolist(),
        "m_corner_u8": m8[:3, :3].astype(int).tolist(),
        "b_corner_u8": b8[:3, :3].astype(int).tolist(),
        "panels": {},
    }
    ps = panels(m, b)
    for name, p in ps.items():
        out["panels"][name] = summary(p)

    if not args.no_longdouble_check:
        pl = panels(m8.astype(np.longdouble) / 255, b8.astype(np.longdouble) / 255)
        worst = 0.0
        for name, p in pl.items():
            s = out["panels"][name]
            ref = [p.min(), p.max(), p.mean()] + [p[r, c] for r, c, _ in s["samples"]]
            got = [s["min"], s["max"], s["mean"]] + [v for _, _, v in s["samples"]]
            dev = max(abs(float(np.longdouble(g) - rr)) for g, rr in zip(got, ref))
            print(f"{name:11s} max |f64 - longdouble| = {dev:.3e}", file=sys.stderr)
            worst = max(worst, dev)
        out["max_abs_dev_vs_longdouble"] = worst

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
