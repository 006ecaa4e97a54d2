//! Optimisers: the update rules `optimize … with NAME(…)` can use, with their settings schema.
//! Knows nothing about the graph: it maps (values, gradients) to new values and keeps its state
//! (moments and step count) in a form a checkpoint can hold.

use crate::ops::divisor::Divisor;
use crate::ops::kernel;
use crate::par;
use crate::tensor::{ahead, Real, Type, Value};
use ndarray::{Axis, Zip};
use std::sync::OnceLock;

/// One setting of an optimiser.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub name: &'static str,
    /// `None`: required.
    pub default: Option<f64>,
    pub doc: &'static str,
    /// The values the rule is meant for; the checker refuses others.
    pub accepts: Accepts,
    /// What goes wrong outside them, and what to do instead: the refusal's help.
    pub outside: &'static str,
}

/// The values a setting accepts (PyTorch's optimisers refuse the same, except that a momentum
/// of 1 or more, which PyTorch takes, is refused here too: its velocity never decays).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// 0 or more.
    NonNegative,
    /// From 0 up to 1, not 1 itself: a decay rate.
    Decay,
}

impl Accepts {
    pub fn holds(self, v: f64) -> bool {
        match self {
            Accepts::NonNegative => v >= 0.0,
            Accepts::Decay => (0.0..1.0).contains(&v),
        }
    }

    /// The values, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Accepts::NonNegative => "0 or more",
            Accepts::Decay => "from 0 up to 1, not 1 itself",
        }
    }
}

/// The learning rate: both optimisers' `lr`.
const LR_OUTSIDE: &str = "a negative rate climbs the loss instead of descending it: to maximise \
                          a quantity q, optimise -q";

/// An optimiser the language knows.
#[derive(Clone, Copy, Debug)]
pub struct Def {
    pub name: &'static str,
    pub summary: &'static str,
    pub settings: &'static [Setting],
}

pub static OPTIMIZERS: &[Def] = &[
    Def {
        name: "adam",
        summary: "Adam with Flux's ADAM semantics: bias-corrected moments, ε added to √v̂",
        settings: &[
            Setting {
                name: "lr",
                default: Some(0.001),
                doc: "learning rate η",
                accepts: Accepts::NonNegative,
                outside: LR_OUTSIDE,
            },
            Setting {
                name: "beta1",
                default: Some(0.9),
                doc: "decay of the first moment",
                accepts: Accepts::Decay,
                outside: "past gradients weigh β1ᵗ: at 1 the bias correction 1 − β1ᵗ is 0 and \
                          every step divides by it, above 1 old gradients outweigh new ones \
                          without bound, below 0 their signs alternate (Flux's and PyTorch's \
                          default is 0.9)",
            },
            Setting {
                name: "beta2",
                default: Some(0.999),
                doc: "decay of the second moment",
                accepts: Accepts::Decay,
                outside: "past squared gradients weigh β2ᵗ: at 1 the bias correction 1 − β2ᵗ is \
                          0 and every step divides by it, above 1 old squares outweigh new ones \
                          without bound, below 0 v can turn negative and √v̂ undefined (Flux's \
                          and PyTorch's default is 0.999)",
            },
            Setting {
                name: "eps",
                default: Some(1e-8),
                doc: "ε added to √v̂",
                accepts: Accepts::NonNegative,
                outside: "ε keeps √v̂ + ε away from 0; a negative ε can make it 0, and the step \
                          infinite (the default is 1e-8)",
            },
        ],
    },
    Def {
        name: "sgd",
        summary: "gradient descent, optionally with (heavy-ball) momentum",
        settings: &[
            Setting {
                name: "lr",
                default: None,
                doc: "learning rate η",
                accepts: Accepts::NonNegative,
                outside: LR_OUTSIDE,
            },
            Setting {
                name: "momentum",
                default: Some(0.0),
                doc: "momentum μ in v ← μv + g, x ← x − ηv",
                accepts: Accepts::Decay,
                outside: "at 1 or more every past gradient keeps its full weight or more and the \
                          velocity grows without bound; below 0 their signs alternate (0.9 is \
                          usual, 0 turns momentum off)",
            },
        ],
    },
];

