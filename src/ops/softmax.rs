//! `softmax_rows(m, f = exp)` and `softmax_cols(m, f = exp)`: f applied element-wise, then each
//! row (column) divided by its sum. One primitive, registered once per axis.

use super::elementwise::{Exp, Pointwise};
use super::{
    opt, req, Attrs, CheckError, Default, Dispatch, Doc, Io, Kind, Meta, Op, Param, PointwiseFns,
    Signature,
};
use crate::lambda::ElemFn;
use crate::tensor::{Real, Type, Value};
use ndarray::{self as nd, Array2, Zip};

/// Which lanes are normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Each row sums to 1.
    Rows,
    /// Each column sums to 1.
    Cols,
}

impl Axis {
    /// The ndarray axis a lane runs along: a row runs along axis 1.
    fn along(self) -> nd::Axis {
        match self {
            Axis::Rows => nd::Axis(1),
            Axis::Cols => nd::Axis(0),
        }
    }

    /// Folds each lane in ascending index order, so sums are reproducible. The folded axis is
    /// kept with length 1, so the result broadcasts against the matrix.
    fn fold<T: Real>(self, a: &Array2<T>, init: T, op: impl Fn(T, T) -> T) -> Array2<T> {
        let folded = match self {
            // one row after another, each read in memory order
            Axis::Rows => a.map_axis(self.along(), |row| {
                row.iter().fold(init, |acc, &v| op(acc, v))
            }),
            // row by row into a running row of column accumulators, which vectorises
            Axis::Cols => a.fold_axis(self.along(), init, |&acc, &v| op(acc, v)),
        };
        folded.insert_axis(self.along())
    }
}

pub struct Softmax(pub Axis);

impl Meta for Softmax {
    fn name(&self) -> &'static str {
        match self.0 {
            Axis::Rows => "softmax_rows",
            Axis::Cols => "softmax_cols",
        }
    }
    fn doc(&self) -> Doc {
        let (summary, example) = match self.0 {
            Axis::Rows => (
                "f(m) with each row divided by its sum (softmax along rows for f = exp)",
                "p = softmax_rows(m)",
            ),
            Axis::Cols => (
                "f(m) with each column divided by its sum (softmax along columns for f = exp)",
                "n = softmax_cols(m, f = x -> x + 1)",
            ),
        };
        Doc {
            summary,
            details: "u = f(m) element-wise, then y = u / s with s the sum of u over each row \
                      (softmax_rows) or column (softmax_cols). The poster's variant is f = x -> x + 1: \
                      plain row or column normalisation of m + 1. When f is exactly exp, u is computed \
                      as exp(m − max of the lane), which cancels in u / s and keeps large entries \
                      from overflowing; other functions are applied as written, and an affine f \
                      (a·x + b) is evaluated directly. Sums run in ascending index order. A lane whose \
                      f-values sum to 0 gives non-finite values: choose f positive.",
            gradient: "du = (g − Σ_lane g⊙y) / s, dm = du ⊙ f'(m); for f = exp this is y ⊙ (g − Σ_lane g⊙y)",
            example,
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("m", Kind::Matrix, "the matrix"),
            opt(
                "f",
                Kind::Func,
                Default::Func("exp"),
                "element-wise function applied before normalising",
            ),
        ];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        Ok(inputs[0])
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

/// How f is evaluated.
enum Rule<'a, T> {
    /// f is exactly exp: evaluated as exp(x − lane max).
    Exp,
    /// Any other f, evaluated as written.
    Plain(Elem<'a, T>),
}

enum Elem<'a, T> {
    /// a·x + b, without walking the tree.
    Affine(T, T),
    Tree(&'a ElemFn),
}

impl<'a, T: Real + Dispatch> Rule<'a, T> {
    fn of(f: &'a ElemFn) -> Self {
        match f {
            ElemFn::Call(p, x) if p.name == Exp::NAME && matches!(**x, ElemFn::X) => Rule::Exp,
            _ => Rule::Plain(match f.affine() {
                Some((a, b)) => Elem::Affine(T::lit(a), T::lit(b)),
                None => Elem::Tree(f),
            }),
        }
    }
}

impl<T: Real + Dispatch> Elem<'_, T> {
    fn value(&self, x: T) -> T {
        match self {
            Elem::Affine(a, b) => *a * x + *b,
            Elem::Tree(f) => f.eval(x),
        }
    }
    fn slope(&self, x: T) -> T {
        match self {
            Elem::Affine(a, _) => *a,
            Elem::Tree(f) => f.eval_with_derivative(x).1,
        }
    }
}

