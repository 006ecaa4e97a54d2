//! Values the engine computes with: scalars and matrices over a float type `T`.
//!
//! Everything numeric is generic over [`Real`], implemented for `f32` (the default, as Flux and
//! PyTorch) and `f64` (`--f64`, and every gradient check). This module knows nothing about
//! primitives, the graph or the disk.

use ndarray::{Array2, LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive};
use std::fmt::{self, Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// The float types a script can run in.
pub trait Real:
    Float
    + FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// `"f32"` or `"f64"`, as written in manifests.
    const NAME: &'static str;
    /// Converts an `f64` constant (a literal, a param, an attribute) to `T`, rounding to nearest.
    fn lit(x: f64) -> Self;
    /// Widens to `f64` exactly.
    fn as_f64(self) -> f64;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    fn lit(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    fn lit(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
}

/// The shape of a matrix: rows × cols. Rows are an image's height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub rows: usize,
    pub cols: usize,
}

impl Shape {
    pub fn new(rows: usize, cols: usize) -> Self {
        Shape { rows, cols }
    }
    pub fn len(self) -> usize {
        self.rows * self.cols
    }
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
    pub fn transposed(self) -> Self {
        Shape::new(self.cols, self.rows)
    }
}

impl Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}", self.rows, self.cols)
    }
}

/// The checked type of a numeric value: what the checker knows before anything runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Scalar,
    Matrix(Shape),
}

impl Type {
    pub fn shape(self) -> Option<Shape> {
        match self {
            Type::Scalar => None,
            Type::Matrix(s) => Some(s),
        }
    }
    /// The shape of a matrix type. The checker has made sure the type is a matrix where this is
    /// called, so a scalar here is an engine bug.
    pub fn dims(self) -> Shape {
        self.shape()
            .unwrap_or_else(|| unreachable!("checked call: expected a matrix type"))
    }
    /// Number of floats a value of this type holds.
    pub fn len(self) -> usize {
        match self {
            Type::Scalar => 1,
            Type::Matrix(s) => s.len(),
        }
    }
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Scalar => write!(f, "scalar"),
            Type::Matrix(s) => write!(f, "{s} matrix"),
        }
    }
}

/// A runtime value: a scalar or a matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<T> {
    Scalar(T),
    Matrix(Array2<T>),
}

impl<T: Real> Value<T> {
    pub fn ty(&self) -> Type {
        match self {
            Value::Scalar(_) => Type::Scalar,
            Value::Matrix(m) => Type::Matrix(Shape::new(m.nrows(), m.ncols())),
        }
    }

    /// The scalar inside. Shapes were checked before anything ran, so asking a matrix for a
    /// scalar is an engine bug.
    pub fn scalar(&self) -> T {
        match self {
            Value::Scalar(s) => *s,
            Value::Matrix(_) => unreachable!("checked graph: expected a scalar"),
        }
    }

    /// The matrix inside (see [`Value::scalar`] for why this cannot fail on a checked graph).
    pub fn matrix(&self) -> &Array2<T> {
        match self {
            Value::Matrix(m) => m,
            Value::Scalar(_) => unreachable!("checked graph: expected a matrix"),
        }
    }

    pub fn into_matrix(self) -> Array2<T> {
        match self {
            Value::Matrix(m) => m,
            Value::Scalar(_) => unreachable!("checked graph: expected a matrix"),
        }
    }

    /// A value of type `ty` filled with zeros.
    pub fn zeros(ty: Type) -> Self {
        match ty {
            Type::Scalar => Value::Scalar(T::zero()),
            Type::Matrix(s) => Value::Matrix(Array2::zeros((s.rows, s.cols))),
        }
    }

    /// `self += other` for values of the same type (gradient accumulation at fan-out).
    pub fn accumulate(&mut self, other: &Value<T>) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a += *b,
            (Value::Matrix(a), Value::Matrix(b)) => *a += b,
            _ => unreachable!("checked graph: gradient type differs from value type"),
        }
    }

    /// Elements in memory order (a scalar is one element).
    pub fn iter(&self) -> Box<dyn Iterator<Item = T> + '_> {
        match self {
            Value::Scalar(s) => Box::new(std::iter::once(*s)),
            Value::Matrix(m) => Box::new(m.iter().copied()),
        }
    }

    /// Converts between float types (f64 → f32 rounds to nearest).
    pub fn cast<U: Real>(&self) -> Value<U> {
        match self {
            Value::Scalar(s) => Value::Scalar(U::lit(s.as_f64())),
            Value::Matrix(m) => Value::Matrix(m.mapv(|v| U::lit(v.as_f64()))),
        }
    }
}

