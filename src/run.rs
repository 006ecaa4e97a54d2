//! Executes a checked [`Program`]: statements in order, `optimize` loops with their clauses
//! (recordings, loss logs, early stopping, checkpoints), sweeps, outputs. Reports what happens
//! through [`Events`] (the CLI renders them as text or JSON Lines) and what it wrote in a
//! [`Journal`] (for the run manifest); writes files only through `io`.
//!
//! A run stops early when Ctrl-C sets [`Settings::interrupt`] (at the end of the current step)
//! or when an optimisation diverges. Either way the learnables keep their last finite state,
//! the stopped optimisation writes its recordings, loss log and a checkpoint, and the script's
//! remaining `save` and `print` statements still run, so everything that can be written is;
//! later `optimize` and `sweep` statements are skipped. Then the run fails with
//! [`Failure::interrupted`] set or not.

use crate::ast::Span;
use crate::checkpoint::{self, Checkpoint, Frames};
use crate::eval::{EvalError, Values};
use crate::grad;
use crate::graph::NodeId;
use crate::io::{self, DiskIo};
use crate::lower::{
    Animation, Colormap, Optimize, Printable, Program, RangePolicy, Save, Step, Sweep,
};
use crate::ops::{Dispatch, Io};
use crate::optim::Optimizer;
use crate::plot::Chart;
use crate::profile::{timed, Phase, Row};
use crate::tensor::{min_max, Real, Value};
use ndarray::{Array2, ArrayView2};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How a run behaves beyond what the script says.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// SHA-256 of the script, written into checkpoints.
    pub script_sha256: String,
    /// A checkpoint to continue from: the optimisation it belongs to starts from its state.
    pub resume: Option<PathBuf>,
    /// Where an optimisation without a `checkpoint` clause saves its state when it is stopped
    /// (a path as written in a script, inside the output folder).
    pub fallback_checkpoint: String,
    /// Set (by Ctrl-C) to stop at the end of the current step.
    pub interrupt: Arc<AtomicBool>,
    /// Time every primitive call and report it at the end (`--profile`).
    pub profile: bool,
}

/// What a print shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Scalar(f64),
    Matrix {
        rows: usize,
        cols: usize,
        min: f64,
        max: f64,
        mean: f64,
    },
    Text(String),
}

/// What a written file holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Saved {
    Image {
        rows: usize,
        cols: usize,
    },
    Animation {
        rows: usize,
        cols: usize,
        frames: usize,
    },
    /// A CSV, SVG or checkpoint.
    File,
}

/// Things that happen during a run, in order.
pub trait Events {
    /// A long task starts (`optimize x` or `sweep knob`): `total` steps or frames, of which
    /// `done` are done already (a resumed optimisation).
    fn begin(&mut self, task: &str, done: usize, total: usize);
    /// Before update `step` (1-based) the loss is `loss`.
    fn step(&mut self, step: usize, loss: f64);
    /// A sweep took its frame number `done` (1-based).
    fn frame(&mut self, done: usize);
    /// An optimisation ended.
    fn optimized(&mut self, summary: &OptimizeSummary);
    fn print(&mut self, expr: &str, shown: &Shown);
    fn saved(&mut self, path: &Path, what: Saved);
    /// Something the user should know that is not an error (e.g. clipped pixels).
    fn warn(&mut self, message: &str);
    /// Where the run's time went (`--profile`), at its end: the most time first.
    fn profile(&mut self, rows: &[Row]);
}

/// A run that could not finish.
#[derive(Debug)]
pub struct Failure {
    pub span: Option<Span>,
    pub message: String,
    pub help: String,
    /// Stopped by Ctrl-C rather than by an error.
    pub interrupted: bool,
    /// The checkpoint written when an optimisation was stopped, to resume from.
    pub checkpoint: Option<PathBuf>,
}

impl Failure {
    fn new(span: Option<Span>, message: impl Into<String>, help: impl Into<String>) -> Self {
        Failure {
            span,
            message: message.into(),
            help: help.into(),
            interrupted: false,
            checkpoint: None,
        }
    }
}

impl From<EvalError> for Failure {
    fn from(e: EvalError) -> Self {
        Failure::new(
            Some(e.span),
            e.message,
            "check that the file is still there and readable",
        )
    }
}

/// Why an optimisation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// All its steps were done.
    Completed,
    /// `stop when patience = …`: the loss stopped improving.
    Patience,
    /// Ctrl-C.
    Interrupted,
    /// The loss, a gradient or an update stopped being finite.
    Diverged,
}

/// What an optimisation did (for the manifest, the events and tests).
#[derive(Clone, Debug, serde::Serialize)]
pub struct OptimizeSummary {
    pub learnables: Vec<String>,
    pub optimizer: Optimizer,
    /// Updates done, counting those of a checkpoint it resumed from.
    pub steps: usize,
    /// The `steps` the script asks for.
    pub planned: usize,
    /// Updates the checkpoint it resumed from had done (0 when it started afresh).
    pub resumed_from: usize,
    /// The loss after the last update (not finite when it diverged there).
    pub final_loss: f64,
    pub end: End,
    /// The loss after k updates at index k: `steps + 1` entries.
    #[serde(skip)]
    pub losses: Vec<f64>,
    /// Median wall time of one update.
    #[serde(skip)]
    pub median_step_ms: f64,
}

/// What a run wrote and optimised, in order; filled in as it goes, so a failed run's journal
/// still tells what was done.
#[derive(Debug, Default)]
pub struct Journal {
    pub optimizations: Vec<OptimizeSummary>,
    /// Every file written, with the SHA-256 of what was written (a file written twice appears
    /// twice).
    pub outputs: Vec<(PathBuf, io::Sha256)>,
}

