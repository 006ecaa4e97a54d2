//! Loops several primitives share, written so the compiler vectorises them: sums with a fixed
//! number of independent running lanes (deterministic, whatever the machine), and transposes
//! made of [`super::tile`]'s register-sized tiles (a plain strided transpose misses the cache
//! on every read or every write, and the compiler does not vectorise one).
//!
//! Passes over a matrix are cut into tasks for [`par`]: row blocks ([`blocks`]). Products are
//! in [`super::gemm`]. Every function here gives the same bits on every run and
//! thread count: the tasks and the order of each addition are fixed by the data's shape alone.
//!
//! The loops written in chunks of [`LANES`] ([`fold2`], and the primitives' gradient passes
//! built the same way) ask for their inputs ahead with [`crate::tensor::ahead`]. The plain
//! entry-by-entry loops over whole rows ([`map`], [`map2`], `softmax`'s sums and writes) do not:
//! asked once a row, they got slower (`softmax_cols`' backward by half), and cut into chunks of
//! 16 for it, f32's step got 3.5–4.8% slower with f64's no faster (BENCHMARKS.md).

use super::tile::{self, side, Tile};
use crate::par;
use crate::tensor::{ahead, min_max, Real, Value};
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, CowArray, Ix2, Zip};
use std::mem::MaybeUninit;
use std::ops::Range;

/// Independent running sums: enough to hide the latency of an addition and fill an AVX-512
/// register of f32.
pub const LANES: usize = 16;

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
    let one = std::ptr::eq(a, b);
    for (x, y) in ca.zip(cb) {
        ahead(x);
        if !one {
            ahead(y);
        }
        for ((l, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *l = op(*l, x, y);
        }
    }
    let tail = ta.iter().zip(tb).fold(init, |s, (&x, &y)| op(s, x, y));
    join(lanes.iter().fold(init, |s, &l| join(s, l)), tail)
}

/// The smallest and largest entry (`None` if empty or with a NaN), as [`min_max`] but with the
/// [`blocks`] on [`par`]'s threads, combined in block order.
pub fn min_max_par<T: Real>(a: &[T]) -> Option<(T, T)> {
    let parts = per_block((a.len(), 1), |r| min_max(&a[r]));
    parts.into_iter().try_fold(None, |acc, p| {
        let (lo, hi) = p?;
        Some(Some(match acc {
            None => (lo, hi),
            Some((l, h)) => (if lo < l { lo } else { l }, if hi > h { hi } else { h }),
        }))
    })?
}

/// Whether every entry of v is finite and smaller than `limit` in magnitude (NaN is not): a
/// branch-free pass in [`blocks`] on [`par`]'s threads.
pub fn all_within<T: Real>(v: &Value<T>, limit: T) -> bool {
    match v {
        Value::Scalar(s) => s.abs() < limit,
        Value::Matrix(m) => {
            let m = row_major(m.view());
            let all = entries(&m);
            let within = |r: Range<usize>| all[r].iter().fold(true, |ok, v| ok & (v.abs() < limit));
            per_block((all.len(), 1), within).into_iter().all(|ok| ok)
        }
    }
}

/// Entries per task of an element-wise pass or a reduction: 128 KiB of f32, enough that handing
/// a task to another thread costs little, small enough that a 512² matrix makes eight tasks.
const GRAIN: usize = 1 << 15;

/// The row blocks an r × c matrix is cut into for [`par`]: fixed by the shape alone, so a
/// reduction over the blocks adds in the same order for any number of threads.
pub fn blocks(rows: usize, cols: usize) -> Vec<Range<usize>> {
    let step = block_rows(cols);
    (0..rows)
        .step_by(step)
        .map(|r| r..(r + step).min(rows))
        .collect()
}

/// The rows per block of [`blocks`] for matrices with `cols` columns.
pub fn block_rows(cols: usize) -> usize {
    (GRAIN / cols.max(1)).max(1)
}

/// f of every row block of an r × c matrix, in block order, computed on [`par`]'s threads.
pub fn per_block<R: Send>(
    (rows, cols): (usize, usize),
    f: impl Fn(Range<usize>) -> R + Sync,
) -> Vec<R> {
    par::map(blocks(rows, cols), f)
}