/// How far ahead of a pass's position [`ahead`] asks for data: 2 KiB. In-process A/B sets of
/// the 512² step on this project's Intel Xeon: 2 KiB made f64 1.0% faster than 1 KiB (median
/// of seven sets), f32 the same; 4 KiB was even with 2 KiB.
const AHEAD: usize = 2 << 10;

/// Asks the core to start loading the cache lines `AHEAD` bytes past those of `chunk`, the
/// entries a pass is about to use. For loops written in chunks (of 16 or 32 entries) that stream
/// whole matrices through a core, called once a chunk for each matrix read: the optimiser's
/// update, [`min_max`], and the sums of `ops::kernel` and of the primitives' gradient passes.
/// At a 512² f64 step such a pass reads from L3 (1 MiB a matrix a thread, half a core's L2),
/// and the hardware prefetchers do not follow a stream across a 4 KiB page. On this project's
/// Intel Xeon (BENCHMARKS.md) it made the f64 step about 5% faster and the f32 step about 2%.
/// Results cannot change: a prefetch reads nothing the program sees. `ops::kernel`'s note says
/// which loops do not use it, and why.
#[inline(always)]
pub fn ahead<T>(chunk: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = chunk.as_ptr().cast::<i8>().wrapping_add(AHEAD);
        for offset in (0..std::mem::size_of_val(chunk)).step_by(64) {
            // SAFETY: a prefetch is a hint; it never faults, whatever the address (past the
            // end of the matrix too), and changes nothing the program reads.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(offset)) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = chunk;
}

/// The smallest and largest of `values`, or `None` if there are none or one is NaN (±∞ count as
/// values). One branch-free pass the compiler vectorises: 32 independent lanes, so no comparison
/// waits for the previous one, and a NaN test alongside.
pub fn min_max<T: Real>(values: &[T]) -> Option<(T, T)> {
    const LANES: usize = 32;
    let &first = values.first()?;
    let (mut lo_l, mut hi_l) = ([first; LANES], [first; LANES]);
    // NaNs counted per lane: a count vectorises, an `or` of bools compiles to a chain of mask
    // conversions
    let mut nans = [0u32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        ahead(chunk);
        for (((lo, hi), nans), &v) in lo_l
            .iter_mut()
            .zip(hi_l.iter_mut())
            .zip(&mut nans)
            .zip(chunk)
        {
            *lo = if v < *lo { v } else { *lo };
            *hi = if v > *hi { v } else { *hi };
            *nans += u32::from(v.is_nan());
        }
    }
    if first.is_nan() || nans.iter().any(|&n| n > 0) || tail.iter().any(|v| v.is_nan()) {
        return None;
    }
    let lo = (lo_l.iter().chain(tail)).fold(first, |a, &v| if v < a { v } else { a });
    let hi = (hi_l.iter().chain(tail)).fold(first, |a, &v| if v > a { v } else { a });
    Some((lo, hi))
}

#[cfg(test)]
mod min_max_tests {
    use super::min_max;

    #[test]
    fn finds_extremes_and_refuses_nan_in_lanes_and_tail() {
        assert_eq!(min_max::<f64>(&[]), None);
        for len in [1, 31, 32, 33, 100] {
            let v: Vec<f64> = (0..len).map(|k| ((k * 37) % 11) as f64 - 5.0).collect();
            let want = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            assert_eq!(min_max(&v), Some(want), "{len}");
            for at in [0, len / 2, len - 1] {
                let mut w = v.clone();
                w[at] = f64::NAN;
                assert_eq!(min_max(&w), None, "{len} NaN at {at}");
                w[at] = f64::INFINITY;
                assert_eq!(min_max(&w).map(|r| r.1), Some(f64::INFINITY));
            }
        }
    }
}
