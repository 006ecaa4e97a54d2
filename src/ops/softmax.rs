//! `softmax_rows(m, f = exp)` and `softmax_cols(m, f = exp)`: f applied element-wise, then each
//! row (column) divided by its sum. One primitive, registered once per axis.

use super::elementwise::{Exp, Pointwise};
use super::kernel;
use super::{
    opt, req, Attrs, CheckError, Default, Dispatch, Doc, Forward, Io, Kind, Meta, Notes, Op, Param,
    PointwiseFns, Signature,
};
use crate::lambda::ElemFn;
use crate::tensor::{Real, Type, Value};
use ndarray::Array2;
use std::ops::Range;

/// Which lanes are normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Each row sums to 1.
    Rows,
    /// Each column sums to 1.
    Cols,
}

impl Axis {
    /// For each lane, `op` folded over the pairs (a_k, b_k) of two r × c row-major matrices, in
    /// an order fixed by the shape: a row in the lanes of [`kernel::fold2`]; columns row by row
    /// into running column accumulators (which vectorises) within each of [`kernel::blocks`],
    /// then the blocks' accumulators joined in block order. Blocks run on `par`'s threads.
    fn fold<T: Real>(
        self,
        (a, b): (&[T], &[T]),
        (r, c): (usize, usize),
        init: T,
        op: impl Fn(T, T, T) -> T + Copy + Sync,
        join: impl Fn(T, T) -> T + Copy + Sync,
    ) -> Vec<T> {
        if c == 0 {
            return vec![init; if self == Axis::Rows { r } else { 0 }];
        }
        let parts = kernel::per_block((r, c), |rows| {
            let span = rows.start * c..rows.end * c;
            let rows = a[span.clone()].chunks_exact(c).zip(b[span].chunks_exact(c));
            match self {
                Axis::Rows => rows
                    .map(|(x, y)| kernel::fold2(x, y, init, op, join))
                    .collect(),
                Axis::Cols => rows.fold(vec![init; c], |mut acc, (x, y)| {
                    for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
                        *s = op(*s, x, y);
                    }
                    acc
                }),
            }
        });
        match self {
            Axis::Rows => parts.concat(),
            Axis::Cols => {
                let mut parts = parts.into_iter();
                let first = parts.next().unwrap_or_else(|| vec![init; c]);
                parts.fold(first, |mut acc, p| {
                    acc.iter_mut().zip(p).for_each(|(s, p)| *s = join(*s, p));
                    acc
                })
            }
        }
    }

    /// Σ over each lane of a, in the order of [`Axis::fold`].
    fn sums<T: Real>(self, a: &[T], shape: (usize, usize)) -> Vec<T> {
        self.fold((a, a), shape, T::zero(), |s, x, _| s + x, |s, l| s + l)
    }

    /// u with each entry divided by its lane's value in s.
    fn divide<T: Real>(self, mut u: Vec<T>, (r, c): (usize, usize), s: &[T]) -> Array2<T> {
        kernel::each_block(&mut u, (r, c), |rows, block| {
            for (i, row) in rows.zip(block.chunks_exact_mut(c.max(1))) {
                match self {
                    Axis::Rows => row.iter_mut().for_each(|u| *u /= s[i]),
                    Axis::Cols => row.iter_mut().zip(s).for_each(|(u, &s)| *u /= s),
                }
            }
        });
        Array2::from_shape_vec((r, c), u).unwrap_or_else(|_| unreachable!("r·c entries"))
    }

    /// cell(out_k, a_k, lane_k) for every entry k of the rows `rows` of an r × c row-major
    /// matrix (`out` holds just those rows), lane_k the value given for the lane of entry k.
    fn cells<O, T: Real, L: Copy>(
        self,
        (rows, out): (Range<usize>, &mut [O]),
        a: &[T],
        c: usize,
        lane: &[L],
        cell: impl Fn(&mut O, T, L),
    ) {
        let span = rows.start * c..rows.end * c;
        let cells = out
            .chunks_exact_mut(c.max(1))
            .zip(a[span].chunks_exact(c.max(1)));
        for (i, (o, x)) in rows.zip(cells) {
            let cells = o.iter_mut().zip(x);
            match self {
                Axis::Rows => cells.for_each(|(o, &x)| cell(o, x, lane[i])),
                Axis::Cols => (cells.zip(lane)).for_each(|((o, &x), &l)| cell(o, x, l)),
            }
        }
    }

    /// The new matrix h(a_k, lane_k), in row blocks on `par`'s threads.
    fn map<T: Real, L: Copy + Sync>(
        self,
        a: &[T],
        (r, c): (usize, usize),
        lane: &[L],
        h: impl Fn(T, L) -> T + Sync,
    ) -> Array2<T> {
        // SAFETY: `cells` gives every entry of the block to the cell, which writes it.
        unsafe {
            kernel::build((r, c), |rows, out| {
                self.cells((rows, out), a, c, lane, |o, x, l| {
                    o.write(h(x, l));
                })
            })
        }
    }

    /// g_k = h(g_k, a_k, lane_k) for every entry of the row-major g, in place, in row blocks on
    /// `par`'s threads.
    fn update<T: Real, L: Copy + Sync>(
        self,
        g: &mut [T],
        a: &[T],
        shape: (usize, usize),
        lane: &[L],
        h: impl Fn(T, T, L) -> T + Sync,
    ) {
        kernel::each_block(g, shape, |rows, g| {
            self.cells((rows, g), a, shape.1, lane, |g, x, l| *g = h(*g, x, l))
        });
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
    /// The lane sums of f(m), added in the order [`Axis::sums`] adds f's values in the
    /// forward (so the same bits), without storing them.
    fn lane_sums(&self, axis: Axis, m: &[T], shape: (usize, usize)) -> Vec<T> {
        let join = |s: T, l: T| s + l;
        match *self {
            Elem::Affine(a, b) => {
                axis.fold((m, m), shape, T::zero(), |s, x, _| s + (a * x + b), join)
            }
            Elem::Tree(f) => axis.fold((m, m), shape, T::zero(), |s, x, _| s + f.eval(x), join),
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
    fn forward(
        &self,
        x: &[&Value<T>],
        attrs: &Attrs,
        _: &dyn Io,
        notes: &mut Notes<T>,
    ) -> Forward<T> {
        let (axis, m) = (self.0, x[0].matrix());
        let shape = m.dim();
        let m = kernel::row_major(m.view());
        let m = kernel::entries(&m);
        Ok(Value::Matrix(match Rule::of(attrs.func("f")) {
            Rule::Exp => {
                let max = axis.fold((m, m), shape, T::neg_infinity(), |a, x, _| a.max(x), T::max);
                let u = axis.map(m, shape, &max, |x, max| (x - max).exp());
                let u = u.into_raw_vec_and_offset().0;
                let s = axis.sums(&u, shape);
                axis.divide(u, shape, &s)
            }
            // Two passes over m and none over a temporary: the lane sums of f(m), then f(m)/s
            // (f is cheap to evaluate twice; the same bits as dividing stored values). The
            // sums are kept for the backward.
            Rule::Plain(f) => {
                let s = f.lane_sums(axis, m, shape);
                notes.extend_from_slice(&s);
                match f {
                    Elem::Affine(a, b) => axis.map(m, shape, &s, |x, s| (a * x + b) / s),
                    Elem::Tree(f) => axis.map(m, shape, &s, |x, s| f.eval(x) / s),
                }
            }
        }))
    }

    /// y = u / s per lane with u = f(m): ∂y_k/∂u_l = (δ_kl − y_k) / s within a lane, so
    /// du = (g − Σ_lane g⊙y) / s and dm = du ⊙ f'(m). For exp (shifted by the lane max, which
    /// cancels) f'(m) / s = u / s = y, so dm = y ⊙ (g − Σ_lane g⊙y) with no overflow.
    fn backward(
        &self,
        x: &[&Value<T>],
        y: &Value<T>,
        notes: &[T],
        g: Value<T>,
        attrs: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (axis, shape) = (self.0, y.matrix().dim());
        let (m, y) = (
            kernel::row_major(x[0].matrix().view()),
            kernel::row_major(y.matrix().view()),
        );
        let (m, y) = (kernel::entries(&m), kernel::entries(&y));
        // dm is written over g
        let mut dm = kernel::into_row_major(g.into_matrix());
        let g = kernel::entries_mut(&mut dm);
        let dot = axis.fold(
            (&*g, y),
            shape,
            T::zero(),
            |s, g, y| s + g * y,
            |s, l| s + l,
        );
        match Rule::of(attrs.func("f")) {
            Rule::Exp => axis.update(g, y, shape, &dot, |g, y, dot| (g - dot) * y),
            Rule::Plain(f) => {
                let s = notes; // the forward's lane sums
                match f {
                    Elem::Affine(a, _) => {
                        let lane: Vec<(T, T)> =
                            dot.iter().zip(s).map(|(&d, &s)| (d, a / s)).collect();
                        axis.update(g, m, shape, &lane, |g, _, (dot, k)| (g - dot) * k)
                    }
                    Elem::Tree(_) => {
                        let lane: Vec<(T, T)> = dot.into_iter().zip(s.iter().copied()).collect();
                        axis.update(g, m, shape, &lane, |g, x, (dot, s)| {
                            (g - dot) * f.slope(x) / s
                        })
                    }
                }
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
