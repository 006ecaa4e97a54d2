//! The machine's peak f32 FMA rate, per core and for all cores: 24 independent chains of
//! 512-bit fused multiply-adds per thread (enough to cover the FMA latency on two pipes).
//! BENCHMARKS.md states FLOP limits against what this measures.
//!
//! rustc -C opt-level=3 -C target-cpu=native bench/peak.rs -o /tmp/peak && /tmp/peak
use std::time::Instant;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn chains(iters: usize, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999_9);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(seed); 24];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(a, *v, b);
        }
    }
    acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
}

fn main() {
    assert!(
        std::arch::is_x86_feature_detected!("avx512f"),
        "this probe needs AVX-512"
    );
    let iters = 20_000_000;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores, 1, cores] {
        let t = Instant::now();
        let runs: Vec<_> = (0..threads)
            // SAFETY: AVX-512F is present (checked above).
            .map(|k| {
                std::thread::spawn(move || unsafe { chains(std::hint::black_box(iters), k as f32) })
            })
            .collect();
        let sum: f32 = runs.into_iter().map(|h| h.join().unwrap()).sum();
        let gflops = (threads * iters * 24 * 16 * 2) as f64 / t.elapsed().as_secs_f64() / 1e9;
        println!(
            "{threads} thread(s): {gflops:.0} GFLOP/s f32 ({:.0} per thread) [{sum}]",
            gflops / threads as f64
        );
    }
}
