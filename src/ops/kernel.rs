//! Loops several primitives share, written so the compiler vectorises them: sums with a fixed
//! number of independent running lanes (deterministic, whatever the machine), and transposes
//! in square tiles (a plain strided transpose misses the cache on every read or every write).
//!
//! Every function here gives the same bits on every run and thread count: the order of each
//! addition is fixed by the data's shape alone.

use crate::tensor::{min_max, Real};
use ndarray::{Array2, ArrayView2, CowArray, Ix2};

/// Independent running sums: enough to hide the latency of an addition and fill an AVX-512
/// register of f32.
const LANES: usize = 16;

/// Folds op(acc, a_k, b_k) over two slices of one length in `LANES` running accumulators
/// (entry k goes to lane k mod `LANES`), then joins the lanes in order with `join`, then the
/// tail. For sums, `sum2`; for extremes, any `join` that is exact (min, max).
pub fn fold2<T: Real>(
    a: &[T],
    b: &[T],
    init: T,
    op: impl Fn(T, T, T) -> T,
    join: impl Fn(T, T) -> T,
) -> T {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [init; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((l, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *l = op(*l, x, y);
        }
    }
    let tail = ta.iter().zip(tb).fold(init, |s, (&x, &y)| op(s, x, y));
    join(lanes.iter().fold(init, |s, &l| join(s, l)), tail)
}

/// Σ f(a_k, b_k) in the lane order of [`fold2`].
pub fn sum2<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    fold2(a, b, T::zero(), |s, x, y| s + f(x, y), |s, l| s + l)
}

/// The minimum and maximum of a non-empty matrix, each with its first position in column-major
/// order (as Julia's `minimum`/`maximum` and Zygote's gradients of them). A NaN is an extreme of
/// both kinds: the first NaN in column-major order is the minimum and the maximum.
pub struct Extremes<T> {
    pub lo: T,
    pub at_lo: (usize, usize),
    pub hi: T,
    pub at_hi: (usize, usize),
}

impl<T: Real> Extremes<T> {
    /// The minimum and maximum alone (NaN, NaN if there is a NaN): one pass.
    pub fn values(m: &Array2<T>) -> (T, T) {
        match m.as_slice().map(min_max) {
            Some(Some(r)) => r,
            Some(None) => (T::nan(), T::nan()),
            None => {
                let e = Self::exact(m);
                (e.lo, e.hi)
            }
        }
    }

    /// The minimum and maximum with their positions: two passes.
    pub fn of(m: &Array2<T>) -> Self {
        let Some(all) = m.as_slice() else {
            return Self::exact(m);
        };
        let Some((lo, hi)) = min_max(all) else {
            return Self::exact(m);
        };
        // First occurrences in column-major order (smallest column, then smallest row): a
        // vectorised test per row, and a scalar search only in rows that hold the value.
        let cols = m.ncols();
        let (mut at_lo, mut at_hi) = ((usize::MAX, 0), (usize::MAX, 0));
        for (i, row) in all.chunks_exact(cols).enumerate() {
            let (mut has_lo, mut has_hi) = (false, false);
            for &v in row {
                has_lo |= v == lo;
                has_hi |= v == hi;
            }
            for (has, t, at) in [(has_lo, lo, &mut at_lo), (has_hi, hi, &mut at_hi)] {
                if has {
                    let j = row.iter().position(|&v| v == t).unwrap_or(usize::MAX);
                    if j < at.0 {
                        *at = (j, i);
                    }
                }
            }
        }
        Extremes {
            lo,
            at_lo: (at_lo.1, at_lo.0),
            hi,
            at_hi: (at_hi.1, at_hi.0),
        }
    }

    /// The plain definition: one scan in column-major order. For layouts other than row-major,
    /// matrices with a NaN, and as the reference for the tests.
    pub fn exact(m: &Array2<T>) -> Self {
        let first = m[[0, 0]];
        let mut e = Extremes {
            lo: first,
            at_lo: (0, 0),
            hi: first,
            at_hi: (0, 0),
        };
        let nan_first = |v: T, b: T| v.is_nan() && !b.is_nan();
        for ((c, r), &v) in m.t().indexed_iter() {
            if v < e.lo || nan_first(v, e.lo) {
                (e.lo, e.at_lo) = (v, (r, c));
            }
            if v > e.hi || nan_first(v, e.hi) {
                (e.hi, e.at_hi) = (v, (r, c));
            }
        }
        e
    }
}