/// Runs the program in float type `T`.
pub fn execute<T: Dispatch>(
    program: &Program,
    io: &DiskIo,
    settings: &Settings,
    events: &mut dyn Events,
    journal: &mut Journal,
) -> Result<(), Failure> {
    let resume = match &settings.resume {
        Some(path) => Some(read_checkpoint::<T>(path, program)?),
        None => None,
    };
    let mut run = Runner {
        program,
        io,
        settings,
        events,
        journal,
        values: if settings.profile {
            Values::new(&program.graph).profiled()
        } else {
            Values::new(&program.graph)
        },
        resume,
        stopped: None,
    };
    let mut optimizations = 0;
    for step in &program.steps {
        let long = matches!(step, Step::Optimize(_) | Step::Sweep(_));
        if run.stopped.is_some() && long {
            continue;
        }
        let done = match step {
            Step::Learn { node, init } => learn(program, *node, *init, &mut run.values, io),
            Step::Print { what, text, .. } => run.print(what, text),
            Step::Save(s) => run.save(s),
            Step::Optimize(o) => {
                optimizations += 1;
                run.optimize(o, optimizations - 1)
            }
            Step::Sweep(s) => run.sweep(s),
        };
        match (done, &run.stopped) {
            (Err(f), Some(_)) => run.events.warn(&format!("while stopping: {}", f.message)),
            (Err(f), None) => return Err(f),
            (Ok(()), _) => {}
        }
    }
    if let Some(p) = run.values.profile() {
        run.events.profile(&p.rows());
    }
    match run.stopped {
        Some(f) => Err(f),
        None if run.interrupted() => Err(Failure {
            interrupted: true,
            ..Failure::new(
                None,
                "interrupted (Ctrl-C); the script ran to its end",
                "every output was written",
            )
        }),
        None => Ok(()),
    }
}

/// An optimisation frees and allocates the same image-sized buffers every step. glibc returns
/// such blocks to the kernel at once (they are above its mmap threshold), so every step paid
/// page faults for fresh memory: 40% of a 512² step. Keeping freed memory in the process makes
/// the step 1.7× faster and leaves results untouched. Call it at the start of `main` (the
/// `imgx` binary and the benchmarks do); it is process-wide.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator tunables; callers run it first thing in `main`,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}

/// Why an update could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diverged {
    /// A gradient is not finite (or so large that its square is not): nothing was changed.
    Gradient,
    /// The update of this learnable (index in `over`) left the float range; it was applied.
    Update(usize),
}

/// One optimiser update of an optimisation: the gradients of its loss (whose forward values
/// `values` holds), then the optimiser's step on the learnables, in place. `relevant` is
/// [`grad::relevant`] and `dirty` the learnables' descendants, both fixed for an optimisation.
pub fn update<T: Dispatch>(
    graph: &crate::graph::Graph,
    values: &mut Values<T>,
    o: &Optimize,
    relevant: &[bool],
    dirty: &[bool],
    state: &mut crate::optim::State<T>,
) -> Result<(), Diverged> {
    // the learnables' descendants are computed again after the update (or, if a gradient is
    // not finite, the same again): the backward pass drops their values as it goes
    let grads = grad::backward(graph, values, o.loss, &o.over, relevant, dirty);
    // Gradients below √max keep Adam's and SGD's moments finite, so an update can only
    // overflow where a learnable itself leaves the float range (checked in the update's pass).
    let bound = T::max_value().sqrt();
    let finite = || {
        grads
            .iter()
            .all(|g| crate::ops::kernel::all_within(g, bound))
    };
    let finite = timed(values.profile(), "gradient check", Phase::Update, finite);
    let mut next: Vec<Value<T>> = o.over.iter().map(|id| values.take(*id)).collect();
    values.invalidate(dirty);
    let updated = if finite {
        let overflow = timed(values.profile(), o.optimizer.name(), Phase::Update, || {
            o.optimizer.update(state, &mut next, grads)
        });
        overflow.map_or(Ok(()), |i| Err(Diverged::Update(i)))
    } else {
        Err(Diverged::Gradient)
    };
    for (id, v) in o.over.iter().zip(next) {
        values.set(*id, v);
    }
    updated
}

/// Reads `--resume`'s checkpoint and checks that the script has the optimisation it is for.
fn read_checkpoint<T: Real>(path: &Path, program: &Program) -> Result<Checkpoint<T>, Failure> {
    let fail = |message: String| {
        Failure::new(
            None,
            message,
            "pass a checkpoint this script wrote (`checkpoint to \"…\"`, or the one a stopped run names)",
        )
    };
    let bytes = io::read_bytes(path).map_err(fail)?;
    let c = checkpoint::decode::<T>(&bytes)
        .map_err(|e| fail(format!("cannot resume from `{}`: {e}", path.display())))?;
    let count = (program.steps.iter())
        .filter(|s| matches!(s, Step::Optimize(_)))
        .count();
    if c.meta.optimize >= count {
        return Err(fail(format!(
            "cannot resume from `{}`: it belongs to optimisation {} of its script, and this script has {count}",
            path.display(),
            c.meta.optimize + 1
        )));
    }
    Ok(c)
}

/// `learn node = init`: sets the learnable to init's value (and forgets what depended on it).
pub fn learn<T: Dispatch>(
    program: &Program,
    node: NodeId,
    init: NodeId,
    values: &mut Values<T>,
    io: &DiskIo,
) -> Result<(), Failure> {
    let graph = &program.graph;
    values.compute(graph, &[init], io)?;
    let v = values.get(init).clone();
    values.invalidate(&graph.descendants(&[node]));
    values.set(node, v);
    Ok(())
}

