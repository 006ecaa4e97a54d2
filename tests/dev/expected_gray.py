#!/usr/bin/env python3
"""Independent expected gray levels for the tests in src/io.rs (standard library only).

Reads the uncompressed strip TIFFs in ../shared/images with a minimal parser of its own and
applies Colors.jl's Rec. 601 conversion for 8-bit RGB exactly as Julia evaluates it:
    round(Float32(0.001) * Float32(299 R + 587 G + 114 B))      (round = ties to even)
The Float32 product is emulated exactly: both factors are Float32, so their product is exact
in a double and one rounding to Float32 (struct 'f') reproduces Julia's result.

Colors.jl computes in Float32 at 16 bits too (FixedPointNumbers' floattype(N0f16) is Float32),
so 299 R + 587 G + 114 B (up to 65 535 000 > 2^24) is first rounded to Float32; the 16-bit
cases below include triples where that gives one level more than exact or Float64 arithmetic.

Usage: python3 tests/dev/expected_gray.py
"""
import os
import struct
from fractions import Fraction

IMAGES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "images")


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def julia_gray(r, g, b):
    return round(f32(f32(0.001) * f32(299 * r + 587 * g + 114 * b)))


def read_tiff(name):
    """(width, height, samples per pixel, bytes) of an uncompressed 8-bit chunky TIFF."""
    d = open(os.path.join(IMAGES, name), "rb").read()
    bo = "<" if d[:2] == b"II" else ">"
    ifd = struct.unpack(bo + "I", d[4:8])[0]
    n = struct.unpack(bo + "H", d[ifd : ifd + 2])[0]
    tags = {}
    for i in range(n):
        e = d[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        tag, typ, cnt = struct.unpack(bo + "HHI", e[:8])
        if typ not in (3, 4):
            continue
        size = {3: 2, 4: 4}[typ]
        raw = e[8 : 8 + size * cnt] if size * cnt <= 4 else d[struct.unpack(bo + "I", e[8:12])[0] :][: size * cnt]
        tags[tag] = struct.unpack(bo + "HI"[typ == 4] * cnt, raw)
    assert tags.get(259, (1,))[0] == 1 and all(b == 8 for b in tags[258]), "uncompressed 8-bit only"
    data = b"".join(d[o : o + c] for o, c in zip(tags[273], tags[279]))
    w, h, spp = tags[256][0], tags[257][0], tags.get(277, (1,))[0]
    assert len(data) == w * h * spp
    return w, h, spp, data


def main():
    w, h, spp, d = read_tiff("mandrill.tiff")
    px = lambda r, c: d[(r * w + c) * spp : (r * w + c) * spp + 3]
    # Pixels whose weighted sum ends in 500 are ties before the Float32 rounding: the cases
    # where Julia's Float32 arithmetic decides the result.
    ties = [(r, c) for r in range(h) for c in range(w) if (299 * px(r, c)[0] + 587 * px(r, c)[1] + 114 * px(r, c)[2]) % 1000 == 500]
    print("mandrill", w, h, spp)
    for r, c in [(0, 0), (0, 1), (1, 0), (100, 200), (511, 511)] + ties[:3]:
        print(f"  ({r}, {c}) rgb={tuple(px(r, c))} gray={julia_gray(*px(r, c))}")

    w, h, spp, d = read_tiff("cameraman.tif")
    print("cameraman", w, h, spp)
    for r, c in [(0, 0), (0, 511), (256, 256), (511, 0)]:
        print(f"  ({r}, {c}) gray={d[r * w + c]}")

    w, h, spp, d = read_tiff("jetplane.tif")
    print("jetplane", w, h, spp, "alpha values:", sorted(set(d[1::2])))
    print("  mean gray:", sum(d[0::2]) / (w * h))
    for r, c in [(0, 0), (0, 511), (256, 256), (511, 0)]:
        print(f"  ({r}, {c}) gray={d[(r * w + c) * 2]}")
    print("16-bit rgb: julia (exact, float64)")
    for rgb in [(65535, 65535, 65535), (1, 2, 3), (44427, 61738, 21944), (40732, 54258, 62870), (13399, 52160, 23327)]:
        s = 299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]
        print(f"  {rgb} gray={julia_gray(*rgb)} ({round(Fraction(s, 1000))}, {round(0.001 * s)})")


if __name__ == "__main__":
    main()
