//! Element-wise functions written as lambdas (`x -> x + 1`, `x -> exp(2 * x)`), compiled by the
//! checker into a small expression tree over one variable, evaluated with its derivative.
//!
//! A lambda body may use its parameter, numbers, params, `+ - * / .* ./ .^`, unary minus and
//! calls of element-wise primitives; anything else (a matrix, a matrix primitive) is refused by
//! the checker. This module knows no primitive by name: calls carry the primitive's own
//! [`PointwiseFns`].

use crate::ops::{Dispatch, PointwiseFns};
use crate::tensor::Real;

/// A function of one scalar variable `x`.
#[derive(Clone, Debug)]
pub enum ElemFn {
    /// The lambda's parameter.
    X,
    Const(f64),
    Neg(Box<ElemFn>),
    Add(Box<ElemFn>, Box<ElemFn>),
    Sub(Box<ElemFn>, Box<ElemFn>),
    Mul(Box<ElemFn>, Box<ElemFn>),
    Div(Box<ElemFn>, Box<ElemFn>),
    Pow(Box<ElemFn>, Box<ElemFn>),
    Call(PointwiseFns, Box<ElemFn>),
}

impl ElemFn {
    pub fn call(p: PointwiseFns, arg: ElemFn) -> ElemFn {
        ElemFn::Call(p, Box::new(arg))
    }

    /// `(a, b)` when the function is `a·x + b` with constant a and b (evaluated with one fused
    /// multiply-free pass by the callers that care; also lets them skip the tree walk).
    pub fn affine(&self) -> Option<(f64, f64)> {
        match self {
            ElemFn::X => Some((1.0, 0.0)),
            ElemFn::Const(c) => Some((0.0, *c)),
            ElemFn::Neg(a) => a.affine().map(|(p, q)| (-p, -q)),
            ElemFn::Add(a, b) => Some(add(a.affine()?, b.affine()?, 1.0)),
            ElemFn::Sub(a, b) => Some(add(a.affine()?, b.affine()?, -1.0)),
            _ => None,
        }
    }

    /// f(x)
    pub fn eval<T: Real + Dispatch>(&self, x: T) -> T {
        match self {
            ElemFn::X => x,
            ElemFn::Const(c) => T::lit(*c),
            ElemFn::Neg(a) => -a.eval(x),
            ElemFn::Add(a, b) => a.eval(x) + b.eval(x),
            ElemFn::Sub(a, b) => a.eval(x) - b.eval(x),
            ElemFn::Mul(a, b) => a.eval(x) * b.eval(x),
            ElemFn::Div(a, b) => a.eval(x) / b.eval(x),
            ElemFn::Pow(a, b) => a.eval(x).powf(b.eval(x)),
            ElemFn::Call(p, a) => (T::pointwise(p).0)(a.eval(x)),
        }
    }

    /// (f(x), f'(x)) by forward-mode differentiation.
    pub fn eval_with_derivative<T: Real + Dispatch>(&self, x: T) -> (T, T) {
        match self {
            ElemFn::X => (x, T::one()),
            ElemFn::Const(c) => (T::lit(*c), T::zero()),
            ElemFn::Neg(a) => {
                let (v, d) = a.eval_with_derivative(x);
                (-v, -d)
            }
            ElemFn::Add(a, b) => {
                let ((u, du), (v, dv)) = (a.eval_with_derivative(x), b.eval_with_derivative(x));
                (u + v, du + dv)
            }
            ElemFn::Sub(a, b) => {
                let ((u, du), (v, dv)) = (a.eval_with_derivative(x), b.eval_with_derivative(x));
                (u - v, du - dv)
            }
            ElemFn::Mul(a, b) => {
                let ((u, du), (v, dv)) = (a.eval_with_derivative(x), b.eval_with_derivative(x));
                (u * v, du * v + u * dv)
            }
            ElemFn::Div(a, b) => {
                let ((u, du), (v, dv)) = (a.eval_with_derivative(x), b.eval_with_derivative(x));
                (u / v, (du * v - u * dv) / (v * v))
            }
            ElemFn::Pow(a, b) => {
                // d(u^v) = v·u^(v−1)·du + u^v·ln(u)·dv (the second term only where v varies)
                let ((u, du), (v, dv)) = (a.eval_with_derivative(x), b.eval_with_derivative(x));
                let y = u.powf(v);
                let mut d = v * u.powf(v - T::one()) * du;
                if dv != T::zero() {
                    d += y * u.ln() * dv;
                }
                (y, d)
            }
            ElemFn::Call(p, a) => {
                let (u, du) = a.eval_with_derivative(x);
                let (f, df) = T::pointwise(p);
                let y = f(u);
                (y, df(u, y) * du)
            }
        }
    }
}

fn add((a, b): (f64, f64), (c, d): (f64, f64), sign: f64) -> (f64, f64) {
    (a + sign * c, b + sign * d)
}

#[cfg(test)]
mod tests {
    use super::ElemFn::{self, *};

    fn b(e: ElemFn) -> Box<ElemFn> {
        Box::new(e)
    }

    #[test]
    fn affine_is_recognised() {
        let f = Add(b(X), b(Const(1.0)));
        assert_eq!(f.affine(), Some((1.0, 1.0)));
        assert_eq!(Sub(b(Const(2.0)), b(Neg(b(X)))).affine(), Some((1.0, 2.0)));
        assert_eq!(Mul(b(X), b(X)).affine(), None);
    }

    #[test]
    fn derivative_matches_finite_differences() {
        // f(x) = (x + 1)^2.5 / (3 - x)
        let f = Div(
            b(Pow(b(Add(b(X), b(Const(1.0)))), b(Const(2.5)))),
            b(Sub(b(Const(3.0)), b(X))),
        );
        for &x in &[0.1f64, 0.7, 1.9] {
            let (y, d) = f.eval_with_derivative(x);
            assert_eq!(y, f.eval(x));
            let h = 1e-6;
            let numeric = (f.eval(x + h) - f.eval(x - h)) / (2.0 * h);
            assert!(
                (d - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                "{d} vs {numeric}"
            );
        }
    }
}