struct Runner<'a, T> {
    program: &'a Program,
    io: &'a DiskIo,
    settings: &'a Settings,
    events: &'a mut dyn Events,
    journal: &'a mut Journal,
    values: Values<T>,
    /// `--resume`'s checkpoint, until its optimisation takes it.
    resume: Option<Checkpoint<T>>,
    /// Why the run stopped early, once it has.
    stopped: Option<Failure>,
}

/// Values outside the range an image holds, as a policy met them.
#[derive(Clone, Copy, Debug)]
struct Clipped {
    values: usize,
    frames: usize,
    lo: f64,
    hi: f64,
}

impl Default for Clipped {
    fn default() -> Self {
        Clipped {
            values: 0,
            frames: 0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }
}

/// `stop when patience = n, min_delta = d`.
struct Patience {
    patience: usize,
    min_delta: f64,
    best: f64,
    wait: usize,
}

impl Patience {
    /// Takes the next loss; true once `patience` losses in a row have not improved on the
    /// best by more than `min_delta`.
    fn exhausted(&mut self, loss: f64) -> bool {
        if loss < self.best - self.min_delta {
            (self.best, self.wait) = (loss, 0);
        } else {
            self.wait += 1;
        }
        self.wait >= self.patience
    }
}

impl<T: Dispatch> Runner<'_, T> {
    fn interrupted(&self) -> bool {
        self.settings.interrupt.load(Ordering::Relaxed)
    }

