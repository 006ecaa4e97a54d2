//! `noise(rows, cols, seed = 1)`: a cloud-like gray texture, the same on every platform.

use super::{
    kernel, opt, req, Arg, Attrs, CheckError, Default, Doc, Forward, Io, Kind, Meta, Notes, Op,
    Param, PointwiseFns, Signature,
};
use crate::tensor::{Real, Shape, Type, Value};
use ndarray::Array2;

pub struct Noise;

/// Lattice cells across the longer side at the coarsest octave.
const CELLS: f64 = 4.0;
/// Octaves, each with twice the frequency and half the amplitude of the one before.
const OCTAVES: u64 = 6;

impl Meta for Noise {
    fn name(&self) -> &'static str {
        "noise"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "smooth fractal value noise in [0, 1]: a cloud-like gray texture",
            details: "Six octaves of value noise: random lattice values from an integer hash of \
                      (lattice x, lattice y, seed, octave), interpolated with smoothstep weights. The \
                      coarsest lattice has 4 cells across the longer side, so features scale with the \
                      image; each octave doubles the frequency and halves the amplitude. The sum is \
                      rescaled by its own minimum and maximum to exactly [0, 1] (a 1×1 noise is 0). \
                      Computed in f64 with +, −, ×, ÷ and floor only, so a seed gives the same bits on \
                      every platform, then rounded to the script's float type.",
            gradient: "none: noise has no inputs",
            example: "t = noise(64, 64, seed = 7)",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[
            req("rows", Kind::Int, "height"),
            req("cols", Kind::Int, "width"),
            opt(
                "seed",
                Kind::Int,
                Default::Num(1.0),
                "which texture; each seed gives another",
            ),
        ];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, _: &[Type], attrs: &Attrs, _: &dyn Io) -> Result<Type, CheckError> {
        for side in ["rows", "cols"] {
            if attrs.int(side) == 0 {
                return Err(CheckError::new(
                    "bad_argument",
                    format!("noise needs at least one row and one column, got {side} = 0"),
                    "give rows and cols of 1 or more",
                )
                .label(Arg::Attr(side), "0"));
            }
        }
        Ok(Type::Matrix(Shape::new(
            attrs.int("rows"),
            attrs.int("cols"),
        )))
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

/// splitmix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The lattice value at (x, y) of an octave, in [0, 1).
fn lattice(x: u64, y: u64, seed: u64, octave: u64) -> f64 {
    let h = [seed, octave, x, y]
        .iter()
        .fold(0, |h, &v| mix(h ^ v).wrapping_add(0x9E37_79B9_7F4A_7C15));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Smoothstep, the interpolation weight of a point's fraction of a lattice cell.
fn smooth(t: f64) -> f64 {
    t * t * (3.0 - 2.0 * t)
}

/// Where the pixel centres along one side fall in an octave's lattice: each one's cell and its
/// smoothstep weight, for the coordinate (p + 0.5)·freq + offset of pixel p.
fn cells(len: usize, freq: f64, offset: f64) -> Vec<(usize, f64)> {
    (0..len)
        .map(|p| {
            let x = (p as f64 + 0.5) * freq + offset;
            let floor = x.floor();
            (floor as usize, smooth(x - floor))
        })
        .collect()
}

/// One octave of the texture, its lattice values computed once: a pixel's value is the
/// bilinear blend, with smoothstep weights, of the four lattice values around it, and each
/// lattice value is shared by every pixel of its four cells. Hashing the four at every pixel
/// instead made noise take 26 ms at 512² and 363–408 ms at 2048² (two threads) on this
/// project's machine (an Intel Xeon), against 3.4–4.7 and 32–36 ms with the tables, added up
/// an octave and a row at a time (56–60 ms at 2048² on one thread).
struct Octave {
    amp: f64,
    /// Each row's and each column's cell and weight.
    rows: Vec<(usize, f64)>,
    cols: Vec<(usize, f64)>,
    /// The lattice values, row-major, `width` a row.
    lattice: Vec<f64>,
    width: usize,
}

impl Octave {
    fn new((rows, cols): (usize, usize), cell: f64, seed: u64, o: u64) -> Octave {
        // each octave doubles the frequency and halves the amplitude (exact in binary), and is
        // offset by a non-dyadic amount so that the octaves' lattice lines do not align
        let scale = (1u64 << o) as f64;
        let (freq, offset) = (scale / cell, o as f64 * 0.618_033_988_75);
        let (rows, cols) = (cells(rows, freq, offset), cells(cols, freq, offset));
        // the cells grow along each side, so its last one reaches furthest
        let last = |c: &[(usize, f64)]| c.last().map_or(0, |&(i, _)| i) + 2;
        let (width, height) = (last(&cols), last(&rows));
        let lattice = (0..height)
            .flat_map(|y| (0..width).map(move |x| lattice(x as u64, y as u64, seed, o)))
            .collect();
        Octave {
            amp: 1.0 / scale,
            rows,
            cols,
            lattice,
            width,
        }
    }

    /// Adds the octave's values at row i's pixels to `row`, each weighted by the amplitude.
    fn add_row(&self, i: usize, row: &mut [f64]) {
        let (iy, ty) = self.rows[i];
        let lattice = |y: usize| &self.lattice[y * self.width..(y + 1) * self.width];
        let (above, below) = (lattice(iy), lattice(iy + 1));
        for (sum, &(ix, tx)) in row.iter_mut().zip(&self.cols) {
            let top = above[ix] + (above[ix + 1] - above[ix]) * tx;
            let bottom = below[ix] + (below[ix + 1] - below[ix]) * tx;
            *sum += self.amp * (top + (bottom - top) * ty);
        }
    }
}

/// The texture in f64 before rescaling, its row blocks on [`par`]'s threads (each entry is
/// computed alone, so the thread count cannot change a bit).
///
/// [`par`]: crate::par
fn raw(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let cell = rows.max(cols) as f64 / CELLS;
    let octaves: Vec<Octave> = (0..OCTAVES)
        .map(|o| Octave::new((rows, cols), cell, seed, o))
        .collect();
    // SAFETY: every entry of the block is written.
    unsafe {
        kernel::build((rows, cols), |block, out| {
            let mut sums = vec![0.0; cols];
            for (i, row) in block.zip(out.chunks_exact_mut(cols)) {
                sums.fill(0.0);
                for o in &octaves {
                    o.add_row(i, &mut sums);
                }
                kernel::write(row, &sums);
            }
        })
    }
}

/// The texture rescaled to [0, 1], as T.
fn texture<T: Real>(rows: usize, cols: usize, seed: u64) -> Array2<T> {
    let raw = raw(rows, cols, seed);
    match kernel::min_max_par(kernel::entries(&kernel::row_major(raw.view()))) {
        Some((lo, hi)) if hi != lo => kernel::map(&raw, |v| T::lit((v - lo) / (hi - lo))),
        _ => Array2::zeros((rows, cols)),
    }
}

impl<T: Real> Op<T> for Noise {
    fn forward(&self, _: &[&Value<T>], attrs: &Attrs, _: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        Ok(Value::Matrix(texture(
            attrs.int("rows"),
            attrs.int("cols"),
            attrs.int("seed") as u64,
        )))
    }

    /// No inputs, no gradients.
    fn backward(
        &self,
        _: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        _: Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{lattice, mix, texture};
    use crate::ops::testing::{attrs, forward, prim, FakeIo};
    use crate::ops::{Arg, Static};
    use ndarray::{Array2, Axis};

    fn size(rows: f64, cols: f64, seed: f64) -> [(&'static str, Static); 3] {
        [
            ("rows", Static::Num(rows)),
            ("cols", Static::Num(cols)),
            ("seed", Static::Num(seed)),
        ]
    }

    #[test]
    fn seeded_and_spans_exactly_zero_to_one() {
        let bits = |seed| texture::<f64>(96, 64, seed).mapv(f64::to_bits);
        assert_eq!(bits(3), bits(3));
        assert_ne!(bits(3), bits(4));
        let t = forward("noise", &[], &size(96., 64., 3.)).into_matrix();
        assert_eq!(t.dim(), (96, 64));
        assert_eq!(t.iter().copied().fold(f64::INFINITY, f64::min), 0.0);
        assert_eq!(t.iter().copied().fold(f64::NEG_INFINITY, f64::max), 1.0);
    }

    /// The texture by its definition, pixel by pixel: each octave's four lattice values hashed
    /// at every pixel, the octaves summed from the coarsest, the sum rescaled to [0, 1].
    fn by_definition(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let cell = rows.max(cols) as f64 / 4.0;
        let raw = Array2::from_shape_fn((rows, cols), |(i, j)| {
            let (mut sum, mut amp, mut freq) = (0.0, 1.0, 1.0 / cell);
            for o in 0..6 {
                let offset = o as f64 * 0.618_033_988_75;
                let (x, y) = (
                    (j as f64 + 0.5) * freq + offset,
                    (i as f64 + 0.5) * freq + offset,
                );
                let (fx, fy) = (x.floor(), y.floor());
                let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
                let (tx, ty) = (smooth(x - fx), smooth(y - fy));
                let at = |dx, dy| lattice(fx as u64 + dx, fy as u64 + dy, seed, o);
                let top = at(0, 0) + (at(1, 0) - at(0, 0)) * tx;
                let bottom = at(0, 1) + (at(1, 1) - at(0, 1)) * tx;
                sum += amp * (top + (bottom - top) * ty);
                amp *= 0.5;
                freq *= 2.0;
            }
            sum
        });
        let lo = raw.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if hi == lo {
            return Array2::zeros((rows, cols));
        }
        raw.mapv(|v| (v - lo) / (hi - lo))
    }

    #[test]
    fn lattice_tables_give_the_definitions_bits() {
        for (rows, cols, seed) in [(37, 61, 2), (64, 64, 7), (130, 9, 11), (1, 5, 3), (1, 1, 4)] {
            let want = by_definition(rows, cols, seed);
            let f64s = texture::<f64>(rows, cols, seed);
            assert_eq!(
                f64s.mapv(f64::to_bits),
                want.mapv(f64::to_bits),
                "{rows}×{cols}"
            );
            let f32s = texture::<f32>(rows, cols, seed);
            assert_eq!(f32s.mapv(f32::to_bits), want.mapv(|v| (v as f32).to_bits()));
        }
    }

    #[test]
    fn bits_are_pinned() {
        // Only +, −, ×, ÷ and floor, so these bits hold on every platform; a change here changes
        // every script that uses noise.
        let t = texture::<f64>(40, 56, 5);
        let digest = t.iter().fold(0, |h, v| mix(h ^ v.to_bits()));
        assert_eq!(digest, 0x0a7a_e179_1a04_ccbf);
    }

    #[test]
    fn is_smooth_with_large_features() {
        let t = texture::<f64>(256, 256, 1);
        let steps: Vec<f64> = [Axis(0), Axis(1)]
            .iter()
            .flat_map(|&axis| {
                let n = t.len_of(axis);
                let (a, b) = (
                    t.slice_axis(axis, (0..n - 1).into()),
                    t.slice_axis(axis, (1..n).into()),
                );
                (&a - &b).mapv(f64::abs).into_iter()
            })
            .collect();
        let largest = steps.iter().copied().fold(0.0, f64::max);
        let mean = steps.iter().sum::<f64>() / steps.len() as f64;
        assert!(
            largest < 0.1 && mean < 0.02,
            "neighbours differ by up to {largest}, {mean} on average"
        );
        // large features: the quadrants' means differ noticeably
        let quadrant =
            |r: usize, c: usize| t.slice(ndarray::s![r..r + 128, c..c + 128]).mean().unwrap();
        let q = [
            quadrant(0, 0),
            quadrant(0, 128),
            quadrant(128, 0),
            quadrant(128, 128),
        ];
        let spread = q.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - q.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(spread > 0.05, "quadrant means {q:?}");
    }

    #[test]
    fn refuses_an_empty_size() {
        let p = prim("noise");
        let e = p
            .check(&[], &attrs(p, &size(4., 0., 1.)), &FakeIo)
            .unwrap_err();
        assert_eq!(
            (e.code, e.labels[0].0.clone()),
            ("bad_argument", Arg::Attr("cols"))
        );
    }
}
