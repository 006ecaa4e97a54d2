//! Loss curves as pictures, without a plotting dependency: one [`Chart`] layout (scales, ticks,
//! labels, the curve in pixels), drawn twice: as SVG text and as an RGB raster for PNG, whose
//! text uses a built-in 5×7 bitmap font. The y axis is logarithmic when every value is positive.
//! Knows nothing about the disk: `run` writes what this makes through `io`.

use ndarray::Array2;
use std::fmt::Write;

const WIDTH: usize = 720;
const HEIGHT: usize = 420;
/// The plot area: [LEFT, WIDTH − RIGHT] × [TOP, HEIGHT − BOTTOM].
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 52.0;
/// Pixels per font pixel in the raster; glyphs are 5×7 above the baseline, 6 apart.
const SCALE: usize = 2;

type Rgb = [f64; 3];
const INK: Rgb = [0.13, 0.13, 0.13];
const FRAME: Rgb = [0.45, 0.45, 0.45];
const GRID: Rgb = [0.9, 0.9, 0.9];
const CURVE: Rgb = [0.12, 0.42, 0.75];

/// Where a text is anchored horizontally.
#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

struct Text {
    x: f64,
    /// The baseline (the bottom of the glyphs).
    y: f64,
    anchor: Anchor,
    text: String,
}

/// A laid-out chart of a series y₀, y₁, … against its index 0, 1, ….
pub struct Chart {
    /// The curve in pixel coordinates.
    points: Vec<(f64, f64)>,
    /// Grid lines: vertical at these x, horizontal at these y (pixels).
    grid_x: Vec<f64>,
    grid_y: Vec<f64>,
    texts: Vec<Text>,
}

impl Chart {
    /// A chart of `values` by index, titled `title` with axis label `x_label`.
    pub fn new(values: &[f64], title: &str, x_label: &str) -> Chart {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let log = !finite.is_empty() && finite.iter().all(|v| *v > 0.0);
        let t = |v: f64| if log { v.log10() } else { v };
        let (lo, hi) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(t(v)), b.max(t(v)))
            });
        let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
        let pad = if hi > lo { (hi - lo) * 0.06 } else { 0.5 };
        let (lo, hi) = (lo - pad, hi + pad);
        let last = values.len().saturating_sub(1).max(1) as f64;
        let (x0, x1, y0, y1) = (LEFT, WIDTH as f64 - RIGHT, TOP, HEIGHT as f64 - BOTTOM);
        let px = |i: f64| x0 + i / last * (x1 - x0);
        let py = |v: f64| y1 - (t(v) - lo) / (hi - lo) * (y1 - y0);

        let x_ticks = nice_ticks(0.0, last, 6);
        let y_ticks = if log {
            log_ticks(lo, hi)
        } else {
            nice_ticks(lo, hi, 6)
        };
        let mut texts = Vec::new();
        for &x in &x_ticks {
            texts.push(Text {
                x: px(x),
                y: y1 + 20.0,
                anchor: Anchor::Middle,
                text: label(x),
            });
        }
        for &v in &y_ticks {
            texts.push(Text {
                x: x0 - 8.0,
                y: py(v) + 7.0,
                anchor: Anchor::End,
                text: label(v),
            });
        }
        texts.push(Text {
            x: (x0 + x1) / 2.0,
            y: y1 + 42.0,
            anchor: Anchor::Middle,
            text: x_label.to_string(),
        });
        let scale = if log { "log scale" } else { "linear scale" };
        texts.push(Text {
            x: x0,
            y: y0 - 14.0,
            anchor: Anchor::Start,
            text: format!("{title} ({scale})"),
        });
        if let Some(v) = values.last() {
            texts.push(Text {
                x: x1,
                y: y0 - 14.0,
                anchor: Anchor::End,
                text: format!("last {}", label(*v)),
            });
        }
        let points = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| (px(i as f64), py(v)))
            .collect();
        Chart {
            points: envelope(points),
            grid_x: x_ticks.iter().map(|&x| px(x)).collect(),
            grid_y: y_ticks.iter().map(|&v| py(v)).collect(),
            texts,
        }
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let (x0, x1, y0, y1) = (LEFT, WIDTH as f64 - RIGHT, TOP, HEIGHT as f64 - BOTTOM);
        let hex = |c: Rgb| {
            let b = |v: f64| (v * 255.0).round() as u8;
            format!("#{:02x}{:02x}{:02x}", b(c[0]), b(c[1]), b(c[2]))
        };
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"14\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<path stroke=\"{}\" d=\"",
            hex(GRID)
        );
        for x in &self.grid_x {
            let _ = write!(s, "M{x:.1} {y0}V{y1}");
        }
        for y in &self.grid_y {
            let _ = write!(s, "M{x0} {y:.1}H{x1}");
        }
        let _ = writeln!(
            s,
            "\"/>\n<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{}\"/>",
            x1 - x0,
            y1 - y0,
            hex(FRAME)
        );
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"",
            hex(CURVE)
        );
        for (i, (x, y)) in self.points.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(s, "{sep}{x:.2},{y:.2}");
        }
        s.push_str("\"/>\n");
        for t in &self.texts {
            let anchor = match t.anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            };
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"{}\">{}</text>",
                t.x,
                t.y,
                hex(INK),
                escape(&t.text)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// The chart as red, green and blue planes with values in [0, 1] (for `io::save_rgb`).
    pub fn raster(&self) -> [Array2<f64>; 3] {
        let mut c = Canvas {
            planes: std::array::from_fn(|_| Array2::from_elem((HEIGHT, WIDTH), 1.0)),
        };
        let (x0, x1, y0, y1) = (LEFT, WIDTH as f64 - RIGHT, TOP, HEIGHT as f64 - BOTTOM);
        for &x in &self.grid_x {
            c.rule(x, y0, x, y1, GRID);
        }
        for &y in &self.grid_y {
            c.rule(x0, y, x1, y, GRID);
        }
        c.rule(x0, y0, x1, y0, FRAME);
        c.rule(x0, y1, x1, y1, FRAME);
        c.rule(x0, y0, x0, y1, FRAME);
        c.rule(x1, y0, x1, y1, FRAME);
        c.polyline(&self.points, 2.0, CURVE);
        for t in &self.texts {
            c.text(t);
        }
        c.planes
    }
}