    /// The matrix value of `node`, computed if it is not yet.
    fn matrix(&mut self, node: NodeId) -> Result<ArrayView2<'_, T>, Failure> {
        self.values.compute(&self.program.graph, &[node], self.io)?;
        Ok(self.values.get(node).matrix().view())
    }

    /// Where a path written in the script goes.
    fn output(&self, written: &str, span: Span) -> Result<PathBuf, Failure> {
        self.io.output_path(written).map_err(|e| {
            Failure::new(
                Some(span),
                e,
                "write inside the output folder (see `--out`), or pass `--allow-write-anywhere`",
            )
        })
    }

    fn wrote(&mut self, path: PathBuf, sha256: io::Sha256, what: Saved) {
        self.events.saved(&path, what);
        self.journal.outputs.push((path, sha256));
    }

    fn print(&mut self, what: &Printable, text: &str) -> Result<(), Failure> {
        let shown = match what {
            Printable::Text(t) => Shown::Text(t.clone()),
            Printable::Node(id) => {
                self.values.compute(&self.program.graph, &[*id], self.io)?;
                show(self.values.get(*id))
            }
        };
        self.events.print(text, &shown);
        Ok(())
    }

    /// Applies the range policy for 8/16-bit and colour images; `.npy` keeps exact values.
    fn save(&mut self, s: &Save) -> Result<(), Failure> {
        let fail = |message: String| {
            Failure::new(
                Some(s.span),
                message,
                "choose `with range = \"clip\"` or `\"normalize\"`, or save as .npy to keep exact values",
            )
        };
        let path = self.output(&s.path, s.span)?;
        let exact = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        let signed = s.colormap == Colormap::Signed;
        let m = self.matrix(s.node)?;
        let (rows, cols) = m.dim();
        let written = if exact {
            io::save_gray(&path, m.mapv(|v| v.as_f64()).view(), s.bits)
        } else {
            // the values as f64 in one copy, fitted on the way
            let (fit, clipped) = fit(m, s.range, signed, &s.path).map_err(fail)?;
            let m = fit.map(m, |v| v);
            if clipped.values > 0 {
                let unit = if signed { "[−1, 1]" } else { "[0, 1]" };
                self.events.warn(&format!(
                    "\"{}\": clipped {} of {} values outside {unit} (range {:.4} … {:.4}); `with range = \"normalize\"` rescales instead",
                    s.path,
                    clipped.values,
                    rows * cols,
                    clipped.lo,
                    clipped.hi
                ));
            }
            if signed {
                let [r, g, b] = signed_colours(&m);
                io::save_rgb(&path, r.view(), g.view(), b.view())
            } else {
                io::save_gray(&path, m.view(), s.bits)
            }
        };
        let sha256 = written.map_err(|e| {
            Failure::new(Some(s.span), e, "check that the output folder is writable")
        })?;
        self.wrote(path, sha256, Saved::Image { rows, cols });
        Ok(())
    }

    /// One frame of an animation: the value under the animation's range policy, as 8-bit levels.
    fn frame(
        &mut self,
        node: NodeId,
        a: &Animation,
        clipped: &mut Clipped,
    ) -> Result<Array2<u8>, Failure> {
        let m = self.matrix(node)?;
        let (fit, c) = fit(m, a.range, false, &a.path).map_err(|e| {
            Failure::new(
                Some(a.span),
                e,
                "choose `with range = \"clip\"` or `\"normalize\"` (per frame)",
            )
        })?;
        if c.values > 0 {
            *clipped = Clipped {
                values: clipped.values + c.values,
                frames: clipped.frames + 1,
                lo: clipped.lo.min(c.lo),
                hi: clipped.hi.max(c.hi),
            };
        }
        Ok(fit.map(m, io::gray8))
    }

    /// Where an animation of `frames` frames goes, and the warnings to give with it.
    fn animation(
        &self,
        a: &Animation,
        frames: usize,
        clipped: Clipped,
    ) -> Result<Planned, Failure> {
        let path = self.output(&a.path, a.span)?;
        let shown = if a.palindrome && frames > 2 {
            2 * frames - 2
        } else {
            frames
        };
        let mut warnings = Vec::new();
        if clipped.values > 0 {
            warnings.push(format!(
                "\"{}\": clipped {} values outside [0, 1] in {} of {shown} frames (range {:.4} … {:.4}); `with range = \"normalize\"` rescales each frame instead",
                a.path, clipped.values, clipped.frames, clipped.lo, clipped.hi
            ));
        }
        if is_gif(&path) && a.fps > io::GIF_MAX_FPS {
            warnings.push(format!(
                "\"{}\": a GIF plays at most {} frames per second, not {}: its frames are shown for 1/{} s each",
                a.path,
                io::GIF_MAX_FPS,
                a.fps,
                io::GIF_MAX_FPS
            ));
        }
        Ok(Planned {
            path,
            span: a.span,
            warnings,
        })
    }

    /// Reports files written (or not), in order: each one's warnings, then that it was saved.
    /// The first that could not be written, or could not be planned, is the error.
    fn report(&mut self, files: Vec<Result<Written, Failure>>) -> Result<(), Failure> {
        let mut first = None;
        for file in files {
            match file {
                Ok(w) => {
                    for warning in &w.warnings {
                        self.events.warn(warning);
                    }
                    match w.sha256 {
                        Ok(sha256) => self.wrote(w.path, sha256, w.what),
                        Err(e) => {
                            let hint = "check that the output folder is writable";
                            first.get_or_insert(Failure::new(Some(w.span), e, hint));
                        }
                    }
                }
                Err(f) => {
                    first.get_or_insert(f);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn sweep(&mut self, s: &Sweep) -> Result<(), Failure> {
        let fresh: Vec<bool> = (0..self.program.graph.len())
            .map(|i| i >= s.fresh.0)
            .collect();
        self.events
            .begin(&format!("sweep {}", s.param), 0, s.frames.len());
        let mut frames = Vec::with_capacity(s.frames.len());
        let mut clipped = Clipped::default();
        for (i, &(_, node)) in s.frames.iter().enumerate() {
            if self.interrupted() {
                self.stopped = Some(Failure {
                    interrupted: true,
                    ..Failure::new(
                        Some(s.animation.span),
                        format!(
                            "interrupted (Ctrl-C) during the sweep of `{}` after {i} of {} frames; \"{}\" was not written",
                            s.param,
                            s.frames.len(),
                            s.animation.path
                        ),
                        "run the script again to make the animation",
                    )
                });
                return Ok(());
            }
            frames.push(self.frame(node, &s.animation, &mut clipped)?);
            // The frame's own nodes are not needed again.
            self.values.invalidate(&fresh);
            self.events.frame(i + 1);
        }
        let planned = self.animation(&s.animation, frames.len(), clipped)?;
        let views = frames.iter().map(|f| f.view());
        let written = animate(planned, &s.animation, views, self.io.threads());
        self.report(written.into_iter().map(Ok).collect())
    }

    fn optimize(&mut self, o: &Optimize, index: usize) -> Result<(), Failure> {
        let graph = &self.program.graph;
        let relevant = grad::relevant(graph, o.loss, &o.over);
        let dirty = graph.descendants(&o.over);
        let types: Vec<_> = o.over.iter().map(|id| graph.node(*id).ty).collect();
        let mut state = o.optimizer.init::<T>(&types);
        let mut losses = Vec::with_capacity(o.steps + 1);
        let mut recordings: Vec<Frames> = vec![Vec::new(); o.records.len()];
        if let Some(c) = self.resume.take_if(|c| c.meta.optimize == index) {
            self.restore(o, c, &mut state, &mut losses, &mut recordings)?;
        }
        let resumed_from = state.step as usize;
        let mut patience = o.stop.map(|(patience, min_delta)| Patience {
            patience,
            min_delta,
            best: f64::INFINITY,
            wait: 0,
        });
        // Replay a resumed optimisation's losses, to stop where it would have.
        if let Some(p) = &mut patience {
            for l in &losses {
                p.exhausted(*l);
            }
        }
        let mut clipped = vec![Clipped::default(); o.records.len()];
        let mut times = Vec::with_capacity(o.steps);
        self.events.begin(
            &format!("optimize {}", o.names.join(", ")),
            resumed_from,
            o.steps,
        );
        let diverged = |what: &str, done: usize| {
            Failure::new(
                Some(o.span),
                format!(
                    "the optimisation diverged at step {}: {what} is not finite",
                    done + 1
                ),
                "lower the learning rate, or check the loss for divisions by zero (normalize of a constant, log of 0)",
            )
        };
        let (end, failure) = loop {
            let done = state.step as usize;
            let start = Instant::now();
            self.values.compute(graph, &[o.loss], self.io)?;
            let loss = self.values.get(o.loss).scalar().as_f64();
            losses.push(loss);
            let end = if !loss.is_finite() {
                break (End::Diverged, Some(diverged("the loss", done)));
            } else if done == o.steps {
                Some(End::Completed)
            } else if self.interrupted() {
                Some(End::Interrupted)
            } else if patience.as_mut().is_some_and(|p| p.exhausted(loss)) {
                Some(End::Patience)
            } else {
                None
            };
            for (i, r) in o.records.iter().enumerate() {
                let taken = recordings[i].last().is_some_and(|(s, _)| *s == done);
                if (done.is_multiple_of(r.every) || end.is_some()) && !taken {
                    let frame = self.frame(r.node, &r.animation, &mut clipped[i])?;
                    recordings[i].push((done, frame));
                }
            }
            if let Some(end) = end {
                let failure = (end == End::Interrupted).then(|| Failure {
                    interrupted: true,
                    ..Failure::new(
                        Some(o.span),
                        format!("interrupted (Ctrl-C) after step {done} of {}", o.steps),
                        "the script's saves after it used the state of that step",
                    )
                });
                break (end, failure);
            }
            self.events.step(done + 1, loss);
            match update(graph, &mut self.values, o, &relevant, &dirty, &mut state) {
                Ok(()) => {}
                Err(Diverged::Gradient) => {
                    break (End::Diverged, Some(diverged("a gradient", done)))
                }
                Err(Diverged::Update(i)) => {
                    let what = format!("the update of `{}`", o.names[i]);
                    break (End::Diverged, Some(diverged(&what, done + 1)));
                }
            }
            times.push(start.elapsed().as_secs_f64() * 1e3);
        };
        let done = state.step as usize;
        let summary = OptimizeSummary {
            learnables: o.names.clone(),
            optimizer: o.optimizer,
            steps: done,
            planned: o.steps,
            resumed_from,
            final_loss: losses.get(done).copied().unwrap_or(f64::NAN),
            end,
            losses,
            median_step_ms: median(times),
        };
        self.events.optimized(&summary);
        let losses = summary.losses.clone();
        self.journal.optimizations.push(summary);
        // What the optimisation writes: its checkpoint first (what a stopped run needs most),
        // then the loss log and the recordings. Once the run is stopped, a write that fails
        // is only a warning: the rest is still written.
        let checkpoint_path = match (&o.checkpoint, &failure) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(_)) => Some(self.settings.fallback_checkpoint.clone()),
            (None, None) => None,
        };
        self.stopped = failure;
        let checkpoint = match checkpoint_path {
            Some(written) => Some(self.output(&written, o.span)?),
            None => None,
        };
        let log = (o.log.as_ref()).map(|l| {
            self.output(l, o.span).map(|path| Planned {
                path,
                span: o.span,
                warnings: Vec::new(),
            })
        });
        // None when the very first loss diverged.
        let animations: Vec<Option<Result<Planned, Failure>>> = (o.records.iter())
            .zip(&recordings)
            .zip(&clipped)
            .map(|((r, frames), clipped)| {
                (!frames.is_empty()).then(|| self.animation(&r.animation, frames.len(), *clipped))
            })
            .collect();
        // The frames taken before step `done` (they come in step order) are lent to the
        // checkpoint rather than copied; the animations read them there.
        let later: Vec<Frames> = (recordings.iter_mut())
            .map(|f| match checkpoint {
                Some(_) => f.split_off(f.partition_point(|(s, _)| *s < done)),
                None => Vec::new(),
            })
            .collect();
        let c = checkpoint.as_ref().map(|_| Checkpoint {
            meta: checkpoint::Meta {
                format: checkpoint::FORMAT.into(),
                imgx: env!("CARGO_PKG_VERSION").into(),
                precision: T::NAME.into(),
                script_sha256: self.settings.script_sha256.clone(),
                optimize: index,
                learnables: o.names.clone(),
                optimizer: serde_json::to_value(o.optimizer).expect("serialises"),
                step: state.step,
                record_every: o.records.iter().map(|r| r.every).collect(),
            },
            values: (o.over.iter())
                .map(|id| self.values.get(*id).clone())
                .collect(),
            state,
            losses: losses[..done].to_vec(),
            recordings: std::mem::take(&mut recordings),
        });
        let taken = c.as_ref().map_or(&recordings, |c| &c.recordings);
        let threads = self.io.threads();
        // The checkpoint and the loss log are written on a thread of their own while the
        // animations are compressed on `threads` others (with one thread, before them), then
        // all are reported in that order.
        let (c, checkpoint_at, losses) = (&c, &checkpoint, &losses);
        let side = move || {
            let mut files = Vec::new();
            if let (Some(path), Some(c)) = (checkpoint_at, c) {
                files.push(Ok(Written {
                    path: path.clone(),
                    span: o.span,
                    what: Saved::File,
                    warnings: Vec::new(),
                    sha256: io::write_atomic_with(path, |w| checkpoint::encode_to(c, w)),
                }));
            }
            match log {
                Some(Ok(planned)) => {
                    files.extend(write_log::<T>(planned, losses).into_iter().map(Ok))
                }
                Some(Err(f)) => files.push(Err(f)),
                None => {}
            }
            files
        };
        let animated = || {
            let mut files = Vec::new();
            for (i, (r, planned)) in o.records.iter().zip(animations).enumerate() {
                match planned {
                    Some(Ok(planned)) => {
                        let frames = taken[i].iter().chain(&later[i]).map(|(_, f)| f.view());
                        let written = animate(planned, &r.animation, frames, threads);
                        files.extend(written.into_iter().map(Ok));
                    }
                    Some(Err(f)) => files.push(Err(f)),
                    None => {}
                }
            }
            files
        };
        let (side, animated) = if threads > 1 {
            std::thread::scope(|scope| {
                let side = scope.spawn(side);
                let animated = animated();
                let side = side.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                (side, animated)
            })
        } else {
            (side(), animated())
        };
        let checkpointed = matches!(side.first(), Some(Ok(w)) if w.sha256.is_ok());
        if let (Some(path), Some(f), true) = (checkpoint, &mut self.stopped, checkpointed) {
            f.checkpoint = Some(path);
        }
        self.report(side.into_iter().chain(animated).collect())
    }

    /// Puts a checkpoint's state in place, after checking that it fits this optimisation.
    fn restore(
        &mut self,
        o: &Optimize,
        c: Checkpoint<T>,
        state: &mut crate::optim::State<T>,
        losses: &mut Vec<f64>,
        recordings: &mut Vec<Frames>,
    ) -> Result<(), Failure> {
        let fail = |message: String| {
            Failure::new(
                Some(o.span),
                message,
                "resume with the script (and `--set` values) the checkpoint was made with",
            )
        };
        let graph = &self.program.graph;
        if c.meta.learnables != o.names {
            return Err(fail(format!(
                "the checkpoint is for an optimisation over {}, and this one is over {}",
                c.meta.learnables.join(", "),
                o.names.join(", ")
            )));
        }
        for ((v, id), name) in c.values.iter().zip(&o.over).zip(&o.names) {
            if v.ty() != graph.node(*id).ty {
                return Err(fail(format!(
                    "`{name}` is a {} in the checkpoint and a {} here",
                    v.ty(),
                    graph.node(*id).ty
                )));
            }
        }
        let optimizer = serde_json::to_value(o.optimizer).expect("serialises");
        if c.meta.optimizer["name"] != optimizer["name"] {
            return Err(fail(format!(
                "the checkpoint holds the state of {} and this optimisation uses {}",
                c.meta.optimizer["name"], optimizer["name"]
            )));
        }
        if c.meta.optimizer != optimizer {
            self.events.warn(&format!(
                "the checkpoint was made with {} and the optimisation continues with {}: the trajectory differs from an uninterrupted run",
                c.meta.optimizer, optimizer
            ));
        }
        if c.meta.script_sha256 != self.settings.script_sha256 {
            self.events
                .warn("the script changed since the checkpoint was made");
        }
        if c.state.step as usize > o.steps {
            return Err(fail(format!(
                "the checkpoint has done {} steps, more than the {} this optimisation asks for",
                c.state.step, o.steps
            )));
        }
        let fits = o.records.iter().zip(&c.recordings).all(|(r, frames)| {
            let shape = graph.node(r.node).ty.dims();
            frames
                .iter()
                .all(|(_, f)| f.dim() == (shape.rows, shape.cols))
        });
        let every: Vec<usize> = o.records.iter().map(|r| r.every).collect();
        if fits && c.meta.record_every == every {
            *recordings = c.recordings;
        } else {
            self.events.warn(
                "the recordings changed since the checkpoint was made: the animations start at the resumed step",
            );
        }
        self.values.invalidate(&graph.descendants(&o.over));
        for (id, v) in o.over.iter().zip(c.values) {
            self.values.set(*id, v);
        }
        *state = c.state;
        *losses = c.losses;
        Ok(())
    }
}

/// A file to write: where, the statement that writes it, and the warnings to give with it.
struct Planned {
    path: PathBuf,
    span: Span,
    warnings: Vec<String>,
}

/// A file written, or not: the SHA-256 of what was written, or why it could not be.
struct Written {
    path: PathBuf,
    span: Span,
    what: Saved,
    warnings: Vec<String>,
    sha256: Result<io::Sha256, String>,
}

fn is_gif(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gif"))
}

/// `log to "loss.csv"`: the losses as CSV, and as a chart beside it (`.svg` and `.png`), up to
/// the first that cannot be written.
fn write_log<T: Real>(planned: Planned, losses: &[f64]) -> Vec<Written> {
    let Planned { path, span, .. } = planned;
    let mut csv = String::from("step,loss\n");
    for (k, l) in losses.iter().enumerate() {
        // Shortest text that reads back as the same float of the run's type.
        let _ = writeln!(csv, "{k},{}", T::lit(*l));
    }
    let chart = Chart::new(losses, "loss", "step");
    let svg = chart.svg();
    let [r, g, b] = chart.raster();
    let (rows, cols) = r.dim();
    type Writer<'a> = Box<dyn Fn(&Path) -> Result<io::Sha256, String> + 'a>;
    let files: [(PathBuf, Saved, Writer); 3] = [
        (
            path.clone(),
            Saved::File,
            Box::new(|p| io::write_atomic(p, csv.as_bytes())),
        ),
        (
            path.with_extension("svg"),
            Saved::File,
            Box::new(|p| io::write_atomic(p, svg.as_bytes())),
        ),
        (
            path.with_extension("png"),
            Saved::Image { rows, cols },
            Box::new(|p| io::save_rgb(p, r.view(), g.view(), b.view())),
        ),
    ];
    until_failed(files.into_iter().map(|(path, what, write)| Written {
        sha256: write(&path),
        path,
        span,
        what,
        warnings: Vec::new(),
    }))
    .collect()
}

/// Writes an animation's frames as a GIF, or as numbered PNGs (`x.png` → `x-0000.png`, …) up
/// to the first that cannot be written.
fn animate<'a>(
    planned: Planned,
    a: &Animation,
    frames: impl Iterator<Item = ArrayView2<'a, u8>>,
    threads: usize,
) -> Vec<Written> {
    let mut frames: Vec<ArrayView2<u8>> = frames.collect();
    if a.palindrome && frames.len() > 2 {
        let back: Vec<ArrayView2<u8>> = frames[1..frames.len() - 1].iter().rev().copied().collect();
        frames.extend(back);
    }
    let (rows, cols) = frames.first().map_or((0, 0), |f| f.dim());
    let Planned {
        path,
        span,
        mut warnings,
    } = planned;
    if is_gif(&path) {
        return vec![Written {
            sha256: io::save_gif(&path, &frames, a.fps, threads),
            path,
            span,
            what: Saved::Animation {
                rows,
                cols,
                frames: frames.len(),
            },
            warnings,
        }];
    }
    let digits = frames.len().to_string().len().max(4);
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let files = frames.iter().enumerate().map(|(i, f)| {
        let numbered = path.with_file_name(format!("{stem}-{i:0digits$}.png"));
        Written {
            sha256: io::save_gray8(&numbered, *f),
            path: numbered,
            span,
            what: Saved::Image { rows, cols },
            // given with the first
            warnings: std::mem::take(&mut warnings),
        }
    });
    until_failed(files).collect()
}

