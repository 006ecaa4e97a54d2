//! Matrix products, in BLIS's loop order: the right operand packed into panels `NR` columns
//! wide, the left one into blocks of rows, and a micro-kernel that keeps an `MR` × `NR` tile of
//! the result in registers while it runs down k.
//!
//! **Every entry is one chain of fused multiply-adds in k order**:
//! c = fma(a₀, b₀, 0), then c = fma(aₖ, bₖ, c) for k = 1, 2, … No tile, block, panel, task or
//! thread count changes that order, so a product has the same bits whatever it is cut into, on
//! any number of threads, and with either tile size below (an AVX2 machine gives the bits of an
//! AVX-512 one). It is also why `gram`'s result is exactly symmetric: mᵀm's entries (i, j) and
//! (j, i) are chains of the same products. The tests compare against that chain, written out.
//!
//! On x86-64 the loops are compiled for AVX-512 and for AVX2 + FMA and chosen at run time. The
//! AVX-512 micro-kernel is written with intrinsics (two registers a tile row, software
//! prefetch); the AVX2 one is plain Rust that the compiler vectorises. A CPU with neither, or
//! another architecture, gets matrixmultiply's products, which sum in another order.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::isa::{self, Isa};
use super::tile::{self, Tile};
use crate::par;
use crate::tensor::Real;
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2};
use std::mem::MaybeUninit;
use std::ops::Range;

/// Bytes of a micro-panel of a's packed k-block (`MR` rows of k-block entries): 24 KiB, half
/// of an Intel Xeon (Emerald Rapids) core's 48 KiB L1 cache and three quarters of an AMD EPYC
/// (Zen 3) core's 32 KiB. The k-blocks are then 512 f32 or 256 f64 entries with AVX-512's 12
/// rows, and 1024 or 512 with AVX2's 6 (the chain continues across blocks through the result's
/// entries); wide results take longer ones ([`WIDE_ROW_BYTES`]).
///
/// On the Xeon, with AVX-512, 512 f64 entries (panels of 48 KiB, b's packed k-block of 2 MiB
/// at 512², the whole of each cache) made `gram`'s products at 512² 3–13% slower than 256
/// (forward and backward, in-process A/B on one and two threads). Shorter blocks were no
/// better: f32 with 256 and f64 with 128 made the forward 1–6% faster and the backward 2–11%
/// slower, at 512² and 1024², and passes over a's and b's panels in slices of k (the tile kept
/// in c between them) were slower.
///
/// On the EPYC, with AVX2, blocks of 2 KiB a row (as AVX-512's) split f64's k of 512 in two.
/// One block of 512 took `gram`'s f64 backward at 512² 0.93–1.00 of the time and its forward
/// 0.95–1.01 (nine in-process A/B sets, one and two threads). At 1024² (f32 1024 against 512,
/// f64 512 against 256) the forward took 1.02–1.07 of the time in f64 and 0.99–1.02 in f32,
/// the backward 0.95–1.01 and 0.98–1.00: about even, as at 2048² in f32.
const A_PANEL_BYTES: usize = 24 << 10;

/// The most bytes of a row of a's packed k-block, what [`max_rows`] reckons with: a panel of
/// [`A_PANEL_BYTES`] with AVX2's 6 rows.
const A_ROW_BYTES: usize = A_PANEL_BYTES / 6;

/// Results with rows of at least this many bytes get panels of twice [`A_PANEL_BYTES`], as far
/// as [`A_ROW_BYTES`] allows: the k-blocks of AVX-512's 12-row tiles double (1024 f32 or 512
/// f64 entries), AVX2's stay as they are. Each k-block after the first loads every tile of c
/// back and stores it again. On wide results a thread's share of c outgrows a core's L2 (on
/// two threads 4 MiB at 1024² f64, against 1 MiB at 512²), so that traffic goes to L3, and
/// half as many k-blocks halve it: at 2048² f64 a scratch build without it (wrong results)
/// took `gram`'s backward 113–119 ms a call against 129–140, and doubled blocks 121–128. On
/// narrower results the panel (48 KiB, the Xeon's whole L1) costs more than it saves.
///
/// On the Intel Xeon (AVX-512, 2 MiB L2), two threads, `--profile`, alternated runs, ms a
/// call: f64 `gram` backward / forward at 1024² 14.0 / 8.9 against 14.8 / 8.7, at 2048² 110 /
/// 62–65 against 120–124 / 63–68, at 4096² 853–868 / 433–439 against 925–942 / 453–477; f32 at
/// 2048² 50–51 / 30 against 54–56 / 30–32, at 4096² 395–401 / 219 against 391–407 / 217–225.
/// Below the threshold doubling did not pay: f64 at 512² 1.87–1.97 / 1.06–1.16 against
/// 1.83–1.91 / 1.08–1.14, f32 at 1024² 6.3–6.4 / 3.8–3.9 against 6.5 / 3.6–3.7.
const WIDE_ROW_BYTES: usize = 8 << 10;

/// The k per packed block for entries of T, in tiles of `MR` rows, for a result n wide.
fn kc<T, const MR: usize>(n: usize) -> usize {
    let size = std::mem::size_of::<T>();
    let panel = if n * size >= WIDE_ROW_BYTES {
        2 * A_PANEL_BYTES
    } else {
        A_PANEL_BYTES
    };
    (panel / MR).min(A_ROW_BYTES) / size
}

/// Bytes of the left operand a task packs at most (its block stays in a core's L2 cache).
const A_BLOCK_BYTES: usize = 1 << 19;

/// Products smaller than this many multiply-adds run as one task: sharing them costs more than
/// it saves.
const SHARED_PRODUCT: usize = 1 << 20;

/// a·b (a is m×k, b is k×n), on [`par`]'s threads.
pub fn product<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    general(a, Right::Plain(b))
}

/// a·(g + gᵀ) for a square g (`gram`'s gradient): g + gᵀ is formed while its panels are packed
/// and never stored, and the result has the bits of `product(a, g + gᵀ)`.
pub fn product_plus_transpose<T: Real>(a: ArrayView2<T>, g: ArrayView2<T>) -> Array2<T> {
    debug_assert_eq!(g.nrows(), g.ncols());
    let g = super::kernel::row_major(g);
    general(
        a,
        Right::PlusTranspose(super::kernel::entries(&g), g.nrows()),
    )
}

