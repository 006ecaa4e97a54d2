"""Shared plumbing for the peer benchmarks (no torch/jax imports here).

Only image loading, the Colors.jl gray conversion, argument parsing, thread
setup and output live here; the math of the inverse problem (warp, value,
loss, gradient, Adam) is written separately in each peer with its own
framework's ops.
"""
import argparse
import json
import logging
import os
import statistics

import numpy as np


def parse_args(peer):
    p = argparse.ArgumentParser(description=f"{peer} peer of the poster's inverse problem")
    p.add_argument("--image", required=True, help="TIFF image (RGB, gray or gray+alpha)")
    p.add_argument("--steps", type=int, default=200, help="timed Adam updates")
    p.add_argument("--threads", type=int, default=1, help="compute threads (also pins to that many CPUs)")
    p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed Adam updates run first on a copy; the timed run restarts from the image")
    p.add_argument("--no-pin", action="store_true", help="do not restrict CPU affinity to --threads CPUs")
    return p.parse_args()


def setup_threads(threads, pin=True):
    """Must run before torch/jax are imported."""
    t = str(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = t
    if pin and hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        if threads < len(allowed):
            os.sched_setaffinity(0, allowed[:threads])
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def colors_gray_u8(rgb):
    """Colors.jl gray at the 8-bit level: round(0.001*(299R+587G+114B)) in float32, ties to even."""
    rgb = rgb.astype(np.int64)
    s = 299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2]
    g = np.rint(np.float32(0.001) * s.astype(np.float32))
    return g.astype(np.uint8)


def load_gray_u8(path):
    """Gray image as uint8 (rows, cols). RGB -> Colors.jl gray; gray+alpha -> gray channel (alpha must be 255)."""
    import tifffile
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # jetplane.tif has ExtraSamples=999
    a = tifffile.imread(path)
    if a.dtype != np.uint8:
        raise SystemExit(f"{path}: expected 8-bit samples, got {a.dtype}")
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[2] == 2:
        if not (a[..., 1] == 255).all():
            raise SystemExit(f"{path}: alpha channel is not 255 everywhere")
        return a[..., 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return colors_gray_u8(a[..., :3])
    raise SystemExit(f"{path}: unsupported shape {a.shape}")


def emit(peer, dtype, threads, steps, losses, step_ms):
    print(json.dumps({
        "peer": peer,
        "dtype": dtype,
        "threads": threads,
        "steps": steps,
        "losses": [float(x) for x in losses],
        "step_ms": [round(float(x), 4) for x in step_ms],
        "median_step_ms": round(statistics.median(step_ms), 4) if step_ms else None,
    }), flush=True)
