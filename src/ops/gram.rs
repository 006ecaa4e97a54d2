//! `gram(m)` = mᵀ·m, the Gram matrix of m's columns. The checker also uses it for `m' * m`
//! (see `ops::fuse`), the poster's symmetric product Nᵀ·N.

use super::{
    gemm, req, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param, PointwiseFns,
    Signature,
};
use crate::tensor::{Real, Shape, Type, Value};

pub struct Gram;

impl Meta for Gram {
    fn name(&self) -> &'static str {
        "gram"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "Gram matrix mᵀ·m (what `m' * m` computes)",
            details: "m is r×c, the result c×c and exactly symmetric: only the blocks on and above \
                      the diagonal are multiplied (in small tiles), the others are mirrored, which saves \
                      about half the work of a general product. The checker rewrites \
                      `m' * m` and `matmul(transpose(m), m)` to gram(m).",
            gradient: "dm = m·(g + gᵀ): one matrix product instead of the two of matmul's rule",
            example: "g = gram(m)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[req("m", Kind::Matrix, "the matrix, r×c")];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        let c = inputs[0].dims().cols;
        Ok(Type::Matrix(Shape::new(c, c)))
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<T: Real> Op<T> for Gram {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        Ok(Value::Matrix(gemm::gram(x[0].matrix().view())))
    }

    /// C = mᵀm: dC = dmᵀm + mᵀdm, so ⟨g, dC⟩ = ⟨m(g + gᵀ), dm⟩ and dm = m·(g + gᵀ).
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (m, g) = (x[0].matrix(), g.matrix());
        vec![Some(Value::Matrix(gemm::product_plus_transpose(
            m.view(),
            g.view(),
        )))]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{forward, gradcheck_primitive, matrix, rows};

    #[test]
    fn is_the_transposed_product() {
        let m = rows(3, 2, &[1., 2., 3., 4., 5., 6.]);
        // mᵀm = [[1+9+25, 2+12+30], [.., 4+16+36]]
        assert_eq!(
            forward("gram", &[m], &[]),
            rows(2, 2, &[35., 44., 44., 56.])
        );
    }

    #[test]
    fn blocks_agree_with_a_plain_product() {
        // 300 columns: panels of 128, 128 and 44, so off-diagonal and ragged blocks are covered.
        let m = matrix(7, 300, 5);
        let got = forward("gram", std::slice::from_ref(&m), &[]);
        let want = m.matrix().t().dot(m.matrix());
        let worst = (got.matrix() - &want)
            .iter()
            .fold(0.0f64, |a, d| a.max(d.abs()));
        assert!(worst < 1e-12, "{worst}");
        let g = got.matrix();
        assert!(
            (0..300).all(|i| (0..300).all(|j| g[[i, j]] == g[[j, i]])),
            "not exactly symmetric"
        );
    }

    #[test]
    fn gradient() {
        gradcheck_primitive("gram", &[matrix(4, 3, 1)], &[]);
    }
}