/// a·b, all of it.
fn general<T: Real>(a: ArrayView2<T>, b: Right<T>) -> Array2<T> {
    let shape = (a.nrows(), b.cols());
    let mut c = Box::new_uninit_slice(shape.0 * shape.1);
    let tasks = tasks_for(a.nrows(), a.ncols(), b.cols());
    into(Product {
        a,
        b,
        c: &mut c,
        part: Part::Whole,
        tasks,
    });
    // SAFETY: the whole product writes every entry.
    unsafe { super::kernel::assume_matrix(c, shape) }
}

/// mᵀ·m, computed in the tiles that touch the diagonal or lie above it and mirrored: about
/// half the work of a general product. Exactly symmetric (see the module's note).
pub fn gram<T: Real>(m: ArrayView2<T>) -> Array2<T> {
    let n = m.ncols();
    let mut c = Box::new_uninit_slice(n * n);
    let tasks = tasks_for(n, m.nrows(), n);
    into(Product {
        a: m.t(),
        b: Right::Plain(m),
        c: &mut c,
        part: Part::Upper,
        tasks,
    });
    // SAFETY: the upper part is written, and the mirror writes the rest.
    unsafe {
        super::kernel::mirror_upper(&mut c, n);
        super::kernel::assume_matrix(c, (n, n))
    }
}

/// How many row blocks to cut an m×k by k×n product into: one if small, else eight per thread
/// ([`row_blocks`] shapes them, and `par` gives each thread a share of them), and at
/// least enough that each block fits [`A_BLOCK_BYTES`]. Any number gives the same bits; this
/// only balances the work. On this project's machine (two vCPUs of a shared Intel Xeon) a
/// thread often falls behind for a while, and the other can only take whole blocks from it:
/// eight per thread made the 512² step 6–9% faster on two threads than two per thread did
/// (paired medians; sixteen gained no more), and changed nothing on one thread. On the AMD
/// EPYC before it, two per thread had measured best.
fn tasks_for(m: usize, k: usize, n: usize) -> usize {
    if m * k * n < SHARED_PRODUCT {
        return 1;
    }
    (par::threads() * 8).max(m.div_ceil(max_rows(k)))
}

/// The most rows of a k-wide left block that fit [`A_BLOCK_BYTES`]. A row of a packed k-block
/// takes at most [`A_ROW_BYTES`] = 4 KiB (whatever the tiles and k-blocks), reckoned at 8 bytes
/// an entry (an f32 row counted as f64: blocks have the same rows in either type, and fit in
/// both).
fn max_rows(k: usize) -> usize {
    (A_BLOCK_BYTES / (8 * k).clamp(8, A_ROW_BYTES)).max(16)
}

/// Which entries of the result the product must give: all, or, for mᵀm (a = bᵀ, b = m), those
/// on and above the diagonal (the others may be written too).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    Whole,
    Upper,
}

/// The right operand of a product.
#[derive(Clone, Copy)]
enum Right<'b, T> {
    Plain(ArrayView2<'b, T>),
    /// g + gᵀ, from the entries of a square row-major g and its side.
    PlusTranspose(&'b [T], usize),
}

impl<T: Real> Right<'_, T> {
    fn rows(&self) -> usize {
        match self {
            Right::Plain(b) => b.nrows(),
            Right::PlusTranspose(_, n) => *n,
        }
    }

    fn cols(&self) -> usize {
        match self {
            Right::Plain(b) => b.ncols(),
            Right::PlusTranspose(_, n) => *n,
        }
    }

    /// Rows `ks` of all columns packed into one buffer of panels `NR` columns wide: for each
    /// panel, for each k, the panel's entries in order, then zeros for missing columns. The
    /// threads share the packing in parts (see [`PackPart`]).
    fn pack<const NR: usize>(&self, ks: Range<usize>) -> Packed<T> {
        let (kc, n) = (ks.len(), self.cols());
        let len = kc * n.next_multiple_of(NR);
        Packed::new(len, |out| {
            // SAFETY: with n a multiple of NR the parts write every entry (else the rest is
            // zero).
            unsafe {
                append(out, len, n % NR == 0, |buf| {
                    let parts = match self {
                        Right::Plain(_) => by_rows(buf, NR, ks.clone(), n),
                        Right::PlusTranspose(..) => by_panels(buf, NR, ks.clone()),
                    };
                    par::for_each(parts, |part| self.pack_part::<NR>(part));
                })
            }
        })
    }

    /// Writes a part of the packed panels: in each, for each of its k, the entries of the
    /// panel's columns that exist.
    fn pack_part<const NR: usize>(
        &self,
        PackPart {
            ks,
            first,
            mut panels,
        }: PackPart<'_, T>,
    ) {
        let columns = |p: usize| (first + p) * NR..((first + p + 1) * NR).min(self.cols());
        match *self {
            Right::Plain(b) => {
                for (i, k) in ks.enumerate() {
                    let (row, at) = (b.row(k), i * NR);
                    let whole_row = row.to_slice();
                    for (p, panel) in panels.iter_mut().enumerate() {
                        let js = columns(p);
                        match whole_row {
                            Some(row) => put::<T, NR>(&mut panel[at..], &row[js]),
                            None => {
                                for (o, j) in panel[at..].iter_mut().zip(js) {
                                    o.write(row[j]);
                                }
                            }
                        }
                    }
                }
            }
            Right::PlusTranspose(g, n) => {
                for (p, panel) in panels.iter_mut().enumerate() {
                    // (g + gᵀ)[k][j] = g[k][j] + g[j][k]: g's rows ks, plus its rows js transposed
                    let js = columns(p);
                    let (from, add) = (
                        Tile::of(g, n, (js.start, ks.start)),
                        Tile::of(g, n, (ks.start, js.start)),
                    );
                    tile::transpose(from, Some(add), panel, NR, (ks.len(), js.len()));
                }
            }
        }
    }
}

/// A packing task's part of b's packed k-block: rows `ks` (of b) of consecutive panels, from
/// panel `first`, each panel's entries of those rows.
struct PackPart<'p, T> {
    ks: Range<usize>,
    first: usize,
    panels: Vec<&'p mut [MaybeUninit<T>]>,
}

