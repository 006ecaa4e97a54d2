//! `hcat(a, b, …)` and `vcat(a, b, …)`: matrices side by side or stacked.

use super::{
    kernel, req, Arg, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param,
    PointwiseFns, Signature,
};
use crate::tensor::{Real, Shape, Type, Value};
use ndarray::{Axis, Slice};

/// `Concat::H` is `hcat` (along columns), `Concat::V` is `vcat` (along rows).
pub enum Concat {
    H,
    V,
}

impl Concat {
    /// The axis the inputs are joined along.
    fn axis(&self) -> Axis {
        match self {
            Concat::H => Axis(1),
            Concat::V => Axis(0),
        }
    }
    /// `s` as hcat sees it: rows shared, columns joined (vcat sees the transpose). Its own
    /// inverse.
    fn orient(&self, s: Shape) -> Shape {
        match self {
            Concat::H => s,
            Concat::V => s.transposed(),
        }
    }
}

impl Meta for Concat {
    fn name(&self) -> &'static str {
        match self {
            Concat::H => "hcat",
            Concat::V => "vcat",
        }
    }
    fn doc(&self) -> Doc {
        match self {
            Concat::H => Doc {
                summary: "matrices side by side, left to right",
                details: "One or more matrices with the same number of rows; the result has that \
                          many rows and the sum of their columns. hcat(a) is a.",
                gradient: "each input receives the columns of g at its own place",
                example: "h = hcat(a, b, m)",
            },
            Concat::V => Doc {
                summary: "matrices stacked, top to bottom",
                details: "One or more matrices with the same number of columns; the result has \
                          that many columns and the sum of their rows. vcat(a) is a.",
                gradient: "each input receives the rows of g at its own place",
                example: "v = vcat(a, b)",
            },
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[req("m", Kind::Matrix, "the matrices, one or more")];
        Signature {
            params: PARAMS,
            variadic: true,
        }
    }
    fn check(&self, inputs: &[Type], _: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        let shapes: Vec<Shape> = inputs.iter().map(|t| self.orient(t.dims())).collect();
        let want = shapes[0].rows;
        let odd: Vec<(usize, Shape)> = shapes
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, s)| s.rows != want)
            .collect();
        if odd.is_empty() {
            let joined = shapes.iter().map(|s| s.cols).sum();
            return Ok(Type::Matrix(self.orient(Shape::new(want, joined))));
        }
        let (name, first) = (self.name(), inputs[0].dims());
        let (side, other, placed, resize) = match self {
            Concat::H => (
                "rows",
                "vcat",
                "side by side",
                format!("resize(x, {want}, cols)"),
            ),
            Concat::V => (
                "columns",
                "hcat",
                "on top of each other",
                format!("resize(x, rows, {want})"),
            ),
        };
        let err = CheckError::new(
            "shape_mismatch",
            format!(
                "{name} needs matrices with the same number of {side}: the first ({first}) has \
                 {want}, but {} other{} not",
                odd.len(),
                if odd.len() == 1 { " does" } else { "s do" }
            ),
            format!(
                "{name} places matrices {placed}, so each needs {want} {side} like the first; \
                 resize the others ({resize}), transpose them ('), or use {other} instead"
            ),
        );
        Err(odd.into_iter().fold(err, |e, (i, s)| {
            e.label(
                Arg::Input(i),
                format!("{}: {} {side}", self.orient(s), s.rows),
            )
        }))
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<T: Real> Op<T> for Concat {
    fn forward(&self, x: &[&Value<T>], _: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        // Row-major copies of whole rows (ndarray's concatenate assigns entry by entry), in row
        // blocks of the result on `par`'s threads.
        let parts: Vec<_> = x
            .iter()
            .map(|v| kernel::row_major(v.matrix().view()))
            .collect();
        let along = |p: &ndarray::CowArray<T, ndarray::Ix2>| p.len_of(self.axis());
        let shape = match self {
            Concat::H => Shape::new(parts[0].nrows(), parts.iter().map(along).sum()),
            Concat::V => Shape::new(parts.iter().map(along).sum(), parts[0].ncols()),
        };
        // each part's entries, and for vcat the result's row each part starts at
        let entries: Vec<&[T]> = parts.iter().map(kernel::entries).collect();
        let starts: Vec<usize> = parts
            .iter()
            .scan(0, |row, p| Some(std::mem::replace(row, *row + p.nrows())))
            .collect();
        // SAFETY: each row of a block is written whole: by its pieces, the result's columns left
        // to right (hcat: every part's row i; vcat: the one part's row that is the result's).
        let joined = unsafe {
            kernel::build((shape.rows, shape.cols), |rows, out| {
                for (i, row) in rows.zip(out.chunks_exact_mut(shape.cols.max(1))) {
                    match self {
                        Concat::H => {
                            let mut at = 0;
                            for (p, e) in parts.iter().zip(&entries) {
                                let c = p.ncols();
                                kernel::write(&mut row[at..at + c], &e[i * c..(i + 1) * c]);
                                at += c;
                            }
                        }
                        Concat::V => {
                            let k = starts.partition_point(|&s| s <= i) - 1;
                            let (r, c) = (i - starts[k], shape.cols);
                            kernel::write(row, &entries[k][r * c..(r + 1) * c]);
                        }
                    }
                }
            })
        };
        Ok(Value::Matrix(joined))
    }

    /// d(input i) = the slice of g along the joining axis where input i was placed
    fn backward(
        &self,
        x: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        g: Value<T>,
        _: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>> {
        let axis = self.axis();
        let mut start = 0;
        x.iter()
            .zip(needs)
            .map(|(v, &need)| {
                let end = start + v.matrix().len_of(axis);
                let part = g.matrix().slice_axis(axis, Slice::from(start..end));
                start = end;
                need.then(|| Value::Matrix(part.to_owned()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{attrs, forward, gradcheck_primitive, matrix, prim, rows, FakeIo};
    use crate::ops::Arg;
    use crate::tensor::{Shape, Type};

    #[test]
    fn joins_by_hand() {
        let a = rows(2, 1, &[1., 2.]);
        let b = rows(2, 2, &[3., 4., 5., 6.]);
        let h = forward("hcat", &[a.clone(), b], &[]);
        assert_eq!(h, rows(2, 3, &[1., 3., 4., 2., 5., 6.]));
        let c = rows(1, 1, &[7.]);
        assert_eq!(
            forward("vcat", &[a.clone(), c], &[]),
            rows(3, 1, &[1., 2., 7.])
        );
        assert_eq!(forward("vcat", std::slice::from_ref(&a), &[]), a);
        // against ndarray's own concatenate, three inputs of different widths (heights)
        for (name, axis, ins) in [
            (
                "hcat",
                1,
                [matrix(5, 2, 1), matrix(5, 7, 2), matrix(5, 1, 3)],
            ),
            (
                "vcat",
                0,
                [matrix(2, 6, 4), matrix(9, 6, 5), matrix(1, 6, 6)],
            ),
            // several row blocks on the threads (blocks of 254 and 54 rows), vcat's parts
            // straddling them
            (
                "hcat",
                1,
                [matrix(300, 100, 7), matrix(300, 28, 8), matrix(300, 1, 9)],
            ),
            (
                "vcat",
                0,
                [
                    matrix(70, 600, 10),
                    matrix(3, 600, 11),
                    matrix(100, 600, 12),
                ],
            ),
        ] {
            let views: Vec<_> = ins.iter().map(|v| v.matrix().view()).collect();
            let want = ndarray::concatenate(ndarray::Axis(axis), &views).unwrap();
            assert_eq!(forward(name, &ins, &[]).into_matrix(), want, "{name}");
        }
    }

    #[test]
    fn gradients() {
        let ins = [matrix(3, 2, 1), matrix(3, 4, 2), matrix(3, 1, 3)];
        gradcheck_primitive("hcat", &ins, &[]);
        let ins = [matrix(2, 3, 4), matrix(1, 3, 5), matrix(4, 3, 6)];
        gradcheck_primitive("vcat", &ins, &[]);
    }

    #[test]
    fn refuses_each_odd_input() {
        let m = |r, c| Type::Matrix(Shape::new(r, c));
        let p = prim("hcat");
        let e = p
            .check(
                &[m(3, 2), m(4, 2), m(3, 5), m(2, 2)],
                &attrs(p, &[]),
                &FakeIo,
            )
            .unwrap_err();
        assert_eq!(e.code, "shape_mismatch");
        let args: Vec<&Arg> = e.labels.iter().map(|(a, _)| a).collect();
        assert_eq!(args, [&Arg::Input(1), &Arg::Input(3)]);
        assert_eq!(e.labels[0].1, "4×2: 4 rows");
        assert!(e.help.contains("resize(x, 3, cols)"), "{}", e.help);
        let p = prim("vcat");
        let e = p
            .check(&[m(3, 2), m(3, 4)], &attrs(p, &[]), &FakeIo)
            .unwrap_err();
        assert_eq!(e.labels, [(Arg::Input(1), "3×4: 4 columns".to_string())]);
    }
}
