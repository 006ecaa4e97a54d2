//! `gram(m)` = mᵀ·m, the Gram matrix of m's columns. The checker also uses it for `m' * m`
//! (see `ops::fuse`), the poster's symmetric product Nᵀ·N.

use super::{
    kernel, req, Attrs, CheckError, Doc, Io, Kind, Meta, Op, Param, PointwiseFns, Signature,
};
use crate::par;
use crate::tensor::{Real, Shape, Type, Value};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, ArrayViewMut2, Axis};

pub struct Gram;

/// Columns per panel of the symmetric product, from the size alone (so that the panels, and
/// with them the work saved, do not change with the thread count): small enough that skipping
/// the blocks below the diagonal saves work and that the panels balance over two threads,
/// large enough that each product runs at full speed. Measured with two threads: at 512²,
/// panels of 128 take 0.43 ms where one product on matrixmultiply's threads took 0.57 ms; at
/// 2048², 256 columns beat 128 (27 against 30 ms).
fn panel_width(n: usize) -> usize {
    (n / 4).next_multiple_of(64).clamp(64, 256)
}

impl Meta for Gram {
    fn name(&self) -> &'static str {
        "gram"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "Gram matrix mᵀ·m (what `m' * m` computes)",
            details: "m is r×c, the result c×c and exactly symmetric: only the blocks on and above \
                      the diagonal are multiplied (in panels of 64–256 columns), the others are mirrored, \
                      which saves up to half the work of a general product. The checker rewrites \
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
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io) -> Result<Value<T>, String> {
        let m = x[0].matrix();
        let n = m.ncols();
        let mut out = kernel::zeros::<T>((n, n));
        // One product per panel of columns: the panel's columns from the top down to its
        // diagonal block, the tallest panels first so the threads finish together. Every entry
        // on and above the diagonal is the one a full product gives (see kernel::product).
        let w = panel_width(n);
        let mut panels = Vec::new();
        let mut rest = out.view_mut();
        for a0 in (0..n).step_by(w) {
            let (panel, tail) = rest.split_at(Axis(1), (a0 + w).min(n) - a0);
            panels.push((a0, panel));
            rest = tail;
        }
        panels.reverse();
        par::for_each(panels, |(a0, panel): (usize, ArrayViewMut2<T>)| {
            let a1 = a0 + panel.ncols();
            general_mat_mul(
                T::one(),
                &m.slice(s![.., ..a1]).t(),
                &m.slice(s![.., a0..a1]),
                T::zero(),
                &mut panel.slice_move(s![..a1, ..]),
            );
        });
        // Mirror the upper blocks into the lower ones (the diagonal blocks are symmetric up to
        // rounding: take their upper triangle too, so the result is exactly symmetric).
        kernel::mirror_upper(&mut out);
        Ok(Value::Matrix(out))
    }

    /// C = mᵀm: dC = dmᵀm + mᵀdm, so ⟨g, dC⟩ = ⟨m(g + gᵀ), dm⟩ and dm = m·(g + gᵀ).
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        g: &Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let (m, g) = (x[0].matrix(), g.matrix());
        vec![Some(Value::Matrix(kernel::product(
            m.view(),
            kernel::plus_transpose(g.view()).view(),
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
