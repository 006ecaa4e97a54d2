//! The threads a step's work is shared by: the calling thread and `threads() − 1` helpers.
//!
//! Work is cut into tasks by the data's shape alone, never by the number of threads. Each
//! thread has a share of a job's tasks, a run of them in order (the caller the first, helper k
//! the k-th), and takes its own first, then those left in the others' shares. So neither which
//! thread runs a task nor how many threads there are can change a result: a reduction combines
//! its per-task results in task order ([`map`]).
//!
//! The shares keep data in one core's cache from pass to pass: consecutive passes over matrices
//! of one shape give a thread the same rows, which it wrote itself. A 512² step's element-wise
//! passes took 15–30% less time than when each thread took the next task as it came free
//! (and the whole step 1–3% less). And [`map`]'s jobs (among them the passes of `ops::kernel`
//! and the optimisers) alternate direction: each thread walks its share backwards in every other job,
//! so a pass starts on the rows the pass before it touched last, which are still in the
//! core's cache when a thread's rows do not all fit (f64 at 512²: 1 MiB a matrix a thread
//! against 2 MiB of L2). In-process A/B sets at 512² on two threads: the f64 step took 0.9% less
//! time (median of nine; 0–2.3%), f32's the same; across processes the gain is within the
//! host's spread (BENCHMARKS.md).
//!
//! Helpers spin between tasks, as OpenMP runtimes and BLAS libraries do, and park after
//! `SPIN` without work. A 512² Adam step posts a task every few tens of microseconds, and
//! waking a parked thread on a virtual machine costs about as much as the task: that is why a
//! general pool (rayon) gained nothing here, and why matrixmultiply's own threads (parked
//! between products, with the packing of one operand done by one thread) left a third of the
//! second core unused at 512².
//!
//! This module knows nothing of matrices; `ops::kernel` cuts its loops into tasks.

use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a helper spins for the next task before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// Threads the work is shared by, including the caller. Set once at startup (`--threads`).
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Share work among `n` threads (at least one) from now on. The helpers start at the first
/// parallel call, so call this first thing; later calls cannot add helpers.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), SeqCst);
}

/// The number of threads work is shared by.
pub fn threads() -> usize {
    THREADS.load(SeqCst)
}

/// Runs `f` on every item, each once, on the pool's threads; returns when all are done. Each
/// thread takes its share in order (`gemm` shapes its shares so that their last tasks are
/// short).
pub fn for_each<I: Send>(items: Vec<I>, f: impl Fn(I) + Sync) {
    let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let each = |k| {
        if let Some(item) = take(&slots[k]) {
            f(item);
        }
    };
    run(slots.len(), &each, false);
}

/// Jobs [`map`] has run: their parity sets the next one's direction.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// `f` of every item, in item order, computed on the pool's threads. Every other call walks
/// the shares backwards (see the module's note); the results are in item order either way.
pub fn map<I: Send, R: Send>(items: Vec<I>, f: impl Fn(I) -> R + Sync) -> Vec<R> {
    let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let results: Vec<Mutex<Option<R>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let each = |k| {
        if let Some(item) = take(&slots[k]) {
            *lock(&results[k]) = Some(f(item));
        }
    };
    let backwards = MAPPED.fetch_add(1, SeqCst) % 2 == 1;
    run(slots.len(), &each, backwards);
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or_else(|| unreachable!("run returns after every task ran"))
        })
        .collect()
}

/// The mutex's guard, poisoned or not (a panic that poisoned it is reported where it happened;
/// the data behind these locks stays whole). Also `io`'s.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The run of a job's `count` tasks that thread `p` of `parts` starts with, its share: it
/// takes them in order, then those left in the other shares. A caller that knows its tasks'
/// sizes can shape each share (`gemm` makes the last tasks of each short).
pub fn share(count: usize, parts: usize, p: usize) -> Range<usize> {
    p * count / parts..(p + 1) * count / parts
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    lock(slot).take()
}

/// Set in [`Pool::state`] once the caller has finished its share: helpers that arrive later
/// leave the job alone.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// A job's work with its lifetime erased; valid while the job is open or a helper is in it.
#[derive(Clone, Copy)]
struct Work(*const (dyn Fn(usize) + Sync));