/// The entries of a matrix in row-major order, copied only if its layout is another.
pub fn row_major<T: Real>(m: ArrayView2<'_, T>) -> CowArray<'_, T, Ix2> {
    if m.is_standard_layout() {
        CowArray::from(m)
    } else {
        CowArray::from(m.as_standard_layout().into_owned())
    }
}

/// The slice behind a row-major matrix from [`row_major`].
pub fn entries<'a, T: Real>(m: &'a CowArray<'_, T, Ix2>) -> &'a [T] {
    m.as_slice()
        .unwrap_or_else(|| unreachable!("as_standard_layout gives row-major"))
}

/// The side of the square tiles a transpose works in. 16 keeps a tile's rows in L1, except
/// where rows lie a multiple of 4 KiB apart (1024 f32, 512 f64): then every row of a tile falls
/// into one L1 set, and 16 rows evict each other from its 12 ways, so 8. Measured for
/// `G + Gᵀ` in f32: 87 µs (16) against 115 µs (8) at 512²; 0.48 ms (8) against 1.27 ms (16)
/// at 1024².
fn tile<T>(rows: usize, cols: usize) -> usize {
    let aliased = |n: usize| (n * std::mem::size_of::<T>()).is_multiple_of(4096);
    if aliased(rows) || aliased(cols) {
        8
    } else {
        16
    }
}

/// The tiles (row range, column range) covering an r × c matrix, row-major.
fn tiles(r: usize, c: usize, tile: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let span = |a: usize, end: usize, step: usize| {
        (a..end)
            .step_by(step)
            .map(move |x| (x, (x + step).min(end)))
    };
    span(0, r, BLOCK).flat_map(move |(bi0, bi1)| {
        span(0, c, BLOCK).flat_map(move |(bj0, bj1)| {
            span(bi0, bi1, tile).flat_map(move |(i0, i1)| {
                span(bj0, bj1, tile).map(move |(j0, j1)| (i0, i1, j0, j1))
            })
        })
    })
}

/// Square blocks of tiles, visited one block at a time, so a block and its transposed block
/// stay in L1 while their tiles are done (at 2048² this took `G + Gᵀ` from 6.4 to 4.0 ms).
const BLOCK: usize = 64;

/// mᵀ as a new row-major matrix.
pub fn transposed<T: Real>(m: ArrayView2<T>) -> Array2<T> {
    let (r, c) = m.dim();
    let m = row_major(m);
    let src = entries(&m);
    let mut out = vec![T::zero(); r * c];
    for (i0, i1, j0, j1) in tiles(c, r, tile::<T>(r, c)) {
        for i in i0..i1 {
            for j in j0..j1 {
                out[i * r + j] = src[j * c + i];
            }
        }
    }
    Array2::from_shape_vec((c, r), out).unwrap_or_else(|_| unreachable!("c·r entries"))
}

/// g + gᵀ for a square g: exactly symmetric (both halves are the same additions).
pub fn plus_transpose<T: Real>(g: ArrayView2<T>) -> Array2<T> {
    let n = g.nrows();
    debug_assert_eq!(n, g.ncols());
    let g = row_major(g);
    let src = entries(&g);
    let mut out = vec![T::zero(); n * n];
    for (i0, i1, j0, j1) in tiles(n, n, tile::<T>(n, n)).filter(|&(i0, _, j0, _)| j0 >= i0) {
        for i in i0..i1 {
            for j in j0.max(i)..j1 {
                let s = src[i * n + j] + src[j * n + i];
                out[i * n + j] = s;
                out[j * n + i] = s;
            }
        }
    }
    Array2::from_shape_vec((n, n), out).unwrap_or_else(|_| unreachable!("n² entries"))
}

/// Copies the upper triangle of a square row-major matrix onto the lower one.
pub fn mirror_upper<T: Real>(m: &mut Array2<T>) {
    let n = m.nrows();
    debug_assert_eq!(n, m.ncols());
    let a = m
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("row-major"));
    for (i0, i1, j0, j1) in tiles(n, n, tile::<T>(n, n)).filter(|&(i0, _, j0, _)| j0 >= i0) {
        for i in i0..i1 {
            for j in j0.max(i + 1)..j1 {
                a[j * n + i] = a[i * n + j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn m(r: usize, c: usize) -> Array2<f64> {
        Array2::from_shape_fn((r, c), |(i, j)| (i * 1000 + j) as f64 * 0.5 - 7.0)
    }

    #[test]
    fn sums_match_a_plain_sum_on_exact_values() {
        // integers times 0.5 add exactly in any order, so the lanes must give the plain sum
        for len in [0, 1, 15, 16, 17, 100] {
            let a: Vec<f64> = (0..len).map(|k| k as f64 * 0.5).collect();
            let b: Vec<f64> = (0..len).map(|k| (k % 7) as f64).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert_eq!(sum2(&a, &b, |x, y| x * y), want, "len {len}");
        }
    }

    #[test]
    fn fast_extremes_agree_with_the_definition_including_ties_and_nan() {
        use crate::ops::testing::matrix;
        for (seed, levels) in [(1u64, 0.0), (2, 4.0), (3, 2.0), (4, 0.0)] {
            for (r, c) in [(1, 1), (3, 5), (9, 7), (16, 16), (5, 33), (40, 41)] {
                let mut m = matrix(r, c, seed).into_matrix();
                if levels > 0.0 {
                    m.mapv_inplace(|v| (v * levels).floor());
                }
                let mut cases = vec![m.clone()];
                for at in [(0, 0), (r - 1, c - 1), (r / 2, c / 3)] {
                    let mut with_nan = m.clone();
                    with_nan[at] = f64::NAN;
                    cases.push(with_nan);
                }
                for m in cases {
                    let (fast, exact) = (Extremes::of(&m), Extremes::exact(&m));
                    let key =
                        |e: &Extremes<f64>| (e.lo.to_bits(), e.at_lo, e.hi.to_bits(), e.at_hi);
                    assert_eq!(key(&fast), key(&exact), "{r}×{c} seed {seed}");
                    // the definition: the first in column-major order that no other beats
                    let order = (0..c).flat_map(|j| (0..r).map(move |i| (i, j)));
                    let nan = order.clone().find(|&k| m[k].is_nan());
                    let lo = order
                        .clone()
                        .fold((0, 0), |b, k| if m[k] < m[b] { k } else { b });
                    let hi = order
                        .clone()
                        .fold((0, 0), |b, k| if m[k] > m[b] { k } else { b });
                    assert_eq!(
                        (exact.at_lo, exact.at_hi),
                        (nan.unwrap_or(lo), nan.unwrap_or(hi))
                    );
                }
            }
        }
    }

    #[test]
    fn tiles_cover_every_entry_once() {
        for (r, c, t) in [(1, 1, 16), (100, 70, 16), (130, 512, 8), (64, 64, 8)] {
            let mut seen = Array2::<u8>::zeros((r, c));
            for (i0, i1, j0, j1) in tiles(r, c, t) {
                assert!(i1 - i0 <= t && j1 - j0 <= t);
                seen.slice_mut(ndarray::s![i0..i1, j0..j1])
                    .mapv_inplace(|v| v + 1);
            }
            assert!(seen.iter().all(|&v| v == 1), "{r}×{c}");
        }
        // 512 f64 (4 KiB) rows alias in L1: the smaller tile
        assert_eq!((tile::<f64>(512, 512), tile::<f32>(512, 512)), (8, 16));
    }

    #[test]
    fn transposes_agree_with_ndarray_on_ragged_shapes() {
        for (r, c) in [
            (1, 1),
            (3, 70),
            (70, 3),
            (33, 65),
            (64, 64),
            (3, 512),
            (130, 512),
        ] {
            let a = m(r, c);
            assert_eq!(transposed(a.view()), a.t().to_owned(), "{r}×{c}");
        }
    }

    #[test]
    fn plus_transpose_and_mirror_agree_with_the_definitions() {
        for n in [1, 2, 31, 32, 33, 100, 512] {
            let g = m(n, n);
            assert_eq!(plus_transpose(g.view()), &g + &g.t(), "{n}");
            let mut u = g.clone();
            mirror_upper(&mut u);
            let want = Array2::from_shape_fn((n, n), |(i, j)| g[[i.min(j), i.max(j)]]);
            assert_eq!(u, want, "{n}");
        }
    }
}
