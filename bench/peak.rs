//! The machine's peak f32 FMA rate, per core and for all cores, in the widest registers the CPU
//! has (the ones imgx's micro-kernel uses): 16 independent chains of 512-bit fused multiply-adds
//! per thread with AVX-512, else 12 chains of 256-bit ones with AVX2 + FMA. Either covers the
//! FMA latency on two pipes (4 cycles × 2 pipes = 8 chains in flight) and leaves the constants
//! room in the registers. With 24 chains of 512 bits (26 of the 32 registers live across the
//! loop) LLVM kept some chains on the stack in a build without `-C target-cpu=native`, and the
//! probe measured those loads and stores: 91–99 against 208–221 GFLOP/s a core on the Intel
//! Xeon. BENCHMARKS.md states FLOP limits against what this measures.
//!
//! rustc -C opt-level=3 bench/peak.rs -o /tmp/peak && /tmp/peak
use std::time::Instant;

/// f32 lanes of a register, and the chains run in them.
#[cfg(target_arch = "x86_64")]
const AVX512: (usize, usize) = (16, 16);
#[cfg(target_arch = "x86_64")]
const AVX2: (usize, usize) = (8, 12);

/// f32 fused multiply-adds each thread runs, in either width: about 70 ms of a core at 220
/// GFLOP/s.
const LANE_FMAS: usize = 7_680_000_000;

/// `$name(iters, seed)`: the sum of `$width.1` chains of `iters` fused multiply-adds each in
/// registers of `$width.0` f32 lanes, compiled for `$features`.
macro_rules! chains {
    ($name:ident, $features:literal, $width:expr, $set1:ident, $fmadd:ident, $store:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $name(iters: usize, seed: f32) -> f32 {
            use std::arch::x86_64::*;
            let a = $set1(0.999_999_9);
            let b = $set1(1e-7);
            let mut acc = [$set1(seed); $width.1];
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = $fmadd(a, *v, b);
                }
            }
            let mut sum = 0.0;
            for v in acc {
                let mut lanes = [0f32; $width.0];
                // SAFETY: `lanes` holds one register's entries.
                unsafe { $store(lanes.as_mut_ptr(), v) };
                sum += lanes.iter().sum::<f32>();
            }
            sum
        }
    };
}

chains!(
    chains512,
    "avx512f",
    AVX512,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_storeu_ps
);
chains!(
    chains256,
    "avx2,fma",
    AVX2,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_storeu_ps
);

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::arch::is_x86_feature_detected as has;
    let (name, (lanes, chains), run): (_, _, fn(usize, f32) -> f32) = if has!("avx512f") {
        // SAFETY: AVX-512F is present.
        ("AVX-512", AVX512, |n, s| unsafe { chains512(n, s) })
    } else if has!("avx2") && has!("fma") {
        // SAFETY: AVX2 and FMA are present.
        ("AVX2", AVX2, |n, s| unsafe { chains256(n, s) })
    } else {
        eprintln!("this probe needs AVX-512, or AVX2 with FMA");
        std::process::exit(1);
    };
    let iters = LANE_FMAS / (lanes * chains);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores, 1, cores] {
        let t = Instant::now();
        let runs: Vec<_> = (0..threads)
            .map(|k| std::thread::spawn(move || run(std::hint::black_box(iters), k as f32)))
            .collect();
        let sum: f32 = runs.into_iter().map(|h| h.join().unwrap()).sum();
        let flops = threads * iters * chains * lanes * 2;
        let gflops = flops as f64 / t.elapsed().as_secs_f64() / 1e9;
        println!(
            "{threads} thread(s): {gflops:.0} GFLOP/s f32 in {name} ({:.0} per thread) [{sum}]",
            gflops / threads as f64
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("this probe is for x86-64 (AVX-512, or AVX2 with FMA)");
    std::process::exit(1);
}
