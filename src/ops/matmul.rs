//! `matmul(a, b)`, also written `a * b`: the matrix product.

use super::{
    gemm, req, Arg, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param,
    PointwiseFns, Signature,
};
use crate::tensor::{Real, Shape, Type, Value};

pub struct Matmul;

impl Meta for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "matrix product a·b (also written a * b)",
            details:
                "a is r×k, b is k×c, the result r×c. Sums run in a fixed order, so results do not \
                      depend on the thread count.",
            gradient: "da = g·bᵀ, db = aᵀ·g",
            example: "p = matmul(a, b')",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("a", Kind::Matrix, "left factor, r×k"),
            req("b", Kind::Matrix, "right factor, k×c"),
        ];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        let (a, b) = (inputs[0].dims(), inputs[1].dims());
        if a.cols != b.rows {
            return Err(CheckError::new(
                "shape_mismatch",
                format!("matrix product needs a's columns to equal b's rows, got {a} times {b}"),
                format!(
                    "a * b multiplies r×k by k×c; here k would be {} on the left but {} on the right. \
                     Transpose one side (a' * b or a * b') or resize it",
                    a.cols, b.rows
                ),
            )
            .label(Arg::Input(0), format!("{a}"))
            .label(Arg::Input(1), format!("{b}")));
        }
        Ok(Type::Matrix(Shape::new(a.rows, b.cols)))
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<T: Real> Op<T> for Matmul {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        Ok(Value::Matrix(gemm::product(
            x[0].matrix().view(),
            x[1].matrix().view(),
        )))
    }

    /// da = g·bᵀ, db = aᵀ·g
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (a, b, g) = (x[0].matrix(), x[1].matrix(), g.matrix());
        vec![
            needs[0].then(|| Value::Matrix(gemm::product(g.view(), b.t()))),
            needs[1].then(|| Value::Matrix(gemm::product(a.t(), g.view()))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, rows};

    #[test]
    fn multiplies_by_hand() {
        let a = rows(2, 3, &[1., 2., 3., 4., 5., 6.]);
        let b = rows(3, 1, &[1., 0., -1.]);
        assert_eq!(forward("matmul", &[a, b], &[]), rows(2, 1, &[-2., -2.]));
    }

    #[test]
    fn gradient() {
        gradcheck_primitive("matmul", &[matrix(3, 4, 1), matrix(4, 2, 2)], &[]);
    }

    #[test]
    fn refuses_inner_mismatch() {
        use crate::ops::{testing::prim, Attrs};
        use crate::tensor::{Shape, Type};
        let e = prim("matmul")
            .check(
                &[
                    Type::Matrix(Shape::new(2, 3)),
                    Type::Matrix(Shape::new(2, 3)),
                ],
                &Attrs::default(),
                &crate::ops::testing::FakeIo,
            )
            .unwrap_err();
        assert_eq!(e.code, "shape_mismatch");
        assert_eq!(e.labels.len(), 2);
    }
}
