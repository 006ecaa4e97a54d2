//! Checks a script's own gradients against central finite differences in f64: the analytic
//! vector-Jacobian product of an output with fixed random weights w, ⟨w, J·v⟩, against
//! (L(x + εv) − L(x − εv)) / 2ε with L(x) = ⟨w, output(x)⟩. Small learnables are checked
//! element by element (v = unit vectors); large ones along random ±1 directions, as
//! `jax.test_util.check_grads` does.

use crate::eval::Values;
use crate::grad;
use crate::graph::NodeId;
use crate::io::DiskIo;
use crate::lower::{Program, Step};
use crate::run::{self, Failure};
use crate::tensor::{Type, Value};
use ndarray::Array2;

/// Step of the central differences (the default of `torch.autograd.gradcheck`).
pub const EPS: f64 = 1e-6;
/// Learnables with at most this many elements are checked element by element.
pub const ELEMENTWISE_MAX: usize = 64;
/// Random directions for larger learnables.
pub const DIRECTIONS: usize = 3;

/// The outcome for one learnable.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub learnable: String,
    /// Directions (or elements) compared.
    pub checked: usize,
    /// max |analytic − numeric| / max(|numeric|, |analytic|, 1e-12)
    pub worst_relative_error: f64,
    /// max |analytic − numeric| − 1e-3·|numeric| (≤ 1e-5 passes, as torch's gradcheck)
    pub worst_excess: f64,
}

impl Outcome {
    /// Whether every comparison met |analytic − numeric| ≤ 1e-5 + 1e-3·|numeric|.
    pub fn passed(&self) -> bool {
        self.worst_excess <= 1e-5
    }
}

/// splitmix64, for reproducible weights and directions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    fn value(&mut self, ty: Type, f: impl Fn(f64) -> f64) -> Value<f64> {
        match ty {
            Type::Scalar => Value::Scalar(f(self.next())),
            Type::Matrix(s) => {
                Value::Matrix(Array2::from_shape_fn((s.rows, s.cols), |_| f(self.next())))
            }
        }
    }
}

fn dot(a: &Value<f64>, b: &Value<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

fn axpy(x: &Value<f64>, t: f64, v: &Value<f64>) -> Value<f64> {
    match (x, v) {
        (Value::Scalar(x), Value::Scalar(v)) => Value::Scalar(x + t * v),
        (Value::Matrix(x), Value::Matrix(v)) => Value::Matrix(x + &(v * t)),
        _ => unreachable!("direction has the learnable's type"),
    }
}

/// Checks d⟨w, output⟩/d x for each learnable in `wrt`, at the values currently set.
pub fn check_node(
    program: &Program,
    values: &mut Values<f64>,
    output: NodeId,
    wrt: &[(String, NodeId)],
    io: &DiskIo,
) -> Result<Vec<Outcome>, Failure> {
    let graph = &program.graph;
    let ids: Vec<NodeId> = wrt.iter().map(|(_, id)| *id).collect();
    let relevant = grad::relevant(graph, output, &ids);
    let mut rng = Rng(0x1D6C_5EED);
    let w = rng.value(graph.node(output).ty, |u| 2.0 * u - 1.0);
    values.compute(graph, &[output], io)?;
    let kept = vec![false; graph.len()];
    let grads = grad::backward_from(graph, values, output, w.clone(), &ids, &relevant, &kept);
    let mut out = Vec::new();
    for ((name, id), g) in wrt.iter().zip(&grads) {
        let x0 = values.get(*id).clone();
        let ty = x0.ty();
        let directions: Vec<Value<f64>> = if ty.len() <= ELEMENTWISE_MAX {
            (0..ty.len())
                .map(|k| {
                    let mut v = Value::zeros(ty);
                    match &mut v {
                        Value::Scalar(s) => *s = 1.0,
                        Value::Matrix(m) => m.as_slice_mut().expect("standard layout")[k] = 1.0,
                    }
                    v
                })
                .collect()
        } else {
            (0..DIRECTIONS)
                .map(|_| rng.value(ty, |u| if u < 0.5 { -1.0 } else { 1.0 }))
                .collect()
        };
        let dirty = graph.descendants(&[*id]);
        let mut outcome = Outcome {
            learnable: name.clone(),
            checked: directions.len(),
            worst_relative_error: 0.0,
            worst_excess: f64::NEG_INFINITY,
        };
        for v in &directions {
            let mut at = |t: f64| -> Result<f64, Failure> {
                values.invalidate(&dirty);
                values.set(*id, axpy(&x0, t, v));
                values.compute(graph, &[output], io)?;
                Ok(dot(&w, values.get(output)))
            };
            let numeric = (at(EPS)? - at(-EPS)?) / (2.0 * EPS);
            let analytic = dot(g, v);
            let diff = (analytic - numeric).abs();
            outcome.worst_relative_error = outcome
                .worst_relative_error
                .max(diff / numeric.abs().max(analytic.abs()).max(1e-12));
            outcome.worst_excess = outcome.worst_excess.max(diff - 1e-3 * numeric.abs());
        }
        values.invalidate(&dirty);
        values.set(*id, x0);
        out.push(outcome);
    }
    Ok(out)
}

/// `imgx gradcheck`: runs the script's `learn` statements in f64 and checks, at the start of
/// every `optimize`, the loss's gradient for each of its learnables. Optimisations are not run,
/// so later checks see the learnables as they were declared.
pub fn check_script(program: &Program, io: &DiskIo) -> Result<Vec<(usize, Vec<Outcome>)>, Failure> {
    let mut values = Values::<f64>::new(&program.graph);
    let mut results = Vec::new();
    for (i, step) in program.steps.iter().enumerate() {
        match step {
            Step::Learn { node, init } => run::learn(program, *node, *init, &mut values, io)?,
            Step::Optimize(o) => {
                let wrt: Vec<(String, NodeId)> = o
                    .names
                    .iter()
                    .cloned()
                    .zip(o.over.iter().copied())
                    .collect();
                results.push((i, check_node(program, &mut values, o.loss, &wrt, io)?));
            }
            Step::Print { .. } | Step::Save(_) | Step::Sweep(_) => {}
        }
    }
    Ok(results)
}