/// The files up to and including the first that could not be written (the rest are not).
fn until_failed(files: impl Iterator<Item = Written>) -> impl Iterator<Item = Written> {
    let mut failed = false;
    files.map_while(move |w| {
        (!failed).then(|| {
            failed = w.sha256.is_err();
            w
        })
    })
}

fn show<T: Dispatch>(v: &Value<T>) -> Shown {
    match v {
        Value::Scalar(s) => Shown::Scalar(s.as_f64()),
        Value::Matrix(m) => {
            let (min, max) = m
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v.as_f64()), hi.max(v.as_f64()))
                });
            let mean = m.iter().map(|v| v.as_f64()).sum::<f64>() / m.len().max(1) as f64;
            Shown::Matrix {
                rows: m.nrows(),
                cols: m.ncols(),
                min,
                max,
                mean,
            }
        }
    }
}

/// How a range policy maps a matrix's values into [0, 1] (or [−1, 1] when signed), found by
/// [`fit`] from the values.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fit {
    /// Values outside [floor, 1] become its nearest end; values inside stay as they are.
    Clamp { floor: f64 },
    /// lo…lo + span to 0…1 (all 0 if span is 0).
    Shift { lo: f64, span: f64 },
    /// Divided by the largest magnitude, `top`, so 0 stays 0 (all 0 if top is 0).
    Scale { top: f64 },
}

