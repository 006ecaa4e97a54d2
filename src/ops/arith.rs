//! Arithmetic: `add`, `sub`, `mul`, `div` and `pow`, each a [`Pairwise`] rule that [`Binary`]
//! turns into a primitive broadcasting a scalar against a matrix, and `neg`, a
//! [`Pointwise`] rule. These are what the operators `+ - * .* / ./ .^` and unary minus mean
//! (see [`super::operator`]).

use super::elementwise::Pointwise;
use super::{
    broadcast, kernel, req, unbroadcast, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes,
    Op, Param, PointwiseFns, Signature,
};
use crate::tensor::{Real, Shape, Type, Value};
use ndarray::{Array2, ArrayView2, ShapeBuilder};

/// An element-wise function of two arguments: its value and its partial derivatives.
pub trait Pairwise: Sync + 'static {
    const NAME: &'static str;
    const DOC: Doc;
    const PARAMS: &'static [Param];
    /// y = f(a, b)
    fn f<T: Real>(a: T, b: T) -> T;
    /// ∂f/∂a at (a, b), given y = f(a, b)
    fn da<T: Real>(a: T, b: T, y: T) -> T;
    /// ∂f/∂b at (a, b), given y = f(a, b)
    fn db<T: Real>(a: T, b: T, y: T) -> T;
}

/// The primitive applying a [`Pairwise`] rule element by element; a scalar argument is
/// repeated over the other argument's matrix.
pub struct Binary<P>(pub P);

const AB: &[Param] = &[
    req("a", Kind::Numeric, "left operand, a scalar or a matrix"),
    req(
        "b",
        Kind::Numeric,
        "right operand, a scalar or a matrix of a's shape",
    ),
];

impl<P: Pairwise> Meta for Binary<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }
    fn doc(&self) -> Doc {
        P::DOC
    }
    fn signature(&self) -> Signature {
        Signature {
            params: P::PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        broadcast(inputs, P::NAME)
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<P: Pairwise, T: Real> Op<T> for Binary<P> {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        // on the threads; a scalar operand is repeated across the other's entries
        Ok(match (x[0], x[1]) {
            (Value::Matrix(a), Value::Matrix(b)) => Value::Matrix(kernel::map2(a, b, P::f)),
            (Value::Matrix(a), &Value::Scalar(b)) => Value::Matrix(kernel::map(a, |a| P::f(a, b))),
            (&Value::Scalar(a), Value::Matrix(b)) => Value::Matrix(kernel::map(b, |b| P::f(a, b))),
            (&Value::Scalar(a), &Value::Scalar(b)) => Value::Scalar(P::f(a, b)),
        })
    }

    /// da = unbroadcast(g ⊙ ∂f/∂a), db = unbroadcast(g ⊙ ∂f/∂b): a scalar operand receives
    /// the sum over the matrix it was repeated across.
    fn backward(
        &self,
        x: &[&Value<T>],
        y: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (ty, s) = frame(&[y]);
        let [a, b, y, g] = [x[0], x[1], y, &g].map(|v| spread(v, s));
        let part = |i: usize, d: fn(T, T, T) -> T| {
            needs[i].then(|| {
                let dv = kernel::map4([a, b, y, g], |a, b, y, g| g * d(a, b, y));
                unbroadcast(pack(ty, dv), x[i].ty())
            })
        };
        vec![part(0, P::da), part(1, P::db)]
    }
}

/// The broadcast type of `values` and the shape computed in (1×1 for a scalar).
fn frame<T: Real>(values: &[&Value<T>]) -> (Type, Shape) {
    match values.iter().find_map(|v| v.ty().shape()) {
        Some(s) => (Type::Matrix(s), s),
        None => (Type::Scalar, Shape::new(1, 1)),
    }
}

/// `v` seen as an `s`-shaped matrix: a scalar repeats (stride 0), a matrix already has shape `s`.
fn spread<T: Real>(v: &Value<T>, s: Shape) -> ArrayView2<'_, T> {
    match v {
        Value::Matrix(m) => m.view(),
        Value::Scalar(x) => {
            ArrayView2::from_shape((s.rows, s.cols).strides((0, 0)), std::slice::from_ref(x))
                .expect("a read-only view may repeat one element")
        }
    }
}

