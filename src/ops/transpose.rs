//! `transpose(m)`, also written `m'`.

use super::{
    kernel, req, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param, PointwiseFns,
    Signature,
};
use crate::tensor::{Real, Type, Value};

pub struct Transpose;

impl Meta for Transpose {
    fn name(&self) -> &'static str {
        "transpose"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "transpose mᵀ (also written m')",
            details: "An r×c matrix becomes c×r; a scalar stays itself.",
            gradient: "dm = gᵀ",
            example: "t = transpose(m)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[req("m", Kind::Numeric, "the matrix")];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        Ok(match inputs[0] {
            Type::Matrix(s) => Type::Matrix(s.transposed()),
            Type::Scalar => Type::Scalar,
        })
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<T: Real> Op<T> for Transpose {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        Ok(flip(x[0]))
    }

    /// dm = gᵀ
    fn backward(
        &self,
        _: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        vec![Some(flip(&g))]
    }
}

fn flip<T: Real>(v: &Value<T>) -> Value<T> {
    match v {
        Value::Scalar(s) => Value::Scalar(*s),
        Value::Matrix(m) => Value::Matrix(kernel::transposed(m.view())),
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, rows};

    #[test]
    fn transposes() {
        assert_eq!(
            forward("transpose", &[rows(2, 3, &[1., 2., 3., 4., 5., 6.])], &[]),
            rows(3, 2, &[1., 4., 2., 5., 3., 6.])
        );
    }

    #[test]
    fn gradient() {
        gradcheck_primitive("transpose", &[matrix(3, 4, 1)], &[]);
    }
}
