//! Element-wise functions of one argument (`exp`, `log`, `sqrt`, `abs`, `tanh`, `sigmoid`,
//! `relu`). Each is a [`Pointwise`] rule — value and derivative, nothing else — and
//! [`Unary`] turns a rule into a registered primitive that maps scalars and matrices alike.
//! Lambdas (`x -> exp(x) + 1`) call the same rules, so `exp(m)` and `softmax_rows(m, f = exp)`
//! agree to the bit.

use super::{
    kernel, req, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, PointwiseFns,
    Signature,
};
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
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        Ok(match x[0] {
            Value::Scalar(v) => Value::Scalar(P::f(*v)),
            Value::Matrix(m) => Value::Matrix(kernel::map(m, P::f)),
        })
    }

    /// dx = g ⊙ f'(x)
    fn backward(
        &self,
        x: &[&Value<T>],
        y: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let dx = match (x[0], y, g) {
            (Value::Scalar(x), Value::Scalar(y), Value::Scalar(g)) => {
                Value::Scalar(g * P::df(*x, *y))
            }
            (Value::Matrix(x), Value::Matrix(y), Value::Matrix(d)) => {
                // g's buffer becomes dx
                Value::Matrix(kernel::update2(d, x, y, |d, x, y| *d *= P::df(x, y)))
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

/// `log(x)`
pub struct Log;
impl Pointwise for Log {
    const NAME: &'static str = "log";
    const DOC: Doc = Doc {
        summary: "natural logarithm ln x, element-wise",
        details: "IEEE 754 at the edge of the domain: log(0) = −inf, log(x < 0) = NaN.",
        gradient: "d/dx = 1/x",
        example: "l = log(m)",
    };
    fn f<T: Real>(x: T) -> T {
        x.ln()
    }
    fn df<T: Real>(x: T, _: T) -> T {
        x.recip()
    }
}

/// `sqrt(x)`
pub struct Sqrt;
impl Pointwise for Sqrt {
    const NAME: &'static str = "sqrt";
    const DOC: Doc = Doc {
        summary: "square root √x, element-wise",
        details: "sqrt(x < 0) = NaN (IEEE 754).",
        gradient: "d/dx = 1/(2√x) (reuses the output); +inf at x = 0, as PyTorch",
        example: "r = sqrt(m)",
    };
    fn f<T: Real>(x: T) -> T {
        x.sqrt()
    }
    fn df<T: Real>(_: T, y: T) -> T {
        (y + y).recip()
    }
}

/// `abs(x)`
pub struct Abs;
impl Pointwise for Abs {
    const NAME: &'static str = "abs";
    const DOC: Doc = Doc {
        summary: "absolute value |x|, element-wise",
        details: "Not differentiable at 0; the gradient used there is 0, as PyTorch.",
        gradient: "d/dx = sign(x), with sign(0) = 0",
        example: "d = abs(m - a)",
    };
    fn f<T: Real>(x: T) -> T {
        x.abs()
    }
    // sign(x); Float::signum(±0) is ±1, so 0 is handled first
    fn df<T: Real>(x: T, _: T) -> T {
        if x == T::zero() {
            T::zero()
        } else {
            x.signum()
        }
    }
}

/// `tanh(x)`
pub struct Tanh;
impl Pointwise for Tanh {
    const NAME: &'static str = "tanh";
    const DOC: Doc = Doc {
        summary: "hyperbolic tangent, element-wise",
        details: "Values in (−1, 1).",
        gradient: "d/dx = 1 − tanh²(x) (reuses the output)",
        example: "t = tanh(m)",
    };
    fn f<T: Real>(x: T) -> T {
        x.tanh()
    }
    fn df<T: Real>(_: T, y: T) -> T {
        T::one() - y * y
    }
}

/// `sigmoid(x)`
pub struct Sigmoid;
impl Pointwise for Sigmoid {
    const NAME: &'static str = "sigmoid";
    const DOC: Doc = Doc {
        summary: "logistic function 1/(1 + e^−x), element-wise",
        details: "Values in (0, 1). Computed as e^x/(1 + e^x) for x < 0, so no exponential \
                  overflows: large |x| gives exactly 0 or 1, never NaN.",
        gradient: "d/dx = σ(x)·(1 − σ(x)) (reuses the output)",
        example: "p = sigmoid(m)",
    };
    fn f<T: Real>(x: T) -> T {
        if x < T::zero() {
            let e = x.exp();
            e / (T::one() + e)
        } else {
            (T::one() + (-x).exp()).recip()
        }
    }
    fn df<T: Real>(_: T, y: T) -> T {
        y * (T::one() - y)
    }
}

/// `relu(x)`
pub struct Relu;
impl Pointwise for Relu {
    const NAME: &'static str = "relu";
    const DOC: Doc = Doc {
        summary: "rectifier max(x, 0), element-wise",
        details: "NaN stays NaN. Not differentiable at 0; the gradient used there is 0, as \
                  PyTorch.",
        gradient: "d/dx = 1 for x > 0, else 0",
        example: "r = relu(m - 0.6)",
    };
    fn f<T: Real>(x: T) -> T {
        if x < T::zero() {
            T::zero()
        } else {
            x
        }
    }
    fn df<T: Real>(x: T, _: T) -> T {
        if x > T::zero() {
            T::one()
        } else {
            T::zero()
        }
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

    #[test]
    fn values_by_hand() {
        use std::f64::consts::E;
        check_pointwise(&Unary(Log), &[(1.0, 0.0), (E, 1.0), (0.5, -(2f64.ln()))]);
        check_pointwise(&Unary(Sqrt), &[(0.0, 0.0), (2.25, 1.5), (4.0, 2.0)]);
        check_pointwise(&Unary(Abs), &[(-2.0, 2.0), (0.0, 0.0), (3.5, 3.5)]);
        let t1 = (E * E - 1.0) / (E * E + 1.0);
        check_pointwise(&Unary(Tanh), &[(0.0, 0.0), (1.0, t1), (-1.0, -t1)]);
        let s2 = 1.0 / (1.0 + (-2f64).exp());
        check_pointwise(&Unary(Sigmoid), &[(0.0, 0.5), (2.0, s2), (-2.0, 1.0 - s2)]);
        check_pointwise(&Unary(Relu), &[(-1.5, 0.0), (0.0, 0.0), (2.0, 2.0)]);
    }

    #[test]
    fn edge_conventions() {
        assert_eq!(Abs::df(0.0f64, 0.0), 0.0);
        assert_eq!(Abs::df(-0.0f64, 0.0), 0.0);
        assert_eq!(Relu::df(0.0f64, 0.0), 0.0);
        assert!(Relu::f(f64::NAN).is_nan());
        assert_eq!((Sigmoid::f(-800.0f64), Sigmoid::f(800.0f64)), (0.0, 1.0));
        assert_eq!((Sigmoid::f(-200.0f32), Sigmoid::f(200.0f32)), (0.0, 1.0));
        assert_eq!(Log::f(0.0f64), f64::NEG_INFINITY);
        assert!(Sqrt::f(-1.0f64).is_nan());
    }

    #[test]
    fn gradients() {
        use crate::ops::testing::{matrix, rows};
        use crate::tensor::Value;
        for name in ["log", "sqrt", "tanh", "sigmoid"] {
            gradcheck_primitive(name, &[matrix(3, 4, 2)], &[]);
            gradcheck_primitive(name, &[Value::Scalar(0.6)], &[]);
        }
        // both signs, away from the kink at 0
        let m = rows(2, 3, &[-0.7, -0.2, 0.3, 0.9, -1.1, 0.5]);
        for name in ["abs", "relu", "tanh", "sigmoid"] {
            gradcheck_primitive(name, std::slice::from_ref(&m), &[]);
            gradcheck_primitive(name, &[Value::Scalar(-0.4)], &[]);
        }
    }
}
