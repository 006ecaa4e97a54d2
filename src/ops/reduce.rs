//! Reductions of a matrix to a scalar: `sum`, `mean`, `norm`, `min`, `max`. Each is a
//! [`Reduction`] rule that [`Reduce`] turns into a primitive.
//!
//! Sums accumulate in f64 in row-major order, whatever the float type and memory layout, so a
//! result never depends on threads or on how the matrix was produced.

use super::{
    kernel, req, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param, PointwiseFns,
    Signature,
};
use crate::tensor::{Real, Type, Value};
use ndarray::Array2;

/// A function of a whole matrix with a scalar value, and its gradient.
pub trait Reduction: Sync + 'static {
    const NAME: &'static str;
    const DOC: Doc;
    /// y = f(m)
    fn f<T: Real>(m: &Array2<T>) -> T;
    /// g·∂y/∂m, given m, y and the scalar gradient g of the output.
    fn grad<T: Real>(m: &Array2<T>, y: T, g: T) -> Array2<T>;
}

/// The primitive applying a [`Reduction`].
pub struct Reduce<R>(pub R);

impl<R: Reduction> Meta for Reduce<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }
    fn doc(&self) -> Doc {
        R::DOC
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[req("m", Kind::Matrix, "the matrix")];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, _: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        Ok(Type::Scalar)
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<R: Reduction, T: Real> Op<T> for Reduce<R> {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        Ok(Value::Scalar(R::f(x[0].matrix())))
    }

    /// dm = g·∂y/∂m (each rule's formula is in its doc)
    fn backward(
        &self,
        x: &[&Value<T>],
        y: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        vec![Some(Value::Matrix(R::grad(
            x[0].matrix(),
            y.scalar(),
            g.scalar(),
        )))]
    }
}

/// Σ h(v) over m in row-major order, accumulated in f64.
fn total<T: Real>(m: &Array2<T>, h: impl Fn(f64) -> f64) -> f64 {
    m.iter().fold(0.0, |s, v| s + h(v.as_f64()))
}

/// `sum(m)`
pub struct Sum;
impl Reduction for Sum {
    const NAME: &'static str = "sum";
    const DOC: Doc = Doc {
        summary: "sum of all elements",
        details: "Accumulated in f64 in row-major order (deterministic), then rounded to the \
                  float type.",
        gradient: "dm = g everywhere",
        example: "t = sum(m)",
    };
    fn f<T: Real>(m: &Array2<T>) -> T {
        T::lit(total(m, |v| v))
    }
    fn grad<T: Real>(m: &Array2<T>, _: T, g: T) -> Array2<T> {
        Array2::from_elem(m.raw_dim(), g)
    }
}

/// `mean(m)`
pub struct Mean;
impl Reduction for Mean {
    const NAME: &'static str = "mean";
    const DOC: Doc = Doc {
        summary: "mean of all elements",
        details: "The sum (accumulated in f64 in row-major order) divided by rows·cols.",
        gradient: "dm = g/(rows·cols) everywhere",
        example: "u = mean(m)",
    };
    fn f<T: Real>(m: &Array2<T>) -> T {
        T::lit(total(m, |v| v) / m.len() as f64)
    }
    fn grad<T: Real>(m: &Array2<T>, _: T, g: T) -> Array2<T> {
        Array2::from_elem(m.raw_dim(), g / T::lit(m.len() as f64))
    }
}

/// `norm(m)`
pub struct Norm;
impl Reduction for Norm {
    const NAME: &'static str = "norm";
    const DOC: Doc = Doc {
        summary: "Frobenius norm ‖m‖ = √(Σ m²)",
        details: "The squares are accumulated in f64 in row-major order, so f32 matrices neither \
                  overflow nor lose small terms.",
        gradient: "dm = g·m/‖m‖; 0 when ‖m‖ = 0 (a subgradient, as PyTorch)",
        example: "n = norm(a - b)",
    };
    fn f<T: Real>(m: &Array2<T>) -> T {
        T::lit(total(m, |v| v * v).sqrt())
    }
    fn grad<T: Real>(m: &Array2<T>, y: T, g: T) -> Array2<T> {
        if y == T::zero() {
            Array2::zeros(m.raw_dim())
        } else {
            m * (g / y)
        }
    }
}