pub fn lookup(name: &str) -> Option<&'static Def> {
    OPTIMIZERS.iter().find(|d| d.name == name)
}

/// A checked optimiser choice with all settings resolved.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Optimizer {
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    Sgd {
        lr: f64,
        momentum: f64,
    },
}

impl Optimizer {
    /// The name a script writes (`adam`, `sgd`).
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Adam { .. } => "adam",
            Optimizer::Sgd { .. } => "sgd",
        }
    }

    /// Builds from a definition and its settings in schema order.
    pub fn from_settings(def: &Def, values: &[f64]) -> Optimizer {
        match def.name {
            "adam" => Optimizer::Adam {
                lr: values[0],
                beta1: values[1],
                beta2: values[2],
                eps: values[3],
            },
            _ => Optimizer::Sgd {
                lr: values[0],
                momentum: values[1],
            },
        }
    }

    /// Fresh state for learnables of these types: zeros, written (see [`kernel::zeros`]).
    pub fn init<T: Real>(&self, types: &[Type]) -> State<T> {
        let zeros = |n: usize| {
            (types.iter().take(n))
                .map(|&t| match t {
                    Type::Matrix(s) => Value::Matrix(kernel::zeros((s.rows, s.cols))),
                    Type::Scalar => Value::zeros(t),
                })
                .collect::<Vec<_>>()
        };
        let n = types.len();
        State {
            step: 0,
            first: zeros(n),
            second: match self {
                Optimizer::Adam { .. } => zeros(n),
                Optimizer::Sgd { .. } => Vec::new(),
            },
        }
    }

    /// One update of every learnable: `values[i] -= Δ(grads[i])`. Gives the first learnable
    /// that the update left with an entry out of the float range (±∞ or NaN), if any: checked
    /// in the same pass. The gradients are used up: Adam writes a matrix's new values over its
    /// gradient, which made its update 3–4% faster in f32 and 5–6% in f64 than writing them to
    /// a new matrix (512², one thread and two, in-process A/B of 2000 updates each per set).
    pub fn update<T: Real>(
        &self,
        state: &mut State<T>,
        values: &mut [Value<T>],
        grads: Vec<Value<T>>,
    ) -> Option<usize> {
        self.update_with(state, values, grads, None)
    }

    /// [`Optimizer::update`], Adam's bias corrections made by `quotients`, or (`None`) by
    /// the way this CPU runs faster: the same bits either way.
    fn update_with<T: Real>(
        &self,
        state: &mut State<T>,
        values: &mut [Value<T>],
        grads: Vec<Value<T>>,
        quotients: Option<Quotients>,
    ) -> Option<usize> {
        state.step += 1;
        let mut finite = Vec::with_capacity(values.len());
        match *self {
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let quotients = quotients.unwrap_or_else(Quotients::fastest::<T>);
                let step = AdamStep::new([lr, beta1, beta2, eps], state.step, quotients);
                for (((x, g), m), v) in values
                    .iter_mut()
                    .zip(grads)
                    .zip(&mut state.first)
                    .zip(&mut state.second)
                {
                    finite.push(match (x, g, m, v) {
                        (
                            Value::Scalar(x),
                            Value::Scalar(g),
                            Value::Scalar(m),
                            Value::Scalar(v),
                        ) => step.entry(true, x, m, v, g),
                        (
                            Value::Matrix(x),
                            Value::Matrix(g),
                            Value::Matrix(m),
                            Value::Matrix(v),
                        ) => {
                            for s in [&mut *m, &mut *v] {
                                *s = kernel::into_row_major(std::mem::take(s));
                            }
                            // x's new values go over the gradient, entry by entry, once it
                            // is read: the gradient was just made (and is read here), so its
                            // lines are in the cache, where a new matrix's must be fetched
                            let mut new = kernel::into_row_major(g);
                            let old = kernel::row_major(x.view());
                            let size = kernel::block_rows(x.ncols()) * x.ncols();
                            let blocks = (kernel::entries(&old).chunks(size))
                                .zip(kernel::entries_mut(&mut new).chunks_mut(size))
                                .zip(kernel::entries_mut(m).chunks_mut(size))
                                .zip(kernel::entries_mut(v).chunks_mut(size));
                            let finite =
                                in_blocks(blocks, |(((x, g), m), v)| step.block(x, g, m, v));
                            drop(old);
                            *x = new;
                            finite
                        }
                        _ => unreachable!("checked optimisation: state matches the learnables"),
                    });
                }
            }
            Optimizer::Sgd { lr, momentum } => {
                let (lr, mu) = (T::lit(lr), T::lit(momentum));
                let rule = |ok: bool, x: &mut T, v: &mut T, g: T| {
                    *v = mu * *v + g;
                    *x -= lr * *v;
                    ok & x.is_finite()
                };
                for ((x, g), v) in values.iter_mut().zip(grads).zip(&mut state.first) {
                    finite.push(match (x, g, v) {
                        (Value::Scalar(x), Value::Scalar(g), Value::Scalar(v)) => {
                            rule(true, x, v, g)
                        }
                        (Value::Matrix(x), Value::Matrix(g), Value::Matrix(v)) => {
                            let rows = kernel::block_rows(x.ncols());
                            let blocks = (x.axis_chunks_iter_mut(Axis(0), rows))
                                .zip(g.axis_chunks_iter(Axis(0), rows))
                                .zip(v.axis_chunks_iter_mut(Axis(0), rows));
                            in_blocks(blocks, |((x, g), v)| {
                                Zip::from(x)
                                    .and(g)
                                    .and(v)
                                    .fold(true, |ok, x, &g, v| rule(ok, x, v, g))
                            })
                        }
                        _ => unreachable!("checked optimisation: state matches the learnables"),
                    });
                }
            }
        }
        finite.iter().position(|ok| !ok)
    }
}

