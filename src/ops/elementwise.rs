//! Element-wise functions of one argument (`exp`, `log`, `sqrt`, `abs`, `tanh`, `sigmoid`,
//! `relu`). Each is a [`Pointwise`] rule — value and derivative, nothing else — and
//! [`Unary`] turns a rule into a registered primitive that maps scalars and matrices alike.
//! Lambdas (`x -> exp(x) + 1`) call the same rules, so `exp(m)` and `softmax_rows(m, f = exp)`
//! agree to the bit.

use super::{req, Attrs, CheckError, Doc, Io, Kind, Meta, Op, PointwiseFns, Signature};
use crate::tensor::{Real, Type, Value};

/// An element-wise function: its value and its derivative.
pub trait Pointwise: Sync + 'static {
    const NAME: &'static str;
    const DOC: Doc;
    /// f(x)
    fn f<T: Real>(x: T) -> T;
    /// f'(x), given x and y = f(x) (`exp`, `tanh` and `sigmoid` reuse y).
    fn df<T: Real>(x: T, y: T) -> T;
}

/// The primitive applying a [`Pointwise`] rule to every element.
pub struct Unary<P>(pub P);

const X: &[super::Param] = &[req("x", Kind::Numeric, "the input, a scalar or a matrix")];

impl<P: Pointwise> Meta for Unary<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }
    fn doc(&self) -> Doc {
        P::DOC
    }
    fn signature(&self) -> Signature {
        Signature {
            params: X,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        Ok(inputs[0])
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        Some(PointwiseFns {
            name: P::NAME,
            f32: P::f::<f32>,
            df32: P::df::<f32>,
            f64: P::f::<f64>,
            df64: P::df::<f64>,
        })
    }
}

impl<P: Pointwise, T: Real> Op<T> for Unary<P> {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io) -> Result<Value<T>, String> {
        Ok(match x[0] {
            Value::Scalar(v) => Value::Scalar(P::f(*v)),
            Value::Matrix(m) => Value::Matrix(m.mapv(P::f)),
        })
    }

    /// dx = g ⊙ f'(x)
    fn backward(
        &self,
        x: &[&Value<T>],
        y: &Value<T>,
        g: &Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let dx = match (x[0], y, g) {
            (Value::Scalar(x), Value::Scalar(y), Value::Scalar(g)) => Value::Scalar(*g * P::df(*x, *y)),
            (Value::Matrix(x), Value::Matrix(y), Value::Matrix(g)) => {
                let mut d = g.clone();
                ndarray::Zip::from(&mut d)
                    .and(x)
                    .and(y)
                    .for_each(|d, &x, &y| *d = *d * P::df(x, y));
                Value::Matrix(d)
            }
            _ => unreachable!("checked graph: element-wise types agree"),
        };
        vec![Some(dx)]
    }
}

/// `exp(x)`
pub struct Exp;
impl Pointwise for Exp {
    const NAME: &'static str = "exp";
    const DOC: Doc = Doc {
        summary: "e^x, element-wise",
        details: "The default `f` of softmax_rows and softmax_cols.",
        gradient: "d/dx = e^x (reuses the output)",
        example: "e = exp(m)",
    };
    fn f<T: Real>(x: T) -> T {
        x.exp()
    }
    fn df<T: Real>(_: T, y: T) -> T {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_pointwise, gradcheck_primitive};

    #[test]
    fn exp_values_and_gradient() {
        check_pointwise(&Unary(Exp), &[(0.0, 1.0), (1.0, std::f64::consts::E)]);
        gradcheck_primitive("exp", &[crate::ops::testing::matrix(3, 4, 1)], &[]);
    }
}