/// The result of type `ty` computed as `m` (1×1 for a scalar).
fn pack<T: Real>(ty: Type, m: Array2<T>) -> Value<T> {
    match ty {
        Type::Scalar => Value::Scalar(m[[0, 0]]),
        Type::Matrix(_) => Value::Matrix(m),
    }
}

/// `add(a, b)`, `a + b`
pub struct Add;
impl Pairwise for Add {
    const NAME: &'static str = "add";
    const DOC: Doc = Doc {
        summary: "sum a + b, element-wise (also written a + b)",
        details:
            "Two matrices of one shape, or a scalar and a matrix (the scalar is added to every \
                  element), or two scalars.",
        gradient: "da = g, db = g; a scalar operand receives the sum of g",
        example: "c = add(a, s)",
    };
    const PARAMS: &'static [Param] = AB;
    fn f<T: Real>(a: T, b: T) -> T {
        a + b
    }
    fn da<T: Real>(_: T, _: T, _: T) -> T {
        T::one()
    }
    fn db<T: Real>(_: T, _: T, _: T) -> T {
        T::one()
    }
}

/// `sub(a, b)`, `a - b`
pub struct Sub;
impl Pairwise for Sub {
    const NAME: &'static str = "sub";
    const DOC: Doc = Doc {
        summary: "difference a − b, element-wise (also written a - b)",
        details:
            "Two matrices of one shape, or a scalar and a matrix (the scalar is repeated over \
                  the matrix), or two scalars.",
        gradient: "da = g, db = −g; a scalar operand receives the sum",
        example: "d = sub(a, b)",
    };
    const PARAMS: &'static [Param] = AB;
    fn f<T: Real>(a: T, b: T) -> T {
        a - b
    }
    fn da<T: Real>(_: T, _: T, _: T) -> T {
        T::one()
    }
    fn db<T: Real>(_: T, _: T, _: T) -> T {
        -T::one()
    }
}

/// `mul(a, b)`, `a .* b`, and `s * m` / `m * s`
pub struct Mul;
impl Pairwise for Mul {
    const NAME: &'static str = "mul";
    const DOC: Doc = Doc {
        summary:
            "element-wise (Hadamard) product a ⊙ b (also written a .* b, and s * m for scaling)",
        details: "Two matrices of one shape, or a scalar and a matrix (scaling), or two scalars. \
                  `*` between two matrices is the matrix product (matmul), not this.",
        gradient: "da = g ⊙ b, db = g ⊙ a; a scalar operand receives the sum",
        example: "h = mul(a, b)",
    };
    const PARAMS: &'static [Param] = AB;
    fn f<T: Real>(a: T, b: T) -> T {
        a * b
    }
    fn da<T: Real>(_: T, b: T, _: T) -> T {
        b
    }
    fn db<T: Real>(a: T, _: T, _: T) -> T {
        a
    }
}

/// `div(a, b)`, `a ./ b`, `m / s`
pub struct Div;
impl Pairwise for Div {
    const NAME: &'static str = "div";
    const DOC: Doc = Doc {
        summary: "quotient a ⊘ b, element-wise (also written a ./ b, and m / s)",
        details:
            "Two matrices of one shape, or a scalar and a matrix, or two scalars. Division by \
                  zero follows IEEE 754: ±inf, or NaN for 0/0; nothing is refused or clipped.",
        gradient: "da = g ⊘ b, db = −g ⊙ a ⊘ b² = −g ⊙ y ⊘ b; a scalar operand receives the sum",
        example: "q = div(a, b)",
    };
    const PARAMS: &'static [Param] = AB;
    fn f<T: Real>(a: T, b: T) -> T {
        a / b
    }
    fn da<T: Real>(_: T, b: T, _: T) -> T {
        b.recip()
    }
    fn db<T: Real>(_: T, b: T, y: T) -> T {
        -y / b
    }
}

