#!/usr/bin/env python3
"""The .npy fixtures of tests/experiments.rs, written by numpy itself (numpy 2.4.6 made the
committed ones):

    pip install numpy
    python3 tests/dev/numpy_fixtures.py

f8.npy          float64, C order: values with exact bit patterns to keep (-0.0, subnormals, 1/3)
f4-fortran.npy  float32, Fortran order
"""
from pathlib import Path

import numpy as np

out = Path(__file__).resolve().parent.parent / "fixtures" / "numpy"
out.mkdir(parents=True, exist_ok=True)
a = np.array(
    [[1 / 3, -0.0, 1e-300, 5e-324], [1e300, np.pi, -2.5, 0.1], [7.0, -1 / 7, 2**-30, 123456.789]],
    dtype="<f8",
)
np.save(out / "f8.npy", a)
b = np.asfortranarray(np.array([[0.1, -2.0, 3.25], [1e30, 1e-40, -0.0]], dtype="<f4"))
np.save(out / "f4-fortran.npy", b)