impl Fit {
    /// `out` of each fitted value, in one pass (the match is outside the loop, so it
    /// vectorises).
    fn map<T: Real, O>(self, m: ArrayView2<T>, out: impl Fn(f64) -> O) -> Array2<O> {
        // over a slice where the entries are one (ndarray's element iterators do not vectorise)
        fn each<T: Real, O>(m: ArrayView2<T>, f: impl Fn(T) -> O) -> Array2<O> {
            match m.as_slice() {
                Some(s) => Array2::from_shape_vec(m.dim(), s.iter().map(|&v| f(v)).collect())
                    .unwrap_or_else(|_| unreachable!("as many entries as the shape")),
                None => m.mapv(f),
            }
        }
        match self {
            Fit::Clamp { floor } => each(m, |v| out(v.as_f64().clamp(floor, 1.0))),
            Fit::Shift { lo, span } if span > 0.0 => each(m, |v| out((v.as_f64() - lo) / span)),
            Fit::Scale { top } if top > 0.0 => each(m, |v| out(v.as_f64() / top)),
            Fit::Shift { .. } | Fit::Scale { .. } => each(m, |_| out(0.0)),
        }
    }
}

/// How to map values into [0, 1] (or [−1, 1] when `signed`) by policy, and what that clips.
/// Normalising maps min…max to 0…1, or divides by the largest magnitude when `signed` (so 0
/// stays 0). Non-finite values are always refused. One pass over the values (two if some lie
/// outside the range and the policy clips or refuses them).
fn fit<T: Real>(
    m: ArrayView2<T>,
    policy: RangePolicy,
    signed: bool,
    what: &str,
) -> Result<(Fit, Clipped), String> {
    let all: Vec<T>;
    let values = match m.as_slice_memory_order() {
        Some(v) => v,
        None => {
            all = m.iter().copied().collect();
            &all
        }
    };
    let range = min_max(values)
        .map(|(lo, hi)| (lo.as_f64(), hi.as_f64()))
        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite());
    let Some((lo, hi)) = range else {
        let bad = values
            .iter()
            .map(|v| v.as_f64())
            .find(|v| !v.is_finite())
            .unwrap_or(f64::NAN);
        return Err(format!(
            "\"{what}\" has a non-finite value ({bad}); an image cannot hold it"
        ));
    };
    let floor = if signed { -1.0 } else { 0.0 };
    let mut clipped = Clipped::default();
    let fit = match policy {
        RangePolicy::Normalize if signed => Fit::Scale {
            top: lo.abs().max(hi.abs()),
        },
        RangePolicy::Normalize => Fit::Shift { lo, span: hi - lo },
        RangePolicy::Clip | RangePolicy::Error => {
            if lo < floor || hi > 1.0 {
                // a sum of 0/1 rather than a filter, so it vectorises
                let outside = values.iter().fold(0usize, |n, v| {
                    let v = v.as_f64();
                    n + usize::from(v < floor || v > 1.0)
                });
                if policy == RangePolicy::Error {
                    return Err(format!(
                        "\"{what}\": {outside} values lie outside [{floor}, 1] (range {lo:.4} … {hi:.4})"
                    ));
                }
                clipped = Clipped {
                    values: outside,
                    frames: 1,
                    lo,
                    hi,
                };
            }
            Fit::Clamp { floor }
        }
    };
    Ok((fit, clipped))
}

