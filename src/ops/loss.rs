//! `loss(a, b, kind = "frobenius")`: how far a is from b, as one number.

use super::kernel;
use super::{
    opt, req, Arg, Attrs, CheckError, Default, Doc, Forward, Io, Kind, Meta, Notes, Op, Param,
    PointwiseFns, Signature,
};
use crate::tensor::{Real, Type, Value};

pub struct Loss;

/// The distances `kind` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measure {
    /// ‖a − b‖_F, not squared.
    Frobenius,
    /// Σ (a − b)² / N
    Mse,
}

const KINDS: &[(&str, Measure)] = &[("frobenius", Measure::Frobenius), ("mse", Measure::Mse)];

fn measure(attrs: &Attrs) -> Option<Measure> {
    let kind = &attrs.str("kind").value;
    KINDS.iter().find(|(name, _)| name == kind).map(|&(_, m)| m)
}

impl Meta for Loss {
    fn name(&self) -> &'static str {
        "loss"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "distance between a and b: Frobenius norm of a − b, or mean squared error",
            details: "kind = \"frobenius\" (the default, the poster's loss): sqrt(Σ (a − b)²), not squared. \
                      kind = \"mse\": Σ (a − b)² / N with N the number of entries. a and b have one shape; \
                      the result is a scalar. Sums run row by row (each in 16 interleaved partial sums), then over the rows.",
            gradient: "frobenius: da = g·(a − b)/‖a − b‖, zero where a = b (the norm has no gradient there); \
                       mse: da = g·2(a − b)/N; always db = −da",
            example: "l = loss(a, b)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("a", Kind::Matrix, "the prediction"),
            req("b", Kind::Matrix, "the target, the shape of a"),
            opt(
                "kind",
                Kind::Str,
                Default::Str("frobenius"),
                "\"frobenius\" or \"mse\"",
            ),
        ];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], attrs: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        if measure(attrs).is_none() {
            let kind = &attrs.str("kind").value;
            return Err(CheckError::new(
                "bad_argument",
                format!("loss has no kind \"{kind}\""),
                "kind is \"frobenius\" (sqrt of the sum of squared differences, the default) or \
                 \"mse\" (the mean of the squared differences)",
            )
            .label(
                Arg::Attr("kind"),
                format!("\"{kind}\" is not a kind of loss"),
            ));
        }
        let (a, b) = (inputs[0].dims(), inputs[1].dims());
        if a != b {
            return Err(CheckError::new(
                "shape_mismatch",
                format!("loss compares matrices of one shape, got {a} and {b}"),
                "a and b are compared entry by entry; use resize(m, rows, cols) or transpose (') to make \
                 the shapes agree",
            )
            .label(Arg::Input(0), format!("{a}"))
            .label(Arg::Input(1), format!("{b}")));
        }
        Ok(Type::Scalar)
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

fn checked(attrs: &Attrs) -> Measure {
    measure(attrs).unwrap_or_else(|| unreachable!("checked call: loss kind"))
}

/// Σ (a − b)²: each row's sum (in the lanes of [`kernel::fold2`]), added up per row block of
/// [`kernel::blocks`] on `par`'s threads, then the blocks' sums in order (short partial sums
/// keep f32 accurate).
fn squared_distance<T: Real>(x: &[&Value<T>]) -> T {
    let (a, b) = (
        kernel::row_major(x[0].matrix().view()),
        kernel::row_major(x[1].matrix().view()),
    );
    let (a, b, cols) = (kernel::entries(&a), kernel::entries(&b), a.ncols().max(1));
    let d2 = |s: T, a: T, b: T| s + (a - b) * (a - b);
    let parts = kernel::per_block((x[0].matrix().nrows(), cols), |rows| {
        let span = rows.start * cols..rows.end * cols;
        let rows = a[span.clone()]
            .chunks_exact(cols)
            .zip(b[span].chunks_exact(cols));
        rows.fold(T::zero(), |total, (a, b)| {
            total + kernel::fold2(a, b, T::zero(), d2, |s, l| s + l)
        })
    });
    parts.into_iter().fold(T::zero(), |s, p| s + p)
}

impl<T: Real> Op<T> for Loss {
    fn forward(&self, x: &[&Value<T>], attrs: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        let d2 = squared_distance(x);
        Ok(Value::Scalar(match checked(attrs) {
            Measure::Frobenius => d2.sqrt(),
            Measure::Mse => d2 / T::lit(x[0].matrix().len() as f64),
        }))
    }

    /// frobenius: L = sqrt(Σ (a − b)²), ∂L/∂a = (a − b)/L (taken as 0 at L = 0);
    /// mse: L = Σ (a − b)²/N, ∂L/∂a = 2(a − b)/N; ∂L/∂b = −∂L/∂a.
    fn backward(
        &self,
        x: &[&Value<T>],
        out: &Value<T>,
        _: &[T],
        g: Value<T>,
        attrs: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let factor = match checked(attrs) {
            Measure::Frobenius if out.scalar() == T::zero() => T::zero(),
            Measure::Frobenius => g.scalar() / out.scalar(),
            Measure::Mse => g.scalar() * T::lit(2.0) / T::lit(x[0].matrix().len() as f64),
        };
        let da = kernel::map2(x[0].matrix(), x[1].matrix(), |a, b| factor * (a - b));
        let db = needs[1].then(|| Value::Matrix(kernel::map(&da, |v| -v)));
        vec![needs[0].then_some(Value::Matrix(da)), db]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, prim, rows, FakeIo};
    use crate::ops::{testing::attrs, Arg, Static, Text};
    use crate::tensor::{Shape, Type, Value};

    fn kind(k: &str) -> [(&'static str, Static); 1] {
        [(
            "kind",
            Static::Str(Text {
                value: k.to_string(),
                origin: crate::ops::Origin::Script,
            }),
        )]
    }

    #[test]
    fn measures_by_hand() {
        let (a, b) = (rows(1, 2, &[4., 1.]), rows(1, 2, &[1., 5.]));
        assert_eq!(
            forward("loss", &[a.clone(), b.clone()], &[]),
            Value::Scalar(5.0)
        );
        assert_eq!(forward("loss", &[a, b], &kind("mse")), Value::Scalar(12.5));
    }

    #[test]
    fn gradient() {
        gradcheck_primitive("loss", &[matrix(3, 4, 1), matrix(3, 4, 2)], &[]);
        gradcheck_primitive("loss", &[matrix(3, 4, 3), matrix(3, 4, 4)], &kind("mse"));
    }

    #[test]
    fn refuses_unknown_kind_and_shape_mismatch() {
        let p = prim("loss");
        let square = Type::Matrix(Shape::new(2, 2));
        let e = p
            .check(&[square, square], &attrs(p, &kind("l1")), &FakeIo)
            .unwrap_err();
        assert_eq!(
            (e.code, e.labels[0].0.clone()),
            ("bad_argument", Arg::Attr("kind"))
        );
        assert!(
            e.help.contains("frobenius") && e.help.contains("mse"),
            "{}",
            e.help
        );
        let wide = Type::Matrix(Shape::new(2, 3));
        let e = p
            .check(&[square, wide], &attrs(p, &[]), &FakeIo)
            .unwrap_err();
        assert_eq!(e.code, "shape_mismatch");
        assert_eq!(
            e.labels,
            vec![(Arg::Input(0), "2×2".into()), (Arg::Input(1), "2×3".into())]
        );
    }
}
