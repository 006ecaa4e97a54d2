//! `cargo bench`: the primitives of the poster's step and the whole Adam step, at 256² … 2048²,
//! in f32 (medians are what divan reports; compare ratios within one run, the machine is shared).
//! The whole-step comparison against JAX and PyTorch is `bench/peers/run_peers.sh`, and f64
//! against f32 is `benches/precision.rs` (see BENCHMARKS.md).

mod common;

use imgx::ops::{self, Attrs, Dispatch, Io, Static, Text};
use imgx::tensor::{Shape, Value};
use ndarray::Array2;
use std::path::PathBuf;
use std::sync::Arc;

const SIZES: &[usize] = &[256, 512, 1024, 2048];

fn main() {
    // IMGX_THREADS=1 for one thread; by default one per core, as `imgx run`.
    common::threads();
    divan::main();
}

/// An `Io` for primitives that read nothing.
struct NoIo;
impl Io for NoIo {
    fn resolve(&self, p: &Text) -> PathBuf {
        PathBuf::from(&p.value)
    }
    fn image_shape(&self, _: &Text) -> Result<Shape, String> {
        Err("benchmarks read no files".into())
    }
    fn read_gray(&self, _: &Text) -> Result<Array2<f64>, String> {
        Err("benchmarks read no files".into())
    }
    fn output_path(&self, _: &str) -> Result<PathBuf, String> {
        Err("benchmarks write no files".into())
    }
}

fn image(n: usize) -> Value<f32> {
    Value::Matrix(Array2::from_shape_fn((n, n), |(i, j)| {
        (((i * 31 + j * 17) % 97) as f32 + 1.0) / 98.0
    }))
}

fn plus_one() -> Attrs {
    let f = imgx::lambda::ElemFn::Add(
        Box::new(imgx::lambda::ElemFn::X),
        Box::new(imgx::lambda::ElemFn::Const(1.0)),
    );
    Attrs {
        values: vec![("f", Static::Func(Arc::new(f)))],
    }
}

fn unsigned() -> Attrs {
    Attrs {
        values: vec![("signed", Static::Bool(false))],
    }
}

fn fwd_bwd(bencher: divan::Bencher, name: &str, n: usize, attrs: Attrs, backward: bool) {
    let p = ops::lookup(name).expect("registered");
    let op = <f32 as Dispatch>::op(p);
    let x = image(n);
    let mut notes = Vec::new();
    let y = op
        .forward(&[&x], &attrs, &NoIo, &mut notes)
        .expect("forward");
    if backward {
        // the gradient is the op's to keep (and write into): a fresh copy for each call, not timed
        bencher
            .with_inputs(|| y.clone())
            .bench_local_values(|g| op.backward(&[&x], &y, &notes, g, &attrs, &[true]));
    } else {
        bencher.bench_local(|| op.forward(&[&x], &attrs, &NoIo, &mut Vec::new()));
    }
}

#[divan::bench(args = SIZES)]
fn matmul(bencher: divan::Bencher, n: usize) {
    let op = <f32 as Dispatch>::op(ops::lookup("matmul").unwrap());
    let (a, b) = (image(n), image(n));
    bencher.bench_local(|| op.forward(&[&a, &b], &Attrs::default(), &NoIo, &mut Vec::new()));
}

#[divan::bench(args = SIZES)]
fn gram_forward(bencher: divan::Bencher, n: usize) {
    fwd_bwd(bencher, "gram", n, Attrs::default(), false);
}

#[divan::bench(args = SIZES)]
fn gram_backward(bencher: divan::Bencher, n: usize) {
    fwd_bwd(bencher, "gram", n, Attrs::default(), true);
}

#[divan::bench(args = SIZES)]
fn softmax_cols_forward(bencher: divan::Bencher, n: usize) {
    fwd_bwd(bencher, "softmax_cols", n, plus_one(), false);
}

#[divan::bench(args = SIZES)]
fn softmax_cols_backward(bencher: divan::Bencher, n: usize) {
    fwd_bwd(bencher, "softmax_cols", n, plus_one(), true);
}

#[divan::bench(args = SIZES)]
fn normalize_forward(bencher: divan::Bencher, n: usize) {
    fwd_bwd(bencher, "normalize", n, unsigned(), false);
}

#[divan::bench(args = SIZES)]
fn normalize_backward(bencher: divan::Bencher, n: usize) {
    fwd_bwd(bencher, "normalize", n, unsigned(), true);
}

/// One whole Adam step of the poster's inverse problem (forward, backward, update) on an n×n
/// generated image, through the same engine `imgx run` uses.
#[divan::bench(args = SIZES, sample_count = 20, sample_size = 5)]
fn adam_step(bencher: divan::Bencher, n: usize) {
    let mut problem = common::Problem::<f32>::new(n);
    bencher.bench_local(|| problem.step());
}

/// A GIF frame of the optimisation's animation (hcat of two 512² images) as LZW sees it:
/// 8-bit noise, the worst case and close to a frame of a learned image.
fn gif_frame() -> Vec<u8> {
    let mut s = 0x2545_f491_4f6c_dd1d_u64;
    (0..512 * 1024)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8
        })
        .collect()
}

/// GIF compression of one frame: imgx's encoder (`imgx::lzw`) …
#[divan::bench]
fn gif_lzw_imgx(bencher: divan::Bencher) {
    let frame = gif_frame();
    bencher.bench_local(|| imgx::lzw::encode(&frame));
}

/// … and the `gif` crate's (`weezl`), its peer.
#[divan::bench]
fn gif_lzw_weezl(bencher: divan::Bencher) {
    let frame = gif_frame();
    bencher.bench_local(|| {
        let mut e = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8);
        e.encode(&frame).expect("weezl compresses")
    });
}