/// `pow(x, p)`, `x .^ p`
pub struct Pow;
impl Pairwise for Pow {
    const NAME: &'static str = "pow";
    const DOC: Doc = Doc {
        summary: "power x^p of every element with a scalar exponent (also written x .^ p)",
        details: "x is a scalar or a matrix, p a scalar (learnable too). For x < 0 the result is \
                  real only for whole p ((−2) .^ 3 = −8); other p give NaN (IEEE 754 pow, as \
                  PyTorch). At x = 0: 0 for p > 0, 1 for p = 0, +inf for p < 0.",
        gradient: "dx = g ⊙ p·x^(p−1) (0 where p = 0; +inf at x = 0 for 0 < p < 1); \
                   dp = Σ g ⊙ y ⊙ ln x, where entries with x = 0 and p ≥ 0 add 0 (the limit, as \
                   PyTorch) and entries with x < 0 give NaN",
        example: "p = pow(m, s)",
    };
    const PARAMS: &'static [Param] = &[
        req("x", Kind::Numeric, "the base, a scalar or a matrix"),
        req("p", Kind::Scalar, "the exponent"),
    ];
    fn f<T: Real>(x: T, p: T) -> T {
        x.powf(p)
    }
    // d/dx x^p = p·x^(p−1); exactly 0 for p = 0 (x^0 is constant, even at x = 0)
    fn da<T: Real>(x: T, p: T, _: T) -> T {
        if p == T::zero() {
            T::zero()
        } else {
            p * x.powf(p - T::one())
        }
    }
    // d/dp x^p = x^p·ln x; its limit at x → 0⁺ is 0 for p ≥ 0
    fn db<T: Real>(x: T, p: T, y: T) -> T {
        if x == T::zero() && p >= T::zero() {
            T::zero()
        } else {
            y * x.ln()
        }
    }
}

