//! `normalize(m, signed = false)`: m rescaled so its minimum is 0 (or −1) and its maximum 1.

use super::{
    kernel, opt, req, Arg, Attrs, CheckError, Default, Doc, Forward, Io, Kind, Meta, Notes, Op,
    Param, PointwiseFns, Signature,
};
use crate::tensor::{ahead, Real, Type, Value};
use ndarray::Array2;

pub struct Normalize;

impl Meta for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "(m − min m) / (max m − min m): rescaled to [0, 1], or to [−1, 1] with signed = true",
            details: "signed = true gives 2·(m − min)/(max − min) − 1. The minimum maps to exactly 0 \
                      (−1) and the maximum to exactly 1. A constant matrix (max = min) gives all \
                      zeros, whatever `signed`, instead of dividing by zero. A NaN anywhere makes every \
                      entry NaN (it is both the minimum and the maximum, as for min and max). An \
                      empty matrix is refused: it has no minimum.",
            gradient: "With z = (m − min)/r, r = max − min, c = 1 (2 if signed) and G = Σg: dm = c·g/r, \
                       plus c·(Σ g⊙z − G)/r at the minimum and −c·(Σ g⊙z)/r at the maximum. Each of min \
                       and max passes its gradient to one entry, its first occurrence in column-major \
                       order (as Zygote). A constant matrix has gradient zero.",
            example: "n = normalize(a * b, signed = true)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("m", Kind::Matrix, "the matrix"),
            opt(
                "signed",
                Kind::Bool,
                Default::Bool(false),
                "map to [−1, 1] instead of [0, 1]",
            ),
        ];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        let shape = inputs[0].dims();
        if shape.is_empty() {
            return Err(CheckError::new(
                "bad_argument",
                format!("normalize needs a matrix with entries, got an empty {shape} matrix"),
                "the minimum and maximum of an empty matrix are undefined",
            )
            .label(Arg::Input(0), format!("{shape}")));
        }
        Ok(inputs[0])
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

/// What one row block of the gradient's pass found: Σ g and Σ g·(m − lo) over the block, and
/// whether the block holds the minimum or the maximum.
struct Block<T> {
    sum_g: T,
    sum_gv: T,
    holds: bool,
}

/// One row block of the gradient in one pass, written over g: g = cr·g, the block's sums (of
/// g as given) in [`kernel::fold2`]'s lanes and a vectorised test for lo and hi.
fn block<T: Real>(g: &mut [T], m: &[T], (lo, hi): (T, T), cr: T) -> Block<T> {
    const L: usize = kernel::LANES;
    let (mut s, mut sv) = ([T::zero(); L], [T::zero(); L]);
    // entries equal to lo or hi, counted per lane (a count vectorises; an `or` of bools
    // compiles to a chain of mask conversions)
    let mut hits = [0u32; L];
    let whole = g.len() - g.len() % L;
    let (g, g_tail) = g.split_at_mut(whole);
    for (g, m) in g.chunks_exact_mut(L).zip(m.chunks_exact(L)) {
        ahead(g);
        ahead(m);
        for l in 0..L {
            s[l] += g[l];
            sv[l] += g[l] * (m[l] - lo);
            hits[l] += u32::from((m[l] == lo) | (m[l] == hi));
            g[l] *= cr;
        }
    }
    let (mut ts, mut tsv, mut th) = (T::zero(), T::zero(), false);
    for (g, &m) in g_tail.iter_mut().zip(&m[whole..]) {
        ts += *g;
        tsv += *g * (m - lo);
        th |= m == lo || m == hi;
        *g *= cr;
    }
    let join = |lanes: [T; L], tail: T| lanes.iter().fold(T::zero(), |a, &l| a + l) + tail;
    Block {
        sum_g: join(s, ts),
        sum_gv: join(sv, tsv),
        holds: th || hits.iter().any(|&h| h > 0),
    }
}

/// The factor c and offset d of out = c·z + d, z ∈ [0, 1].
fn scale<T: Real>(attrs: &Attrs) -> (T, T) {
    if attrs.bool("signed") {
        (T::lit(2.0), -T::one())
    } else {
        (T::one(), T::zero())
    }
}