impl<T: Real + Dispatch> Op<T> for Softmax {
    fn forward(&self, x: &[&Value<T>], attrs: &Attrs, _: &dyn Io) -> Result<Value<T>, String> {
        let (axis, m) = (self.0, x[0].matrix());
        let mut u = match Rule::of(attrs.func("f")) {
            Rule::Exp => {
                let max = axis.fold(m, T::neg_infinity(), T::max);
                Zip::from(m)
                    .and_broadcast(&max)
                    .map_collect(|&x, &max| (x - max).exp())
            }
            Rule::Plain(f) => m.mapv(|x| f.value(x)),
        };
        let s = axis.fold(&u, T::zero(), |a, b| a + b);
        Zip::from(&mut u)
            .and_broadcast(&s)
            .for_each(|u, &s| *u /= s);
        Ok(Value::Matrix(u))
    }

    /// y = u / s per lane with u = f(m): ∂y_k/∂u_l = (δ_kl − y_k) / s within a lane, so
    /// du = (g − Σ_lane g⊙y) / s and dm = du ⊙ f'(m). For exp (shifted by the lane max, which
    /// cancels) f'(m) / s = u / s = y, so dm = y ⊙ (g − Σ_lane g⊙y) with no overflow.
    fn backward(
        &self,
        x: &[&Value<T>],
        y: &Value<T>,
        g: &Value<T>,
        attrs: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (axis, m, y, g) = (self.0, x[0].matrix(), y.matrix(), g.matrix());
        let mut dm = g * y;
        let dot = axis.fold(&dm, T::zero(), |a, b| a + b);
        let zip = Zip::from(&mut dm).and(g).and_broadcast(&dot);
        match Rule::of(attrs.func("f")) {
            Rule::Exp => zip.and(y).for_each(|d, &g, &dot, &y| *d = (g - dot) * y),
            Rule::Plain(f) => {
                // the forward's lane sums, in the same order, without storing f(m)
                let s = axis.fold(m, T::zero(), |acc, x| acc + f.value(x));
                zip.and(m)
                    .and_broadcast(&s)
                    .for_each(|d, &g, &dot, &x, &s| *d = (g - dot) * f.slope(x) / s);
            }
        }
        vec![Some(Value::Matrix(dm))]
    }
}

#[cfg(test)]
mod tests {
    use crate::lambda::ElemFn::{self, *};
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, rows};
    use crate::ops::Static;
    use std::sync::Arc;

    fn f(e: ElemFn) -> [(&'static str, Static); 1] {
        [("f", Static::Func(Arc::new(e)))]
    }

    fn plus_one() -> ElemFn {
        Add(Box::new(X), Box::new(Const(1.0)))
    }

    fn close(got: &crate::tensor::Value<f64>, want: &[f64]) {
        assert_eq!(got.ty().len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
    }

    #[test]
    fn normalises_rows_and_columns_by_hand() {
        let m = rows(2, 2, &[0., 1., 2., 5.]);
        // f = x + 1: rows [1, 2] / 3 and [3, 6] / 9; columns [1, 3] / 4 and [2, 6] / 8
        close(
            &forward("softmax_rows", std::slice::from_ref(&m), &f(plus_one())),
            &[1. / 3., 2. / 3., 1. / 3., 2. / 3.],
        );
        close(
            &forward("softmax_cols", &[m], &f(plus_one())),
            &[0.25, 0.25, 0.75, 0.75],
        );
        // f = exp (the default): row [0, ln 3] gives [1/4, 3/4]
        close(
            &forward("softmax_rows", &[rows(1, 2, &[0., 3f64.ln()])], &[]),
            &[0.25, 0.75],
        );
    }

    #[test]
    fn exp_does_not_overflow() {
        let out = forward(
            "softmax_cols",
            &[rows(2, 1, &[1000., 1000. + 2f64.ln()])],
            &[],
        );
        close(&out, &[1. / 3., 2. / 3.]);
    }

    #[test]
    fn gradient() {
        let square = Mul(Box::new(X), Box::new(X)); // walks the tree
        for name in ["softmax_rows", "softmax_cols"] {
            gradcheck_primitive(name, &[matrix(3, 4, 1)], &[]);
            gradcheck_primitive(name, &[matrix(4, 3, 2)], &f(plus_one()));
            gradcheck_primitive(name, &[matrix(3, 3, 3)], &f(square.clone()));
        }
    }
}
