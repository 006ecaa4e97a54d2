//! `warp(m, amp = -10, freq = 0.25, phase = 0)`: the poster's oscillatory warp, which slides each
//! column along itself by a sine of the column index.

use super::{
    kernel, opt, req, Attrs, CheckError, Default, Doc, Forward, Io, Kind, Meta, Notes, Op, Param,
    PointwiseFns, Signature,
};
use crate::tensor::{Real, Type, Value};
use ndarray::Array2;

pub struct Warp;

impl Meta for Warp {
    fn name(&self) -> &'static str {
        "warp"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "oscillatory warp: column y of m slides along itself by amp·sin(freq·(y + phase)) rows",
            details: "With 1-based row x and column y, out[x,y] = bilinear(m, s, y) where \
                      s = clamp(x + amp·sin(freq·(y + phase)), 1, rows): with i = floor(s) and t = s − i, \
                      out[x,y] = (1 − t)·m[i,y] + t·m[min(i + 1, rows),y]. Out of bounds the edge rows \
                      repeat (the coordinate is clamped, never wrapped or zero-filled). Values only move \
                      within their column. The poster's warp3 with knob k is amp = 10(k − 16)/16, \
                      freq = 1/4, phase = 0, so the defaults are warp3 at k = 0.",
            gradient: "dm: g·(1 − t) scattered to m[i,y] and g·t to m[min(i + 1, rows),y]. Through the \
                       coordinate, ds = g·(m[min(i + 1, rows),y] − m[i,y]) where 1 ≤ x + amp·sin(θ) ≤ rows \
                       and 0 where the clamp is active, θ = freq·(y + phase); then damp = Σ ds·sin θ, \
                       dfreq = Σ ds·amp·cos θ·(y + phase), dphase = Σ ds·amp·cos θ·freq. At integer s the \
                       interpolation has a kink and the derivative from above is used.",
            example: "w = warp(m, amp = s, freq = 0.3)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("m", Kind::Matrix, "the image"),
            opt(
                "amp",
                Kind::Scalar,
                Default::Num(-10.0),
                "largest shift, in rows",
            ),
            opt(
                "freq",
                Kind::Scalar,
                Default::Num(0.25),
                "angular frequency along the columns, radians per column",
            ),
            opt(
                "phase",
                Kind::Scalar,
                Default::Num(0.0),
                "shift of the wave, in columns",
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

/// The shift amp·sin(freq·(y + phase)) of every column y (1-based), with y + phase.
fn waves<T: Real>(cols: usize, amp: T, freq: T, phase: T) -> impl Iterator<Item = (T, T)> {
    (1..=cols).map(move |y| {
        let at = T::lit(y as f64) + phase;
        (at, amp * (freq * at).sin())
    })
}

/// Where output row x (0-based) of a column shifted by `shift` reads from: rows i and k (0-based,
/// k = min(i + 1, last)) mixed as (1 − t)·m[i] + t·m[k]; `free` is false where the clamp is active.
struct Tap<T> {
    i: usize,
    k: usize,
    t: T,
    free: bool,
}

fn tap<T: Real>(x: usize, shift: T, rows: usize) -> Tap<T> {
    let last = T::lit(rows as f64);
    let raw = T::lit((x + 1) as f64) + shift;
    // `max` returns the other operand for NaN, so s is always a row in [1, rows].
    let s = raw.max(T::one()).min(last);
    let floor = s.floor();
    let i = floor
        .to_usize()
        .unwrap_or_else(|| unreachable!("1 ≤ s ≤ rows"))
        - 1;
    Tap {
        i,
        k: (i + 1).min(rows - 1),
        t: s - floor,
        free: raw >= T::one() && raw <= last,
    }
}

impl<T: Real> Op<T> for Warp {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        let m = x[0].matrix();
        let shifts: Vec<T> = waves(m.ncols(), x[1].scalar(), x[2].scalar(), x[3].scalar())
            .map(|w| w.1)
            .collect();
        let (rows, cols) = m.dim();
        // SAFETY: every entry of the block is written.
        let out = unsafe {
            kernel::build((rows, cols), |block, out| {
                for (r, row) in block.zip(out.chunks_exact_mut(cols)) {
                    for (c, (out, &shift)) in row.iter_mut().zip(&shifts).enumerate() {
                        let Tap { i, k, t, .. } = tap(r, shift, rows);
                        out.write((T::one() - t) * m[[i, c]] + t * m[[k, c]]);
                    }
                }
            })
        };
        Ok(Value::Matrix(out))
    }

    /// out = (1 − t)·m[i] + t·m[k] with s = clamp(x + amp·sin θ, 1, rows), θ = freq·(y + phase):
    /// dm[i] += g·(1 − t), dm[k] += g·t; ∂out/∂s = m[k] − m[i] (0 where clamped), and
    /// ∂s/∂amp = sin θ, ∂s/∂freq = amp·cos θ·(y + phase), ∂s/∂phase = amp·cos θ·freq.
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (m, amp, freq, phase) = (x[0].matrix(), x[1].scalar(), x[2].scalar(), x[3].scalar());
        let shifts: Vec<T> = waves(m.ncols(), amp, freq, phase).map(|w| w.1).collect();
        // m's gradient only if asked for (learning the warp alone, m is a constant)
        let mut dm = needs[0].then(|| Array2::zeros(m.dim()));
        let mut ds = vec![T::zero(); m.ncols()];
        for ((r, c), &g) in g.matrix().indexed_iter() {
            let Tap { i, k, t, free } = tap(r, shifts[c], m.nrows());
            if let Some(dm) = &mut dm {
                dm[[i, c]] += g * (T::one() - t);
                dm[[k, c]] += g * t;
            }
            if free {
                ds[c] += g * (m[[k, c]] - m[[i, c]]);
            }
        }
        let (mut damp, mut dfreq, mut dphase) = (T::zero(), T::zero(), T::zero());
        for (&ds, (at, _)) in ds.iter().zip(waves(m.ncols(), amp, freq, phase)) {
            let (sin, cos) = (freq * at).sin_cos();
            damp += ds * sin;
            dfreq += ds * amp * cos * at;
            dphase += ds * amp * cos * freq;
        }
        vec![
            dm.map(Value::Matrix),
            needs[1].then_some(Value::Scalar(damp)),
            needs[2].then_some(Value::Scalar(dfreq)),
            needs[3].then_some(Value::Scalar(dphase)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, prim, rows, FakeIo};
    use crate::ops::Attrs;
    use crate::tensor::{Shape, Type, Value};
    use std::f64::consts::PI;

    #[test]
    fn interpolates_between_rows_and_clamps_at_the_edges() {
        // freq = π/2: column 1 shifts by amp·sin(π/2) = 0.5 rows, column 2 by amp·sin(π) ≈ 0.
        let m = rows(3, 2, &[1., 10., 2., 20., 4., 40.]);
        let out = forward(
            "warp",
            &[
                m,
                Value::Scalar(0.5),
                Value::Scalar(PI / 2.0),
                Value::Scalar(0.0),
            ],
            &[],
        );
        let want = [1.5, 10., 3., 20., 4., 40.]; // row 3 of column 1 reads 3.5, clamped to 3
        for (got, want) in out.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn gradient() {
        let s = |v: f64| Value::Scalar(v);
        // sin θ takes both signs over the columns, so both clamps are active somewhere.
        gradcheck_primitive("warp", &[matrix(5, 4, 1), s(0.73), s(1.3), s(0.37)], &[]);
        gradcheck_primitive("warp", &[matrix(6, 5, 2), s(2.6), s(1.1), s(0.21)], &[]);
        // The poster's warp3 at knob 0 (the defaults): amp = −10, freq = 1/4.
        gradcheck_primitive("warp", &[matrix(24, 7, 3), s(-10.0), s(0.25), s(0.0)], &[]);
    }

    #[test]
    fn accepts_any_matrix_shape() {
        // warp refuses nothing itself: the checker enforces the kinds, and every matrix is valid,
        // a single row included (then every coordinate clamps to it and out = m).
        let one_row = Type::Matrix(Shape::new(1, 3));
        let checked = prim("warp").check(
            &[one_row, Type::Scalar, Type::Scalar, Type::Scalar],
            &Attrs::default(),
            &FakeIo,
        );
        assert_eq!(checked, Ok(one_row));
        let m = rows(1, 3, &[1., 2., 3.]);
        let out = forward(
            "warp",
            &[
                m.clone(),
                Value::Scalar(5.0),
                Value::Scalar(0.7),
                Value::Scalar(0.0),
            ],
            &[],
        );
        assert_eq!(out, m);
    }
}
