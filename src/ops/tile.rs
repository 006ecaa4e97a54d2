//! Transposes of one square tile as wide as a cache line (16 f32 or 8 f64 entries a side),
//! the step that [`super::kernel`]'s transposes are made of. On x86-64 the tile is moved
//! through vector registers (AVX-512: the whole tile; AVX2: in quarters); elsewhere entry by
//! entry. A transpose only moves entries, and `a + b` adds the same two numbers in either
//! order, so every path gives the same bits.

use super::isa::{self, Isa};
use crate::tensor::Real;
use std::any::TypeId;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Entries of T in a 64-byte cache line: the side of a tile.
pub const fn side<T>() -> usize {
    64 / std::mem::size_of::<T>()
}

/// A tile of a row-major matrix: the slice from its first entry on, and the distance between
/// its rows.
#[derive(Clone, Copy)]
pub struct Tile<'a, T> {
    pub at: &'a [T],
    pub stride: usize,
}

impl<'a, T> Tile<'a, T> {
    /// The tile of a row-major matrix with `cols` columns whose first entry is (i, j).
    pub fn of(m: &'a [T], cols: usize, (i, j): (usize, usize)) -> Self {
        Tile {
            at: &m[i * cols + j..],
            stride: cols,
        }
    }
}

/// out[i][j] = src[j][i] (+ add[i][j]) for i < h, j < w: `out` is the slice from the region's
/// first entry on, rows `out_stride` apart, and is only written (it may be uninitialised; the
/// region's entries are written afterwards). Whole tiles go through registers, the ragged
/// edges entry by entry.
pub fn transpose<T: Real>(
    src: Tile<T>,
    add: Option<Tile<T>>,
    out: &mut [MaybeUninit<T>],
    out_stride: usize,
    (h, w): (usize, usize),
) {
    let holds = |len: usize, stride: usize, (r, c): (usize, usize)| {
        r == 0 || c == 0 || len >= (r - 1) * stride + c
    };
    assert!(
        holds(src.at.len(), src.stride, (w, h))
            && add.is_none_or(|a| holds(a.at.len(), a.stride, (h, w)))
            && holds(out.len(), out_stride, (h, w)),
        "a tile runs past its matrix"
    );
    let (a, sa) = add.map_or((std::ptr::null(), 0), |a| (a.at.as_ptr(), a.stride));
    // SAFETY: just checked: each tile lies in its slice, and `out` is borrowed mutably alone.
    unsafe {
        raw(
            isa::best(),
            (src.at.as_ptr(), src.stride),
            (a, sa),
            (out.as_mut_ptr().cast::<T>(), out_stride),
            (h, w),
        )
    }
}

/// [`transpose`] on raw regions (`add` null for none), on the given instruction set.
///
/// # Safety
/// The CPU must have `isa`; src's w × h entries and add's h × w entries must be valid to read,
/// out's h × w entries valid to write (they are never read), and out must overlap neither of
/// the others.
pub unsafe fn raw<T: Real>(
    isa: Isa,
    s: (*const T, usize),
    a: (*const T, usize),
    o: (*mut T, usize),
    hw: (usize, usize),
) {
    #[cfg(target_arch = "x86_64")]
    {
        let f32s = TypeId::of::<T>() == TypeId::of::<f32>();
        let f64s = TypeId::of::<T>() == TypeId::of::<f64>();
        let f32 = || ((s.0.cast(), s.1), (a.0.cast(), a.1), (o.0.cast(), o.1));
        let f64 = || ((s.0.cast(), s.1), (a.0.cast(), a.1), (o.0.cast(), o.1));
        // SAFETY: as the caller promised; the casts are to T's own type.
        unsafe {
            match isa {
                Isa::Avx512 if f32s => return x86::avx512::<f32>(f32(), hw),
                Isa::Avx512 if f64s => return x86::avx512::<f64>(f64(), hw),
                Isa::Avx2 if f32s => return x86::avx2_f32(f32(), hw),
                Isa::Avx2 if f64s => return x86::avx2_f64(f64(), hw),
                _ => {}
            }
        }
    }
    let _ = isa;
    // SAFETY: as the caller promised.
    unsafe { scalar((s, a, o), 0..hw.0, 0..hw.1) }
}