/// f(rows, the rows' entries) for every row block of the row-major r × c matrix `out`, in
/// block order.
pub fn each_block<T: Send, R: Send>(
    out: &mut [T],
    (rows, cols): (usize, usize),
    f: impl Fn(Range<usize>, &mut [T]) -> R + Sync,
) -> Vec<R> {
    debug_assert_eq!(out.len(), rows * cols);
    let jobs = split_rows(out, cols, blocks(rows, cols));
    par::map(jobs, |(r, block)| f(r, block))
}

/// The row-major matrix `out` with `cols` columns cut into the consecutive row ranges `rows`
/// (from row 0), each with its entries.
pub fn split_rows<T>(
    out: &mut [T],
    cols: usize,
    rows: impl IntoIterator<Item = Range<usize>>,
) -> Vec<(Range<usize>, &mut [T])> {
    let mut parts = Vec::new();
    let mut rest = out;
    for r in rows {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(r.len() * cols);
        parts.push((r, part));
        rest = tail;
    }
    parts
}

/// A new row-major r × c matrix whose row blocks `fill` writes, block by block on [`par`]'s
/// threads. Nothing is written before `fill`. On this project's machine (an Intel Xeon,
/// Emerald Rapids) zeroing each block first cost 4–6% of a 512² step, on one thread and on
/// two; on the AMD EPYC before it, it saved 8% when two threads shared one core (zeroing takes
/// the cache lines without reading memory, which a first plain store to fresh memory must do).
///
/// # Safety
/// `fill` must write every entry of the block it is given.
pub unsafe fn build<T: Real>(
    (rows, cols): (usize, usize),
    fill: impl Fn(Range<usize>, &mut [MaybeUninit<T>]) + Sync,
) -> Array2<T> {
    let mut out = Box::<[T]>::new_uninit_slice(rows * cols);
    each_block(&mut out, (rows, cols), fill);
    // SAFETY: the blocks cover every entry, and the caller promised that fill wrote them all.
    unsafe { assume_matrix(out, (rows, cols)) }
}

/// A new r × c matrix of zeros, written on [`par`]'s threads, for state that is read before
/// it is written (an optimiser's moments). `Array2::zeros` may get a large matrix as fresh
/// pages that the system maps on first touch: a read maps the shared zero page, and the write
/// after it faults again to copy it. On this project's machine (a KVM guest) that made Adam's
/// first update of a 2048² f64 learnable take 180–205 ms on two threads (61 on one) against
/// 5–6 ms (12) with the moments written here, and 4–5 ms for every later update; at 1024² 44
/// against 1.5 ms. f32's moments there came from memory the allocator had freed and zeroes
/// itself, and were as fast either way.
pub fn zeros<T: Real>(shape: (usize, usize)) -> Array2<T> {
    // SAFETY: every entry of the block is written.
    unsafe { build(shape, |_, out| out.fill(MaybeUninit::new(T::zero()))) }
}

/// The r × c row-major matrix of the given entries.
///
/// # Safety
/// Every entry must have been written.
pub unsafe fn assume_matrix<T: Real>(
    entries: Box<[MaybeUninit<T>]>,
    shape: (usize, usize),
) -> Array2<T> {
    // SAFETY: as the caller promised.
    let entries = unsafe { entries.assume_init() };
    Array2::from_shape_vec(shape, entries.into_vec())
        .unwrap_or_else(|_| unreachable!("rows·cols entries"))
}

/// Writes `src` into `out` (slices of the same length), as one copy: a copy of a length the
/// compiler knows becomes register moves. Entry by entry, the loop did not become one: packing
/// `gram`'s operand that way made its forward product 4–6% slower on two threads. This is
/// what `write_copy_of_slice` does, from Rust 1.93 on.
pub fn write<T: Copy>(out: &mut [MaybeUninit<T>], src: &[T]) {
    assert_eq!(out.len(), src.len(), "a copy between slices of one length");
    // SAFETY: MaybeUninit<T> has T's layout; both slices hold src.len() entries, and a shared
    // and a mutable borrow do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), out.as_mut_ptr().cast::<T>(), src.len()) }
}

/// `out` with every entry written, as initialised entries.
///
/// # Safety
/// Every entry of `out` must have been written.
pub unsafe fn assume_written<T>(out: &[MaybeUninit<T>]) -> &[T] {
    // SAFETY: MaybeUninit<T> has T's layout, and the caller promised the entries are written.
    unsafe { &*(out as *const [MaybeUninit<T>] as *const [T]) }
}