impl<T: Real> Op<T> for Normalize {
    fn forward(
        &self,
        x: &[&Value<T>],
        attrs: &Attrs,
        _: &dyn Io,
        notes: &mut Notes<T>,
    ) -> Forward<T> {
        let m = x[0].matrix();
        let (lo, hi) = kernel::Extremes::values(m);
        notes.extend([lo, hi]);
        let (r, (c, d)) = (hi - lo, scale::<T>(attrs));
        Ok(Value::Matrix(if r == T::zero() {
            Array2::zeros(m.dim())
        } else {
            kernel::map(m, |v| c * ((v - lo) / r) + d)
        }))
    }

    /// out_k = c·z_k + d, z_k = (m_k − lo)/r, r = hi − lo: ∂z_k/∂m_k = 1/r, ∂z_k/∂lo = (z_k − 1)/r,
    /// ∂z_k/∂hi = −z_k/r, so dm = c·g/r, dlo = c·(Σ g⊙z − Σ g)/r, dhi = −c·(Σ g⊙z)/r, each added to
    /// the entry that is the min (max).
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        notes: &[T],
        g: Value<T>,
        attrs: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let m = x[0].matrix();
        let &[lo, hi] = notes else {
            unreachable!("normalize's forward keeps the extremes of its input")
        };
        let r = hi - lo;
        if r == T::zero() {
            return vec![Some(Value::zeros(x[0].ty()))];
        }
        let cr = scale::<T>(attrs).0 / r;
        let mr = kernel::row_major(m.view());
        let (all, cols) = (kernel::entries(&mr), m.ncols());
        // one pass over g, written over by dm = c·g/r: the sums, and which blocks hold the
        // extremes
        let mut dm = kernel::into_row_major(g.into_matrix());
        let blocks = kernel::each_block(kernel::entries_mut(&mut dm), m.dim(), |rows, g| {
            block(g, &all[rows.start * cols..rows.end * cols], (lo, hi), cr)
        });
        let add = |s: T, b: T| s + b;
        let sum_g = blocks.iter().map(|b| b.sum_g).fold(T::zero(), add);
        let sum_gz = blocks.iter().map(|b| b.sum_gv).fold(T::zero(), add) / r;
        // No block holds them only if m has a NaN, and then every entry of dm is NaN already.
        if blocks.iter().any(|b| b.holds) {
            let e = kernel::Extremes::find(all, cols, (lo, hi), |k| blocks[k].holds);
            dm[e.at_lo] += cr * (sum_gz - sum_g);
            dm[e.at_hi] -= cr * sum_gz;
        }
        vec![Some(Value::Matrix(dm))]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, prim, rows, FakeIo};
    use crate::ops::{Arg, Attrs, Dispatch, Static};
    use crate::tensor::{Shape, Type, Value};

    const SIGNED: [(&str, Static); 1] = [("signed", Static::Bool(true))];

    #[test]
    fn rescales_by_hand() {
        let m = rows(2, 2, &[2., 4., 3., 6.]);
        assert_eq!(
            forward("normalize", std::slice::from_ref(&m), &[]),
            rows(2, 2, &[0., 0.5, 0.25, 1.])
        );
        assert_eq!(
            forward("normalize", &[m], &SIGNED),
            rows(2, 2, &[-1., 0., -0.5, 1.])
        );
    }

    #[test]
    fn constant_matrix_gives_zeros_and_no_gradient() {
        let m = rows(2, 2, &[3., 3., 3., 3.]);
        assert_eq!(
            forward("normalize", std::slice::from_ref(&m), &SIGNED),
            Value::zeros(m.ty())
        );
        let a = crate::ops::testing::attrs(prim("normalize"), &[]);
        let op = <f64 as Dispatch>::op(prim("normalize"));
        let mut notes = Vec::new();
        let y = op.forward(&[&m], &a, &FakeIo, &mut notes).unwrap();
        let g = op.backward(&[&m], &y, &notes, matrix(2, 2, 5), &a, &[true]);
        assert_eq!(g, vec![Some(Value::zeros(m.ty()))]);
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_in_column_major_order() {
        // min 1 at (0, 1) and (1, 0): column-major, (1, 0) comes first; max 5 at (0, 0) only.
        let m = rows(2, 2, &[5., 1., 1., 3.]);
        let a = crate::ops::testing::attrs(prim("normalize"), &[]);
        let op = <f64 as Dispatch>::op(prim("normalize"));
        let mut notes = Vec::new();
        let y = op.forward(&[&m], &a, &FakeIo, &mut notes).unwrap();
        let g = rows(2, 2, &[0., 0., 0., 1.]); // the gradient of out[1, 1] = (3 − min)/(max − min)
        let mut dm = op.backward(&[&m], &y, &notes, g, &a, &[true]);
        let dm = dm.remove(0).unwrap();
        // z = 1/2, r = 4: d/dmin = (z − 1)/r = −1/8, d/dmax = −z/r = −1/8, d/dm[1,1] = 1/r = 1/4
        assert_eq!(dm, rows(2, 2, &[-0.125, 0., -0.125, 0.25]));
    }

    /// The gradient written out plainly (sums in index order, positions by the column-major
    /// scan), against the one-pass blocks: matrices of several blocks with a ragged tail, ties
    /// for both extremes in different blocks, and a NaN.
    #[test]
    fn one_pass_gradient_agrees_with_the_plain_formula() {
        use crate::ops::kernel::Extremes;
        let a = crate::ops::testing::attrs(prim("normalize"), &[]);
        let op = <f64 as Dispatch>::op(prim("normalize"));
        for (r, c, seed) in [(300, 257, 1), (130, 512, 2), (7, 9, 3)] {
            let mut m = matrix(r, c, seed).into_matrix();
            m.mapv_inplace(|v| (v * 50.0).round());
            let (lo, hi) = (
                m.fold(f64::MAX, |a, &v| a.min(v)),
                m.fold(f64::MIN, |a, &v| a.max(v)),
            );
            // ties far apart: the last row holds both extremes again
            m[[r - 1, 0]] = lo;
            m[[r - 1, c - 1]] = hi;
            let g = matrix(r, c, seed + 10).into_matrix();
            let (mv, gv) = (Value::Matrix(m.clone()), Value::Matrix(g.clone()));
            let mut notes = Vec::new();
            let y = op.forward(&[&mv], &a, &FakeIo, &mut notes).unwrap();
            let got = op
                .backward(&[&mv], &y, &notes, gv.clone(), &a, &[true])
                .remove(0)
                .unwrap()
                .into_matrix();
            let e = Extremes::exact(&m);
            let rr = hi - lo;
            let sum_g: f64 = g.iter().sum();
            let sum_gz: f64 = g.iter().zip(&m).map(|(g, v)| g * (v - lo)).sum::<f64>() / rr;
            let mut want = g.mapv(|g| g / rr);
            want[e.at_lo] += (sum_gz - sum_g) / rr;
            want[e.at_hi] -= sum_gz / rr;
            let close = got
                .iter()
                .zip(&want)
                .all(|(x, y)| (x - y).abs() <= 1e-9 * (1.0 + y.abs()));
            assert!(close, "{r}×{c}");
            m[[r / 2, c / 3]] = f64::NAN;
            let mv = Value::Matrix(m);
            let mut notes = Vec::new();
            let y = op.forward(&[&mv], &a, &FakeIo, &mut notes).unwrap();
            let got = op
                .backward(&[&mv], &y, &notes, gv, &a, &[true])
                .remove(0)
                .unwrap()
                .into_matrix();
            assert!(got.iter().all(|v| v.is_nan()), "{r}×{c} with a NaN");
        }
    }

    #[test]
    fn gradient() {
        gradcheck_primitive("normalize", &[matrix(3, 4, 1)], &[]);
        gradcheck_primitive("normalize", &[matrix(4, 3, 2)], &SIGNED);
    }

    #[test]
    fn refuses_an_empty_matrix() {
        let empty = Type::Matrix(Shape::new(0, 3));
        let e = prim("normalize")
            .check(&[empty], &Attrs::default(), &FakeIo)
            .unwrap_err();
        assert_eq!(e.code, "bad_argument");
        assert_eq!(e.labels, vec![(Arg::Input(0), "0×3".to_string())]);
    }
}