/// The colour of +1 in a signed false-colour image (purple); −1 is [`BELOW`] (green). The two
/// have about the same brightness (Rec. 601 luma ≈ 0.56), so neither side looks larger.
const ABOVE: [f64; 3] = [0.8, 0.35, 1.0];
const BELOW: [f64; 3] = [0.2, 0.8, 0.2];

/// Red, green and blue planes of values in [−1, 1]: |v| times the colour of v's sign.
fn signed_colours(m: &Array2<f64>) -> [Array2<f64>; 3] {
    std::array::from_fn(|c| {
        m.mapv(|v| {
            if v >= 0.0 {
                v * ABOVE[c]
            } else {
                -v * BELOW[c]
            }
        })
    })
}

/// The median of xs (0 for none). Also the benchmarks'.
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values fitted by policy, and what was clipped.
    fn fitted(
        m: &Array2<f64>,
        policy: RangePolicy,
        signed: bool,
    ) -> Result<(Array2<f64>, Clipped), String> {
        fit(m.view(), policy, signed, "x").map(|(f, c)| (f.map(m.view(), |v| v), c))
    }

    #[test]
    fn policies_fit_values_into_range() {
        let m = Array2::from_shape_vec((1, 4), vec![-0.5, 0.0, 0.5, 2.0]).unwrap();
        let (c, clipped) = fitted(&m, RangePolicy::Clip, false).unwrap();
        assert_eq!(c.as_slice().unwrap(), [0.0, 0.0, 0.5, 1.0]);
        assert_eq!((clipped.values, clipped.lo, clipped.hi), (2, -0.5, 2.0));
        let (n, clipped) = fitted(&m, RangePolicy::Normalize, false).unwrap();
        assert_eq!(n.as_slice().unwrap(), [0.0, 0.2, 0.4, 1.0]);
        assert_eq!(clipped.values, 0);
        let (s, _) = fitted(&m, RangePolicy::Normalize, true).unwrap();
        assert_eq!(s.as_slice().unwrap(), [-0.25, 0.0, 0.25, 1.0]);
        let (s, clipped) = fitted(&m, RangePolicy::Clip, true).unwrap();
        assert_eq!(s.as_slice().unwrap(), [-0.5, 0.0, 0.5, 1.0]);
        assert_eq!(clipped.values, 1);
        assert!(fitted(&m, RangePolicy::Error, false)
            .unwrap_err()
            .contains("2 values"));
        // non-finite values are found in the lanes and in the tail, in any policy
        for len in [1, 8, 9, 17] {
            for at in [0, len - 1] {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut v = Array2::from_elem((1, len), 0.5);
                    v[[0, at]] = bad;
                    for policy in [RangePolicy::Clip, RangePolicy::Normalize] {
                        let e = fitted(&v, policy, false).unwrap_err();
                        assert!(e.contains(&format!("({bad})")), "{e}");
                    }
                }
            }
            let fine = Array2::from_elem((1, len), 0.5);
            assert!(fitted(&fine, RangePolicy::Error, false).is_ok(), "{len}");
        }
        // a constant matrix normalises to 0, signed or not
        let flat = Array2::from_elem((2, 3), 0.25);
        for signed in [false, true] {
            let (n, _) = fitted(&flat.mapv(|v| v - 0.25), RangePolicy::Normalize, signed).unwrap();
            assert!(n.iter().all(|&v| v == 0.0));
        }
        let (n, _) = fitted(&flat, RangePolicy::Normalize, false).unwrap();
        assert!(n.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn frames_fit_f32_values_in_any_layout_as_f64_images_do() {
        // f32 values, in a view that is not contiguous (every other column), to 8-bit levels:
        // the same levels as the values widened to f64, fitted, then rounded one by one.
        let wide = Array2::from_shape_fn((3, 10), |(i, j)| (i * 10 + j) as f32 / 20.0 - 0.25);
        let view = wide.slice(ndarray::s![.., ..;2]);
        assert!(view.as_slice_memory_order().is_none());
        for policy in [RangePolicy::Clip, RangePolicy::Normalize] {
            let (f, clipped) = fit(view, policy, false, "x").unwrap();
            let levels = f.map(view, io::gray8);
            let (want, want_clipped) = fitted(&view.mapv(f64::from), policy, false).unwrap();
            assert_eq!(levels, want.mapv(io::gray8));
            assert_eq!(clipped.values, want_clipped.values);
        }
        let (_, clipped) = fit(view, RangePolicy::Clip, false, "x").unwrap();
        // −0.25, −0.15, −0.05 (first row) and 1.05, 1.15 (last row) lie outside
        assert_eq!((clipped.values, clipped.lo), (5, -0.25));
    }

    #[test]
    fn signed_colours_scale_with_magnitude() {
        let m = Array2::from_shape_vec((1, 3), vec![1.0, -0.5, 0.0]).unwrap();
        let [r, g, b] = signed_colours(&m);
        assert_eq!([r[[0, 0]], g[[0, 0]], b[[0, 0]]], ABOVE);
        assert_eq!([r[[0, 1]], g[[0, 1]], b[[0, 1]]], BELOW.map(|c| c / 2.0));
        assert_eq!([r[[0, 2]], g[[0, 2]], b[[0, 2]]], [0.0; 3]);
        let luma = |c: [f64; 3]| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        assert!((luma(ABOVE) - luma(BELOW)).abs() < 0.02);
    }

    #[test]
    fn patience_counts_losses_without_improvement() {
        let mut p = Patience {
            patience: 2,
            min_delta: 0.1,
            best: f64::INFINITY,
            wait: 0,
        };
        assert!(!p.exhausted(1.0));
        assert!(!p.exhausted(0.95), "not better by more than 0.1");
        assert!(!p.exhausted(0.8), "better: the count starts again");
        assert!(!p.exhausted(0.85));
        assert!(p.exhausted(0.75));
    }
}