/// One Adam update's constants: Flux 0.12's ADAM, m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
/// x ← x − m/(1−β1ᵗ) / (√(v/(1−β2ᵗ)) + ε) · η. The βᵗ are products kept in f64.
#[derive(Clone, Copy)]
struct AdamStep<T> {
    b1: T,
    b2: T,
    one_b1: T,
    one_b2: T,
    /// The bias corrections 1 − βᵗ, divisors of the whole step.
    c1: Divisor<T>,
    c2: Divisor<T>,
    e: T,
    lr: T,
    /// How a block's moments are divided by c1 and c2.
    quotients: Quotients,
}

impl<T: Real> AdamStep<T> {
    /// The constants of update number `step` (from 1) with settings `[lr, β1, β2, ε]`.
    fn new([lr, beta1, beta2, eps]: [f64; 4], step: u64, quotients: Quotients) -> Self {
        let (c1, c2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
        let (b1, b2) = (T::lit(beta1), T::lit(beta2));
        AdamStep {
            b1,
            b2,
            one_b1: T::one() - b1,
            one_b2: T::one() - b2,
            c1: Divisor::new(T::lit(c1)),
            c2: Divisor::new(T::lit(c2)),
            e: T::lit(eps),
            lr: T::lit(lr),
            quotients,
        }
    }

    #[inline(always)]
    fn moments(self, m: &mut T, v: &mut T, g: T) {
        *m = self.b1 * *m + self.one_b1 * g;
        *v = self.b2 * *v + self.one_b2 * g * g;
    }

    /// x moved by the corrected moments m̂ and v̂.
    #[inline(always)]
    fn descended(self, x: T, m_hat: T, v_hat: T) -> T {
        x - m_hat / (v_hat.sqrt() + self.e) * self.lr
    }

    /// x moved by the moments m and v, corrected with `/`: the rule as written.
    fn descended_dividing(self, x: T, m: T, v: T) -> T {
        self.descended(x, m / self.c1.b(), v / self.c2.b())
    }

    /// One entry, and whether x is still finite (and was, as `ok` says).
    fn entry(self, ok: bool, x: &mut T, m: &mut T, v: &mut T, g: T) -> bool {
        self.moments(m, v, g);
        *x = self.descended_dividing(*x, *m, *v);
        ok & x.is_finite()
    }

    /// A block of entries, x's new values written over the gradient g, and whether every new
    /// x is finite. With [`Quotients::Reciprocal`], if a moment is below a divisor's least (a
    /// zero, say) or a new x is not finite (a quotient may have overflowed), the block's x is
    /// written again with `/` (from the moments: g is no longer needed).
    fn block(self, x: &[T], g: &mut [T], m: &mut [T], v: &mut [T]) -> bool {
        match self.quotients {
            Quotients::Divide => self.pass::<false>(x, g, m, v).0,
            Quotients::Reciprocal => {
                let (finite, below) = self.pass::<true>(x, g, m, v);
                if finite && !below {
                    return true;
                }
                let entries = x.iter().zip(g.iter_mut()).zip(&*m).zip(&*v);
                entries.fold(true, |ok, (((&x, new), &m), &v)| {
                    *new = self.descended_dividing(x, m, v);
                    ok & new.is_finite()
                })
            }
        }
    }

    /// One pass over a block: the moments, then x from the corrected moments, divided with
    /// `/`, or if `RECIPROCAL` by [`Divisor::quotient`] (which holds for moments of at least
    /// the divisors' least). Gives whether every new x is finite and, if `RECIPROCAL`, whether
    /// a moment was below the least (a NaN moment is not, but makes x NaN). Both are kept in
    /// [`kernel::LANES`] lanes: Σ 0·x, which stays zero while every x is finite, and an
    /// `or` of counts. Kept as `bool`s, entry by entry, they compiled to chains of mask
    /// conversions, and the pass took 5–7% longer (f32, 512², one thread and two).
    fn pass<const RECIPROCAL: bool>(
        self,
        x: &[T],
        g: &mut [T],
        m: &mut [T],
        v: &mut [T],
    ) -> (bool, bool) {
        const L: usize = kernel::LANES;
        let least = self.c1.least().max(self.c2.least());
        let (mut spread, mut below) = ([T::zero(); L], [0u32; L]);
        let entry = |(x, g, m, v): (T, &mut T, &mut T, &mut T), spread: &mut T, below: &mut u32| {
            self.moments(m, v, *g);
            *g = if RECIPROCAL {
                *below |= u32::from((m.abs() < least) | (v.abs() < least));
                self.descended(x, self.c1.quotient(*m), self.c2.quotient(*v))
            } else {
                self.descended_dividing(x, *m, *v)
            };
            *spread += *g * T::zero();
        };
        let whole = x.len() - x.len() % L;
        let (x, x_tail) = x.split_at(whole);
        let (g, g_tail) = g.split_at_mut(whole);
        let (m, m_tail) = m.split_at_mut(whole);
        let (v, v_tail) = v.split_at_mut(whole);
        let chunks = (x.chunks_exact(L).zip(g.chunks_exact_mut(L)))
            .zip(m.chunks_exact_mut(L).zip(v.chunks_exact_mut(L)));
        for ((x, g), (m, v)) in chunks {
            for s in [x, &*g, &*m, &*v] {
                ahead(s);
            }
            for l in 0..L {
                let e = (x[l], &mut g[l], &mut m[l], &mut v[l]);
                entry(e, &mut spread[l], &mut below[l]);
            }
        }
        let tail = (x_tail.iter().zip(g_tail)).zip(m_tail.iter_mut().zip(v_tail));
        for ((&x, g), (m, v)) in tail {
            entry((x, g, m, v), &mut spread[0], &mut below[0]);
        }
        (
            spread.iter().all(|&s| s == T::zero()),
            below.iter().any(|&b| b > 0),
        )
    }
}

/// How Adam divides its moments by the bias corrections 1 − βᵗ: with `/`, or through
/// [`Divisor`]'s reciprocal and fused multiply-adds. Both give the bits of `/`; which is faster
/// depends on the CPU. Divisor's steps took Intel's Xeon (Emerald Rapids) off its slow divider:
/// there the divisions were most of an f64 update. On the AMD EPYC (Zen 3) the divider is fast
/// and the extra multiply-adds compete with the rest of the pass, so `/` was faster: Adam's
/// 512² update took 0.168 against 0.239 ms in f32 and 0.520 against 0.586 ms in f64 on one
/// thread (in-process A/B of 1000 updates each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quotients {
    Divide,
    Reciprocal,
}

