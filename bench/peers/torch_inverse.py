#!/usr/bin/env python3
"""PyTorch (CPU, eager, autograd) peer of the JuliaCon 2021 poster's inverse problem.

A starts as gray(mandrill); each step evaluates
    loss(A) = || value(A) - target ||_F        (not squared)
    value(A) = normalize(N' N),  N = normalize(colnorm(A .+ 1))
    target   = value(warp(mandrill; amp=-10, freq=0.25, phase=0))
differentiates it with autograd and applies one Flux-0.12 ADAM update
(torch.optim.Adam has the same formula: eps is added to sqrt of the
bias-corrected second moment).  See bench/peers/README.md.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

args = _common.parse_args("torch")
_common.setup_threads(args.threads, pin=not args.no_pin)  # before importing torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(args.threads)
DT = {"f32": torch.float32, "f64": torch.float64}[args.dtype]


def normalize(x):
    lo = x.min()
    hi = x.max()
    return (x - lo) / (hi - lo)


def value(a):
    b = a + 1
    n = normalize(b / b.sum(dim=0, keepdim=True))  # colnorm: each column / its sum
    return normalize(n.T @ n)


def warp(m, amp=-10.0, freq=0.25, phase=0.0):
    # out[x, y] = bilinear(m, clamp(x + amp sin(freq (y + phase)), 1, rows), y), 1-based x (row), y (col)
    rows, cols = m.shape
    x = torch.arange(1, rows + 1, dtype=m.dtype).unsqueeze(1)
    y = torch.arange(1, cols + 1, dtype=m.dtype).unsqueeze(0)
    s = torch.clamp(x + amp * torch.sin(freq * (y + phase)), 1, rows)
    i = torch.floor(s)
    t = s - i
    i0 = i.long() - 1
    i1 = torch.clamp(i0 + 1, max=rows - 1)
    m0 = torch.gather(m, 0, i0)
    m1 = torch.gather(m, 0, i1)
    return (1 - t) * m0 + t * m1


def main():
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, "
          f"affinity={sorted(os.sched_getaffinity(0))}", file=sys.stderr)
    g8 = _common.load_gray_u8(args.image)
    m64 = torch.from_numpy(g8.astype(np.float64) / 255.0)
    with torch.no_grad():
        # target computed once in float64 (as the Julia notebook did), then cast
        target = value(warp(m64)).to(DT).contiguous()
    a0 = m64.to(DT)

    def run(steps, record):
        a = a0.clone().requires_grad_(True)
        opt = torch.optim.Adam([a], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        losses, times = [], []
        for _ in range(steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = torch.linalg.vector_norm(value(a) - target)
            loss.backward()
            opt.step()
            lv = loss.item()
            t1 = time.perf_counter()
            if record:
                losses.append(lv)
                times.append((t1 - t0) * 1e3)
        if record:
            with torch.no_grad():
                losses.append(torch.linalg.vector_norm(value(a) - target).item())
        return losses, times

    if args.warmup > 0:
        run(args.warmup, False)
    losses, times = run(args.steps, True)
    _common.emit("torch", args.dtype, args.threads, args.steps, losses, times)


if __name__ == "__main__":
    main()