/// The packed k-block's panels (`buf`, panels `nr` columns wide of rows `ks` of b, n columns)
/// cut by rows: each part is a row
/// block of every panel. The blocks are an element-wise pass's ([`kernel::blocks`]), so when
/// such a pass made b (as `normalize` makes `gram`'s m) each thread reads the rows it wrote,
/// from its own core's cache. Cut by panels instead (each task reading every row, half of them
/// written on the other core), `gram`'s forward took 3–4% longer on two threads at 512² in
/// f32, and as long in f64 (in-process A/B, 400 calls of each, three sets).
///
/// [`kernel::blocks`]: super::kernel::blocks
fn by_rows<T>(
    buf: &mut [MaybeUninit<T>],
    nr: usize,
    ks: Range<usize>,
    n: usize,
) -> Vec<PackPart<'_, T>> {
    let blocks = super::kernel::blocks(ks.len(), n);
    let mut parts: Vec<PackPart<T>> = (blocks.iter())
        .map(|r| PackPart {
            ks: ks.start + r.start..ks.start + r.end,
            first: 0,
            panels: Vec::new(),
        })
        .collect();
    for panel in buf.chunks_exact_mut(ks.len() * nr) {
        let rows = super::kernel::split_rows(panel, nr, blocks.iter().cloned());
        for (part, (_, rows)) in parts.iter_mut().zip(rows) {
            part.panels.push(rows);
        }
    }
    parts
}

/// The packed k-block's panels (`buf`, panels `nr` columns wide of rows `ks` of b) cut into
/// groups of whole panels, at least [`PACK_GRAIN`] entries each. For g + gᵀ this beats [`by_rows`]: a panel's columns of g + gᵀ read g's rows
/// of those columns too, and by rows `gram`'s backward took 0.5–2.5% longer on two threads,
/// f32 and f64.
fn by_panels<T>(buf: &mut [MaybeUninit<T>], nr: usize, ks: Range<usize>) -> Vec<PackPart<'_, T>> {
    let panel = ks.len() * nr;
    let per_part = PACK_GRAIN.div_ceil(panel);
    (buf.chunks_mut(per_part * panel).enumerate())
        .map(|(g, group)| PackPart {
            ks: ks.clone(),
            first: g * per_part,
            panels: group.chunks_exact_mut(panel).collect(),
        })
        .collect()
}

/// Entries of b a packing task copies at least, when packing by panels.
const PACK_GRAIN: usize = 1 << 16;

/// A product to compute: c = a·b (the `part` of it) in `tasks` row blocks of c, row-major.
/// c's entries are only written, except where a chain continues (k past [`kc`]) from entries
/// the product wrote: c may start uninitialised.
struct Product<'a, 'b, 'c, T> {
    a: ArrayView2<'a, T>,
    b: Right<'b, T>,
    c: &'c mut [MaybeUninit<T>],
    part: Part,
    tasks: usize,
}

/// Computes p with the best kernel this CPU has.
fn into<T: Real>(p: Product<'_, '_, '_, T>) {
    with(isa::best(), p)
}

/// [`into`] with the kernel for `isa`, which this CPU must have.
fn with<T: Real>(isa: Isa, p: Product<'_, '_, '_, T>) {
    assert_eq!(
        (p.a.ncols(), p.c.len()),
        (p.b.rows(), p.a.nrows() * p.b.cols()),
        "the operands' and the result's shapes agree"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            sized::<T, 12, 32, 16>(p, x86::avx512::<T, 12, 32>, x86::avx512::<T, 12, 16>)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => sized::<T, 6, 16, 8>(p, x86::avx2::<T, 6, 16>, x86::avx2::<T, 6, 8>),
        Isa::Portable => {
            let mut c = Array2::zeros((p.a.nrows(), p.b.cols()));
            match p.b {
                Right::Plain(b) => general_mat_mul(T::one(), &p.a, &b, T::zero(), &mut c),
                Right::PlusTranspose(g, n) => {
                    let g = ArrayView2::from_shape((n, n), g)
                        .unwrap_or_else(|_| unreachable!("n² entries"));
                    let b = super::kernel::plus_transpose(g);
                    general_mat_mul(T::one(), &p.a, &b, T::zero(), &mut c)
                }
            }
            let c = super::kernel::row_major(c.view());
            super::kernel::write(p.c, super::kernel::entries(&c));
        }
    }
}