impl Quotients {
    /// The faster way for T on this CPU, timed once per process on a block like a real one.
    fn fastest<T: Real>() -> Quotients {
        static F32: OnceLock<Quotients> = OnceLock::new();
        static F64: OnceLock<Quotients> = OnceLock::new();
        let cell = if std::mem::size_of::<T>() == 4 {
            &F32
        } else {
            &F64
        };
        *cell.get_or_init(Quotients::race::<T>)
    }

    /// Times Adam's pass both ways on 4096 entries (in a core's L2 cache, where the pass's
    /// arithmetic shows), seven times each, alternating, and keeps the faster by their
    /// minimum. About 0.1 ms, once; the results do not depend on the outcome. No moment is
    /// zero (half-integer steps), so `Divisor`'s way never falls back to dividing.
    fn race<T: Real>() -> Quotients {
        const N: usize = 4096;
        // the second update with Flux's defaults
        let mut step = AdamStep::new([1e-3, 0.9, 0.999, 1e-8], 2, Quotients::Divide);
        let wave = |k: usize, scale: f64| T::lit(((k * 37 % 101) as f64 - 50.5) * scale);
        let x: Vec<T> = (0..N).map(|k| wave(k, 1e-2)).collect();
        let mut m: Vec<T> = (0..N).map(|k| wave(k, 1e-4)).collect();
        let mut v: Vec<T> = m.iter().map(|&a| a * a + T::lit(1e-6)).collect();
        let mut best = [std::time::Duration::MAX; 2];
        for _ in 0..7 {
            for (way, best) in [Quotients::Divide, Quotients::Reciprocal]
                .into_iter()
                .zip(&mut best)
            {
                step.quotients = way;
                let mut g: Vec<T> = (0..N).map(|k| wave(k, 1e-3)).collect();
                let start = std::time::Instant::now();
                std::hint::black_box(step.block(&x, &mut g, &mut m, &mut v));
                *best = (*best).min(start.elapsed());
            }
        }
        if best[0] <= best[1] {
            Quotients::Divide
        } else {
            Quotients::Reciprocal
        }
    }
}

