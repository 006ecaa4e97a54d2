//! Forward evaluation over the checked graph, whole arrays at a time. Values are kept by node
//! id: they are also the tape reverse mode reads. Never touches the disk itself (primitives that
//! read go through the `Io` they are handed) and never reports user diagnostics: a failure here
//! is an outside-world failure (a file vanished) carried with the node's span.

use crate::ast::Span;
use crate::graph::{Graph, NodeId, NodeKind};
use crate::ops::{Dispatch, Io, Notes};
use crate::profile::{timed, Phase, Profile};
use crate::tensor::Value;

/// Node values by id; `None` where not computed (or invalidated).
pub struct Values<T> {
    vals: Vec<Option<Value<T>>>,
    /// What each computed node's primitive kept for its backward (empty for the others).
    notes: Vec<Notes<T>>,
    /// Where primitive calls are timed (`--profile`), if anywhere.
    profile: Option<Profile>,
}

/// A primitive failed while running (only outside-world reasons: see [`crate::ops::Op::forward`]).
#[derive(Debug)]
pub struct EvalError {
    pub span: Span,
    pub message: String,
}

impl<T: Dispatch> Values<T> {
    pub fn new(graph: &Graph) -> Self {
        Values {
            vals: vec![None; graph.len()],
            notes: vec![Vec::new(); graph.len()],
            profile: None,
        }
    }

    /// Times every primitive call made with these values (forward here, backward in
    /// [`crate::grad`]).
    pub fn profiled(self) -> Self {
        Values {
            profile: Some(Profile::default()),
            ..self
        }
    }

    /// The timings, when profiled.
    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// The value of a computed node (asking for one not computed is an engine bug).
    pub fn get(&self, id: NodeId) -> &Value<T> {
        self.vals[id.0]
            .as_ref()
            .unwrap_or_else(|| unreachable!("node {} read before it was computed", id.0))
    }

    /// Whether `id` has a value (computed and not dropped since).
    pub fn is_computed(&self, id: NodeId) -> bool {
        self.vals[id.0].is_some()
    }

    /// What the primitive of a computed node kept for its backward.
    pub fn notes(&self, id: NodeId) -> &[T] {
        &self.notes[id.0]
    }

    /// Moves a computed value out (the node counts as not computed until it is set again).
    pub fn take(&mut self, id: NodeId) -> Value<T> {
        self.notes[id.0].clear();
        self.vals[id.0]
            .take()
            .unwrap_or_else(|| unreachable!("node {} taken before it was computed", id.0))
    }

    pub fn set(&mut self, id: NodeId, v: Value<T>) {
        self.notes[id.0].clear();
        self.vals[id.0] = Some(v);
    }

    /// Forgets the values of the marked nodes (they depend on something that changed).
    pub fn invalidate(&mut self, marked: &[bool]) {
        for ((v, n), m) in self.vals.iter_mut().zip(&mut self.notes).zip(marked) {
            if *m {
                *v = None;
                n.clear();
            }
        }
    }

    /// Computes `targets` and whatever they need that is not computed yet, in id order
    /// (a topological order). Learnables must have been set.
    pub fn compute(
        &mut self,
        graph: &Graph,
        targets: &[NodeId],
        io: &dyn Io,
    ) -> Result<(), EvalError> {
        let needed = graph.ancestors(targets);
        for id in graph.ids().filter(|id| needed[id.0]) {
            if self.vals[id.0].is_some() {
                continue;
            }
            let node = graph.node(id);
            let mut notes = Vec::new();
            let v = match &node.kind {
                NodeKind::Const(c) => Value::Scalar(T::lit(*c)),
                NodeKind::Learnable { name } => {
                    unreachable!("learnable `{name}` used before its `learn` ran")
                }
                NodeKind::Apply { prim, attrs } => {
                    let inputs = graph.inputs(id);
                    let args: Vec<&Value<T>> = inputs.iter().map(|i| self.get(*i)).collect();
                    let op = T::op(*prim);
                    let forward = || op.forward(&args, attrs, io, &mut notes);
                    timed(self.profile.as_ref(), prim.name(), Phase::Forward, forward).map_err(
                        |message| EvalError {
                            span: node.span,
                            message,
                        },
                    )?
                }
            };
            self.vals[id.0] = Some(v);
            self.notes[id.0] = notes;
        }
        Ok(())
    }
}
