//! `signed_diff(a, b)`: (a − b) / max|a − b|, the signed difference scaled into [−1, 1].

use super::{
    kernel, req, Arg, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param,
    PointwiseFns, Signature,
};
use crate::tensor::{Real, Type, Value};
use ndarray::{Array2, Zip};

pub struct SignedDiff;

impl Meta for SignedDiff {
    fn name(&self) -> &'static str {
        "signed_diff"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "(a − b) / max|a − b|: the signed difference scaled into [−1, 1]",
            details: "The largest difference maps to ±1 and equal entries to 0, so the sign and \
                      relative size of every difference show. Equal matrices give all zeros. Save it \
                      `with colormap = \"signed\"` for a false-colour picture: purple where a is \
                      above b, green where below, brighter for larger differences. A NaN anywhere makes \
                      every entry NaN (as for normalize).",
            gradient: "With d = a − b, M = max|d| at its first entry k in column-major order and \
                       s = sign(d_k): dd = g/M − s·(Σ g⊙d)/M² at k; da = dd, db = −dd. Equal \
                       matrices have gradient zero.",
            example: "delta = signed_diff(a, b)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("a", Kind::Matrix, "the matrix compared"),
            req("b", Kind::Matrix, "the reference, of a's shape"),
        ];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        let (a, b) = (inputs[0].dims(), inputs[1].dims());
        if a != b {
            return Err(CheckError::new(
                "shape_mismatch",
                format!("signed_diff compares matrices of one shape, got {a} and {b}"),
                "compare matrices of the same shape; use resize(m, rows, cols) to make them agree",
            )
            .label(Arg::Input(0), format!("{a}"))
            .label(Arg::Input(1), format!("{b}")));
        }
        Ok(inputs[0])
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

/// d = a − b, and the largest |d| with its first position in column-major order.
fn difference<T: Real>(x: &[&Value<T>]) -> (Array2<T>, T, (usize, usize)) {
    let d = kernel::map2(x[0].matrix(), x[1].matrix(), |a, b| a - b);
    let largest = kernel::Extremes::of(&kernel::map(&d, T::abs));
    (d, largest.hi, largest.at_hi)
}

impl<T: Real> Op<T> for SignedDiff {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        let (d, top, _) = difference(x);
        Ok(Value::Matrix(if top == T::zero() {
            d
        } else {
            kernel::map(&d, |v| v / top)
        }))
    }

    /// out = d/M with M = |d_k|: ∂out_i/∂d_j = δᵢⱼ/M − d_i·s·δⱼₖ/M², so dd = g/M, and
    /// −s·(Σ g⊙d)/M² more at k.
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (d, top, at) = difference(x);
        let dd = if top == T::zero() {
            Array2::zeros(d.dim())
        } else {
            let g = g.matrix();
            let mut gd = T::zero();
            Zip::from(g).and(&d).for_each(|&g, &d| gd += g * d);
            let mut dd = g.mapv(|g| g / top);
            dd[at] -= d[at].signum() * gd / (top * top);
            dd
        };
        vec![
            needs[0].then(|| Value::Matrix(dd.clone())),
            needs[1].then(|| Value::Matrix(-dd)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, rows};
    use crate::tensor::Value;

    #[test]
    fn scales_by_the_largest_difference() {
        let a = rows(2, 2, &[1., 2., 3., 0.]);
        let b = rows(2, 2, &[1., 0., 2., 4.]);
        // d = [0, 2; 1, −4], max |d| = 4
        assert_eq!(
            forward("signed_diff", &[a.clone(), b], &[]),
            rows(2, 2, &[0., 0.5, 0.25, -1.])
        );
        assert_eq!(
            forward("signed_diff", &[a.clone(), a], &[]),
            Value::zeros(rows(2, 2, &[0.; 4]).ty())
        );
    }

    #[test]
    fn a_nan_makes_every_entry_nan() {
        let out = forward(
            "signed_diff",
            &[rows(1, 3, &[1., f64::NAN, -2.]), rows(1, 3, &[0.; 3])],
            &[],
        );
        assert!(out.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn gradient() {
        // Both signs of the extreme difference.
        gradcheck_primitive("signed_diff", &[matrix(3, 4, 1), matrix(3, 4, 2)], &[]);
        gradcheck_primitive("signed_diff", &[matrix(4, 3, 5), matrix(4, 3, 3)], &[]);
    }
}