/// `update` of every row block of a learnable (its entries with their gradient and state) on
/// [`par`]'s threads: whether every block stayed finite. An update is entry by entry, so the
/// blocks cannot change a result.
fn in_blocks<B: Send>(blocks: impl Iterator<Item = B>, update: impl Fn(B) -> bool + Sync) -> bool {
    par::map(blocks.collect(), update).into_iter().all(|ok| ok)
}

/// An optimiser's state: what a checkpoint must hold to resume the exact trajectory.
#[derive(Clone, Debug, PartialEq)]
pub struct State<T> {
    /// Updates done so far.
    pub step: u64,
    /// Adam's first moments, or SGD's velocities, one per learnable.
    pub first: Vec<Value<T>>,
    /// Adam's second moments (empty for SGD).
    pub second: Vec<Value<T>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flux's ADAM by hand for one scalar: after the first step the update is lr·sign(g)
    /// (m̂ = g, v̂ = g², so Δ = g/(|g|+ε)·η).
    #[test]
    fn adam_first_step_is_lr_times_sign() {
        let opt = Optimizer::from_settings(lookup("adam").unwrap(), &[0.1, 0.9, 0.999, 1e-8]);
        let mut st = opt.init::<f64>(&[Type::Scalar]);
        let mut x = vec![Value::Scalar(1.0)];
        assert_eq!(opt.update(&mut st, &mut x, vec![Value::Scalar(-3.0)]), None);
        assert!((x[0].scalar() - 1.1).abs() < 1e-8);
        // second step with the same gradient: m̂ = g, v̂ = g² again, so another +0.1
        opt.update(&mut st, &mut x, vec![Value::Scalar(-3.0)]);
        assert!((x[0].scalar() - 1.2).abs() < 1e-8, "{}", x[0].scalar());
        assert_eq!(st.step, 2);
    }