/// [`blocked`] with tiles of `MR` rows and two registers a row: `NR32` f32 entries with
/// `kernel32`, or `NR64` f64 ones with `kernel64` (each compiled for tiles of that shape).
fn sized<T: Real, const MR: usize, const NR32: usize, const NR64: usize>(
    p: Product<'_, '_, '_, T>,
    kernel32: Kernel<T>,
    kernel64: Kernel<T>,
) {
    match std::mem::size_of::<T>() {
        4 => blocked::<T, MR, NR32>(p, kernel32),
        _ => blocked::<T, MR, NR64>(p, kernel64),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{micro, tiles, CTile, Job};
    use crate::ops::tile::Zmm;
    use crate::tensor::Real;
    use std::any::TypeId;
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};

    /// [`tiles`] compiled for AVX-512: 512-bit registers, 32 of them, and the micro-kernel
    /// written with their intrinsics (a tile row is two registers).
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn avx512<T: Real, const MR: usize, const NR: usize>(job: Job<'_, '_, T>) {
        tiles::<T, MR, NR>(job, |a, b, c: CTile<T>| {
            let f32s = TypeId::of::<T>() == TypeId::of::<f32>();
            let f64s = TypeId::of::<T>() == TypeId::of::<f64>();
            let k = a.len() / MR;
            let (a, b) = (a.as_ptr(), b.as_ptr());
            // SAFETY: the casts are to T's own type; this CPU has AVX-512F; the panels hold k
            // steps, the tile is valid (CTile's promise).
            unsafe {
                if f32s {
                    zmm_micro::<f32, MR, NR>(a.cast(), b.cast(), c.cast(), k)
                } else if f64s {
                    zmm_micro::<f64, MR, NR>(a.cast(), b.cast(), c.cast(), k)
                } else {
                    unreachable!("imgx computes in f32 and f64")
                }
            }
        })
    }

    /// [`super::micro`] in AVX-512 registers, which the compiler's vectoriser cannot be trusted
    /// to choose (tuned for some Intel CPUs it prefers 256-bit registers, and a 12 × 32 f32
    /// tile then spills): the tile c, the k-steps of MR entries of a and NR entries of b. The
    /// same fma chains, so the same bits.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; NR must be two registers of T; a holds k·MR entries, b
    /// k·NR, and the tile's MR rows of NR entries are valid.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn zmm_micro<T: Zmm + Copy, const MR: usize, const NR: usize>(
        a: *const T,
        b: *const T,
        CTile { at: c, ldc, first }: CTile<T>,
        k: usize,
    ) {
        let lanes = NR / 2;
        debug_assert_eq!(lanes * std::mem::size_of::<T>(), 64);
        let whole = T::mask(0);
        unsafe {
            let mut r: [[T::V; 2]; MR] = std::array::from_fn(|i| {
                [0, lanes].map(|j| {
                    if first {
                        T::zero()
                    } else {
                        T::load::<true>(c.add(i * ldc + j), whole)
                    }
                })
            });
            for kk in 0..k {
                let (ak, bk) = (a.add(kk * MR), b.add(kk * NR));
                // fetch a's entries 32 k-steps ahead and b's 4 ahead (b's panel does not stay
                // in the L1 cache): 8–25% faster on an Intel Xeon (Emerald Rapids), where the
                // hardware prefetcher does not keep up
                _mm_prefetch::<_MM_HINT_T0>(ak.wrapping_add(32 * MR).cast());
                let bn = bk.wrapping_add(4 * NR);
                _mm_prefetch::<_MM_HINT_T0>(bn.cast());
                _mm_prefetch::<_MM_HINT_T0>(bn.wrapping_add(lanes).cast());
                let b0 = T::load::<true>(bk, whole);
                let b1 = T::load::<true>(bk.add(lanes), whole);
                for (i, r) in r.iter_mut().enumerate() {
                    let x = T::splat(*ak.add(i));
                    r[0] = T::fmadd(x, b0, r[0]);
                    r[1] = T::fmadd(x, b1, r[1]);
                }
            }
            for (i, r) in r.iter().enumerate() {
                T::store::<true>(c.add(i * ldc), whole, r[0]);
                T::store::<true>(c.add(i * ldc + lanes), whole, r[1]);
            }
        }
    }

    /// [`tiles`] compiled for AVX2 and FMA: 256-bit registers, 16 of them.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<T: Real, const MR: usize, const NR: usize>(job: Job<'_, '_, T>) {
        tiles::<T, MR, NR>(job, micro::<T, MR, NR>)
    }
}

/// A task's code, compiled for one instruction set and tile shape. Unsafe to call on a CPU
/// without that instruction set.
type Kernel<T> = for<'a, 'b> unsafe fn(Job<'a, 'b, T>);

/// One task: a block of c's rows, from a packed k-block of b.
struct Job<'a, 'b, T> {
    /// The rows of a for this block, and only the current k-block's columns.
    a: ArrayView2<'a, T>,
    /// b's k-block, packed into panels of `nr` columns (each row of a panel `nr` entries).
    b: &'b [T],
    /// The block's rows of c, row-major (see [`Product`] on when they are initialised).
    c: &'b mut [MaybeUninit<T>],
    /// The first row of the block in c, and whether this is the chain's first k-block.
    row0: usize,
    first: bool,
    part: Part,
}

/// The loops around the micro-kernel: pack k-blocks of b (shared by the tasks), then let each
/// task pack its rows of a and walk the tiles of `MR` × `NR` entries (two 512-bit or 256-bit
/// registers a row).
fn blocked<T: Real, const MR: usize, const NR: usize>(
    p: Product<'_, '_, '_, T>,
    kernel: Kernel<T>,
) {
    let Product {
        a,
        b,
        c,
        part,
        tasks,
    } = p;
    let (m, k, n) = (a.nrows(), a.ncols(), b.cols());
    if k == 0 {
        c.fill(MaybeUninit::new(T::zero()));
        return;
    }
    if m == 0 || n == 0 {
        return;
    }
    let bounds = row_blocks::<MR, NR>((m, k, n), tasks, par::threads(), part);
    let block = kc::<T, MR>(n);
    for k0 in (0..k).step_by(block) {
        let kc = block.min(k - k0);
        let bp = b.pack::<NR>(k0..k0 + kc);
        let bp = &bp[..];
        let blocks = bounds.windows(2).map(|w| w[0]..w[1]);
        let jobs = super::kernel::split_rows(c, n, blocks);
        par::for_each(jobs, |(rows, c)| {
            let row0 = rows.start;
            let job = Job {
                a: a.slice(s![row0..row0 + c.len() / n, k0..k0 + kc]),
                b: bp,
                c,
                row0,
                first: k0 == 0,
                part,
            };
            // SAFETY: `with` passes only kernels for an instruction set this CPU has.
            unsafe { kernel(job) }
        });
    }
}

/// The first row of each task's block of c's m rows, then m: about `tasks` blocks of whole
/// `MR`-row tiles. `par` gives each of its `parts` threads a run of the tasks (its share) and
/// lets it take the others' when its own are done. Each share gets the same work: for the
/// upper part a block's row of tiles is shorter the lower it lies, so blocks of equal rows
/// would give the thread with the top ones more than half of `gram`'s work. Within a share,
/// with more than one thread, the blocks shrink: the k-th of s has work in proportion to
/// s + 1 − k. The thread done first then waits only for the other's short last task. With
/// equal blocks the caller waited 77–116 µs at the end of each `gram` product at 512² on two
/// threads (a task is 100–170 µs). Shrinking blocks made the forward 0.6–2.3% and the
/// backward 1.2–2.8% faster there (six in-process A/B sets of 2000 calls each; f64 3.1% and
/// 1.7%); 12 or 16 tasks a thread, equal or shrinking, gained no more. The last blocks of a
/// share are a row of tiles when rows run short, so there are `tasks` blocks if m has as many
/// rows of tiles, and no block grows past twice [`max_rows`].
fn row_blocks<const MR: usize, const NR: usize>(
    (m, k, n): (usize, usize, usize),
    tasks: usize,
    parts: usize,
    part: Part,
) -> Vec<usize> {
    let most = 2 * max_rows(k);
    // the columns the tiles of rows i..i + MR cover
    let width = |i: usize| match part {
        Part::Whole => n,
        Part::Upper => n - (i / NR * NR).min(n),
    };
    let total: usize = (0..m).step_by(MR).map(width).sum();
    let tasks = tasks.max(1);
    let ends = work_ends(tasks, parts.max(1));
    let (mut bounds, mut done) = (vec![0], 0);
    for i in (0..m).step_by(MR) {
        done += width(i);
        // a block ends once it reaches its share of the work, or its most rows
        let full = i + 2 * MR - bounds[bounds.len() - 1] > most;
        let reached = ends
            .get(bounds.len() - 1)
            .is_some_and(|&(num, den)| done as u128 * den >= total as u128 * num);
        // and once the rows left are only enough for a row of tiles a block still to come
        let last = (m - (i + MR).min(m)).div_ceil(MR) <= tasks.saturating_sub(bounds.len());
        if (reached || full || last) && i + MR < m {
            bounds.push(i + MR);
        }
    }
    bounds.push(m);
    bounds
}