/// A region's three matrices: src, add (null for none) and out, each with its row stride.
type Region<T> = ((*const T, usize), (*const T, usize), (*mut T, usize));

/// The entries of rows × cols of the region, one by one.
#[inline(always)]
unsafe fn scalar<T: Real>(
    ((s, ss), (a, sa), (o, so)): Region<T>,
    rows: Range<usize>,
    cols: Range<usize>,
) {
    for i in rows {
        for j in cols.clone() {
            // SAFETY: (i, j) lies in the region, which the caller vouched for.
            unsafe {
                let v = *s.add(j * ss + i);
                *o.add(i * so + j) = if a.is_null() {
                    v
                } else {
                    *a.add(i * sa + j) + v
                };
            }
        }
    }
}

/// The region in tiles, each given to `tile` (the region moved to the tile, and its size):
/// every tile if `ragged` (`tile` takes any size up to a whole tile), else the whole tiles and
/// the ragged edges entry by entry. Inlined into the `target_feature` copies in `x86`, so
/// `tile` is compiled with them.
#[inline(always)]
unsafe fn tiled<T: Real>(
    r: Region<T>,
    (h, w): (usize, usize),
    ragged: bool,
    tile: impl Fn(Region<T>, (usize, usize)),
) {
    let side = side::<T>();
    let ((s, ss), (a, sa), (o, so)) = r;
    let (hf, wf) = if ragged {
        (h, w)
    } else {
        (h - h % side, w - w % side)
    };
    // tiles in columns of BLOCK entries, row by row within each: the src rows a column reads
    // (pages, cache sets) stay the same while it is done
    let columns = (0..wf).step_by(BLOCK).flat_map(|j0| {
        let js = (j0..(j0 + BLOCK).min(wf)).step_by(side);
        (0..hf)
            .step_by(side)
            .flat_map(move |i| js.clone().map(move |j| (i, j)))
    });
    for (i, j) in columns {
        // SAFETY: the tile lies in the region.
        let a = if a.is_null() {
            a
        } else {
            unsafe { a.add(i * sa + j) }
        };
        let size = (side.min(hf - i), side.min(wf - j));
        tile(
            unsafe { ((s.add(j * ss + i), ss), (a, sa), (o.add(i * so + j), so)) },
            size,
        );
    }
    // SAFETY: the edges lie in the region.
    unsafe {
        scalar(r, 0..hf, wf..w);
        scalar(r, hf..h, 0..w);
    }
}

/// The width of the columns of tiles a region is walked in (and a good height for regions):
/// at 512² this took f64 `G + Gᵀ` from 129 to 115 µs and, at 1024², f32 from 445 to 398 µs,
/// against walking whole rows of tiles.
pub const BLOCK: usize = 64;

#[cfg(target_arch = "x86_64")]
pub(super) use x86::Zmm;

