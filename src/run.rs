//! Executes a checked [`Program`]: statements in order, `optimize` loops, outputs. Reports what
//! happens through [`Events`] (the CLI renders them as text or JSON Lines); writes files only
//! through `io`.

use crate::ast::Span;
use crate::eval::{EvalError, Values};
use crate::grad;
use crate::graph::NodeId;
use crate::io::{self, DiskIo};
use crate::lower::{Optimize, Printable, Program, RangePolicy, Save, Step};
use crate::ops::Dispatch;
use crate::tensor::Value;
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where outputs go and what may be written.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Output paths in the script resolve against this folder.
    pub out_dir: PathBuf,
    /// Permit absolute paths and `..` escapes in output paths.
    pub allow_write_anywhere: bool,
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

/// Things that happen during a run, in order.
pub trait Events {
    /// Before update `step` (1-based) the loss is `loss`.
    fn step(&mut self, step: usize, loss: f64);
    /// An optimisation ended after `steps` updates with `loss`.
    fn optimized(&mut self, steps: usize, loss: f64, median_step_ms: f64);
    fn print(&mut self, expr: &str, shown: &Shown);
    fn saved(&mut self, path: &Path, rows: usize, cols: usize);
    /// Something the user should know that is not an error (e.g. clipped pixels).
    fn warn(&mut self, message: &str);
}

/// A run that could not finish.
#[derive(Debug)]
pub struct Failure {
    pub span: Option<Span>,
    pub message: String,
    pub help: String,
}

impl From<EvalError> for Failure {
    fn from(e: EvalError) -> Self {
        Failure {
            span: Some(e.span),
            message: e.message,
            help: "check that the file is still there and readable".into(),
        }
    }
}

/// What a finished optimisation reports (for the manifest and tests).
#[derive(Clone, Debug, serde::Serialize)]
pub struct OptimizeSummary {
    pub learnables: Vec<String>,
    pub steps: usize,
    pub final_loss: f64,
    /// Loss before each update, then after the last one (`steps + 1` entries).
    pub losses: Vec<f64>,
}