    /// An update that leaves the float range is reported, with the first learnable it hit,
    /// by both optimisers (the scalar path and the blocks of a matrix), Adam's moments divided
    /// either way.
    #[test]
    fn an_update_out_of_range_names_its_learnable() {
        use ndarray::Array2;
        for (name, settings, way) in [
            ("adam", [1e308, 0.9, 0.999, 1e-8], Quotients::Divide),
            ("adam", [1e308, 0.9, 0.999, 1e-8], Quotients::Reciprocal),
            ("sgd", [1e308, 0.0, 0.0, 0.0], Quotients::Divide),
        ] {
            let def = lookup(name).unwrap();
            let opt = Optimizer::from_settings(def, &settings[..def.settings.len()]);
            let types = [
                Type::Scalar,
                Type::Matrix(crate::tensor::Shape::new(300, 200)),
            ];
            let mut st = opt.init::<f64>(&types);
            let mut big = Array2::zeros((300, 200));
            big[[299, 7]] = 1e308;
            let mut x = vec![Value::Scalar(1.0), Value::Matrix(big)];
            let mut g = Array2::zeros((300, 200));
            g[[299, 7]] = -1.0;
            let grads = [Value::Scalar(0.0), Value::Matrix(g)];
            let out = opt.update_with(&mut st, &mut x, grads.into(), Some(way));
            assert_eq!(out, Some(1), "{name} {way:?}");
            assert_eq!(x[1].matrix()[[299, 7]], f64::INFINITY, "{name} {way:?}");
        }
    }

    #[test]
    fn fresh_state_is_zeros_of_the_learnables_types() {
        let types = [Type::Scalar, Type::Matrix(crate::tensor::Shape::new(70, 3))];
        let zero = |v: &Value<f64>| match v {
            Value::Scalar(x) => vec![*x],
            Value::Matrix(m) => m.iter().copied().collect(),
        };
        for (opt, moments) in [("adam", 2), ("sgd", 1)] {
            let def = lookup(opt).unwrap();
            let state = Optimizer::from_settings(def, &[0.1, 0.9, 0.999, 1e-8]).init(&types);
            let all: Vec<&Vec<Value<f64>>> = [&state.first, &state.second]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            assert_eq!((state.step, all.len()), (0, moments));
            for s in all {
                assert_eq!(s.iter().map(Value::ty).collect::<Vec<_>>(), types);
                assert!(s.iter().flat_map(zero).all(|x| x.to_bits() == 0));
            }
        }
    }

    #[test]
    fn sgd_with_momentum() {
        let opt = Optimizer::from_settings(lookup("sgd").unwrap(), &[0.5, 0.9]);
        let mut st = opt.init::<f64>(&[Type::Scalar]);
        let mut x = vec![Value::Scalar(0.0)];
        opt.update(&mut st, &mut x, vec![Value::Scalar(1.0)]); // v = 1, x = -0.5
        opt.update(&mut st, &mut x, vec![Value::Scalar(1.0)]); // v = 1.9, x = -1.45
        assert!((x[0].scalar() + 1.45).abs() < 1e-12);
    }