/// f of every entry of m, as `m.mapv(f)`, on [`par`]'s threads.
pub fn map<T: Real, U: Real>(m: &Array2<T>, f: impl Fn(T) -> U + Sync) -> Array2<U> {
    let m = row_major(m.view());
    let (src, cols) = (entries(&m), m.ncols());
    // SAFETY: every entry of the block is written.
    unsafe {
        build(m.dim(), |rows, out| {
            let src = &src[rows.start * cols..rows.end * cols];
            out.iter_mut().zip(src).for_each(|(o, &v)| {
                o.write(f(v));
            });
        })
    }
}

/// f(a_k, b_k) for the entries of two matrices of one shape, on [`par`]'s threads.
pub fn map2<T: Real>(a: &Array2<T>, b: &Array2<T>, f: impl Fn(T, T) -> T + Sync) -> Array2<T> {
    let (a, b) = (row_major(a.view()), row_major(b.view()));
    let (x, y, cols) = (entries(&a), entries(&b), a.ncols());
    // SAFETY: every entry of the block is written.
    unsafe {
        build(a.dim(), |rows, out| {
            let span = rows.start * cols..rows.end * cols;
            let cells = out.iter_mut().zip(&x[span.clone()]).zip(&y[span]);
            cells.for_each(|((o, &x), &y)| {
                o.write(f(x, y));
            });
        })
    }
}

/// f(a_k, b_k, c_k, d_k) for the entries of four views of one shape (a scalar may be one
/// repeated, with strides of 0), on [`par`]'s threads.
pub fn map4<T: Real>(
    [a, b, c, d]: [ArrayView2<T>; 4],
    f: impl Fn(T, T, T, T) -> T + Sync,
) -> Array2<T> {
    let (_, cols) = a.dim();
    // SAFETY: every entry of the block is written.
    unsafe {
        build(a.dim(), |rows, out| {
            let out = ArrayViewMut2::from_shape((rows.len(), cols), out)
                .unwrap_or_else(|_| unreachable!("a block of whole rows"));
            let [a, b, c, d] = [a, b, c, d].map(|v| v.slice_move(s![rows.clone(), ..]));
            Zip::from(out)
                .and(a)
                .and(b)
                .and(c)
                .and(d)
                .for_each(|o, &a, &b, &c, &d| {
                    o.write(f(a, b, c, d));
                });
        })
    }
}