/// At most two points per pixel column: the first and last of each run of points in one column,
/// with the column's extremes between them, so a long noisy series keeps its envelope.
fn envelope(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= 2 * WIDTH {
        return points;
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    for column in points.chunk_by(|a, b| a.0.floor() == b.0.floor()) {
        let lo = column
            .iter()
            .copied()
            .fold(column[0], |m, p| if p.1 < m.1 { p } else { m });
        let hi = column
            .iter()
            .copied()
            .fold(column[0], |m, p| if p.1 > m.1 { p } else { m });
        let (first, last) = (column[0], column[column.len() - 1]);
        let (a, b) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
        for p in [first, a, b, last] {
            if out.last() != Some(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// About `target` round ticks (1, 2 or 5 × 10ᵏ apart) within [lo, hi].
fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let raw = (hi - lo) / target as f64;
    let e = raw.log10().floor() as i32;
    let m = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * 10f64.powi(e) >= raw)
        .unwrap_or(10.0);
    // k·m·10^e, divided rather than multiplied for negative e so that 0.2·6 is 1.2 exactly.
    let at = |k: i64| {
        let km = k as f64 * m;
        if e < 0 {
            km / 10f64.powi(-e)
        } else {
            km * 10f64.powi(e)
        }
    };
    let step = at(1);
    ((lo / step).ceil() as i64..=(hi / step).floor() as i64)
        .map(at)
        .collect()
}

/// Ticks for a log axis spanning 10^lo … 10^hi: decades (every few when there are many), else
/// 1, 2 and 5 within each decade, else round values.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades: Vec<i32> = (lo.ceil() as i32..=hi.floor() as i32).collect();
    if decades.len() >= 3 {
        let every = decades.len().div_ceil(7);
        return decades
            .iter()
            .filter(|d| d.rem_euclid(every as i32) == 0)
            .map(|&d| 10f64.powi(d))
            .collect();
    }
    let ticks: Vec<f64> = (lo.floor() as i32..=hi.ceil() as i32)
        .flat_map(|d| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(d)))
        .filter(|v| (lo..=hi).contains(&v.log10()))
        .collect();
    if ticks.len() >= 3 {
        ticks
    } else {
        nice_ticks(10f64.powf(lo), 10f64.powf(hi), 4)
    }
}

/// A tick value as short text: plain decimals from 0.001 to 99999, else `2e-5`.
fn label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Round away float noise (0.30000000000000004) to 6 significant digits.
    let digits = 5 - v.abs().log10().floor() as i32;
    let rounded = if (0..=300).contains(&digits) {
        let p = 10f64.powi(digits);
        (v * p).round() / p
    } else {
        v
    };
    if (1e-3..1e5).contains(&rounded.abs()) {
        format!("{rounded}")
    } else {
        format!("{rounded:e}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Canvas {
    planes: [Array2<f64>; 3],
}

impl Canvas {
    /// Paints `colour` over pixel (x, y) with opacity `alpha`.
    fn blend(&mut self, x: usize, y: usize, colour: Rgb, alpha: f64) {
        if x < WIDTH && y < HEIGHT {
            for (plane, c) in self.planes.iter_mut().zip(colour) {
                let p = &mut plane[[y, x]];
                *p += (c - *p) * alpha;
            }
        }
    }

    /// A crisp one-pixel horizontal or vertical line.
    fn rule(&mut self, xa: f64, ya: f64, xb: f64, yb: f64, colour: Rgb) {
        let (xa, xb) = (xa.round() as usize, xb.round() as usize);
        let (ya, yb) = (ya.round() as usize, yb.round() as usize);
        for y in ya.min(yb)..=ya.max(yb) {
            for x in xa.min(xb)..=xa.max(xb) {
                self.blend(x, y, colour, 1.0);
            }
        }
    }

    /// An anti-aliased polyline `width` pixels wide: each pixel is covered by the distance from
    /// its centre to the nearest segment.
    fn polyline(&mut self, points: &[(f64, f64)], width: f64, colour: Rgb) {
        let mut cover = Array2::<f64>::zeros((HEIGHT, WIDTH));
        let reach = width / 2.0 + 1.0;
        let segments = points.windows(2).map(|w| (w[0], w[1]));
        let single = (points.len() == 1).then(|| (points[0], points[0]));
        for ((ax, ay), (bx, by)) in segments.chain(single) {
            let range = |a: f64, b: f64, max: usize| {
                let lo = (a.min(b) - reach).floor().max(0.0) as usize;
                let hi = ((a.max(b) + reach).ceil().max(0.0) as usize).min(max - 1);
                lo..=hi
            };
            for y in range(ay, by, HEIGHT) {
                for x in range(ax, bx, WIDTH) {
                    let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                    let (dx, dy) = (bx - ax, by - ay);
                    let len2 = dx * dx + dy * dy;
                    let s = if len2 > 0.0 {
                        (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    let d = (px - ax - s * dx).hypot(py - ay - s * dy);
                    let c = (width / 2.0 + 0.5 - d).clamp(0.0, 1.0);
                    cover[[y, x]] = f64::max(cover[[y, x]], c);
                }
            }
        }
        for ((y, x), &c) in cover.indexed_iter() {
            if c > 0.0 {
                self.blend(x, y, colour, c);
            }
        }
    }

    fn text(&mut self, t: &Text) {
        let advance = 6 * SCALE;
        let width = (t.text.chars().count() * advance).saturating_sub(SCALE) as f64;
        let left = match t.anchor {
            Anchor::Start => t.x,
            Anchor::Middle => t.x - width / 2.0,
            Anchor::End => t.x - width,
        };
        let (left, top) = (
            left.round() as usize,
            (t.y.round() as usize).saturating_sub(7 * SCALE),
        );
        for (i, ch) in t.text.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for dy in 0..SCALE {
                            for dx in 0..SCALE {
                                let x = left + i * advance + col * SCALE + dx;
                                self.blend(x, top + row * SCALE + dy, INK, 1.0);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A 5×7 glyph (HD44780 shapes) and a row for descenders, one row per byte from the top, bit 4
/// the leftmost column. Characters without a glyph are blank.
fn glyph(c: char) -> [u8; 8] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E, 0x00],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F, 0x00],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E, 0x00],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02, 0x00],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E, 0x00],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E, 0x00],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E, 0x00],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00],
        'a' => [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00],
        'b' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E, 0x00],
        'c' => [0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E, 0x00],
        'd' => [0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F, 0x00],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00],
        'f' => [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0x00],
        'g' => [0x00, 0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E],
        'h' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00],
        'i' => [0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00],
        'j' => [0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00],
        'l' => [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00],
        'm' => [0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11, 0x00],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00],
        'o' => [0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00],
        'p' => [0x00, 0x00, 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10],
        'q' => [0x00, 0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x01],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00],
        's' => [0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E, 0x00],
        't' => [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00],
        'u' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D, 0x00],
        'v' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00],
        'w' => [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A, 0x00],
        'x' => [0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00],
        'y' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E],
        'z' => [0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F, 0x00],
        _ => [0; 8],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(nice_ticks(0.0, 227.0, 6), [0.0, 50.0, 100.0, 150.0, 200.0]);
        assert_eq!(nice_ticks(0.0, 1.0, 6), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        // Five decades: every decade; one decade: 1-2-5; a factor 1.5: round values.
        assert_eq!(log_ticks(-3.1, 1.2), [1e-3, 1e-2, 1e-1, 1.0, 10.0]);
        assert_eq!(log_ticks(-1.1, 0.1), [0.1, 0.2, 0.5, 1.0]);
        assert_eq!(log_ticks(0.0, 0.18), [1.0, 1.2, 1.4]);
        assert_eq!(label(0.6000000000000001), "0.6");
        assert_eq!(label(2e-5), "2e-5");
        assert_eq!(label(150.0), "150");
        assert_eq!(label(-0.25), "-0.25");
    }

    #[test]
    fn log_scale_only_for_positive_values() {
        let log = Chart::new(&[1.0, 0.1, 0.01], "loss", "step");
        assert!(log.texts.iter().any(|t| t.text == "loss (log scale)"));
        let linear = Chart::new(&[1.0, 0.0, -1.0], "loss", "step");
        assert!(linear.texts.iter().any(|t| t.text == "loss (linear scale)"));
        // The curve spans the plot area from the first step to the last.
        let (first, last) = (log.points[0], log.points[2]);
        assert_eq!((first.0, last.0), (LEFT, WIDTH as f64 - RIGHT));
        assert!(first.1 < last.1, "a falling loss goes down the picture");
    }

    #[test]
    fn long_series_keep_their_envelope() {
        let values: Vec<f64> = (0..100_000)
            .map(|i| 1.0 + if i % 2 == 0 { 0.5 } else { 0.0 })
            .collect();
        let c = Chart::new(&values, "loss", "step");
        assert!(c.points.len() <= 4 * WIDTH, "{}", c.points.len());
        let ys: Vec<f64> = c.points.iter().map(|p| p.1).collect();
        let (lo, hi) = ys
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        assert!(hi - lo > 50.0, "the zig-zag's extremes survive");
    }

    #[test]
    fn svg_and_raster_draw_the_same_chart() {
        let c = Chart::new(&[3.0, 2.0, 1.5, 1.2, 1.1], "loss", "step");
        let svg = c.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains(">step</text>") && svg.contains(">loss (log scale)</text>"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        let [r, g, b] = c.raster();
        assert_eq!(r.dim(), (HEIGHT, WIDTH));
        // The curve's colour appears; everything stays in [0, 1].
        let blue = r
            .iter()
            .zip(&g)
            .zip(&b)
            .filter(|((r, g), b)| {
                (**r - CURVE[0]).abs() < 0.01
                    && (**g - CURVE[1]).abs() < 0.01
                    && (**b - CURVE[2]).abs() < 0.01
            })
            .count();
        assert!(blue > 200, "{blue} curve pixels");
        assert!([&r, &g, &b]
            .iter()
            .all(|p| p.iter().all(|v| (0.0..=1.0).contains(v))));
    }
}