// SAFETY: the pointee is `Sync`, and `run` keeps it alive until no helper can use it.
unsafe impl Send for Work {}

struct Pool {
    /// Bumped for every job posted.
    posted: AtomicUsize,
    /// [`CLOSED`], plus the number of helpers inside the current job.
    state: AtomicUsize,
    work: Mutex<Option<Work>>,
    /// Helpers parked, to be woken by the next job.
    sleepers: AtomicUsize,
    /// A job is running: a task that asks for parallel work, or a second caller, runs it alone.
    busy: AtomicBool,
    /// A task panicked on a helper.
    panicked: AtomicBool,
    helpers: Mutex<Vec<Thread>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    static STARTED: std::sync::Once = std::sync::Once::new();
    let pool = POOL.get_or_init(|| Pool {
        posted: AtomicUsize::new(0),
        state: AtomicUsize::new(CLOSED),
        work: Mutex::new(None),
        sleepers: AtomicUsize::new(0),
        busy: AtomicBool::new(false),
        panicked: AtomicBool::new(false),
        helpers: Mutex::new(Vec::new()),
    });
    STARTED.call_once(|| {
        let started = (1..threads()).map_while(|k| {
            thread::Builder::new()
                .name(format!("imgx-{k}"))
                .spawn(move || helper(pool, k))
                .ok()
        });
        *lock(&pool.helpers) = started.map(|h| h.thread().clone()).collect();
    });
    pool
}

fn helper(pool: &'static Pool, me: usize) {
    let mut seen = 0;
    loop {
        let idle = Instant::now();
        let mut spins = 0u32;
        while pool.posted.load(SeqCst) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(1024) {
                continue;
            }
            // Let a thread that waits for this core run (more threads than cores), then
            // park once idle for long.
            thread::yield_now();
            if idle.elapsed() > SPIN {
                pool.sleepers.fetch_add(1, SeqCst);
                while pool.posted.load(SeqCst) == seen {
                    thread::park();
                }
                pool.sleepers.fetch_sub(1, SeqCst);
            }
        }
        seen = pool.posted.load(SeqCst);
        // Enter the job unless the caller has closed it. A helper that was slow to see a job
        // may enter the next one: that is harmless, the work only takes tasks that are left.
        if pool.state.fetch_add(1, SeqCst) & CLOSED == 0 {
            if let Some(work) = *lock(&pool.work) {
                // SAFETY: the job is open and counts this helper, so `run` has not returned.
                let ran = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (*work.0)(me) }));
                if ran.is_err() {
                    pool.panicked.store(true, SeqCst);
                }
            }
        }
        pool.state.fetch_sub(1, SeqCst);
    }
}