/// `neg(x)`, `-x`
pub struct Neg;
impl Pointwise for Neg {
    const NAME: &'static str = "neg";
    const DOC: Doc = Doc {
        summary: "negation −x, element-wise (also written -x)",
        details: "Flips the sign of a scalar or of every element of a matrix (0 becomes −0).",
        gradient: "dx = −g",
        example: "n = neg(m)",
    };
    fn f<T: Real>(x: T) -> T {
        -x
    }
    fn df<T: Real>(_: T, _: T) -> T {
        -T::one()
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{attrs, forward, gradcheck_primitive, matrix, prim, rows, FakeIo};
    use crate::ops::{Arg, Dispatch};
    use crate::tensor::{Shape, Type, Value};

    /// Every way to pass two operands: matrix–matrix, matrix–scalar, scalar–matrix, scalar–scalar.
    fn operand_pairs() -> [[Value<f64>; 2]; 4] {
        let (m, n) = (matrix(3, 4, 1), matrix(3, 4, 2));
        let (s, t) = (Value::Scalar(0.7), Value::Scalar(1.3));
        [
            [m.clone(), n],
            [m.clone(), s.clone()],
            [s.clone(), m],
            [s, t],
        ]
    }

    #[test]
    fn computes_by_hand() {
        let a = rows(1, 3, &[1., 2., 3.]);
        let b = rows(1, 3, &[4., -1., 0.5]);
        let s = Value::Scalar(2.0);
        assert_eq!(
            forward("add", &[a.clone(), b.clone()], &[]),
            rows(1, 3, &[5., 1., 3.5])
        );
        assert_eq!(
            forward("add", &[s.clone(), a.clone()], &[]),
            rows(1, 3, &[3., 4., 5.])
        );
        assert_eq!(
            forward("sub", &[a.clone(), b.clone()], &[]),
            rows(1, 3, &[-3., 3., 2.5])
        );
        assert_eq!(
            forward("sub", &[s.clone(), a.clone()], &[]),
            rows(1, 3, &[1., 0., -1.])
        );
        assert_eq!(
            forward("mul", &[a.clone(), b.clone()], &[]),
            rows(1, 3, &[4., -2., 1.5])
        );
        assert_eq!(
            forward("mul", &[a.clone(), s.clone()], &[]),
            rows(1, 3, &[2., 4., 6.])
        );
        assert_eq!(
            forward("div", &[a.clone(), b.clone()], &[]),
            rows(1, 3, &[0.25, -2., 6.])
        );
        assert_eq!(
            forward("div", &[a.clone(), s.clone()], &[]),
            rows(1, 3, &[0.5, 1., 1.5])
        );
        assert_eq!(
            forward("div", &[s.clone(), s.clone()], &[]),
            Value::Scalar(1.0)
        );
        assert_eq!(
            forward("pow", &[a.clone(), s], &[]),
            rows(1, 3, &[1., 4., 9.])
        );
        let cube = forward("pow", &[rows(1, 2, &[-2., 0.]), Value::Scalar(3.0)], &[]);
        assert_eq!(cube, rows(1, 2, &[-8., 0.]));
        assert_eq!(forward("neg", &[a], &[]), rows(1, 3, &[-1., -2., -3.]));
        assert_eq!(
            forward("neg", &[Value::Scalar(2.0)], &[]),
            Value::Scalar(-2.0)
        );
    }

    #[test]
    fn gradients() {
        for name in ["add", "sub", "mul", "div"] {
            for pair in operand_pairs() {
                gradcheck_primitive(name, &pair, &[]);
            }
        }
        for x in [matrix(3, 4, 3), Value::Scalar(0.8)] {
            gradcheck_primitive("pow", &[x.clone(), Value::Scalar(2.5)], &[]);
            gradcheck_primitive("pow", &[x.clone(), Value::Scalar(-0.7)], &[]);
            gradcheck_primitive("neg", &[x], &[]);
        }
    }

    #[test]
    fn pow_gradient_at_zero_base_and_zero_exponent() {
        let p = prim("pow");
        let op = <f64 as Dispatch>::op(p);
        let grads = |x: f64, e: f64| {
            let (x, e) = (Value::Scalar(x), Value::Scalar(e));
            let a = attrs(p, &[]);
            let mut notes = Vec::new();
            let y = op.forward(&[&x, &e], &a, &FakeIo, &mut notes).unwrap();
            let g = op.backward(&[&x, &e], &y, &notes, Value::Scalar(1.0), &a, &[true, true]);
            (
                g[0].as_ref().unwrap().scalar(),
                g[1].as_ref().unwrap().scalar(),
            )
        };
        assert_eq!(grads(0.0, 2.0), (0.0, 0.0));
        assert_eq!(grads(0.0, 1.0), (1.0, 0.0));
        assert_eq!(grads(0.0, 0.0), (0.0, 0.0));
        assert_eq!(grads(3.0, 0.0).0, 0.0);
        assert!(grads(-2.0, 2.0).1.is_nan());
    }

    #[test]
    fn skips_unneeded_gradients() {
        let op = <f64 as Dispatch>::op(prim("mul"));
        let (a, b) = (matrix(3, 4, 1), Value::Scalar(0.7));
        let a2 = attrs(prim("mul"), &[]);
        let mut notes = Vec::new();
        let y = op.forward(&[&a, &b], &a2, &FakeIo, &mut notes).unwrap();
        let g = op.backward(&[&a, &b], &y, &notes, y.clone(), &a2, &[false, true]);
        assert!(g[0].is_none() && matches!(g[1], Some(Value::Scalar(_))));
    }

    #[test]
    fn refuses_different_shapes() {
        let e = prim("sub")
            .check(
                &[
                    Type::Matrix(Shape::new(2, 3)),
                    Type::Matrix(Shape::new(3, 2)),
                ],
                &attrs(prim("sub"), &[]),
                &FakeIo,
            )
            .unwrap_err();
        assert_eq!(e.code, "shape_mismatch");
        assert_eq!(e.labels[0], (Arg::Input(0), "2×3".to_string()));
        assert_eq!(e.labels[1], (Arg::Input(1), "3×2".to_string()));
    }
}