/// The gradient of y = m[k] (k from [`kernel::Extremes`]): g at k, 0 elsewhere.
fn extreme_grad<T: Real>(m: &Array2<T>, k: (usize, usize), g: T) -> Array2<T> {
    let mut d = Array2::zeros(m.raw_dim());
    d[k] = g;
    d
}

/// `min(m)`
pub struct Min;
impl Reduction for Min {
    const NAME: &'static str = "min";
    const DOC: Doc = Doc {
        summary: "smallest element",
        details: "NaN if any element is NaN. Ties: the first smallest element in column-major \
                  order (down the first column, then the next) is the one selected, as Julia.",
        gradient: "dm = g at the selected element, 0 elsewhere (one entry even when tied, as \
                   Julia's Zygote)",
        example: "lo = min(m)",
    };
    fn f<T: Real>(m: &Array2<T>) -> T {
        kernel::Extremes::of(m).lo
    }
    fn grad<T: Real>(m: &Array2<T>, _: T, g: T) -> Array2<T> {
        extreme_grad(m, kernel::Extremes::of(m).at_lo, g)
    }
}

/// `max(m)`
pub struct Max;
impl Reduction for Max {
    const NAME: &'static str = "max";
    const DOC: Doc = Doc {
        summary: "largest element",
        details: "NaN if any element is NaN. Ties: the first largest element in column-major \
                  order (down the first column, then the next) is the one selected, as Julia.",
        gradient: "dm = g at the selected element, 0 elsewhere (one entry even when tied, as \
                   Julia's Zygote)",
        example: "hi = max(m)",
    };
    fn f<T: Real>(m: &Array2<T>) -> T {
        kernel::Extremes::of(m).hi
    }
    fn grad<T: Real>(m: &Array2<T>, _: T, g: T) -> Array2<T> {
        extreme_grad(m, kernel::Extremes::of(m).at_hi, g)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{attrs, forward, gradcheck_primitive, matrix, prim, rows, FakeIo};
    use crate::ops::Dispatch;
    use crate::tensor::Value;

    fn reduce(name: &str, m: &Value<f64>) -> f64 {
        forward(name, std::slice::from_ref(m), &[]).scalar()
    }

    #[test]
    fn reduces_by_hand() {
        let m = rows(2, 2, &[3., -4., 0., 1.]);
        assert_eq!(reduce("sum", &m), 0.0);
        assert_eq!(reduce("mean", &rows(1, 4, &[1., 2., 3., 6.])), 3.0);
        assert_eq!(reduce("norm", &rows(1, 2, &[3., -4.])), 5.0);
        assert_eq!(reduce("min", &m), -4.0);
        assert_eq!(reduce("max", &m), 3.0);
        assert!(reduce("max", &rows(1, 3, &[1., f64::NAN, 2.])).is_nan());
        assert!(reduce("min", &rows(1, 3, &[1., f64::NAN, 0.])).is_nan());
    }

    #[test]
    fn gradients() {
        for name in ["sum", "mean", "norm", "min", "max"] {
            gradcheck_primitive(name, &[matrix(3, 4, 5)], &[]);
        }
    }

    fn grad(name: &str, m: Value<f64>) -> Value<f64> {
        let p = prim(name);
        let op = <f64 as Dispatch>::op(p);
        let a = attrs(p, &[]);
        let mut notes = Vec::new();
        let y = op.forward(&[&m], &a, &FakeIo, &mut notes).unwrap();
        op.backward(&[&m], &y, &notes, Value::Scalar(2.0), &a, &[true])
            .remove(0)
            .unwrap()
    }

    #[test]
    fn ties_pick_the_first_in_column_major_order() {
        // the ties sit at (0, 1) and (1, 0); column-major visits (1, 0) first
        let m = rows(2, 2, &[0., 5., 5., -1.]);
        assert_eq!(grad("max", m.clone()), rows(2, 2, &[0., 0., 2., 0.]));
        let n = rows(2, 2, &[1., -3., -3., 1.]);
        assert_eq!(grad("min", n), rows(2, 2, &[0., 0., 2., 0.]));
    }

    #[test]
    fn norm_gradient_at_zero_is_zero() {
        assert_eq!(grad("norm", rows(1, 2, &[0., 0.])), rows(1, 2, &[0., 0.]));
    }
}