/// The share of a product's work done by the end of each of its `tasks` blocks, as (numerator,
/// denominator): each of `parts` threads' shares ([`par::share`]) its part of the work, in
/// blocks of work s + 1 − k (the k-th of s) if `parts` > 1, else of equal work.
fn work_ends(tasks: usize, parts: usize) -> Vec<(u128, u128)> {
    let mut ends = Vec::with_capacity(tasks);
    for p in 0..parts {
        let share = par::share(tasks, parts, p);
        let s = share.len() as u128;
        let weight = |k: u128| if parts > 1 { s + 1 - k } else { 1 };
        let all: u128 = (0..s).map(weight).sum();
        let mut sum = 0;
        for k in 0..s {
            sum += weight(k);
            // (share.start + s·sum/all) / tasks
            ends.push((share.start as u128 * all + s * sum, tasks as u128 * all));
        }
    }
    ends
}

/// A task: pack its rows of a into micro-panels, then multiply every tile of its rows that the
/// part needs. Inlined into the `target_feature` copies in `x86` so it is compiled for them.
#[inline(always)]
fn tiles<T: Real, const MR: usize, const NR: usize>(
    job: Job<'_, '_, T>,
    micro: impl Fn(&[T], &[T], CTile<T>),
) {
    let Job {
        a,
        b,
        c,
        row0,
        first,
        part,
        ..
    } = job;
    let (h, kc) = a.dim();
    let n = c.len() / h;
    let ap = Packed::new(h.next_multiple_of(MR) * kc, |out| {
        for i in (0..h).step_by(MR) {
            let rows = i..(i + MR).min(h);
            match part {
                Part::Whole => pack_a::<T, MR>(a.slice(s![rows, ..]), out),
                Part::Upper => {
                    pack_a_from_b::<T, MR, NR>(b, kc, row0 + rows.start..row0 + rows.end, out)
                }
            }
        }
    });
    let bpanels = b.chunks_exact(NR * kc);
    for (jp, bpanel) in bpanels.enumerate() {
        let j0 = jp * NR;
        let w = NR.min(n - j0);
        for (ip, apanel) in ap.chunks_exact(MR * kc).enumerate() {
            let i0 = ip * MR;
            if part == Part::Upper && row0 + i0 >= j0 + NR {
                continue; // the tile lies wholly below the diagonal
            }
            if w == NR && i0 + MR <= h {
                // a whole tile: the micro-kernel works on c's entries where they are
                let at = c[i0 * n + j0..(i0 + MR - 1) * n + j0 + NR].as_mut_ptr();
                micro(
                    apanel,
                    bpanel,
                    CTile {
                        at: at.cast(),
                        ldc: n,
                        first,
                    },
                );
                continue;
            }
            // a tile on the ragged edge, through a whole one (its other entries unused)
            let mut acc = [[T::zero(); NR]; MR];
            if !first {
                for (row, acc) in c[i0 * n..].chunks(n).take(MR).zip(&mut acc) {
                    // SAFETY: the first k-block wrote this tile.
                    let row = unsafe { super::kernel::assume_written(&row[j0..j0 + w]) };
                    acc[..w].copy_from_slice(row);
                }
            }
            let at = acc.as_mut_ptr().cast();
            micro(apanel, bpanel, CTile { at, ldc: NR, first });
            for (row, acc) in c[i0 * n..].chunks_mut(n).take(MR).zip(&acc) {
                super::kernel::write(&mut row[j0..j0 + w], &acc[..w]);
            }
        }
    }
}

/// The micro-kernel's tile of the result: `MR` rows of `NR` entries from `at`, rows `ldc`
/// apart, all valid to read and write. The chains start from zero there if `first`, else they
/// continue from the entries there.
struct CTile<T> {
    at: *mut T,
    ldc: usize,
    first: bool,
}

impl<T> CTile<T> {
    /// The same tile, its entries seen as U (T's own type, for code written per type).
    #[cfg(target_arch = "x86_64")]
    fn cast<U>(self) -> CTile<U> {
        CTile {
            at: self.at.cast(),
            ldc: self.ldc,
            first: self.first,
        }
    }
}

/// The micro-kernel: c[i][j] = fma(a[i], b[j], c[i][j]) for each k in order, with a's
/// micro-panel `MR` entries per k and b's `NR` entries per k. The tile stays in registers.
#[inline(always)]
fn micro<T: Real, const MR: usize, const NR: usize>(a: &[T], b: &[T], c: CTile<T>) {
    // SAFETY: the tile's rows are valid (CTile's promise) and NR entries long.
    let row = |i: usize| unsafe { &mut *c.at.add(i * c.ldc).cast::<[T; NR]>() };
    let mut acc: [[T; NR]; MR] =
        std::array::from_fn(|i| if c.first { [T::zero(); NR] } else { *row(i) });
    for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        let (ak, bk): (&[T; MR], &[T; NR]) = match (ak.try_into(), bk.try_into()) {
            (Ok(ak), Ok(bk)) => (ak, bk),
            _ => unreachable!("chunks of MR and NR entries"),
        };
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = ak[i].mul_add(bk[j], acc[i][j]);
            }
        }
    }
    for (i, acc) in acc.into_iter().enumerate() {
        *row(i) = acc;
    }
}