/// Runs f(0), …, f(count − 1), each once: on this thread alone when there is one task, one
/// thread, or a job running already; otherwise shared with the helpers. `backwards`: each
/// share (and a job run alone) is taken from its last task to its first.
fn run(count: usize, f: &(dyn Fn(usize) + Sync), backwards: bool) {
    if count == 0 {
        return;
    }
    let pool = (count > 1 && threads() > 1).then(pool);
    let Some(pool) = pool.filter(|p| {
        !lock(&p.helpers).is_empty() && p.busy.compare_exchange(false, true, SeqCst, SeqCst).is_ok()
    }) else {
        match backwards {
            false => (0..count).for_each(f),
            true => (0..count).rev().for_each(f),
        }
        return;
    };
    // each share's next place and bounds; thread `me` starts with share `me`
    let parts = threads();
    let shares: Vec<(AtomicUsize, Range<usize>)> = (0..parts)
        .map(|p| share(count, parts, p))
        .map(|s| (AtomicUsize::new(s.start), s))
        .collect();
    let work = |me: usize| {
        for (next, share) in (0..parts).map(|d| &shares[(me + d) % parts]) {
            loop {
                let k = next.fetch_add(1, SeqCst);
                if k >= share.end {
                    break;
                }
                f(if backwards {
                    share.start + share.end - 1 - k
                } else {
                    k
                });
            }
        }
    };
    let erased: &(dyn Fn(usize) + Sync) = &work;
    // SAFETY: only the lifetime is erased; the job is closed and every helper has left it
    // before this function returns or unwinds.
    let erased: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(erased) };
    *lock(&pool.work) = Some(Work(erased));
    // Open the job. (Keep the count: a helper late for the last job may be passing through.)
    pool.state.fetch_and(!CLOSED, SeqCst);
    pool.posted.fetch_add(1, SeqCst);
    if pool.sleepers.load(SeqCst) > 0 {
        lock(&pool.helpers).iter().for_each(Thread::unpark);
    }
    let mine = panic::catch_unwind(AssertUnwindSafe(|| work(0)));
    pool.state.fetch_or(CLOSED, SeqCst);
    // A helper inside the job may have lost its core (more threads than cores): after a
    // while, give the core away instead of spinning against it.
    let mut spins = 0u32;
    while pool.state.load(SeqCst) != CLOSED {
        spins = spins.saturating_add(1);
        if spins < 1 << 12 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
    *lock(&pool.work) = None;
    let theirs = pool.panicked.swap(false, SeqCst);
    pool.busy.store(false, SeqCst);
    if let Err(payload) = mine {
        panic::resume_unwind(payload);
    }
    assert!(!theirs, "a parallel task panicked");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_and_results_in_order() {
        set_threads(2);
        let squares = map((0..1000u64).collect(), |k| k * k);
        assert_eq!(squares, (0..1000u64).map(|k| k * k).collect::<Vec<_>>());
        let hits: Vec<AtomicUsize> = (0..257).map(|_| AtomicUsize::new(0)).collect();
        for_each((0..257).collect(), |k: usize| {
            hits[k].fetch_add(1, SeqCst);
        });
        assert!(hits.iter().all(|h| h.load(SeqCst) == 1));
    }

    /// Backwards, each share's tasks are taken from its last to its first, by whichever thread
    /// takes them; forwards, from first to last. Every task runs once either way.
    #[test]
    fn shares_are_walked_in_the_direction_asked() {
        set_threads(2);
        for backwards in [false, true] {
            let count = 37;
            let ran: Mutex<Vec<(thread::ThreadId, usize)>> = Mutex::new(Vec::new());
            let each = |k: usize| lock(&ran).push((thread::current().id(), k));
            run(count, &each, backwards);
            let ran = ran.into_inner().unwrap();
            let mut all: Vec<usize> = ran.iter().map(|r| r.1).collect();
            all.sort_unstable();
            assert_eq!(all, (0..count).collect::<Vec<_>>());
            let mut threads = Vec::new();
            for (t, _) in &ran {
                if !threads.contains(t) {
                    threads.push(*t);
                }
            }
            for p in 0..2 {
                let share = share(count, 2, p);
                for t in &threads {
                    // the tasks of share p this thread ran, in the order it ran them
                    let mine: Vec<usize> = (ran.iter())
                        .filter(|(id, k)| id == t && share.contains(k))
                        .map(|r| r.1)
                        .collect();
                    let ordered = mine.windows(2).all(|w| (w[0] > w[1]) == backwards);
                    assert!(ordered, "share {p}, backwards {backwards}: {mine:?}");
                }
            }
        }
        // a job run alone (here nested in a task, so the pool is busy) is walked whole
        let order = Mutex::new(Vec::new());
        let inner = |k: usize| lock(&order).push(k);
        run(
            2,
            &|k| {
                if k == 0 {
                    run(5, &inner, true)
                }
            },
            false,
        );
        assert_eq!(order.into_inner().unwrap(), [4, 3, 2, 1, 0]);
    }

    #[test]
    fn nested_calls_run_inline() {
        set_threads(2);
        let sums = map((0..8u64).collect(), |k| {
            map((0..100u64).collect(), |j| j * k).iter().sum::<u64>()
        });
        assert_eq!(sums, (0..8u64).map(|k| 4950 * k).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_task_panics_the_caller() {
        set_threads(2);
        let r = panic::catch_unwind(|| {
            for_each((0..64).collect(), |k: usize| assert!(k != 40, "task 40"));
        });
        assert!(r.is_err());
        // The pool still works afterwards.
        assert_eq!(map(vec![1, 2, 3], |k| k + 1), vec![2, 3, 4]);
    }
}
