#!/usr/bin/env python3
"""JAX (CPU) peer of the JuliaCon 2021 poster's inverse problem.

Same problem as torch_inverse.py; the whole step (forward, jax.grad, and the
Flux-0.12 ADAM update) is one jax.jit-compiled function with donated buffers.
See bench/peers/README.md.

Threads: XLA's CPU client sizes its thread pool from the CPUs the process may
run on, so --threads T pins the process to T CPUs (sched_setaffinity, like
taskset) before jax is imported; for T=1 it also adds
--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 to XLA_FLAGS.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

args = _common.parse_args("jax")
_common.setup_threads(args.threads, pin=not args.no_pin)  # before importing jax
if args.threads == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import jax  # noqa: E402

# x64 is enabled in both modes so that the target can be computed in float64;
# in f32 mode every array fed to the step is float32 (checked below) and Python
# scalars are weakly typed, so the step itself runs entirely in float32.
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

DT = {"f32": jnp.float32, "f64": jnp.float64}[args.dtype]
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


def normalize(x):
    lo = jnp.min(x)
    hi = jnp.max(x)
    return (x - lo) / (hi - lo)


def value(a):
    b = a + 1
    n = normalize(b / jnp.sum(b, axis=0, keepdims=True))  # colnorm: each column / its sum
    return normalize(n.T @ n)


def warp(m, amp=-10.0, freq=0.25, phase=0.0):
    # out[x, y] = bilinear(m, clamp(x + amp sin(freq (y + phase)), 1, rows), y), 1-based x (row), y (col)
    rows, cols = m.shape
    x = jnp.arange(1, rows + 1, dtype=m.dtype)[:, None]
    y = jnp.arange(1, cols + 1, dtype=m.dtype)[None, :]
    s = jnp.clip(x + amp * jnp.sin(freq * (y + phase)), 1, rows)
    i = jnp.floor(s)
    t = s - i
    i0 = i.astype(jnp.int32) - 1
    i1 = jnp.minimum(i0 + 1, rows - 1)
    m0 = jnp.take_along_axis(m, i0, axis=0)
    m1 = jnp.take_along_axis(m, i1, axis=0)
    return (1 - t) * m0 + t * m1


def loss_fn(a, target):
    d = value(a) - target
    return jnp.sqrt(jnp.sum(d * d))


@jax.jit
def loss_only(a, target):
    return loss_fn(a, target)


def _adam_step(a, mt, vt, bc1, bc2, target):
    """One Flux 0.12 ADAM update. bc1 = 1 - beta1^t, bc2 = 1 - beta2^t for update t = 1, 2, ...
    (computed on the host in float64, as Flux keeps beta^t in Float64). Returns the loss before the update."""
    loss, g = jax.value_and_grad(loss_fn)(a, target)
    mt = B1 * mt + (1 - B1) * g
    vt = B2 * vt + (1 - B2) * g * g
    delta = mt / bc1 / (jnp.sqrt(vt / bc2) + EPS) * LR
    return a - delta, mt, vt, loss


adam_step = jax.jit(_adam_step, donate_argnums=(0, 1, 2))


def main():
    print(f"jax {jax.__version__}, devices={jax.devices()}, affinity={sorted(os.sched_getaffinity(0))}, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", file=sys.stderr)
    g8 = _common.load_gray_u8(args.image)
    m64 = g8.astype(np.float64) / 255.0
    # target computed once in float64 (as the Julia notebook did), then cast
    target64 = jax.jit(lambda m: value(warp(m)))(jnp.asarray(m64, dtype=jnp.float64))
    target = target64.astype(DT)
    a0 = m64.astype(np.dtype(DT))

    def run(steps, record):
        a = jnp.asarray(a0)
        mt = jnp.zeros_like(a)
        vt = jnp.zeros_like(a)
        losses, times = [], []
        for k in range(1, steps + 1):
            t0 = time.perf_counter()
            bc1 = jnp.asarray(1 - B1 ** k, dtype=DT)
            bc2 = jnp.asarray(1 - B2 ** k, dtype=DT)
            a, mt, vt, loss = adam_step(a, mt, vt, bc1, bc2, target)
            loss.block_until_ready()
            a.block_until_ready()
            t1 = time.perf_counter()
            if record:
                losses.append(float(loss))
                times.append((t1 - t0) * 1e3)
        assert a.dtype == DT and mt.dtype == DT and loss.dtype == DT, (a.dtype, mt.dtype, loss.dtype)
        if record:
            losses.append(float(loss_only(a, target)))
        return losses, times

    # warmup: compiles adam_step and loss_only, then the timed run restarts from the image
    run(max(args.warmup, 1), False)
    _ = loss_only(jnp.asarray(a0), target).block_until_ready()
    losses, times = run(args.steps, True)
    _common.emit("jax", args.dtype, args.threads, args.steps, losses, times)


if __name__ == "__main__":
    main()