/// Packs a block of a's rows (at most `MR` of them, kc columns) into one micro-panel: for each
/// k, the rows' entries in order, then zeros for missing rows.
#[inline(always)]
fn pack_a<T: Real, const MR: usize>(a: ArrayView2<T>, out: &mut Vec<T>) {
    let (h, kc) = a.dim();
    let [rs, cs] = [0, 1].map(|axis| a.strides()[axis]);
    if rs > 0 && cs == 1 && isa::best() == Isa::Avx512 {
        // rows of unit stride (a row-major a, as m in m·(g + gᵀ)) on AVX-512, where the panel's
        // MR = 12 rows fill most of a tile: the block transposed through registers, tile by
        // tile (masked), into the panel; rows past h stay zero
        // SAFETY: a's h rows of kc entries, rs > 0 apart, are its view's entries; the panel holds
        // kc rows of MR ≥ h entries and is another allocation; this CPU has AVX-512. With
        // h = MR the transpose writes every entry of the panel.
        unsafe {
            append(out, MR * kc, h == MR, |panel| {
                tile::raw(
                    Isa::Avx512,
                    (a.as_ptr(), rs as usize),
                    (std::ptr::null(), 0),
                    (panel.as_mut_ptr().cast::<T>(), MR),
                    (kc, h),
                )
            })
        };
    } else if cs == 1 {
        // rows of unit stride with AVX2's panels of six rows, which fill no tile (16 f32 or 8
        // f64 a side): a cache line of each row in turn, its entries written MR apart into the
        // panel (which stays in L1); rows past h stay zero. The tile's own loop for such a
        // strip reads an entry of each row in turn, and on m in m·(g + gᵀ), read from L3 or
        // memory, `gram`'s backward then took 4–6% longer in f32 at 512² (in-process A/B,
        // 750 calls each, one and two threads; in f64 either took as long). Whole rows in turn
        // were as fast in f32, and 1–3% slower in f64 on two threads. The order is chosen here,
        // not in `tile`'s edge loop, which also serves the edges of large transposes: reading
        // the source row by row there gained only half as much (0.973–0.979).
        let rows: [&[T]; MR] = std::array::from_fn(|r| {
            if r < h {
                (a.row(r).to_slice()).unwrap_or_else(|| unreachable!("unit stride"))
            } else {
                &[]
            }
        });
        let line = tile::side::<T>();
        // SAFETY: with h = MR the rows write every entry of the panel.
        unsafe {
            append(out, MR * kc, h == MR, |panel| {
                for (l, lines) in panel.chunks_mut(MR * line).enumerate() {
                    for (r, row) in rows.iter().enumerate() {
                        let entries = row.get(l * line..).unwrap_or_default();
                        for (slot, &v) in lines.chunks_exact_mut(MR).zip(entries) {
                            slot[r].write(v);
                        }
                    }
                }
            })
        };
    } else {
        // columns contiguous (a transposed row-major matrix, as aᵀ in a product aᵀ·b), or
        // any strides: column by column into the panel; rows past h stay zero
        // SAFETY: with h = MR each column writes a whole row of the panel.
        unsafe {
            append(out, MR * kc, h == MR, |panel| {
                for (col, out) in a.columns().into_iter().zip(panel.chunks_exact_mut(MR)) {
                    match col.to_slice() {
                        Some(col) => put::<T, MR>(out, col),
                        None => {
                            for (o, &v) in out.iter_mut().zip(&col) {
                                o.write(v);
                            }
                        }
                    }
                }
            })
        }
    }
}

/// Packs rows `rows` (at most `MR`) of a = bᵀ into one micro-panel, as [`pack_a`] would from
/// a, but from b's packed k-block `b` (panels `NR` columns wide of kc rows), where a's rows are
/// b's columns: for each k, a run of entries of one or two panels' k-th rows. In `gram`'s
/// forward (a = mᵀ) pack_a would read a few entries of each of m's kc rows, half of them
/// written on the other core, while the task reads b's panels anyway. From the panels `gram`'s
/// forward took 0.96–0.97 of the time at 512² on two threads when the two vCPUs were far
/// apart (f32 and f64, in the step and in isolation), and as long when they were near (see
/// BENCHMARKS.md on the two states of that host). With AVX-512 (an Intel Xeon) it took
/// 0.91–0.92 of the time on one thread, 0.93–0.97 in f64 and 0.96 in f32 on two.
#[inline(always)]
fn pack_a_from_b<T: Real, const MR: usize, const NR: usize>(
    b: &[T],
    kc: usize,
    rows: Range<usize>,
    out: &mut Vec<T>,
) {
    let h = rows.len();
    // each row's entry for k = 0 in b; rows past h repeat the last (and are not read)
    let at: [usize; MR] = std::array::from_fn(|r| {
        let j = rows.start + r.min(h - 1);
        j / NR * NR * kc + j % NR
    });
    assert!(
        at.iter().all(|&at| at + (kc - 1) * NR < b.len()),
        "the rows are columns of the packed block"
    );
    // SAFETY: with h = MR the loop writes every entry of the panel; every entry read lies in
    // b (the assert: each row's last one does, and k < kc).
    unsafe {
        append(out, MR * kc, h == MR, |panel| {
            for (k, slot) in panel.chunks_exact_mut(MR).enumerate() {
                for (slot, at) in slot[..h].iter_mut().zip(at) {
                    slot.write(*b.get_unchecked(at + k * NR));
                }
            }
        })
    }
}

/// Writes `src` (at most `W` entries, a row of a packed panel) to the start of `out`: with `W`
/// of them, a copy of known length, which compiles to register moves in a's packing. In b's
/// the compiler merges the two copies into one `memcpy` call of either length; a ragged copy
/// out of line gave register moves there too, and took as long (in-process A/B of `gram`'s
/// forward, 0.998–1.005 on one and two threads).
fn put<T: Real, const W: usize>(out: &mut [MaybeUninit<T>], src: &[T]) {
    if src.len() == W {
        super::kernel::write(&mut out[..W], whole::<T, W>(src));
    } else {
        super::kernel::write(&mut out[..src.len()], src);
    }
}

