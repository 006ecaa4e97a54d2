//! `resize(m, rows, cols)`: bilinear resampling to a new size.

use super::fill::shape_attrs;
use super::{
    kernel, req, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param, PointwiseFns,
    Signature,
};
use crate::tensor::{Real, Shape, Type, Value};
use ndarray::Array2;

pub struct Resize;

impl Meta for Resize {
    fn name(&self) -> &'static str {
        "resize"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "bilinear resampling of m to rows×cols",
            details: "Half-pixel centres, as torch's interpolate(mode=\"bilinear\", \
                      align_corners=False) and OpenCV's INTER_LINEAR: output index d along an axis \
                      samples the input at (d + 0.5)·in/out − 0.5, clamped to [0, in − 1], \
                      interpolating linearly between the two nearest elements. Resizing to the \
                      same size is the identity. No anti-aliasing: shrinking by more than 2× \
                      skips elements. rows and cols are whole numbers of 1 or more.",
            gradient: "linear in m: dm = the transpose of the interpolation, i.e. each output \
                       element's g is scattered back to the (up to) four inputs it read, with the \
                       same weights",
            example: "r = resize(m, 5, 7)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("m", Kind::Matrix, "the matrix"),
            req("rows", Kind::Int, "rows of the result, at least 1"),
            req("cols", Kind::Int, "columns of the result, at least 1"),
        ];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, _: &[Type], attrs: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        shape_attrs(attrs, "resize").map(Type::Matrix)
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

/// Sampling along one axis: per output index, the two input indices around its source
/// coordinate and the weight of the second.
type Tap<T> = (usize, usize, T);

/// Output index d samples the input at (d + 0.5)·in/out − 0.5 (half-pixel centres), clamped to
/// [0, in − 1].
fn taps<T: Real>(n_in: usize, n_out: usize) -> Vec<Tap<T>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|d| {
            let s = ((d as f64 + 0.5) * scale - 0.5).clamp(0.0, (n_in - 1) as f64);
            let lo = s.floor() as usize;
            (lo, (lo + 1).min(n_in - 1), T::lit(s - lo as f64))
        })
        .collect()
}

/// The row and column taps for resampling `from` to `to`.
fn grid<T: Real>(from: Shape, to: Shape) -> (Vec<Tap<T>>, Vec<Tap<T>>) {
    (taps(from.rows, to.rows), taps(from.cols, to.cols))
}

/// The four input cells one output element reads, with their weights (which sum to 1).
fn corners<T: Real>((r0, r1, wy): Tap<T>, (c0, c1, wx): Tap<T>) -> [((usize, usize), T); 4] {
    let (vy, vx) = (T::one() - wy, T::one() - wx);
    [
        ((r0, c0), vy * vx),
        ((r0, c1), vy * wx),
        ((r1, c0), wy * vx),
        ((r1, c1), wy * wx),
    ]
}

fn shape<T: Real>(m: &Array2<T>) -> Shape {
    Shape::new(m.nrows(), m.ncols())
}

impl<T: Real> Op<T> for Resize {
    fn forward(&self, x: &[&Value<T>], attrs: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        let m = x[0].matrix();
        let to = Shape::new(attrs.int("rows"), attrs.int("cols"));
        let (ry, rx) = grid::<T>(shape(m), to);
        // SAFETY: every entry of the block is written.
        let out = unsafe {
            kernel::build((to.rows, to.cols), |block, out| {
                for (i, row) in block.zip(out.chunks_exact_mut(to.cols)) {
                    for (out, &x) in row.iter_mut().zip(&rx) {
                        let cells = corners(ry[i], x);
                        out.write(cells.iter().fold(T::zero(), |s, &(k, w)| s + w * m[k]));
                    }
                }
            })
        };
        Ok(Value::Matrix(out))
    }

    /// y = R·m is linear, so dm = Rᵀ·g: each g[i, j] goes back to the cells y[i, j] read,
    /// times the weight it read them with.
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
        let (ry, rx) = grid::<T>(shape(m), shape(g));
        let mut dm = Array2::zeros(m.raw_dim());
        for ((i, j), &gv) in g.indexed_iter() {
            for (k, w) in corners(ry[i], rx[j]) {
                dm[k] += w * gv;
            }
        }
        vec![Some(Value::Matrix(dm))]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{attrs, forward, gradcheck_primitive, matrix, prim, rows, FakeIo};
    use crate::ops::{Arg, Static};
    use crate::tensor::{Shape, Type};

    fn size(r: f64, c: f64) -> [(&'static str, Static); 2] {
        [("rows", Static::Num(r)), ("cols", Static::Num(c))]
    }

    #[test]
    fn resamples_by_hand() {
        // up: sources −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
        let up = forward("resize", &[rows(1, 2, &[0., 4.])], &size(1., 4.));
        assert_eq!(up, rows(1, 4, &[0., 1., 3., 4.]));
        // down: sources 0.5 and 2.5
        let down = forward("resize", &[rows(1, 4, &[0., 2., 4., 6.])], &size(1., 2.));
        assert_eq!(down, rows(1, 2, &[1., 5.]));
        let m = matrix(3, 4, 1);
        assert_eq!(
            forward("resize", std::slice::from_ref(&m), &size(3., 4.)),
            m
        );
    }

    #[test]
    fn gradient() {
        gradcheck_primitive("resize", &[matrix(3, 4, 1)], &size(5., 7.));
        gradcheck_primitive("resize", &[matrix(6, 5, 2)], &size(4., 3.));
    }

    #[test]
    fn refuses_zero_size() {
        let p = prim("resize");
        let m = [Type::Matrix(Shape::new(3, 3))];
        let e = p.check(&m, &attrs(p, &size(0., 4.)), &FakeIo).unwrap_err();
        assert_eq!(e.code, "bad_argument");
        assert_eq!(e.labels[0].0, Arg::Attr("rows"));
    }
}