/// f(d_k, a_k, b_k) for the entries of three matrices of one shape, d's updated in place (and
/// made row-major first if it is not), on [`par`]'s threads.
pub fn update2<T: Real>(
    d: Array2<T>,
    a: &Array2<T>,
    b: &Array2<T>,
    f: impl Fn(&mut T, T, T) + Sync,
) -> Array2<T> {
    let mut d = into_row_major(d);
    let (a, b) = (row_major(a.view()), row_major(b.view()));
    let (x, y, shape) = (entries(&a), entries(&b), d.dim());
    each_block(entries_mut(&mut d), shape, |rows, out| {
        let span = rows.start * shape.1..rows.end * shape.1;
        let cells = out.iter_mut().zip(&x[span.clone()]).zip(&y[span]);
        cells.for_each(|((d, &x), &y)| f(d, x, y));
    });
    d
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
        match m.as_slice().map(min_max_par) {
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
        let Some((lo, hi)) = min_max_par(all) else {
            return Self::exact(m);
        };
        Self::find(all, m.ncols(), (lo, hi), |_| true)
    }

    /// The first positions of lo and hi, the extremes of the row-major matrix `all` with `cols`
    /// columns (neither NaN), searched in the [`blocks`] for which `holds` is true (which must
    /// include those that hold them).
    pub fn find(
        all: &[T],
        cols: usize,
        (lo, hi): (T, T),
        holds: impl Fn(usize) -> bool + Sync,
    ) -> Self {
        // First occurrences in column-major order (smallest column, then smallest row): a
        // vectorised test per row, and a scalar search only in rows that hold the value; per
        // row block on par's threads, then the smallest (column, row) of the blocks.
        let none = ((usize::MAX, 0), (usize::MAX, 0));
        let numbered = blocks(all.len() / cols.max(1), cols)
            .into_iter()
            .enumerate();
        let found = par::map(
            numbered.filter(|&(b, _)| holds(b)).collect(),
            |(_, rows)| {
                let (mut at_lo, mut at_hi) = none;
                for i in rows {
                    let row = &all[i * cols..(i + 1) * cols];
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
                (at_lo, at_hi)
            },
        );
        let (at_lo, at_hi) = found
            .into_iter()
            .fold(none, |(l, h), (bl, bh)| (l.min(bl), h.min(bh)));
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

/// m itself if it is row-major, else its entries copied into row-major order: for a
/// gradient a primitive writes its result over.
pub fn into_row_major<T: Real>(m: Array2<T>) -> Array2<T> {
    if m.is_standard_layout() {
        m
    } else {
        m.as_standard_layout().into_owned()
    }
}

/// The slice behind a row-major matrix from [`into_row_major`], to write.
pub fn entries_mut<T: Real>(m: &mut Array2<T>) -> &mut [T] {
    m.as_slice_mut()
        .unwrap_or_else(|| unreachable!("into_row_major gives row-major"))
}

/// The slice behind a row-major matrix from [`row_major`].
pub fn entries<'a, T: Real>(m: &'a CowArray<'_, T, Ix2>) -> &'a [T] {
    m.as_slice()
        .unwrap_or_else(|| unreachable!("as_standard_layout gives row-major"))
}

/// The strips of `height` rows (the last may be fewer) that `rows` is cut into, as ranges of
/// row numbers relative to `rows.start`: a transpose goes strip by strip, each through the
/// whole width.
fn strips(rows: &Range<usize>, height: usize) -> impl Iterator<Item = Range<usize>> {
    let h = rows.len();
    (0..h).step_by(height).map(move |i| i..(i + height).min(h))
}

/// mᵀ as a new row-major matrix.
pub fn transposed<T: Real>(m: ArrayView2<T>) -> Array2<T> {
    let (r, c) = m.dim();
    let m = row_major(m);
    let src = entries(&m);
    // SAFETY: the strips cover the block's rows, and each transpose writes its strip.
    unsafe {
        build((c, r), |rows, out| {
            for strip in strips(&rows, tile::BLOCK) {
                let from = Tile::of(src, c, (0, rows.start + strip.start));
                tile::transpose(from, None, &mut out[strip.start * r..], r, (strip.len(), r));
            }
        })
    }
}

/// g + gᵀ for a square g: exactly symmetric (g_ij + g_ji and g_ji + g_ij are the same
/// addition). Row blocks of the result on [`par`]'s threads, each in strips.
pub fn plus_transpose<T: Real>(g: ArrayView2<T>) -> Array2<T> {
    let n = g.nrows();
    debug_assert_eq!(n, g.ncols());
    let g = row_major(g);
    let src = entries(&g);
    // SAFETY: the strips cover the block's rows, and each transpose writes its strip.
    unsafe {
        build((n, n), |rows, out| {
            for strip in strips(&rows, tile::BLOCK) {
                let at = rows.start + strip.start;
                let (from, add) = (Tile::of(src, n, (0, at)), Tile::of(src, n, (at, 0)));
                let out = &mut out[strip.start * n..];
                tile::transpose(from, Some(add), out, n, (strip.len(), n));
            }
        })
    }
}

/// Copies the upper triangle of the square row-major n × n matrix `m` onto the lower one:
/// row blocks of the lower triangle on [`par`]'s threads, each in strips. Afterwards every
/// entry is written.
///
/// # Safety
/// The entries on and above the diagonal must have been written.
pub unsafe fn mirror_upper<T: Real>(m: &mut [MaybeUninit<T>], n: usize) {
    assert_eq!(m.len(), n * n, "an n × n matrix");
    let a = Shared(m.as_mut_ptr().cast::<T>());
    let isa = super::isa::best();
    per_block((n, n), |rows| {
        for strip in strips(&rows, side::<T>()) {
            let (i0, i1) = (rows.start + strip.start, rows.start + strip.end);
            // SAFETY: a points to the n² entries of m, borrowed mutably for this call. Each
            // task writes only below the diagonal in its own rows, and everyone reads only
            // above it, where the caller wrote and nobody writes now. The strip's columns left
            // of its first row are read from rows above it (disjoint entries), then the
            // triangle on the diagonal.
            unsafe {
                let (from, to) = ((a.at(i0) as *const T, n), (a.at(i0 * n), n));
                tile::raw(isa, from, (std::ptr::null(), 0), to, (i1 - i0, i0));
                for i in i0..i1 {
                    for j in i0..i {
                        *a.at(i * n + j) = *a.at(j * n + i);
                    }
                }
            }
        }
    });
}

/// A matrix's entries, shared by tasks that write disjoint entries and read none that others
/// write (see [`mirror_upper`]).
struct Shared<T>(*mut T);

// SAFETY: tasks use it only as described on the type.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The entry at offset k; the caller keeps k in bounds.
    fn at(&self, k: usize) -> *mut T {
        self.0.wrapping_add(k)
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
            let sum = fold2(&a, &b, 0.0, |s, x, y| s + x * y, |s, l| s + l);
            assert_eq!(sum, want, "len {len}");
        }
    }

    #[test]
    fn within_a_limit_over_many_blocks() {
        let (r, c) = (3 * block_rows(100) + 5, 100);
        let ok = Array2::from_shape_fn((r, c), |(i, j)| (i * c + j) as f64 % 9.0 - 4.0);
        assert!(all_within(&Value::Matrix(ok.clone()), 5.0));
        assert!(
            !all_within(&Value::Matrix(ok.clone()), 4.0),
            "4 is not below 4"
        );
        for bad in [f64::NAN, f64::INFINITY, -7.0] {
            let mut m = ok.clone();
            m[[r - 1, c - 1]] = bad; // in the last, ragged block
            assert!(!all_within(&Value::Matrix(m), 5.0), "{bad}");
        }
        assert!(all_within(&Value::Scalar(-4.5), 5.0));
        assert!(!all_within(&Value::Scalar(f64::NAN), 5.0));
    }

    #[test]
    fn extremes_over_many_blocks() {
        // Several blocks and a ragged last one.
        let len = 3 * GRAIN + 17;
        let b: Vec<f64> = (0..len).map(|k| (k % 7) as f64 - 3.0).collect();
        assert_eq!(min_max_par(&b), Some((-3.0, 3.0)));
        assert_eq!(min_max_par::<f64>(&[]), None);
        let mut nan = b.clone();
        nan[2 * GRAIN + 5] = f64::NAN;
        assert_eq!(min_max_par(&nan), None);
    }

    #[test]
    fn fast_extremes_agree_with_the_definition_including_ties_and_nan() {
        use crate::ops::testing::matrix;
        for (seed, levels) in [(1u64, 0.0), (2, 4.0), (3, 2.0), (4, 0.0)] {
            for (r, c) in [
                (1, 1),
                (3, 5),
                (9, 7),
                (16, 16),
                (5, 33),
                (40, 41),
                (300, 257),
            ] {
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

    /// Both types: f32 and f64 tiles differ in side (16, 8) and in the registers used.
    fn transposes_of<T: Real>() {
        let m = |r: usize, c: usize| m(r, c).mapv(T::lit);
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
            assert_eq!(
                transposed(a.view()),
                a.t().to_owned(),
                "{} {r}×{c}",
                T::NAME
            );
        }
        // sides that are and are not multiples of a tile, blocks of rows that are not (300)
        for n in [1, 2, 31, 32, 33, 100, 300, 512] {
            let g = m(n, n);
            assert_eq!(plus_transpose(g.view()), &g + &g.t(), "{} {n}", T::NAME);
            // below the diagonal a value the mirror must overwrite
            let entry = |((i, j), &v): ((usize, usize), &T)| if j < i { T::lit(-9.5) } else { v };
            let mut u: Vec<_> = g.indexed_iter().map(entry).map(MaybeUninit::new).collect();
            // SAFETY: every entry is written.
            let u = unsafe {
                mirror_upper(&mut u, n);
                Array2::from_shape_vec((n, n), assume_written(&u).to_vec()).unwrap()
            };
            let want = Array2::from_shape_fn((n, n), |(i, j)| g[[i.min(j), i.max(j)]]);
            assert_eq!(u, want, "{} {n}", T::NAME);
        }
    }

    #[test]
    fn transposes_agree_with_the_definitions_in_both_types() {
        transposes_of::<f32>();
        transposes_of::<f64>();
    }
}