/// Appends `len` entries to `out`, as `write` writes them over zeros, or, if `all`, over
/// nothing (a zeroing pass over a panel that is written whole anyway is wasted).
///
/// # Safety
/// If `all`, `write` must write every entry of the slice it is given.
unsafe fn append<T: Real>(
    out: &mut Vec<T>,
    len: usize,
    all: bool,
    write: impl FnOnce(&mut [MaybeUninit<T>]),
) {
    out.reserve(len);
    let start = out.len();
    let new = &mut out.spare_capacity_mut()[..len];
    if !all {
        new.fill(MaybeUninit::new(T::zero()));
    }
    write(new);
    // SAFETY: the `len` entries past `start` are written: zeros, or by `write` as promised.
    unsafe { out.set_len(start + len) };
}

/// A slice of exactly N entries as an array.
fn whole<T, const N: usize>(s: &[T]) -> &[T; N] {
    s.try_into()
        .unwrap_or_else(|_| unreachable!("a slice of {N} entries"))
}

/// Packed entries in a buffer of their own, starting at a 64-byte boundary (a panel row of b
/// is then one or two cache lines).
struct Packed<T> {
    buf: Vec<T>,
    start: usize,
}

impl<T: Real> Packed<T> {
    /// The `len` entries `fill` pushes.
    fn new(len: usize, fill: impl FnOnce(&mut Vec<T>)) -> Self {
        let pad = 64 / std::mem::size_of::<T>();
        let mut buf: Vec<T> = Vec::with_capacity(len + pad);
        let start = buf.as_ptr().align_offset(64).min(pad);
        buf.resize(start, T::zero());
        fill(&mut buf);
        debug_assert_eq!(buf.len(), start + len);
        Packed { buf, start }
    }
}

