//! The checked dataflow graph: what to compute, never how. The only module that knows petgraph.
//!
//! Nodes are appended in definition order and an edge always points from an existing node to a
//! new one, so node ids are a topological order; `tests::ids_are_topological` keeps that honest
//! with petgraph's own toposort.

use crate::ast::Span;
use crate::ops::{Attrs, Primitive};
use crate::tensor::Type;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

/// A node's id; ids increase in topological order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// What a node computes.
#[derive(Clone)]
pub enum NodeKind {
    /// A number written in the script (or a param, or a default).
    Const(f64),
    /// A learnable value: its value is state the optimiser updates.
    Learnable { name: String },
    /// A primitive applied to the node's inputs.
    Apply {
        prim: &'static dyn Primitive,
        attrs: Attrs,
    },
}

/// A node: what it computes, its checked type, and where it came from.
#[derive(Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub ty: Type,
    pub span: Span,
}

impl Node {
    /// A short name: the primitive, `const`, or the learnable's name.
    pub fn title(&self) -> String {
        match &self.kind {
            NodeKind::Const(v) => format!("{v}"),
            NodeKind::Learnable { name } => format!("learn {name}"),
            NodeKind::Apply { prim, .. } => prim.name().to_string(),
        }
    }
}

/// The dataflow DAG. Edge weights are argument slots.
#[derive(Clone, Default)]
pub struct Graph {
    g: DiGraph<Node, usize>,
}

impl Graph {
    pub fn add(&mut self, node: Node, inputs: &[NodeId]) -> NodeId {
        let id = self.g.add_node(node);
        for (slot, input) in inputs.iter().enumerate() {
            self.g.add_edge(NodeIndex::new(input.0), id, slot);
        }
        NodeId(id.index())
    }

    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[NodeIndex::new(id.0)]
    }

    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.len()).map(NodeId)
    }

    /// The inputs of a node, in argument order.
    pub fn inputs(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(usize, NodeId)> = self
            .g
            .edges_directed(NodeIndex::new(id.0), Direction::Incoming)
            .map(|e| (*e.weight(), NodeId(e.source().index())))
            .collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// Marks every node reachable from `from` along `dir` (including `from` itself).
    fn reach(&self, from: &[NodeId], dir: Direction) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<NodeIndex> = from.iter().map(|n| NodeIndex::new(n.0)).collect();
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n.index()], true) {
                continue;
            }
            stack.extend(self.g.neighbors_directed(n, dir));
        }
        seen
    }

    /// `targets` and everything they depend on, marked by id.
    pub fn ancestors(&self, targets: &[NodeId]) -> Vec<bool> {
        self.reach(targets, Direction::Incoming)
    }

    /// `sources` and everything that depends on them, marked by id.
    pub fn descendants(&self, sources: &[NodeId]) -> Vec<bool> {
        self.reach(sources, Direction::Outgoing)
    }

    /// Graphviz DOT: one box per node labelled with its primitive, type and source line;
    /// learnables and the nodes in `outputs` are marked.
    pub fn to_dot(&self, line_of: impl Fn(Span) -> usize, outputs: &[(NodeId, String)]) -> String {
        let mut out = String::from(
            "digraph imgx {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for id in self.ids() {
            let n = self.node(id);
            let mut style = String::new();
            if matches!(n.kind, NodeKind::Learnable { .. }) {
                style.push_str(", style=filled, fillcolor=\"#ffe8a8\"");
            }
            let marks: Vec<&str> = outputs
                .iter()
                .filter(|(o, _)| *o == id)
                .map(|(_, m)| m.as_str())
                .collect();
            if !marks.is_empty() {
                style.push_str(", peripheries=2");
            }
            let mark = if marks.is_empty() {
                String::new()
            } else {
                format!("\\n→ {}", escape(&marks.join(", ")))
            };
            out.push_str(&format!(
                "  n{} [label=\"{}\\n{}\\nline {}{}\"{}];\n",
                id.0,
                escape(&n.title()),
                n.ty,
                line_of(n.span),
                mark,
                style
            ));
        }
        for e in self.g.edge_references() {
            out.push_str(&format!(
                "  n{} -> n{};\n",
                e.source().index(),
                e.target().index()
            ));
        }
        out.push_str("}\n");
        out
    }

    /// Checks the invariant that ids are a topological order (used by tests and debug builds).
    pub fn ids_are_topological(&self) -> bool {
        petgraph::algo::toposort(&self.g, None).is_ok()
            && self
                .g
                .edge_references()
                .all(|e| e.source().index() < e.target().index())
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
