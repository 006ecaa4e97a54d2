//! `zeros(rows, cols)`, `ones(rows, cols)` and `fill(rows, cols, v)`: constant matrices.

use super::{
    req, Arg, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param, PointwiseFns,
    Signature,
};
use crate::tensor::{Real, Shape, Type, Value};
use ndarray::Array2;

/// `Fill::Zeros` is `zeros`, `Fill::Ones` is `ones`, `Fill::Given` is `fill` (value an edge).
pub enum Fill {
    Zeros,
    Ones,
    Given,
}

const ROWS: Param = req("rows", Kind::Int, "number of rows, at least 1");
const COLS: Param = req("cols", Kind::Int, "number of columns, at least 1");

/// The `rows` and `cols` attributes as a shape, refusing 0 with a label on each zero size.
/// Shared by every primitive that makes a matrix of a given size (also `resize`).
pub(super) fn shape_attrs(attrs: &Attrs, name: &str) -> Result<Shape, CheckError> {
    let s = Shape::new(attrs.int("rows"), attrs.int("cols"));
    let err = CheckError::new(
        "bad_argument",
        format!("{name} cannot make a {s} matrix: rows and cols must be at least 1"),
        "rows and cols count elements; give each a whole number of 1 or more",
    );
    let err = [("rows", s.rows), ("cols", s.cols)]
        .into_iter()
        .filter(|&(_, n)| n == 0)
        .fold(err, |e, (p, _)| e.label(Arg::Attr(p), "0 here"));
    if err.labels.is_empty() {
        Ok(s)
    } else {
        Err(err)
    }
}

impl Meta for Fill {
    fn name(&self) -> &'static str {
        match self {
            Fill::Zeros => "zeros",
            Fill::Ones => "ones",
            Fill::Given => "fill",
        }
    }
    fn doc(&self) -> Doc {
        let details = "rows and cols are whole numbers of 1 or more, known before the script \
                       runs; 0 is refused.";
        match self {
            Fill::Zeros => Doc {
                summary: "a rows×cols matrix of zeros",
                details,
                gradient: "none: no numeric inputs",
                example: "z = zeros(2, 3)",
            },
            Fill::Ones => Doc {
                summary: "a rows×cols matrix of ones",
                details,
                gradient: "none: no numeric inputs",
                example: "o = ones(2, 3)",
            },
            Fill::Given => Doc {
                summary: "a rows×cols matrix with every element v (a scalar, may be learnable)",
                details,
                gradient: "dv = Σ g",
                example: "f = fill(2, 3, s)",
            },
        }
    }
    fn signature(&self) -> Signature {
        const SIZE: &[Param] = &[ROWS, COLS];
        const SIZE_V: &[Param] = &[ROWS, COLS, req("v", Kind::Scalar, "the value")];
        Signature {
            params: match self {
                Fill::Given => SIZE_V,
                _ => SIZE,
            },
            variadic: false,
        }
    }
    fn check(&self, _: &[Type], attrs: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        shape_attrs(attrs, self.name()).map(Type::Matrix)
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<T: Real> Op<T> for Fill {
    fn forward(&self, x: &[&Value<T>], attrs: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        let v = match self {
            Fill::Zeros => T::zero(),
            Fill::Ones => T::one(),
            Fill::Given => x[0].scalar(),
        };
        let dims = (attrs.int("rows"), attrs.int("cols"));
        Ok(Value::Matrix(Array2::from_elem(dims, v)))
    }

    /// dv = Σ g (v is repeated over the matrix); zeros and ones have no edges
    fn backward(
        &self,
        _: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        needs
            .iter()
            .map(|&need| need.then(|| Value::Scalar(g.matrix().sum())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{attrs, forward, gradcheck_primitive, prim, rows, FakeIo};
    use crate::ops::{Arg, Static};
    use crate::tensor::{Type, Value};

    fn size(r: f64, c: f64) -> [(&'static str, Static); 2] {
        [("rows", Static::Num(r)), ("cols", Static::Num(c))]
    }

    #[test]
    fn fills_by_hand() {
        assert_eq!(forward("zeros", &[], &size(1., 2.)), rows(1, 2, &[0., 0.]));
        assert_eq!(forward("ones", &[], &size(2., 1.)), rows(2, 1, &[1., 1.]));
        let f = forward("fill", &[Value::Scalar(0.25)], &size(2., 2.));
        assert_eq!(f, rows(2, 2, &[0.25; 4]));
    }

    #[test]
    fn gradient() {
        gradcheck_primitive("fill", &[Value::Scalar(0.4)], &size(3., 2.));
    }

    #[test]
    fn refuses_zero_sizes() {
        for name in ["zeros", "ones", "fill"] {
            let p = prim(name);
            let edges: &[Type] = if name == "fill" { &[Type::Scalar] } else { &[] };
            let e = p
                .check(edges, &attrs(p, &size(0., 3.)), &FakeIo)
                .unwrap_err();
            assert_eq!(e.code, "bad_argument");
            assert_eq!(e.labels, [(Arg::Attr("rows"), "0 here".to_string())]);
        }
        let p = prim("zeros");
        let e = p.check(&[], &attrs(p, &size(0., 0.)), &FakeIo).unwrap_err();
        assert_eq!(e.labels.len(), 2);
    }
}