    /// A matrix is updated in row blocks on two threads: each entry as the rule written out by
    /// hand (v ← μv + g, x ← x − η·v), for a 300 × 200 matrix
    /// (two blocks, of 163 and 137 rows).
    #[test]
    fn sgd_on_a_matrix_in_blocks_is_the_rule_entry_by_entry() {
        use ndarray::Array2;
        crate::par::set_threads(2);
        let (lr, mu) = (0.25, 0.75);
        let opt = Optimizer::from_settings(lookup("sgd").unwrap(), &[lr, mu]);
        let shape = (300, 200);
        let mut st = opt.init::<f64>(&[Type::Matrix(crate::tensor::Shape::new(300, 200))]);
        let x0 = Array2::from_shape_fn(shape, |(i, j)| (i as f64 - 150.0) * 0.01 + j as f64 * 0.5);
        let g = |k: usize| {
            Array2::from_shape_fn(shape, |(i, j)| ((i * 7 + j * 3 + k) % 11) as f64 - 5.0)
        };
        let mut x = vec![Value::Matrix(x0.clone())];
        let (mut want, mut v) = (x0, Array2::<f64>::zeros(shape));
        for k in 0..3 {
            assert_eq!(opt.update(&mut st, &mut x, vec![Value::Matrix(g(k))]), None);
            for ((w, v), &g) in want.iter_mut().zip(v.iter_mut()).zip(g(k).iter()) {
                *v = mu * *v + g;
                *w -= lr * *v;
            }
        }
        assert_eq!(x[0].matrix(), &want);
    }

    /// Adam on matrices, in f32 and f64, with its moments divided either way, is the rule
    /// written out entry by entry with `/`, bit for bit, over five steps: a 500 × 200
    /// column-major x in blocks of 163 rows (each block's last entries outside the pass's
    /// lanes). The first has zero gradients (`Divisor`'s way divides), the second gradients
    /// down to 1e-12 (squared, 1e-24·(1 − β2): quotients of the divisors hold them), the third
    /// gradients whose first moments are subnormal, on x = 0 (`Divisor`'s way divides: its
    /// steps would get some wrong).
    #[test]
    fn adam_on_a_matrix_is_the_rule_entry_by_entry() {
        fn check<T: Real>(way: Quotients) {
            use ndarray::{Array2, ShapeBuilder};
            crate::par::set_threads(2);
            let (lr, b1, b2, eps) = (0.01, 0.9, 0.999, 1e-8);
            let opt = Optimizer::from_settings(lookup("adam").unwrap(), &[lr, b1, b2, eps]);
            let shape = (500, 200);
            let mut st = opt.init::<T>(&[Type::Matrix(crate::tensor::Shape::new(500, 200))]);
            // gradients whose first moments are subnormal, on x = 0 (so x shows their bits)
            let tiny = T::min_positive_value().as_f64() * 4.0;
            let x0 = Array2::from_shape_fn(shape.f(), |(i, j)| match i {
                400..420 => T::zero(),
                _ => T::lit((i as f64 - 150.0) * 0.01 + j as f64 * 0.5),
            });
            let g = |k: usize| {
                Array2::from_shape_fn(shape, |(i, j)| {
                    let r = ((i * 7 + j * 3 + k) % 11) as f64 - 5.0;
                    T::lit(match i {
                        0..40 => 0.0,
                        200..240 => r * 1e-12,
                        400..420 => (((i * 200 + j) * 31 % 997) as f64 / 100.0 + r) * tiny,
                        _ => r,
                    })
                })
            };
            let mut x = vec![Value::Matrix(x0.clone())];
            let (mut want, mut m, mut v) = (x0, Array2::zeros(shape), Array2::zeros(shape));
            let (b1, b2, eps, lr) = (T::lit(b1), T::lit(b2), T::lit(eps), T::lit(lr));
            for k in 1..=5 {
                let grads = vec![Value::Matrix(g(k))];
                assert_eq!(
                    opt.update_with(&mut st, &mut x, grads, Some(way)),
                    None,
                    "{way:?}"
                );
                let c1 = T::lit(1.0 - 0.9f64.powi(k as i32));
                let c2 = T::lit(1.0 - 0.999f64.powi(k as i32));
                for (((w, m), v), &g) in want.iter_mut().zip(&mut m).zip(&mut v).zip(&g(k)) {
                    *m = b1 * *m + (T::one() - b1) * g;
                    *v = b2 * *v + (T::one() - b2) * g * g;
                    *w -= *m / c1 / ((*v / c2).sqrt() + eps) * lr;
                }
            }
            assert_eq!(x[0].matrix(), &want, "{way:?}");
        }
        for way in [Quotients::Divide, Quotients::Reciprocal] {
            check::<f32>(way);
            check::<f64>(way);
        }
    }
}