impl<T> std::ops::Deref for Packed<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition the kernel keeps: each entry one fma chain in k order from zero.
    fn chain<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).fold(T::zero(), |c, k| a[[i, k]].mul_add(b[[k, j]], c))
        })
    }

    fn same_bits<T: Real>(x: &Array2<T>, y: &Array2<T>) -> bool {
        x.shape() == y.shape()
            && x.iter()
                .zip(y)
                .all(|(p, q)| p.as_f64().to_bits() == q.as_f64().to_bits())
    }

    /// A kernel's result against the chain: the same bits, or close for matrixmultiply (the
    /// portable fallback, which sums in another order).
    fn agrees<T: Real>(isa: Isa, c: &Array2<T>, want: &Array2<T>) -> bool {
        match isa {
            Isa::Portable => c
                .iter()
                .zip(want)
                .all(|(x, y)| (*x - *y).abs() <= T::lit(1e-3)),
            _ => same_bits(c, want),
        }
    }

    fn operands<T: Real>(m: usize, k: usize, n: usize) -> (Array2<T>, Array2<T>) {
        let a = Array2::from_shape_fn((m, k), |(i, j)| {
            T::lit(((i * 31 + j * 17) % 23) as f64 / 7.3 - 1.1)
        });
        let b = Array2::from_shape_fn((k, n), |(i, j)| {
            T::lit(((i * 13 + j * 29) % 19) as f64 / 3.1 - 2.7)
        });
        (a, b)
    }

    // Ragged shapes: edges in every direction, k across several blocks, and a k of zero. With
    // 200 columns b's k-blocks are packed in row blocks of 163 rows: (20, 700, 200) packs a
    // second k-block (from k = 512 in f32, 256 in f64) in more than one. Results 2050 wide
    // take the wide rows' k-blocks (1024 f32 or 512 f64 entries with AVX-512's tiles).
    const SHAPES: [(usize, usize, usize); 10] = [
        (5, 1100, 2050),
        (1, 1, 1),
        (13, 7, 33),
        (12, 512, 32),
        (37, 1100, 53),
        (130, 257, 300),
        (20, 700, 200),
        (7, 0, 5),
        (0, 3, 4),
        (64, 64, 64),
    ];

    /// The part of a·b that `isa`'s kernel computes in `tasks` row blocks (other entries 9).
    fn computed<T: Real>(
        isa: Isa,
        a: ArrayView2<T>,
        b: Right<T>,
        part: Part,
        tasks: usize,
    ) -> Array2<T> {
        let shape = (a.nrows(), b.cols());
        let mut c = vec![MaybeUninit::new(T::lit(9.0)); shape.0 * shape.1].into_boxed_slice();
        with(
            isa,
            Product {
                a,
                b,
                c: &mut c,
                part,
                tasks,
            },
        );
        // SAFETY: every entry was initialised to 9 before the product.
        unsafe { super::super::kernel::assume_matrix(c, shape) }
    }

    fn products_are_the_chain<T: Real>() {
        for (m, k, n) in SHAPES {
            let (a, b) = operands::<T>(m, k, n);
            let want = chain(a.view(), b.view());
            for isa in isa::available() {
                for tasks in [1, 2, 3, 7] {
                    let c = computed(isa, a.view(), Right::Plain(b.view()), Part::Whole, tasks);
                    assert!(
                        agrees(isa, &c, &want),
                        "{m}×{k}×{n} {isa:?} in {tasks} tasks"
                    );
                }
            }
            // strided operands: a transposed (columns contiguous), b a transposed copy
            let at = a.t().to_owned();
            let bt = b.t().to_owned();
            let got = product(at.t(), bt.t());
            assert!(same_bits(&got, &want), "{m}×{k}×{n} transposed");
        }
    }

    /// A packed row of a's k-block stays within what [`max_rows`] reckons with, and only
    /// AVX-512's 12-row tiles take the wide rows' longer k-blocks.
    #[test]
    fn k_blocks_fit_the_rows_max_rows_reckons_with() {
        fn rows<T, const MR: usize>(n: usize) -> usize {
            kc::<T, MR>(n) * std::mem::size_of::<T>()
        }
        for n in [1, 512, 1023, 1024, 2047, 2048, 4096, 1 << 20] {
            for bytes in [
                rows::<f32, 6>(n),
                rows::<f64, 6>(n),
                rows::<f32, 12>(n),
                rows::<f64, 12>(n),
            ] {
                assert!(bytes <= A_ROW_BYTES, "{n} wide: {bytes}");
            }
            assert_eq!(rows::<f32, 6>(n), A_ROW_BYTES);
            assert_eq!(rows::<f64, 6>(n), A_ROW_BYTES);
        }
        assert_eq!((kc::<f32, 12>(2047), kc::<f32, 12>(2048)), (512, 1024));
        assert_eq!((kc::<f64, 12>(1023), kc::<f64, 12>(1024)), (256, 512));
    }

    /// a·(g + gᵀ) with the sum formed in packing: the bits of the product with g + gᵀ stored.
    fn plus_transpose_is_the_product_with_the_sum<T: Real>() {
        for (m, n) in [(1, 1), (13, 33), (40, 512), (130, 300), (5, 600), (3, 1030)] {
            let (a, g) = operands::<T>(m, n, n);
            let want = chain(a.view(), (&g + &g.t()).view());
            for isa in isa::available() {
                for tasks in [1, 3] {
                    let g = Right::PlusTranspose(g.as_slice().unwrap(), n);
                    let c = computed(isa, a.view(), g, Part::Whole, tasks);
                    assert!(agrees(isa, &c, &want), "{m}×{n} {isa:?} in {tasks} tasks");
                }
            }
            // a transposed g (not row-major) is made row-major first
            let gt = g.t().to_owned();
            let got = product_plus_transpose(a.view(), gt.t());
            assert!(same_bits(&got, &want), "{m}×{n} transposed g");
        }
    }

    #[test]
    fn plus_transpose_is_formed_in_packing_with_the_same_bits() {
        plus_transpose_is_the_product_with_the_sum::<f32>();
        plus_transpose_is_the_product_with_the_sum::<f64>();
    }

    #[test]
    fn products_are_the_fma_chain() {
        products_are_the_chain::<f32>();
        products_are_the_chain::<f64>();
    }

    fn gram_is_the_chain<T: Real>() {
        for (r, c) in [(7, 300), (512, 100), (3, 1), (40, 45), (1100, 20)] {
            let (m, _) = operands::<T>(r, c, 1);
            let want = chain(m.t(), m.view());
            assert!(
                same_bits(&want, &want.t().to_owned()),
                "the chain is symmetric"
            );
            assert!(same_bits(&gram(m.view()), &want), "{r}×{c}");
            let kernels = isa::available()
                .into_iter()
                .filter(|isa| !matches!(isa, Isa::Portable));
            for (isa, tasks) in kernels.flat_map(|isa| [1, 3, 5].map(|t| (isa, t))) {
                let got = computed(isa, m.t(), Right::Plain(m.view()), Part::Upper, tasks);
                let same = |i: usize, j: usize| {
                    got[[i, j]].as_f64().to_bits() == want[[i, j]].as_f64().to_bits()
                };
                let upper = (0..c).all(|i| (i..c).all(|j| same(i, j)));
                assert!(upper, "{r}×{c} {isa:?} in {tasks} tasks");
            }
        }
    }

    /// gram's result is the chain everywhere, so exactly symmetric; each kernel's upper part is.
    #[test]
    fn gram_is_the_chain_and_exactly_symmetric() {
        gram_is_the_chain::<f32>();
        gram_is_the_chain::<f64>();
    }

    /// The 12 × 32 tiles of an m × m result in each row block (`bounds` as `row_blocks` gives
    /// them) that the part needs, counted one by one.
    fn block_work(bounds: &[usize], m: usize, part: Part) -> Vec<usize> {
        let upper = |i: usize, j: usize| part == Part::Whole || i < j + 32;
        let tiles = |rows: &[usize]| {
            let cells = (rows[0]..rows[1]).step_by(12);
            cells
                .flat_map(|i| (0..m).step_by(32).filter(move |&j| upper(i, j)))
                .count()
        };
        bounds.windows(2).map(tiles).collect()
    }

    /// Row blocks cover the rows in whole tiles, in order; a whole product's have equal rows,
    /// the upper part's equal work (its tiles counted here, one by one), and none has more
    /// than twice `max_rows`.
    #[test]
    fn row_blocks_share_the_work() {
        assert_eq!(
            row_blocks::<12, 32>((512, 512, 512), 4, 1, Part::Whole),
            [0, 132, 264, 396, 512]
        );
        for (m, k, tasks) in [(512, 512, 4), (1024, 1024, 8), (2048, 300, 32), (100, 7, 4)] {
            for part in [Part::Whole, Part::Upper] {
                let b = row_blocks::<12, 32>((m, k, m), tasks, 1, part);
                assert_eq!((b[0], b[b.len() - 1]), (0, m));
                assert!(b.windows(2).all(|w| w[0] < w[1] && w[0] % 12 == 0));
                assert!(b.windows(2).all(|w| w[1] - w[0] <= 2 * max_rows(k)));
                let work = block_work(&b, m, part);
                let (most, total) = (work.iter().max().unwrap(), work.iter().sum::<usize>());
                // each block at most its share and one row of tiles more
                assert!(
                    *most <= total / tasks + m / 32 + 1,
                    "{m} {part:?}: {work:?}"
                );
            }
        }
    }

    /// With two or three threads, each thread's share of the row blocks has its part of the
    /// work, in blocks that shrink to a third of the first (equal blocks fail this).
    #[test]
    fn row_blocks_shrink_within_each_threads_share() {
        for (m, k, tasks, parts) in [(512, 512, 16, 2), (1024, 512, 24, 3), (2048, 512, 32, 2)] {
            for part in [Part::Whole, Part::Upper] {
                let b = row_blocks::<12, 32>((m, k, m), tasks, parts, part);
                assert_eq!(b.len(), tasks + 1, "{m} {part:?}: {b:?}");
                let row = m / 32 + 1; // tiles in a row of tiles, at most
                let work = block_work(&b, m, part);
                let total: usize = work.iter().sum();
                for p in 0..parts {
                    let share = &work[crate::par::share(tasks, parts, p)];
                    let s = share.len();
                    // the share's part of the work, within a row of tiles a block
                    let own: usize = share.iter().sum();
                    assert!(
                        own.abs_diff(total * s / tasks) <= s * row,
                        "{m} {part:?}: {work:?}"
                    );
                    // each block about (s + 1 − k)/Σ of it: shrinking, the last a third of the first
                    assert!(share.windows(2).all(|w| w[1] <= w[0] + 2 * row), "{work:?}");
                    assert!(
                        3 * share[s - 1] <= share[0] + 3 * row,
                        "{m} {part:?}: {work:?}"
                    );
                }
            }
        }
    }
}