/// Runs the program in float type `T`.
pub fn execute<T: Dispatch>(
    program: &Program,
    io: &DiskIo,
    settings: &Settings,
    events: &mut dyn Events,
) -> Result<Vec<OptimizeSummary>, Failure> {
    let graph = &program.graph;
    let mut values = Values::<T>::new(graph);
    let mut summaries = Vec::new();
    for step in &program.steps {
        match step {
            Step::Learn { node, init } => learn(program, *node, *init, &mut values, io)?,
            Step::Print { what, text, .. } => {
                let shown = match what {
                    Printable::Text(t) => Shown::Text(t.clone()),
                    Printable::Node(id) => {
                        values.compute(graph, &[*id], io)?;
                        show(values.get(*id))
                    }
                };
                events.print(text, &shown);
            }
            Step::Save(s) => {
                values.compute(graph, &[s.node], io)?;
                let m = values.get(s.node).matrix().mapv(|v| v.as_f64());
                save(s, m, settings, events)?;
            }
            Step::Optimize(o) => summaries.push(optimize(program, o, &mut values, io, events)?),
        }
    }
    Ok(summaries)
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

/// Applies the range policy for 8/16-bit images; `.npy` keeps exact values.
fn save(
    s: &Save,
    m: Array2<f64>,
    settings: &Settings,
    events: &mut dyn Events,
) -> Result<(), Failure> {
    let fail = |message: String, help: &str| Failure {
        span: Some(s.span),
        message,
        help: help.to_string(),
    };
    let path = io::output_path(&settings.out_dir, &s.path, settings.allow_write_anywhere).map_err(
        |e| {
            fail(
                e,
                "write inside the output folder (see `--out`), or pass `--allow-write-anywhere`",
            )
        },
    )?;
    let exact = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let m = if exact {
        m
    } else {
        in_range(m, s.range, &s.path, events).map_err(|e| fail(e, "choose `with range = \"clip\"` or `\"normalize\"`, or save as .npy to keep exact values"))?
    };
    io::save_gray(&path, m.view(), s.bits)
        .map_err(|e| fail(e, "check that the output folder is writable"))?;
    events.saved(&path, m.nrows(), m.ncols());
    Ok(())
}

/// Maps values into [0, 1] by policy, saying what it did. Non-finite values are always refused.
pub fn in_range(
    mut m: Array2<f64>,
    policy: RangePolicy,
    what: &str,
    events: &mut dyn Events,
) -> Result<Array2<f64>, String> {
    if let Some(bad) = m.iter().find(|v| !v.is_finite()) {
        return Err(format!(
            "\"{what}\" has a non-finite value ({bad}); an image cannot hold it"
        ));
    }
    let (lo, hi) = m
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    match policy {
        RangePolicy::Normalize => {
            let span = hi - lo;
            m.mapv_inplace(|v| if span > 0.0 { (v - lo) / span } else { 0.0 });
        }
        RangePolicy::Clip | RangePolicy::Error => {
            let outside = m.iter().filter(|v| !(0.0..=1.0).contains(*v)).count();
            if outside > 0 {
                if policy == RangePolicy::Error {
                    return Err(format!(
                        "\"{what}\": {outside} values lie outside [0, 1] (range {lo:.4} … {hi:.4})"
                    ));
                }
                events.warn(&format!(
                    "\"{what}\": clipped {outside} of {} values outside [0, 1] (range {lo:.4} … {hi:.4}); `with range = \"normalize\"` rescales instead",
                    m.len()
                ));
                m.mapv_inplace(|v| v.clamp(0.0, 1.0));
            }
        }
    }
    Ok(m)
}

fn median(mut xs: Vec<f64>) -> f64 {
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

fn optimize<T: Dispatch>(
    program: &Program,
    o: &Optimize,
    values: &mut Values<T>,
    io: &DiskIo,
    events: &mut dyn Events,
) -> Result<OptimizeSummary, Failure> {
    let graph = &program.graph;
    let relevant = grad::relevant(graph, o.loss, &o.over);
    let dirty = graph.descendants(&o.over);
    let types: Vec<_> = o.over.iter().map(|id| graph.node(*id).ty).collect();
    let mut state = o.optimizer.init::<T>(&types);
    let mut losses = Vec::with_capacity(o.steps + 1);
    let mut times = Vec::with_capacity(o.steps);
    let diverged = |k: usize, what: &str| {
        Failure {
        span: Some(o.span),
        message: format!("the optimisation diverged at step {k}: {what} is not finite"),
        help: "lower the learning rate, or check the loss for divisions by zero (normalize of a constant, log of 0)".into(),
    }
    };
    for k in 1..=o.steps {
        let start = Instant::now();
        let loss = forward_loss(graph, values, o.loss, io)?;
        if !loss.is_finite() {
            return Err(diverged(k, "the loss"));
        }
        losses.push(loss);
        events.step(k, loss);
        let grads = grad::backward(graph, values, o.loss, &o.over, &relevant);
        if grads.iter().any(|g| g.iter().any(|v| !v.is_finite())) {
            return Err(diverged(k, "a gradient"));
        }
        let mut current: Vec<Value<T>> = o.over.iter().map(|id| values.get(*id).clone()).collect();
        o.optimizer.update(&mut state, &mut current, &grads);
        values.invalidate(&dirty);
        for (id, v) in o.over.iter().zip(current) {
            values.set(*id, v);
        }
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let last = forward_loss(graph, values, o.loss, io)?;
    losses.push(last);
    events.optimized(o.steps, last, median(times));
    Ok(OptimizeSummary {
        learnables: o.names.clone(),
        steps: o.steps,
        final_loss: last,
        losses,
    })
}

fn forward_loss<T: Dispatch>(
    graph: &crate::graph::Graph,
    values: &mut Values<T>,
    loss: NodeId,
    io: &DiskIo,
) -> Result<f64, Failure> {
    values.compute(graph, &[loss], io)?;
    Ok(values.get(loss).scalar().as_f64())
}
