//! `clamp(m, lo, hi)`: every element limited to [lo, hi], with learnable bounds.

use super::{
    kernel, req, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param, PointwiseFns,
    Signature,
};
use crate::tensor::{Real, Type, Value};
use ndarray::Zip;

pub struct Clamp;

impl Meta for Clamp {
    fn name(&self) -> &'static str {
        "clamp"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "every element limited to [lo, hi]: min(max(m, lo), hi)",
            details: "As torch.clamp: if lo > hi every element becomes hi. NaN elements stay NaN. \
                      lo and hi are scalar edges, so they may be learnable. Each result element is \
                      exactly one of m, lo or hi: m where lo ≤ m ≤ hi (ties go to m), lo where \
                      m < lo, hi where m > hi.",
            gradient: "dm = g where lo ≤ m ≤ hi, else 0; dlo = Σ g over elements with m < lo; \
                       dhi = Σ g over elements with m > hi (all of them when lo > hi)",
            example: "c = clamp(m, 0.2, 0.8)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("m", Kind::Matrix, "the matrix"),
            req("lo", Kind::Scalar, "lower bound"),
            req("hi", Kind::Scalar, "upper bound"),
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

/// Which value min(max(v, lo), hi) takes: 0 for v itself, 1 for lo, 2 for hi. Ties go to v;
/// NaN compares false both ways, so it stays v.
fn pick<T: Real>(v: T, lo: T, hi: T) -> usize {
    let (t, k) = if v < lo { (lo, 1) } else { (v, 0) };
    if t > hi {
        2
    } else {
        k
    }
}

impl<T: Real> Op<T> for Clamp {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        let (lo, hi) = (x[1].scalar(), x[2].scalar());
        Ok(Value::Matrix(kernel::map(x[0].matrix(), |v| {
            [v, lo, hi][pick(v, lo, hi)]
        })))
    }

    /// Each element's gradient goes to the value it took: dm = g ⊙ [picked m],
    /// dlo = Σ g ⊙ [picked lo], dhi = Σ g ⊙ [picked hi] (sums in the order Zip visits, fixed).
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (lo, hi) = (x[1].scalar(), x[2].scalar());
        // sums[1], sums[2]: gradients of lo and hi (sums[0] stays unused: m's is the matrix)
        let mut sums = [T::zero(); 3];
        let dm = Zip::from(x[0].matrix())
            .and(g.matrix())
            .map_collect(|&v, &g| match pick(v, lo, hi) {
                0 => g,
                k => {
                    sums[k] += g;
                    T::zero()
                }
            });
        vec![
            needs[0].then(|| Value::Matrix(dm)),
            needs[1].then(|| Value::Scalar(sums[1])),
            needs[2].then(|| Value::Scalar(sums[2])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{attrs, forward, gradcheck_primitive, prim, rows, FakeIo};
    use crate::ops::Dispatch;
    use crate::tensor::Value;

    fn clamp(m: &Value<f64>, lo: f64, hi: f64) -> Value<f64> {
        forward(
            "clamp",
            &[m.clone(), Value::Scalar(lo), Value::Scalar(hi)],
            &[],
        )
    }

    #[test]
    fn clamps_by_hand() {
        let m = rows(1, 4, &[0.1, 0.5, 0.9, f64::NAN]);
        let c = clamp(&m, 0.2, 0.8);
        assert_eq!(
            c.matrix().slice(ndarray::s![.., ..3]),
            rows(1, 3, &[0.2, 0.5, 0.8]).matrix()
        );
        assert!(c.matrix()[[0, 3]].is_nan());
        assert_eq!(
            clamp(&rows(1, 3, &[0.1, 0.5, 0.9]), 0.7, 0.3),
            rows(1, 3, &[0.3, 0.3, 0.3])
        );
    }

    #[test]
    fn gradient() {
        let m = rows(2, 3, &[0.1, 0.45, 0.9, 0.2, 0.75, 0.55]);
        gradcheck_primitive(
            "clamp",
            &[m.clone(), Value::Scalar(0.3), Value::Scalar(0.7)],
            &[],
        );
        // lo > hi: everything is hi
        gradcheck_primitive("clamp", &[m, Value::Scalar(0.8), Value::Scalar(0.4)], &[]);
    }

    #[test]
    fn gradient_routes_ties_to_m() {
        let p = prim("clamp");
        let op = <f64 as Dispatch>::op(p);
        let a = attrs(p, &[]);
        let x = [
            rows(1, 4, &[0.1, 0.3, 0.7, 0.9]),
            Value::Scalar(0.3),
            Value::Scalar(0.7),
        ];
        let refs: Vec<&Value<f64>> = x.iter().collect();
        let mut notes = Vec::new();
        let y = op.forward(&refs, &a, &FakeIo, &mut notes).unwrap();
        let g = rows(1, 4, &[1., 2., 4., 8.]);
        let d = op.backward(&refs, &y, &notes, g, &a, &[true, true, true]);
        let d: Vec<Value<f64>> = d.into_iter().map(Option::unwrap).collect();
        assert_eq!(
            d,
            [
                rows(1, 4, &[0., 2., 4., 0.]),
                Value::Scalar(1.),
                Value::Scalar(8.)
            ]
        );
    }
}
