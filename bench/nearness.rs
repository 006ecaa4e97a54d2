//! How near each other the host has placed this machine's two vCPUs: the median time, in
//! nanoseconds, of a cache line's round trip between two threads (one writes, the other
//! answers, 100 000 times, in five rounds). On the project's 2-vCPU AMD EPYC guest it is
//! 65–80 ns when the vCPUs run on cores that share an L3 cache and 400–425 ns when they do not
//! (and about 30 ns at times, most likely one core's two hardware threads); the host moves
//! them every few minutes, at times within a minute; a 512² step of imgx takes about
//! 15% longer in the far state (BENCHMARKS.md). `bench/peers/bench_quiet.py --probe`
//! records it before each timed run.
//!
//! rustc --edition 2021 -O bench/nearness.rs -o /tmp/nearness && /tmp/nearness
use std::hint::spin_loop;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Release},
};
use std::sync::Arc;
use std::time::Instant;

/// Round trips per round.
const TRIPS: u64 = 100_000;

/// A counter alone on its cache lines.
#[repr(align(128))]
struct Line(AtomicU64);

fn main() {
    let line = Arc::new(Line(AtomicU64::new(0)));
    let answerer = {
        let line = Arc::clone(&line);
        std::thread::spawn(move || {
            for k in 0..5 * TRIPS {
                while line.0.load(Acquire) != 2 * k + 1 {
                    spin_loop();
                }
                line.0.store(2 * k + 2, Release);
            }
        })
    };
    let mut rounds: Vec<f64> = (0..5)
        .map(|r| {
            let start = Instant::now();
            for k in r * TRIPS..(r + 1) * TRIPS {
                line.0.store(2 * k + 1, Release);
                while line.0.load(Acquire) != 2 * k + 2 {
                    spin_loop();
                }
            }
            start.elapsed().as_secs_f64() * 1e9 / TRIPS as f64
        })
        .collect();
    if answerer.join().is_err() {
        eprintln!("the answering thread panicked");
        std::process::exit(1);
    }
    rounds.sort_by(f64::total_cmp);
    println!("{:.1}", rounds[2]);
}