/// The register transposes. Each reads the `side` rows of `s` (`ss` apart), writes the tile's
/// transpose to `o` (rows `so` apart), adding the rows of `a` (`sa` apart) unless `a` is null.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{tiled, Region};
    use crate::tensor::Real;
    use std::arch::x86_64::*;

    /// A region through AVX-512 registers, ragged tiles too (masked loads and stores).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512<T: Real + Zmm>(r: Region<T>, hw: (usize, usize)) {
        let side = super::side::<T>();
        unsafe {
            tiled(r, hw, true, |((s, ss), (a, sa), (o, so)), hw| {
                if hw == (side, side) {
                    T::tile::<true>((s, ss), (a, sa), (o, so), hw)
                } else {
                    T::tile::<false>((s, ss), (a, sa), (o, so), hw)
                }
            })
        }
    }

    /// A region's whole tiles through AVX2 registers (the edges entry by entry).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2_f32(r: Region<f32>, hw: (usize, usize)) {
        unsafe {
            tiled(r, hw, false, |((s, ss), (a, sa), (o, so)), _| {
                tile_avx2_f32(s, ss, a, sa, o, so)
            })
        }
    }

    /// A region's whole tiles through AVX2 registers (the edges entry by entry).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2_f64(r: Region<f64>, hw: (usize, usize)) {
        unsafe {
            tiled(r, hw, false, |((s, ss), (a, sa), (o, so)), _| {
                tile_avx2_f64(s, ss, a, sa, o, so)
            })
        }
    }

    /// What the AVX-512 kernels (these tiles, `gemm`'s micro-kernel) do alike for f32 and
    /// f64: a register of T and its mask.
    pub(in crate::ops) trait Zmm: Sized {
        type V: Copy;
        type M: Copy;
        /// The mask of the first n lanes.
        fn mask(n: usize) -> Self::M;
        /// The zero register.
        unsafe fn zero() -> Self::V;
        /// All lanes (WHOLE), or those in m and zeros elsewhere.
        unsafe fn load<const WHOLE: bool>(p: *const Self, m: Self::M) -> Self::V;
        /// All lanes (WHOLE), or those in m.
        unsafe fn store<const WHOLE: bool>(p: *mut Self, m: Self::M, v: Self::V);
        unsafe fn add(x: Self::V, y: Self::V) -> Self::V;
        /// x in every lane.
        unsafe fn splat(x: Self) -> Self::V;
        /// x·y + z in each lane, rounded once.
        unsafe fn fmadd(x: Self::V, y: Self::V, z: Self::V) -> Self::V;
        /// The same bits as 16 f32 lanes, and back.
        unsafe fn to_ps(v: Self::V) -> __m512;
        unsafe fn from_ps(v: __m512) -> Self::V;
        /// The type's tile kernel: [`tile_avx512_f32`] or [`tile_avx512_f64`].
        unsafe fn tile<const WHOLE: bool>(
            s: (*const Self, usize),
            a: (*const Self, usize),
            o: (*mut Self, usize),
            hw: (usize, usize),
        );
    }

    /// A register unchanged (the f32 casts of [`Zmm`]).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn same(v: __m512) -> __m512 {
        v
    }

    /// [`Zmm`] for a type from its intrinsics: register and mask types, then zero, load,
    /// masked load, store, masked store, add, splat, fmadd.
    macro_rules! zmm {
        ($t:ty, $v:ty, $m:ty, $zero:ident, $load:ident, $mload:ident, $store:ident, $mstore:ident, $add:ident, $splat:ident, $fmadd:ident, $to:ident, $from:ident, $tile:ident) => {
            impl Zmm for $t {
                type V = $v;
                type M = $m;
                fn mask(n: usize) -> $m {
                    ((1u32 << n) - 1) as $m
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn zero() -> $v {
                    $zero()
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn load<const WHOLE: bool>(p: *const $t, m: $m) -> $v {
                    if WHOLE {
                        $load(p)
                    } else {
                        $mload(m, p)
                    }
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn store<const WHOLE: bool>(p: *mut $t, m: $m, v: $v) {
                    if WHOLE {
                        $store(p, v)
                    } else {
                        $mstore(p, m, v)
                    }
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn add(x: $v, y: $v) -> $v {
                    $add(x, y)
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn splat(x: $t) -> $v {
                    $splat(x)
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn fmadd(x: $v, y: $v, z: $v) -> $v {
                    $fmadd(x, y, z)
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn to_ps(v: $v) -> __m512 {
                    $to(v)
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn from_ps(v: __m512) -> $v {
                    $from(v)
                }
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn tile<const WHOLE: bool>(
                    (s, ss): (*const $t, usize),
                    (a, sa): (*const $t, usize),
                    (o, so): (*mut $t, usize),
                    hw: (usize, usize),
                ) {
                    $tile::<WHOLE>(s, ss, a, sa, o, so, hw)
                }
            }
        };
    }

    zmm!(
        f32,
        __m512,
        __mmask16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_maskz_loadu_ps,
        _mm512_storeu_ps,
        _mm512_mask_storeu_ps,
        _mm512_add_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        same,
        same,
        tile_avx512_f32
    );
    zmm!(
        f64,
        __m512d,
        __mmask8,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_maskz_loadu_pd,
        _mm512_storeu_pd,
        _mm512_mask_storeu_pd,
        _mm512_add_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_castpd_ps,
        _mm512_castps_pd,
        tile_avx512_f64
    );

    /// A tile's N source rows: the first w of them, h entries each (all, if WHOLE); the other
    /// registers and lanes zero.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn rows<T: Zmm, const N: usize, const WHOLE: bool>(
        s: *const T,
        ss: usize,
        (h, w): (usize, usize),
    ) -> [T::V; N] {
        std::array::from_fn(|k| {
            if WHOLE || k < w {
                T::load::<WHOLE>(s.add(k * ss), T::mask(h))
            } else {
                T::zero()
            }
        })
    }

    /// Stores the transposed tile's rows `cols` (row number, register) that are below h, w
    /// entries each (all, if WHOLE), adding a's rows unless a is null.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn put<T: Zmm, const WHOLE: bool>(
        cols: [(usize, T::V); 4],
        (a, sa): (*const T, usize),
        (o, so): (*mut T, usize),
        (h, w): (usize, usize),
    ) {
        for (i, col) in cols.into_iter().filter(|&(i, _)| WHOLE || i < h) {
            let col = if a.is_null() {
                col
            } else {
                T::add(T::load::<WHOLE>(a.add(i * sa), T::mask(w)), col)
            };
            T::store::<WHOLE>(o.add(i * so), T::mask(w), col);
        }
    }

    /// The two rounds of 128-bit lane shuffles that end both transposes, then [`put`]: `q[k]`
    /// holds, in its 128-bit lane l, the k-th quarter of output row e + step·l; those four rows
    /// are stored.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn lanes<T: Zmm, const WHOLE: bool>(
        q: [T::V; 4],
        (e, step): (usize, usize),
        a: (*const T, usize),
        o: (*mut T, usize),
        hw: (usize, usize),
    ) {
        let [p, q, r, s] = q.map(|v| T::to_ps(v));
        let (u, v) = (
            _mm512_shuffle_f32x4::<0x88>(p, q),
            _mm512_shuffle_f32x4::<0xdd>(p, q),
        );
        let (w, x) = (
            _mm512_shuffle_f32x4::<0x88>(r, s),
            _mm512_shuffle_f32x4::<0xdd>(r, s),
        );
        let rows = [
            _mm512_shuffle_f32x4::<0x88>(u, w),
            _mm512_shuffle_f32x4::<0x88>(v, x),
            _mm512_shuffle_f32x4::<0xdd>(u, w),
            _mm512_shuffle_f32x4::<0xdd>(v, x),
        ];
        let cols = std::array::from_fn(|l| (e + step * l, T::from_ps(rows[l])));
        put::<T, WHOLE>(cols, a, o, hw);
    }

    /// 16 × 16 f32 (h × w of it unless WHOLE): 32-bit, then 64-bit interleaves within 128-bit
    /// lanes, then two rounds of 128-bit lane shuffles.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile_avx512_f32<const WHOLE: bool>(
        s: *const f32,
        ss: usize,
        a: *const f32,
        sa: usize,
        o: *mut f32,
        so: usize,
        hw: (usize, usize),
    ) {
        let r: [__m512; 16] = rows::<f32, 16, WHOLE>(s, ss, hw);
        // t[2q], t[2q+1]: rows 2q and 2q+1 interleaved, per lane l entries 4l, 4l+1 | 4l+2, 4l+3
        let t: [__m512d; 16] = std::array::from_fn(|k| {
            let (x, y) = (r[k & !1], r[k | 1]);
            _mm512_castps_pd(if k & 1 == 0 {
                _mm512_unpacklo_ps(x, y)
            } else {
                _mm512_unpackhi_ps(x, y)
            })
        });
        // c[4q + e]: per lane l, rows 4q … 4q+3 of column 4l + e
        let c: [__m512; 16] = std::array::from_fn(|k| {
            let (q, e) = (k / 4, k % 4);
            let (x, y) = (t[4 * q + (e >> 1)], t[4 * q + 2 + (e >> 1)]);
            _mm512_castpd_ps(if e & 1 == 0 {
                _mm512_unpacklo_pd(x, y)
            } else {
                _mm512_unpackhi_pd(x, y)
            })
        });
        for e in 0..4 {
            let quarters = [c[e], c[4 + e], c[8 + e], c[12 + e]];
            lanes::<f32, WHOLE>(quarters, (e, 4), (a, sa), (o, so), hw);
        }
    }

    /// 8 × 8 f64 (h × w of it unless WHOLE): 64-bit interleaves within 128-bit lanes, then
    /// two rounds of lane shuffles.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile_avx512_f64<const WHOLE: bool>(
        s: *const f64,
        ss: usize,
        a: *const f64,
        sa: usize,
        o: *mut f64,
        so: usize,
        hw: (usize, usize),
    ) {
        let r: [__m512d; 8] = rows::<f64, 8, WHOLE>(s, ss, hw);
        // t[2q + e]: per lane l, rows 2q, 2q+1 of column 2l + e
        let t: [__m512d; 8] = std::array::from_fn(|k| {
            let (x, y) = (r[k & !1], r[k | 1]);
            if k & 1 == 0 {
                _mm512_unpacklo_pd(x, y)
            } else {
                _mm512_unpackhi_pd(x, y)
            }
        });
        for e in 0..2 {
            let quarters = [t[e], t[2 + e], t[4 + e], t[6 + e]];
            lanes::<f64, WHOLE>(quarters, (e, 2), (a, sa), (o, so), hw);
        }
    }

    /// 16 × 16 f32 as four 8 × 8 quarters: 32-bit and 64-bit interleaves, then 128-bit halves.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn tile_avx2_f32(
        s: *const f32,
        ss: usize,
        a: *const f32,
        sa: usize,
        o: *mut f32,
        so: usize,
    ) {
        for (bi, bj) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
            // out rows bi.., columns bj.. come from src rows bj.., columns bi..
            let r: [__m256; 8] =
                std::array::from_fn(|k| _mm256_loadu_ps(s.add((bj + k) * ss + bi)));
            let t: [__m256; 8] = std::array::from_fn(|k| {
                let (x, y) = (r[k & !1], r[k | 1]);
                if k & 1 == 0 {
                    _mm256_unpacklo_ps(x, y)
                } else {
                    _mm256_unpackhi_ps(x, y)
                }
            });
            // c[4q + e]: per half h, rows 4q … 4q+3 of column 4h + e
            let c: [__m256; 8] = std::array::from_fn(|k| {
                let (q, e) = (k / 4, k % 4);
                let (x, y) = (
                    _mm256_castps_pd(t[4 * q + (e >> 1)]),
                    _mm256_castps_pd(t[4 * q + 2 + (e >> 1)]),
                );
                _mm256_castpd_ps(if e & 1 == 0 {
                    _mm256_unpacklo_pd(x, y)
                } else {
                    _mm256_unpackhi_pd(x, y)
                })
            });
            for e in 0..4 {
                let cols = [
                    (e, _mm256_permute2f128_ps::<0x20>(c[e], c[4 + e])),
                    (4 + e, _mm256_permute2f128_ps::<0x31>(c[e], c[4 + e])),
                ];
                for (i, col) in cols {
                    let at = (bi + i) * so + bj;
                    let col = if a.is_null() {
                        col
                    } else {
                        _mm256_add_ps(_mm256_loadu_ps(a.add((bi + i) * sa + bj)), col)
                    };
                    _mm256_storeu_ps(o.add(at), col);
                }
            }
        }
    }

    /// 8 × 8 f64 as four 4 × 4 quarters: 64-bit interleaves, then 128-bit halves.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn tile_avx2_f64(
        s: *const f64,
        ss: usize,
        a: *const f64,
        sa: usize,
        o: *mut f64,
        so: usize,
    ) {
        for (bi, bj) in [(0, 0), (0, 4), (4, 0), (4, 4)] {
            let r: [__m256d; 4] =
                std::array::from_fn(|k| _mm256_loadu_pd(s.add((bj + k) * ss + bi)));
            // t[2q + e]: per half h, rows 2q, 2q+1 of column 2h + e
            let t: [__m256d; 4] = std::array::from_fn(|k| {
                let (x, y) = (r[k & !1], r[k | 1]);
                if k & 1 == 0 {
                    _mm256_unpacklo_pd(x, y)
                } else {
                    _mm256_unpackhi_pd(x, y)
                }
            });
            for e in 0..2 {
                let cols = [
                    (e, _mm256_permute2f128_pd::<0x20>(t[e], t[2 + e])),
                    (2 + e, _mm256_permute2f128_pd::<0x31>(t[e], t[2 + e])),
                ];
                for (i, col) in cols {
                    let col = if a.is_null() {
                        col
                    } else {
                        _mm256_add_pd(_mm256_loadu_pd(a.add((bi + i) * sa + bj)), col)
                    };
                    _mm256_storeu_pd(o.add((bi + i) * so + bj), col);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct entries (so a misplaced one shows), in a matrix wider than the tile.
    fn entries<T: Real>(len: usize, seed: usize) -> Vec<T> {
        (0..len)
            .map(|k| T::lit((k * 7 + seed) as f64 * 0.25 - 100.0))
            .collect()
    }

    fn every_isa_is_the_definition<T: Real>() {
        let side = side::<T>();
        // one whole tile, regions of whole tiles, ragged regions (one wider than two columns of
        // tiles), a ragged tile, empty ones
        let sizes = [
            (side, side),
            (2 * side, 3 * side),
            (2 * side + 3, side + 5),
            (side + 1, 2 * BLOCK + side + 3),
            (side, side - 1),
            (1, side),
            (3, 5),
            (0, 4),
        ];
        for (h, w) in sizes {
            // strides: packed rows, rows of a wider matrix, unequal strides for the three
            for (es, ea, eo) in [(0, 0, 0), (5, 9, 1), (499, 400, 300)] {
                let (ss, sa, so) = (h + es, w + ea, w + eo);
                let (src, add) = (entries::<T>(w * ss + 3, 1), entries::<T>(h * sa, 5000));
                for with_add in [false, true] {
                    let mut want = vec![T::nan(); h * so];
                    for i in 0..h {
                        for j in 0..w {
                            let v = src[3 + j * ss + i];
                            want[i * so + j] = if with_add { add[i * sa + j] + v } else { v };
                        }
                    }
                    for isa in isa::available() {
                        let mut out = vec![T::nan(); h * so];
                        let a = if with_add {
                            add.as_ptr()
                        } else {
                            std::ptr::null()
                        };
                        let (s, o) = ((src[3..].as_ptr(), ss), (out.as_mut_ptr(), so));
                        // SAFETY: every region lies inside its vector; this CPU has `isa`.
                        unsafe { raw(isa, s, (a, sa), o, (h, w)) };
                        // entries outside the region stay NaN: nothing is written past it
                        let same = out
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
                        let case = format!("{isa:?} {h}×{w} strides {ss} {sa} {so} add {with_add}");
                        assert!(same, "{} {case}", T::NAME);
                    }
                }
            }
        }
    }

    #[test]
    fn every_isa_gives_the_transpose_and_the_sum_in_both_types() {
        every_isa_is_the_definition::<f32>();
        every_isa_is_the_definition::<f64>();
    }

    #[test]
    #[should_panic(expected = "runs past")]
    fn a_tile_past_the_end_is_refused() {
        let src = entries::<f32>(16 * 16 - 1, 0);
        let mut out = vec![MaybeUninit::new(0.0f32); 256];
        transpose(
            Tile {
                at: &src,
                stride: 16,
            },
            None,
            &mut out,
            16,
            (16, 16),
        );
    }
}
