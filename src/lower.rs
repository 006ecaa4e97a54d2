//! Checking and lowering: [`ast::Script`] → [`Program`] (a checked [`Graph`] plus the statements
//! to run). Resolves names, inlines user functions, matches arguments to primitive signatures,
//! folds constants, infers every type and shape, and collects **all** problems before anything
//! runs. Knows primitives only through the registry (`ops::lookup`, `ops::operator`) and never
//! names one.

use crate::ast::{self, Arg, Clause, Expr, ExprKind, Ident, Kwarg, Operator, Script, Span, Stmt};
use crate::diag::Problem;
use crate::grad;
use crate::graph::{Graph, Node, NodeId, NodeKind};
use crate::lambda::ElemFn;
use crate::ops::{self, Attrs, Io, Kind, Origin, Primitive, Static, Text};
use crate::optim::{self, Optimizer};
use crate::tensor::Type;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

/// The most optimiser steps a script may ask for (a guard against typos like `steps 1e9`).
pub const MAX_STEPS: f64 = 10_000_000.0;
/// The largest whole-number attribute (sizes, seeds) a script may give.
pub const MAX_INT: f64 = 1e9;
/// The most elements one matrix may have (2^28, 1 GiB in f32), checked for every node.
pub const MAX_ELEMENTS: usize = 1 << 28;
/// How deeply expressions may nest once user functions are inlined.
pub const MAX_NESTING: usize = 256;
/// The most expressions checking may visit: functions are inlined at every call (and a sweep
/// lowers its expression once per frame), so a function calling another twice doubles the
/// work at each level, and a short script could otherwise check for ever.
pub const MAX_WORK: usize = 1_000_000;
/// The memory assumed available when the system does not say (8 GiB).
pub const ASSUMED_MEMORY: u64 = 8 << 30;
/// "In this call of" labels on one problem, innermost first.
const MAX_CALL_LABELS: usize = 4;

/// A checked script, ready to run.
pub struct Program {
    pub graph: Graph,
    pub steps: Vec<Step>,
    /// Every param with its effective value (after `--set`), in script order.
    pub params: Vec<(String, Static)>,
    /// Global names bound to graph nodes (`name = …`, `learn name = …`), in script order.
    pub names: Vec<(String, NodeId)>,
}

/// One thing the script does, in order.
pub enum Step {
    /// `learn name = init`: the learnable `node` starts as `init`'s value.
    Learn { node: NodeId, init: NodeId },
    /// `print expr`
    Print {
        what: Printable,
        text: String,
        span: Span,
    },
    /// `save expr to "path"`
    Save(Save),
    /// `optimize …`
    Optimize(Optimize),
    /// `sweep …`
    Sweep(Sweep),
}

/// What a `print` shows.
pub enum Printable {
    Node(NodeId),
    Text(String),
}

/// How values outside [0, 1] are written to an 8- or 16-bit image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RangePolicy {
    /// Clip to [0, 1] and say how many values were clipped (the default).
    Clip,
    /// Map min..max to 0..1.
    Normalize,
    /// Refuse to write and fail the run.
    Error,
}

/// How a matrix becomes an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Values in [0, 1] as gray levels (the default).
    Gray,
    /// Values in [−1, 1] as colour: purple above 0, green below, brightness = magnitude.
    Signed,
}

/// `save expr to "path" [with bits = 16, range = "normalize", colormap = "signed"]`
pub struct Save {
    pub node: NodeId,
    pub path: String,
    pub span: Span,
    pub bits: u8,
    pub range: RangePolicy,
    pub colormap: Colormap,
}

/// Where and how frames are written: `to "path.gif" [with fps = 30, range = "normalize",
/// palindrome = true]` (a `.png` path writes numbered frames instead).
pub struct Animation {
    pub path: String,
    pub span: Span,
    pub range: RangePolicy,
    pub fps: f64,
    /// Play forwards, then backwards without repeating the ends, so the loop is seamless.
    pub palindrome: bool,
}

/// `record expr every k to "path"`
pub struct Record {
    pub node: NodeId,
    pub every: usize,
    pub animation: Animation,
}

/// `sweep name from a to b count n record expr to "path"`
pub struct Sweep {
    /// The param swept.
    pub param: String,
    /// Each value of the param with the node of the expression lowered for it.
    pub frames: Vec<(f64, NodeId)>,
    /// Nodes from this one on were made for the frames: a run may drop their values once a
    /// frame is taken.
    pub fresh: NodeId,
    pub animation: Animation,
}

/// The most values a `sweep` may take (each lowers its expression once).
pub const MAX_SWEEP: f64 = 10_000.0;

/// The `with …` options of an output, defaults filled in.
struct OutputOpts {
    bits: u8,
    range: RangePolicy,
    fps: f64,
    palindrome: bool,
    colormap: Colormap,
}

/// `optimize loss over xs with opt steps n` and its clauses.
pub struct Optimize {
    pub loss: NodeId,
    pub over: Vec<NodeId>,
    pub names: Vec<String>,
    pub optimizer: Optimizer,
    pub steps: usize,
    pub span: Span,
    pub records: Vec<Record>,
    /// `log to "loss.csv"`
    pub log: Option<String>,
    /// `stop when patience = n, min_delta = d`
    pub stop: Option<(usize, f64)>,
    /// `checkpoint to "path"`
    pub checkpoint: Option<String>,
}

/// A `--set NAME=VALUE` override, as typed.
#[derive(Clone, Debug)]
pub struct Override {
    pub name: String,
    pub value: String,
}

/// What a name is bound to while lowering.
#[derive(Clone)]
enum Val {
    Node(NodeId),
    Num(f64),
    Bool(bool),
    Str(Text),
    /// An error was already reported for this value: stay quiet about it.
    Poison,
}

#[derive(Clone)]
struct Binding {
    val: Val,
    span: Span,
    learnable: bool,
    param: bool,
}

struct FnDef {
    name: Ident,
    params: Vec<Ident>,
    locals: Vec<(Ident, Expr)>,
    result: Expr,
}

struct Lowerer<'a> {
    src: &'a str,
    io: &'a dyn Io,
    graph: Graph,
    problems: Vec<Problem>,
    globals: HashMap<String, Binding>,
    /// Where each global name of the script is defined (first), for "defined later".
    definitions: HashMap<String, Span>,
    /// Local scopes of the user functions being inlined, innermost last.
    scopes: Vec<HashMap<String, Binding>>,
    fns: HashMap<String, FnDef>,
    /// Calls being inlined: (function name, call span), for recursion and "called here" labels.
    calls: Vec<(String, Span)>,
    consts: HashMap<u64, NodeId>,
    /// Applications made so far, by primitive, inputs and attributes: the same computation
    /// written twice (`value(x)` in the loss and in a `record`) is one node, computed once.
    /// Every primitive is a pure function of its inputs and attributes.
    applied: HashMap<(&'static str, Vec<NodeId>, String), NodeId>,
    steps: Vec<Step>,
    params: Vec<(String, Static)>,
    /// Expressions being checked, one inside the other.
    nesting: usize,
    /// Expressions checked so far.
    work: usize,
    /// A limit of [`MAX_NESTING`] or [`MAX_WORK`] was hit: everything after is skipped.
    gave_up: bool,
    /// While a `sweep` lowers its expression: the param swept, and whether it was looked up.
    swept: Option<(String, Cell<bool>)>,
}

/// Checks a parsed script. `overrides` are the `--set` values; `io` answers image headers.
pub fn lower(
    src: &str,
    script: &Script,
    overrides: &[Override],
    io: &dyn Io,
) -> Result<Program, Vec<Problem>> {
    let mut l = Lowerer {
        src,
        io,
        graph: Graph::default(),
        problems: Vec::new(),
        globals: HashMap::new(),
        definitions: HashMap::new(),
        scopes: Vec::new(),
        fns: HashMap::new(),
        calls: Vec::new(),
        consts: HashMap::new(),
        applied: HashMap::new(),
        steps: Vec::new(),
        params: Vec::new(),
        nesting: 0,
        work: 0,
        gave_up: false,
        swept: None,
    };
    for stmt in script.stmts.iter().rev() {
        if let Stmt::Let { name, .. } | Stmt::Learn { name, .. } | Stmt::Param { name, .. } = stmt {
            l.definitions.insert(name.name.clone(), name.span);
        }
    }
    l.check_overrides(script, overrides);
    for stmt in &script.stmts {
        l.stmt(stmt, overrides);
    }
    if l.problems.is_empty() {
        debug_assert!(l.graph.ids_are_topological());
        let mut names: Vec<(String, NodeId)> = l
            .globals
            .iter()
            .filter_map(|(n, b)| match b.val {
                Val::Node(id) => Some((n.clone(), id)),
                _ => None,
            })
            .collect();
        names.sort_by_key(|(_, id)| *id);
        Ok(Program {
            graph: l.graph,
            steps: l.steps,
            params: l.params,
            names,
        })
    } else {
        Err(l.problems)
    }
}

/// A conservative estimate of the bytes a run of `program` holds at its peak, for values of
/// `precision` bytes (4 in f32, 8 in f64):
/// - every node's value at once, since the forward pass keeps them all (they are the tape
///   reverse mode reads) — except that a `sweep` keeps the nodes of one frame at a time;
/// - plus the most demanding `optimize` or `sweep`: for an optimisation, a gradient for every
///   node on a path from a learnable to the loss, the optimiser's state (Adam: two moments per
///   learnable; SGD: one velocity), the copy of the learnables each update works on, and the
///   8-bit frames its recordings collect (one per `every` steps); for a sweep, its 8-bit frames.
///
/// Not counted: temporaries inside one primitive, and the copy of each loaded image the disk
/// keeps. [`check_memory`] compares the estimate with the memory available.
pub fn estimate_bytes(program: &Program, precision: u64) -> u64 {
    let graph = &program.graph;
    let size = |id: NodeId| graph.node(id).ty.len() as u64;
    let mut values: u64 = graph.ids().map(size).sum();
    let mut peak_extra = 0;
    for step in &program.steps {
        let extra = match step {
            Step::Optimize(o) => {
                let on_path = grad::relevant(graph, o.loss, &o.over);
                let grads: u64 = graph.ids().filter(|id| on_path[id.0]).map(size).sum();
                let learnables: u64 = o.over.iter().map(|id| size(*id)).sum();
                let state = match o.optimizer {
                    Optimizer::Adam { .. } => 2,
                    Optimizer::Sgd { .. } => 1,
                };
                let frames: u64 = o
                    .records
                    .iter()
                    .map(|r| (o.steps / r.every + 1) as u64 * size(r.node))
                    .sum();
                (grads + (state + 1) * learnables) * precision + frames
            }
            Step::Sweep(s) => {
                // Frame i's own nodes run from the one after frame i − 1's result to its result.
                let mut first = s.fresh.0;
                let mut largest = 0;
                for &(_, node) in &s.frames {
                    let own: u64 = (first..=node.0).map(|i| size(NodeId(i))).sum();
                    values = values.saturating_sub(own);
                    largest = largest.max(own);
                    first = first.max(node.0 + 1);
                }
                values += largest;
                s.frames.iter().map(|&(_, node)| size(node)).sum()
            }
            _ => 0,
        };
        peak_extra = peak_extra.max(extra);
    }
    values.saturating_mul(precision).saturating_add(peak_extra)
}

/// Refuses a program whose [`estimate_bytes`] exceeds `available` bytes (`None`: the system
/// does not say, and [`ASSUMED_MEMORY`] is assumed), pointing at its largest values.
pub fn check_memory(
    program: &Program,
    precision: u64,
    available: Option<u64>,
) -> Result<(), Problem> {
    let need = estimate_bytes(program, precision);
    let have = available.unwrap_or(ASSUMED_MEMORY);
    if need <= have {
        return Ok(());
    }
    let assumed = if available.is_none() {
        " (assumed: the system does not say)"
    } else {
        ""
    };
    let mut problem = Problem::new(
        "too_big",
        format!(
            "this run would need about {} of memory, more than the {}{assumed} available",
            bytes_text(need),
            bytes_text(have)
        ),
    );
    let graph = &program.graph;
    let mut largest: Vec<NodeId> = graph.ids().collect();
    largest.sort_by_key(|id| std::cmp::Reverse(graph.node(*id).ty.len()));
    let mut shown: Vec<Span> = Vec::new();
    for node in largest.into_iter().map(|id| graph.node(id)) {
        if shown.len() == 3 {
            break;
        }
        if !shown.contains(&node.span) {
            shown.push(node.span);
            let bytes = node.ty.len() as u64 * precision;
            problem = problem.label(node.span, format!("a {} ({})", node.ty, bytes_text(bytes)));
        }
    }
    Err(problem.help(if precision > 4 {
        "compute in f32 (without `--f64`) to halve it, or use smaller matrices (`resize(m, rows, cols)`)"
    } else {
        "use smaller matrices (e.g. `resize(m, rows, cols)`), or fewer large intermediate results"
    }))
}

/// Bytes in binary units: `512 B`, `3.0 KiB`, `1.5 GiB`.
fn bytes_text(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let exp = ((63 - n.max(1).leading_zeros()) / 10).min(5) as usize;
    if exp == 0 {
        format!("{n} B")
    } else {
        format!(
            "{:.1} {}",
            n as f64 / (1u64 << (10 * exp)) as f64,
            units[exp]
        )
    }
}

/// Edit distance counting a swap of neighbours as one edit (optimal string alignment), for
/// "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The closest candidate within a sensible distance.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        // Within a third of the length, and never a whole replacement (`y` for `l`).
        .filter(|(d, c)| *d <= (word.len().max(c.len()) / 3).max(1) && *d < word.chars().count())
        .min()
        .map(|(_, c)| c)
}

fn val_kind(v: &Val, graph: &Graph) -> String {
    match v {
        Val::Node(id) => graph.node(*id).ty.to_string(),
        Val::Num(_) => "number".into(),
        Val::Bool(_) => "bool".into(),
        Val::Str(_) => "string".into(),
        Val::Poison => "?".into(),
    }
}

impl Lowerer<'_> {
    fn report(&mut self, mut p: Problem) {
        for (name, span) in self.calls.iter().rev().take(MAX_CALL_LABELS) {
            p = p.label(*span, format!("in this call of `{name}`"));
        }
        self.problems.push(p);
    }

    fn lookup(&self, name: &str) -> Option<&Binding> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name))
            .or_else(|| {
                if let Some((_, used)) = self.swept.as_ref().filter(|(n, _)| n == name) {
                    used.set(true);
                }
                self.globals.get(name)
            })
    }

    fn bind(&mut self, name: &Ident, val: Val, learnable: bool, param: bool) {
        let scope = self.scopes.last_mut().unwrap_or(&mut self.globals);
        if let Some(prev) = scope.get(&name.name) {
            let prev_span = prev.span;
            self.report(
                Problem::new(
                    "redefinition",
                    format!("`{}` is already defined", name.name),
                )
                .label(name.span, "defined again here")
                .label(prev_span, "first defined here")
                .help("each name is bound once; pick a new name for the new value"),
            );
            return;
        }
        let b = Binding {
            val,
            span: name.span,
            learnable,
            param,
        };
        let scope = self.scopes.last_mut().unwrap_or(&mut self.globals);
        scope.insert(name.name.clone(), b);
    }

    fn check_overrides(&mut self, script: &Script, overrides: &[Override]) {
        let declared: Vec<&Ident> = script
            .stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Param { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        let names = || declared.iter().map(|d| d.name.as_str());
        for o in overrides.iter().filter(|o| !names().any(|n| n == o.name)) {
            let problem = Problem::new(
                "set_unknown",
                format!("`--set {}`: the script has no param `{}`", o.name, o.name),
            );
            // Point at the param meant, or at the params there are, or at the top of the file.
            let meant =
                did_you_mean(&o.name, names()).and_then(|s| declared.iter().find(|d| d.name == s));
            self.problems.push(match (meant, declared.first()) {
                (Some(d), _) => problem
                    .label(d.span, "the closest param")
                    .help(format!("did you mean `--set {}={}`?", d.name, o.value)),
                (None, Some(first)) => problem.label(first.span, "the first param").help(format!(
                    "the script's params are: {}",
                    names().collect::<Vec<_>>().join(", ")
                )),
                (None, None) => problem
                    .label(Span::new(0, 0), "no `param` in this script")
                    .help("only `param name = value` lines can be set from the command line"),
            });
        }
    }

    fn stmt(&mut self, stmt: &Stmt, overrides: &[Override]) {
        match stmt {
            Stmt::Param { name, value } => {
                let v = self.expr(value);
                let v = match overrides.iter().rev().find(|o| o.name == name.name) {
                    Some(o) if !matches!(v, Val::Poison) => self.override_value(name, &v, o),
                    _ => v,
                };
                let stat = match &v {
                    Val::Num(n) => Some(Static::Num(*n)),
                    Val::Bool(b) => Some(Static::Bool(*b)),
                    Val::Str(t) => Some(Static::Str(t.clone())),
                    _ => None,
                };
                if let Some(s) = stat {
                    if !self.globals.contains_key(&name.name) {
                        self.params.push((name.name.clone(), s));
                    }
                }
                self.bind(name, v, false, true);
            }
            Stmt::Let { name, value } => {
                let v = self.expr(value);
                self.bind(name, v, false, false);
            }
            Stmt::Learn { name, value } => {
                let v = self.expr(value);
                let init = match v {
                    Val::Num(n) => Some(self.constant(n, value.span)),
                    Val::Node(id) => Some(id),
                    Val::Poison => None,
                    Val::Bool(_) | Val::Str(_) => {
                        let kind = val_kind(&v, &self.graph);
                        self.report(
                            Problem::new("learn_not_numeric", format!("`learn {}` needs a number or a matrix, got a {kind}", name.name))
                                .label(value.span, format!("this is a {kind}"))
                                .help("a learnable starts from a numeric value, e.g. `learn x = load(image)` or `learn s = 0.5`"),
                        );
                        None
                    }
                };
                let Some(init) = init else {
                    self.bind(name, Val::Poison, true, false);
                    return;
                };
                let ty = self.graph.node(init).ty;
                let node = self.graph.add(
                    Node {
                        kind: NodeKind::Learnable {
                            name: name.name.clone(),
                        },
                        ty,
                        span: name.span,
                    },
                    &[],
                );
                self.steps.push(Step::Learn { node, init });
                self.bind(name, Val::Node(node), true, false);
            }
            Stmt::Fn {
                name,
                params,
                locals,
                result,
            } => {
                if let Some(prev) = self.fns.get(&name.name) {
                    let prev = prev.name.span;
                    self.report(
                        Problem::new(
                            "redefinition",
                            format!("function `{}` is already defined", name.name),
                        )
                        .label(name.span, "defined again here")
                        .label(prev, "first defined here")
                        .help("give the new function another name"),
                    );
                    return;
                }
                if ops::lookup(&name.name).is_some() {
                    self.report(
                        Problem::new("redefinition", format!("`{}` is a primitive", name.name))
                            .label(name.span, "a function cannot take a primitive's name")
                            .help("pick another name (`imgx ops` lists the primitives)"),
                    );
                    return;
                }
                for (i, p) in params.iter().enumerate() {
                    if let Some(q) = params[..i].iter().find(|q| q.name == p.name) {
                        self.report(
                            Problem::new(
                                "redefinition",
                                format!("parameter `{}` appears twice", p.name),
                            )
                            .label(p.span, "again here")
                            .label(q.span, "first here")
                            .help("give each parameter its own name"),
                        );
                    }
                }
                self.fns.insert(
                    name.name.clone(),
                    FnDef {
                        name: name.clone(),
                        params: params.clone(),
                        locals: locals.clone(),
                        result: result.clone(),
                    },
                );
            }
            Stmt::Print { expr } => {
                let text = expr.span.text(self.src).to_string();
                let what = match self.expr(expr) {
                    Val::Node(id) => Printable::Node(id),
                    Val::Num(n) => Printable::Node(self.constant(n, expr.span)),
                    Val::Bool(b) => Printable::Text(b.to_string()),
                    Val::Str(t) => Printable::Text(t.value),
                    Val::Poison => return,
                };
                self.steps.push(Step::Print {
                    what,
                    text,
                    span: expr.span,
                });
            }
            Stmt::Save { expr, path, opts } => {
                let v = self.expr(expr);
                let Some(node) = self.expect_matrix(&v, expr.span, "save") else {
                    return;
                };
                let o = self.output_opts(opts, &["bits", "range", "colormap"]);
                self.check_output_path(path, &["png", "tif", "tiff", "jpg", "jpeg", "bmp", "npy"]);
                let npy = path.value.to_ascii_lowercase().ends_with(".npy");
                if o.colormap == Colormap::Signed && (npy || o.bits == 16) {
                    self.report(
                        Problem::new("bad_argument", "`colormap = \"signed\"` makes an 8-bit colour image")
                            .label(path.span, if npy { "a .npy file holds no colours" } else { "saved with 16 bits" })
                            .help("save the colour image as .png (8 bits), and the exact values separately as .npy"),
                    );
                }
                self.steps.push(Step::Save(Save {
                    node,
                    path: path.value.clone(),
                    span: expr.span.to(path.span),
                    bits: o.bits,
                    range: o.range,
                    colormap: o.colormap,
                }));
            }
            Stmt::Sweep {
                name,
                from,
                to,
                count,
                expr,
                path,
                opts,
                span,
            } => self.sweep(name, [from, to, count], expr, path, opts, *span),
            Stmt::Optimize {
                loss,
                over,
                optimizer,
                steps,
                clauses,
                span,
            } => self.optimize(loss, over, optimizer, steps, clauses, *span),
        }
    }

    fn override_value(&mut self, name: &Ident, declared: &Val, o: &Override) -> Val {
        let parsed = match declared {
            Val::Num(_) => o
                .value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Val::Num),
            Val::Bool(_) => match o.value.trim() {
                "true" => Some(Val::Bool(true)),
                "false" => Some(Val::Bool(false)),
                _ => None,
            },
            Val::Str(_) => Some(Val::Str(Text {
                value: o.value.clone(),
                origin: Origin::CommandLine,
            })),
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            let kind = val_kind(declared, &self.graph);
            self.report(
                Problem::new(
                    "set_type",
                    format!(
                        "`--set {}={}`: `{}` is a {kind} param",
                        o.name, o.value, o.name
                    ),
                )
                .label(name.span, format!("declared here as a {kind}"))
                .help(match declared {
                    Val::Bool(_) => "give `true` or `false`",
                    _ => "give a number, e.g. `--set amp=-5` or `--set lr=1e-3`",
                }),
            );
            declared.clone()
        })
    }

    fn constant(&mut self, v: f64, span: Span) -> NodeId {
        if let Some(id) = self.consts.get(&v.to_bits()) {
            return *id;
        }
        let id = self.graph.add(
            Node {
                kind: NodeKind::Const(v),
                ty: Type::Scalar,
                span,
            },
            &[],
        );
        self.consts.insert(v.to_bits(), id);
        id
    }

    fn expect_matrix(&mut self, v: &Val, span: Span, what: &str) -> Option<NodeId> {
        match v {
            Val::Node(id) if matches!(self.graph.node(*id).ty, Type::Matrix(_)) => Some(*id),
            Val::Poison => None,
            other => {
                let kind = val_kind(other, &self.graph);
                self.report(
                    Problem::new(
                        "wrong_type",
                        format!("`{what}` needs a matrix, got a {kind}"),
                    )
                    .label(span, format!("this is a {kind}"))
                    .help(format!(
                        "give `{what}` a matrix expression, e.g. an image or `hcat(a, b)`"
                    )),
                );
                None
            }
        }
    }

    /// Checks an expression, within the limits of nesting and work.
    fn expr(&mut self, e: &Expr) -> Val {
        if self.nesting >= MAX_NESTING || self.work >= MAX_WORK {
            self.give_up(e.span);
            return Val::Poison;
        }
        self.nesting += 1;
        self.work += 1;
        let v = self.expr_unbounded(e);
        self.nesting -= 1;
        v
    }

    /// Reports a constant that is not a finite number: `what` it is instead.
    fn not_finite(&mut self, e: &Expr, what: &str) -> Val {
        self.report(
            Problem::new(
                "not_finite",
                format!("`{}` is not a finite number", e.span.text(self.src)),
            )
            .label(e.span, what.to_string())
            .help(
                "a constant must be a finite number: look for a division by zero, or a value \
                 beyond ±1.8e308",
            ),
        );
        Val::Poison
    }

    /// Reports (once) that the script is beyond the checker's limits.
    fn give_up(&mut self, span: Span) {
        if std::mem::replace(&mut self.gave_up, true) {
            return;
        }
        let (what, help) = if self.nesting >= MAX_NESTING {
            (
                format!("expressions nest more than {MAX_NESTING} levels deep once functions are inlined"),
                "name intermediate results (`t = …`) instead of nesting calls ever deeper",
            )
        } else {
            (
                format!("it takes more than {MAX_WORK} steps once functions are inlined"),
                "a function is checked again at every call (and a sweep's expression once per \
                 frame), so a function calling another twice doubles the work at each level: \
                 compute shared parts once and name them (`t = f(x)`)",
            )
        };
        self.report(
            Problem::new(
                "too_big",
                format!("this script is too large to check: {what}"),
            )
            .label(span, "the limit is reached here")
            .help(help),
        );
    }

    fn expr_unbounded(&mut self, e: &Expr) -> Val {
        match &e.kind {
            ExprKind::Num(n) if n.is_finite() => Val::Num(*n),
            ExprKind::Num(_) => self.not_finite(e, "too large for a number"),
            ExprKind::Str(s) => Val::Str(Text {
                value: s.clone(),
                origin: Origin::Script,
            }),
            ExprKind::Bool(b) => Val::Bool(*b),
            ExprKind::Name(n) => match self.lookup(n) {
                Some(b) => b.val.clone(),
                None => {
                    self.unknown_name(n, e.span, false);
                    Val::Poison
                }
            },
            ExprKind::Lambda { .. } => {
                self.report(
                    Problem::new("misplaced_lambda", "a lambda can only be an element-wise function argument")
                        .label(e.span, "not allowed here")
                        .help("pass it where a primitive takes a function, e.g. `softmax_cols(m, f = x -> x + 1)`"),
                );
                Val::Poison
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
            ExprKind::Unary { op, op_span, arg } => {
                let v = self.expr(arg);
                if let (Operator::Neg, Val::Num(n)) = (op, &v) {
                    return Val::Num(-n);
                }
                self.apply_operator(*op, *op_span, e.span, &[(v, arg.span)])
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let (a, b) = (self.expr(lhs), self.expr(rhs));
                if let (Val::Num(x), Val::Num(y)) = (&a, &b) {
                    if let Some(v) = fold(*op, *x, *y) {
                        if v.is_finite() {
                            return Val::Num(v);
                        }
                        return self.not_finite(e, &format!("{v}"));
                    }
                }
                self.apply_operator(*op, *op_span, e.span, &[(a, lhs.span), (b, rhs.span)])
            }
        }
    }

    /// Reports an unknown name; `learnable`: only a learnable would do (`optimize … over`).
    fn unknown_name(&mut self, n: &str, span: Span, learnable: bool) {
        let candidates: Vec<&str> = (self.scopes.iter().chain([&self.globals]))
            .flat_map(|scope| scope.iter())
            .filter(|(_, b)| b.learnable || !learnable)
            .map(|(name, _)| name.as_str())
            .collect();
        let mut problem = Problem::new("unknown_name", format!("unknown name `{n}`"))
            .label(span, "not defined before this point");
        let help = if let Some(&later) = self.definitions.get(n) {
            problem = problem.label(later, "defined here, after its use");
            "move the definition above its first use: statements run from top to bottom".into()
        } else if let Some(s) = did_you_mean(n, candidates) {
            format!("did you mean `{s}`?")
        } else if learnable {
            format!("declare it with `learn {n} = …` before the `optimize`")
        } else if self.fns.contains_key(n) || ops::lookup(n).is_some() {
            format!("`{n}` is a function: call it, e.g. `{n}(m)`")
        } else {
            "define it before this line (`name = …`, `param name = …` or `learn name = …`)".into()
        };
        self.report(problem.help(help));
    }

    /// Turns a lowered value into a graph edge of the given kind, or reports why not.
    fn edge(&mut self, v: Val, span: Span, kind: Kind, what: &str) -> Option<NodeId> {
        let id = match v {
            Val::Num(n) => self.constant(n, span),
            Val::Node(id) => id,
            Val::Poison => return None,
            other => {
                let got = val_kind(&other, &self.graph);
                let help = match &other {
                    Val::Str(t) => format!(
                        "a string is not a value; to use the image it names, load it: `load(\"{}\")`",
                        t.value
                    ),
                    _ => "`true` and `false` only go to switches such as `normalize(m, signed = true)`; \
                          write a number (or a matrix) here"
                        .to_string(),
                };
                self.report(
                    Problem::new(
                        "wrong_type",
                        format!("{what} needs a {}, got a {got}", kind.describe()),
                    )
                    .label(span, format!("this is a {got}"))
                    .help(help),
                );
                return None;
            }
        };
        let ty = self.graph.node(id).ty;
        let fits = match kind {
            Kind::Matrix => matches!(ty, Type::Matrix(_)),
            Kind::Scalar => ty == Type::Scalar,
            _ => true,
        };
        if fits {
            return Some(id);
        }
        let help = if kind == Kind::Scalar {
            "reduce the matrix to a scalar first, e.g. with `mean(m)` or `sum(m)`"
        } else {
            "make a matrix of it, e.g. `fill(rows, cols, v)`"
        };
        self.report(
            Problem::new(
                "wrong_type",
                format!("{what} needs a {}, got a {ty}", kind.describe()),
            )
            .label(span, format!("this is a {ty}"))
            .help(help),
        );
        None
    }

    fn apply_operator(
        &mut self,
        op: Operator,
        op_span: Span,
        span: Span,
        operands: &[(Val, Span)],
    ) -> Val {
        if operands.iter().any(|(v, _)| matches!(v, Val::Poison)) {
            return Val::Poison;
        }
        let what = format!("`{}`", op.symbol());
        let mut ids = Vec::new();
        for (v, s) in operands {
            match self.edge(v.clone(), *s, Kind::Numeric, &what) {
                Some(id) => ids.push(id),
                None => return Val::Poison,
            }
        }
        let types: Vec<Type> = ids.iter().map(|i| self.graph.node(*i).ty).collect();
        let prim = match ops::operator(op, &types) {
            Ok(p) => p,
            Err(hint) => {
                let mut problem = Problem::new(
                    "wrong_type",
                    format!(
                        "{what} does not apply to a {} and a {}",
                        types[0],
                        types[types.len() - 1]
                    ),
                )
                .label(op_span, "this operator")
                .help(hint);
                for ((_, s), ty) in operands.iter().zip(&types) {
                    problem = problem.label(*s, format!("a {ty}"));
                }
                self.report(problem);
                return Val::Poison;
            }
        };
        let spans: Vec<Span> = operands.iter().map(|(_, s)| *s).collect();
        // A refusal names the primitive; point at the operator that stands for it.
        let via = format!("`{}` is `{}` here", op.symbol(), prim.name());
        let applied = self.apply(prim, Attrs::default(), ids, &spans, &[], span);
        self.reported(applied.map_err(|p| p.label(op_span, via)))
    }

    /// The value, or Poison with the problem reported.
    fn reported(&mut self, v: Result<Val, Problem>) -> Val {
        v.unwrap_or_else(|p| {
            self.report(p);
            Val::Poison
        })
    }

    /// Adds `prim(inputs; attrs)` after running its shape rule; maps a refusal to spans.
    fn apply(
        &mut self,
        prim: &'static dyn Primitive,
        attrs: Attrs,
        inputs: Vec<NodeId>,
        input_spans: &[Span],
        attr_spans: &[(&'static str, Span)],
        span: Span,
    ) -> Result<Val, Problem> {
        let graph = &self.graph;
        let producer = |id: NodeId| match &graph.node(id).kind {
            NodeKind::Apply { prim, .. } => Some((*prim, graph.inputs(id))),
            _ => None,
        };
        let (prim, inputs) = ops::fuse(prim, &inputs, producer).unwrap_or((prim, inputs));
        let types: Vec<Type> = inputs.iter().map(|i| self.graph.node(*i).ty).collect();
        match prim.check(&types, &attrs, self.io) {
            Ok(Type::Matrix(s)) if s.rows.checked_mul(s.cols).is_none_or(|n| n > MAX_ELEMENTS) => {
                Err(Problem::new(
                    "too_big",
                    format!(
                        "`{}` would make a {s} matrix: {} elements, more than the limit of \
                             2^28 = {MAX_ELEMENTS}",
                        prim.name(),
                        s.rows as u128 * s.cols as u128
                    ),
                )
                .label(span, format!("a {s} matrix"))
                .help(
                    "a matrix holds at most 2^28 elements (e.g. 16384×16384); use smaller \
                         sizes, or `resize` large images down",
                ))
            }
            Ok(ty) => {
                // Attributes compare by their full debug form (numbers to the last digit,
                // functions by their tree, strings with their origin).
                let key = (prim.name(), inputs.clone(), format!("{attrs:?}"));
                if let Some(&id) = self.applied.get(&key) {
                    return Ok(Val::Node(id));
                }
                let id = self.graph.add(
                    Node {
                        kind: NodeKind::Apply { prim, attrs },
                        ty,
                        span,
                    },
                    &inputs,
                );
                self.applied.insert(key, id);
                Ok(Val::Node(id))
            }
            Err(e) => {
                let mut p = Problem::new(e.code, e.message).help(e.help);
                if e.labels.is_empty() {
                    p = p.label(span, "");
                }
                for (arg, text) in e.labels {
                    let at = match arg {
                        ops::Arg::Input(i) => input_spans.get(i).copied(),
                        ops::Arg::Attr(name) => {
                            attr_spans.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
                        }
                    };
                    p = p.label(at.unwrap_or(span), text);
                }
                Err(p)
            }
        }
    }

    fn call(&mut self, callee: &Ident, args: &[Arg], span: Span) -> Val {
        if self.fns.contains_key(&callee.name) {
            return self.call_fn(callee, args, span);
        }
        let Some(prim) = ops::lookup(&callee.name) else {
            let mut names: Vec<&str> = ops::PRIMITIVES.iter().map(|p| p.name()).collect();
            names.extend(self.fns.keys().map(String::as_str));
            let help = match did_you_mean(&callee.name, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "`imgx ops` lists the primitives; define your own with `fn name(a) = …`"
                    .to_string(),
            };
            self.report(
                Problem::new(
                    "unknown_function",
                    format!("unknown function `{}`", callee.name),
                )
                .label(callee.span, "no primitive or function has this name")
                .help(help),
            );
            // Still check the arguments, to report their problems too.
            for a in args {
                let (Arg::Positional(e) | Arg::Keyword(_, e)) = a;
                if !matches!(e.kind, ExprKind::Lambda { .. }) {
                    self.expr(e);
                }
            }
            return Val::Poison;
        };
        self.call_prim(prim, callee, args, span)
    }

    /// Matches arguments to parameters: positional first, then keywords.
    fn match_args<'e>(
        &mut self,
        callee: &Ident,
        sig: ops::Signature,
        args: &'e [Arg],
        span: Span,
    ) -> Option<Vec<Vec<&'e Expr>>> {
        let params = sig.params;
        let mut slots: Vec<Vec<&Expr>> = vec![Vec::new(); params.len()];
        let mut ok = true;
        let mut seen_keyword = false;
        let mut pos = 0;
        for a in args {
            match a {
                Arg::Positional(e) => {
                    if seen_keyword {
                        self.report(
                            Problem::new(
                                "positional_after_keyword",
                                "a positional argument follows a keyword argument",
                            )
                            .label(e.span, "positional")
                            .help("put positional arguments first, then `name = value` ones"),
                        );
                        ok = false;
                        continue;
                    }
                    let last = params.len().saturating_sub(1);
                    if pos < params.len() {
                        slots[pos].push(e);
                        pos += 1;
                    } else if sig.variadic && !params.is_empty() {
                        slots[last].push(e);
                    } else {
                        self.report(
                            Problem::new(
                                "arity",
                                format!(
                                    "`{}` takes at most {} argument{}",
                                    callee.name,
                                    params.len(),
                                    plural(params.len())
                                ),
                            )
                            .label(e.span, "one too many")
                            .help(format!(
                                "remove it; the signature is `{}`",
                                signature_text(callee.name.as_str(), sig)
                            )),
                        );
                        ok = false;
                    }
                }
                Arg::Keyword(k, e) => {
                    seen_keyword = true;
                    match params.iter().position(|p| p.name == k.name) {
                        Some(i) if !slots[i].is_empty() => {
                            self.report(
                                Problem::new(
                                    "duplicate_keyword",
                                    format!("`{}` is given twice", k.name),
                                )
                                .label(k.span, "again here")
                                .label(slots[i][0].span, "first here")
                                .help("give each argument once"),
                            );
                            ok = false;
                        }
                        Some(i) => slots[i].push(e),
                        None => {
                            let names = params.iter().map(|p| p.name);
                            let help = match did_you_mean(&k.name, names) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => format!(
                                    "the signature is `{}`",
                                    signature_text(&callee.name, sig)
                                ),
                            };
                            self.report(
                                Problem::new(
                                    "unknown_keyword",
                                    format!("`{}` has no argument `{}`", callee.name, k.name),
                                )
                                .label(k.span, "unknown keyword")
                                .help(help),
                            );
                            ok = false;
                        }
                    }
                }
            }
        }
        for (p, slot) in params.iter().zip(&slots) {
            if slot.is_empty() && p.default.is_none() {
                self.report(
                    Problem::new(
                        "arity",
                        format!("`{}` needs the argument `{}`", callee.name, p.name),
                    )
                    .label(span, format!("`{}` missing", p.name))
                    .help(format!(
                        "give `{}`: the signature is `{}`",
                        p.name,
                        signature_text(&callee.name, sig)
                    )),
                );
                ok = false;
            }
        }
        ok.then_some(slots)
    }

    fn call_prim(
        &mut self,
        prim: &'static dyn Primitive,
        callee: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Val {
        let sig = prim.signature();
        let Some(slots) = self.match_args(callee, sig, args, span) else {
            return Val::Poison;
        };
        let mut inputs = Vec::new();
        let mut input_spans = Vec::new();
        let mut attrs = Attrs::default();
        let mut attr_spans = Vec::new();
        let mut ok = true;
        for (p, slot) in sig.params.iter().zip(slots) {
            let what = format!("`{}` argument `{}`", callee.name, p.name);
            if slot.is_empty() {
                let d = p
                    .default
                    .unwrap_or_else(|| unreachable!("match_args checked required arguments"));
                if p.kind.is_edge() {
                    let ops::Default::Num(v) = d else {
                        unreachable!("edge defaults are numbers")
                    };
                    inputs.push(self.constant(v, span));
                    input_spans.push(span);
                } else {
                    attrs.values.push((p.name, d.to_static()));
                }
                continue;
            }
            for e in slot {
                if p.kind.is_edge() {
                    let v = self.expr(e);
                    match self.edge(v, e.span, p.kind, &what) {
                        Some(id) => {
                            inputs.push(id);
                            input_spans.push(e.span);
                        }
                        None => ok = false,
                    }
                } else {
                    match self.attribute(e, p.kind, &what) {
                        Some(s) => {
                            attrs.values.push((p.name, s));
                            attr_spans.push((p.name, e.span));
                        }
                        None => ok = false,
                    }
                }
            }
        }
        if !ok {
            return Val::Poison;
        }
        let applied = self.apply(prim, attrs, inputs, &input_spans, &attr_spans, span);
        self.reported(applied)
    }

    /// An argument known before the script runs.
    fn attribute(&mut self, e: &Expr, kind: Kind, what: &str) -> Option<Static> {
        if kind == Kind::Func {
            return self
                .function_arg(e, what)
                .map(|f| Static::Func(Arc::new(f)));
        }
        let v = self.expr(e);
        let got = val_kind(&v, &self.graph);
        let out = match (kind, v) {
            (_, Val::Poison) => return None,
            (Kind::Int, Val::Num(n)) if n.fract() == 0.0 && (0.0..=MAX_INT).contains(&n) => {
                Some(Static::Num(n))
            }
            (Kind::Int, Val::Num(n)) => {
                self.report(
                    Problem::new(
                        "bad_argument",
                        format!("{what} must be a whole number from 0 to {MAX_INT:e}, got {n}"),
                    )
                    .label(e.span, "not a whole number in range")
                    .help("sizes, counts and seeds are whole numbers"),
                );
                return None;
            }
            (Kind::Num, Val::Num(n)) => Some(Static::Num(n)),
            (Kind::Bool, Val::Bool(b)) => Some(Static::Bool(b)),
            (Kind::Str, Val::Str(t)) => Some(Static::Str(t)),
            _ => None,
        };
        if out.is_none() {
            let help = if got.contains("matrix") || got == "scalar" {
                format!(
                    "{what} must be known before the script runs: write a {} or a param",
                    kind.describe()
                )
            } else {
                match kind {
                    Kind::Bool => "write `true` or `false`".to_string(),
                    Kind::Str => "write a string in double quotes".to_string(),
                    _ => format!("write a {} (or a param holding one)", kind.describe()),
                }
            };
            self.report(
                Problem::new(
                    "wrong_type",
                    format!("{what} needs a {}, got a {got}", kind.describe()),
                )
                .label(e.span, format!("this is a {got}"))
                .help(help),
            );
        }
        out
    }

    /// An element-wise function argument: a lambda or the name of an element-wise primitive.
    fn function_arg(&mut self, e: &Expr, what: &str) -> Option<ElemFn> {
        match &e.kind {
            ExprKind::Lambda { param, body } => self.lambda_body(param, body),
            ExprKind::Name(n) if self.lookup(n).is_none() => match ops::lookup(n)
                .and_then(|p| p.pointwise())
            {
                Some(p) => Some(ElemFn::call(p, ElemFn::X)),
                None => {
                    self.report(
                        Problem::new(
                            "wrong_type",
                            format!("{what} needs an element-wise function, and `{n}` is not one"),
                        )
                        .label(e.span, "not an element-wise function")
                        .help(format!(
                            "write a lambda like `x -> x + 1`, or name one of: {}",
                            pointwise_names()
                        )),
                    );
                    None
                }
            },
            _ => {
                let v = self.expr(e);
                if !matches!(v, Val::Poison) {
                    let got = val_kind(&v, &self.graph);
                    self.report(
                        Problem::new(
                            "wrong_type",
                            format!("{what} needs an element-wise function, got a {got}"),
                        )
                        .label(e.span, format!("this is a {got}"))
                        .help("write a lambda like `f = x -> x + 1`, or a name like `f = exp`"),
                    );
                }
                None
            }
        }
    }

    fn lambda_body(&mut self, param: &Ident, body: &Expr) -> Option<ElemFn> {
        let b = |f: ElemFn| Box::new(f);
        match &body.kind {
            ExprKind::Name(n) if *n == param.name => Some(ElemFn::X),
            ExprKind::Num(v) => Some(ElemFn::Const(*v)),
            ExprKind::Name(n) => match self.lookup(n).map(|b| b.val.clone()) {
                Some(Val::Num(v)) => Some(ElemFn::Const(v)),
                Some(Val::Poison) => None,
                Some(other) => {
                    let got = val_kind(&other, &self.graph);
                    self.not_elementwise(
                        body.span,
                        format!("`{n}` is a {got}"),
                        "a lambda may use only its parameter, numbers and number params; \
                         combine matrices outside it, e.g. `softmax_cols(m + m2, f = x -> x + 1)`",
                    )
                }
                None => {
                    self.unknown_name(n, body.span, false);
                    None
                }
            },
            ExprKind::Unary {
                op: Operator::Neg,
                arg,
                ..
            } => Some(ElemFn::Neg(b(self.lambda_body(param, arg)?))),
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let (l, r) = (self.lambda_body(param, lhs), self.lambda_body(param, rhs));
                let (l, r) = (b(l?), b(r?));
                Some(match op {
                    Operator::Add => ElemFn::Add(l, r),
                    Operator::Sub => ElemFn::Sub(l, r),
                    Operator::Mul | Operator::ElemMul => ElemFn::Mul(l, r),
                    Operator::Div | Operator::ElemDiv => ElemFn::Div(l, r),
                    Operator::Pow => ElemFn::Pow(l, r),
                    Operator::Neg | Operator::Transpose => unreachable!("not binary"),
                })
            }
            ExprKind::Call { callee, args } => {
                let p = ops::lookup(&callee.name).and_then(|p| p.pointwise());
                match (p, args.as_slice()) {
                    (Some(p), [Arg::Positional(a)]) => {
                        Some(ElemFn::call(p, self.lambda_body(param, a)?))
                    }
                    (Some(_), _) => self.not_elementwise(
                        body.span,
                        format!("`{}` takes exactly one argument here", callee.name),
                        "call it with one positional argument",
                    ),
                    (None, _) => self.not_elementwise(
                        body.span,
                        format!("`{}` is not an element-wise function", callee.name),
                        &format!(
                            "inside a lambda, call only element-wise functions: {}",
                            pointwise_names()
                        ),
                    ),
                }
            }
            _ => self.not_elementwise(
                body.span,
                "this is not an element-wise expression".into(),
                "use numbers, the parameter and + - * / .^",
            ),
        }
    }

    fn not_elementwise(&mut self, span: Span, why: String, help: &str) -> Option<ElemFn> {
        self.report(
            Problem::new(
                "lambda_not_elementwise",
                format!("lambda bodies must be element-wise: {why}"),
            )
            .label(span, why)
            .help(help.to_string()),
        );
        None
    }

    fn call_fn(&mut self, callee: &Ident, args: &[Arg], span: Span) -> Val {
        if let Some(depth) = self.calls.iter().position(|(n, _)| *n == callee.name) {
            let chain: Vec<&str> = self.calls[depth..]
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            self.report(
                Problem::new(
                    "recursive_function",
                    format!(
                        "`{}` calls itself ({} → {})",
                        callee.name,
                        chain.join(" → "),
                        callee.name
                    ),
                )
                .label(callee.span, "recursive call")
                .help(
                    "functions are inlined, so they cannot recurse; unroll the recursion by hand",
                ),
            );
            return Val::Poison;
        }
        let def = &self.fns[&callee.name];
        let (params, locals, result, def_span) = (
            def.params.clone(),
            def.locals.clone(),
            def.result.clone(),
            def.name.span,
        );
        let mut values = Vec::new();
        for a in args {
            match a {
                Arg::Positional(e) => values.push((self.expr(e), e.span)),
                Arg::Keyword(k, _) => {
                    self.report(
                        Problem::new(
                            "unknown_keyword",
                            format!("function `{}` takes positional arguments only", callee.name),
                        )
                        .label(k.span, "keyword argument")
                        .help("pass the arguments in order"),
                    );
                    return Val::Poison;
                }
            }
        }
        if values.len() != params.len() {
            self.report(
                Problem::new(
                    "arity",
                    format!(
                        "`{}` takes {} argument{}, got {}",
                        callee.name,
                        params.len(),
                        plural(params.len()),
                        values.len()
                    ),
                )
                .label(span, "this call")
                .label(def_span, "defined here")
                .help(format!(
                    "call it as `{}({})`",
                    callee.name,
                    params
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            return Val::Poison;
        }
        let mut scope = HashMap::new();
        for (p, (v, s)) in params.iter().zip(values) {
            scope.insert(
                p.name.clone(),
                Binding {
                    val: v,
                    span: s,
                    learnable: false,
                    param: false,
                },
            );
        }
        self.scopes.push(scope);
        self.calls.push((callee.name.clone(), span));
        for (name, e) in &locals {
            let v = self.expr(e);
            self.bind(name, v, false, false);
        }
        let out = self.expr(&result);
        self.calls.pop();
        self.scopes.pop();
        out
    }

    fn output_opts(&mut self, opts: &[Kwarg], allowed: &[&str]) -> OutputOpts {
        let mut o = OutputOpts {
            bits: 8,
            range: RangePolicy::Clip,
            fps: 10.0,
            palindrome: false,
            colormap: Colormap::Gray,
        };
        for k in opts {
            let v = self.expr(&k.value);
            match (k.name.name.as_str(), &v) {
                (name, _) if !allowed.contains(&name) => {
                    let help = match did_you_mean(name, allowed.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("the options here are: {}", allowed.join(", ")),
                    };
                    self.report(
                        Problem::new("unknown_keyword", format!("unknown option `{name}`"))
                            .label(k.name.span, "unknown")
                            .help(help),
                    );
                }
                ("bits", Val::Num(n)) if *n == 8.0 || *n == 16.0 => o.bits = *n as u8,
                ("fps", Val::Num(n)) if *n > 0.0 && *n <= 100.0 => o.fps = *n,
                ("palindrome", Val::Bool(b)) => o.palindrome = *b,
                ("colormap", Val::Str(t)) if ["gray", "signed"].contains(&t.value.as_str()) => {
                    o.colormap = if t.value == "signed" {
                        Colormap::Signed
                    } else {
                        Colormap::Gray
                    }
                }
                ("range", Val::Str(t))
                    if ["clip", "normalize", "error"].contains(&t.value.as_str()) =>
                {
                    o.range = match t.value.as_str() {
                        "clip" => RangePolicy::Clip,
                        "normalize" => RangePolicy::Normalize,
                        _ => RangePolicy::Error,
                    }
                }
                (_, Val::Poison) => {}
                (name, _) => {
                    let help = match name {
                        "bits" => "`bits` is 8 or 16",
                        "fps" => "`fps` is a number of frames per second above 0 and at most 100",
                        "palindrome" => "`palindrome` is `true` or `false`",
                        "colormap" => "`colormap` is \"gray\" (default) or \"signed\" (values in [−1, 1] as colour)",
                        _ => "`range` is \"clip\" (default), \"normalize\" or \"error\"",
                    };
                    self.report(
                        Problem::new(
                            "bad_argument",
                            format!("`{name} = {}` is not accepted", k.value.span.text(self.src)),
                        )
                        .label(k.value.span, "not accepted")
                        .help(help),
                    );
                }
            }
        }
        o
    }

    /// The `with …` options and path of an animation.
    fn animation(&mut self, path: &ast::StrLit, opts: &[Kwarg], span: Span) -> Animation {
        let o = self.output_opts(opts, &["range", "fps", "palindrome"]);
        self.check_output_path(path, &["gif", "png"]);
        Animation {
            path: path.value.clone(),
            span,
            range: o.range,
            fps: o.fps,
            palindrome: o.palindrome,
        }
    }

    /// `sweep name from a to b count n record expr to "path"`: lowers `expr` once for each
    /// value, with the param rebound to it.
    fn sweep(
        &mut self,
        name: &Ident,
        [from, to, count]: [&Expr; 3],
        expr: &Expr,
        path: &ast::StrLit,
        opts: &[Kwarg],
        span: Span,
    ) {
        let binding = (self.globals.get(&name.name))
            .filter(|b| b.param && matches!(b.val, Val::Num(_)))
            .cloned();
        if binding.is_none() {
            self.report(
                Problem::new(
                    "not_a_param",
                    format!(
                        "`sweep` needs a number param, and `{}` is not one",
                        name.name
                    ),
                )
                .label(name.span, "not a number param")
                .help(format!(
                    "declare it before the sweep, e.g. `param {} = 0`",
                    name.name
                )),
            );
        }
        let ends = [from, to].map(|e| match self.expr(e) {
            Val::Num(v) if v.is_finite() => Some(v),
            Val::Poison => None,
            other => {
                let got = val_kind(&other, &self.graph);
                self.report(
                    Problem::new(
                        "wrong_type",
                        format!("a sweep's ends are numbers, got a {got}"),
                    )
                    .label(e.span, "must be known before the script runs")
                    .help("write numbers or number params, e.g. `from -10 to 10`"),
                );
                None
            }
        });
        let n = self.static_count(count, "`count`", MAX_SWEEP);
        let animation = self.animation(path, opts, span);
        let (Some(binding), [Some(a), Some(b)], Some(n)) = (binding, ends, n) else {
            return;
        };
        let fresh = NodeId(self.graph.len());
        let problems = self.problems.len();
        self.swept = Some((name.name.clone(), Cell::new(false)));
        let mut frames = Vec::new();
        for i in 0..n {
            let v = if n == 1 {
                a
            } else {
                a + (b - a) * i as f64 / (n - 1) as f64
            };
            self.globals.insert(
                name.name.clone(),
                Binding {
                    val: Val::Num(v),
                    ..binding.clone()
                },
            );
            let val = self.expr(expr);
            match self.expect_matrix(&val, expr.span, "sweep … record") {
                Some(node) if self.problems.len() == problems => frames.push((v, node)),
                // Once is enough to report a problem of the expression.
                _ => break,
            }
        }
        let used = self.swept.take().is_some_and(|(_, used)| used.get());
        self.globals.insert(name.name.clone(), binding);
        if frames.len() < n {
            return;
        }
        if !used {
            let p = &name.name;
            self.report(
                Problem::new(
                    "sweep_unused",
                    format!("the swept expression does not use `{p}`"),
                )
                .label(expr.span, format!("the same for every value of `{p}`"))
                .label(name.span, "swept here")
                .help(format!(
                    "names bound before the sweep (`a = … {p} …`) keep the value {p} had then; \
                     compute such values in the expression, or in a function (`fn a() = … {p} …`)"
                )),
            );
            return;
        }
        let ty = |id: NodeId| self.graph.node(id).ty;
        if let Some(&(v, other)) = frames.iter().find(|(_, id)| ty(*id) != ty(frames[0].1)) {
            let (a, first) = (frames[0].0, ty(frames[0].1));
            self.report(
                Problem::new(
                    "shape_mismatch",
                    "the frames of a sweep must have one shape",
                )
                .label(
                    expr.span,
                    format!(
                        "a {first} with `{}` = {a}, a {} with {v}",
                        name.name,
                        ty(other)
                    ),
                )
                .help("make the size independent of the param, e.g. with `resize(m, rows, cols)`"),
            );
            return;
        }
        self.steps.push(Step::Sweep(Sweep {
            param: name.name.clone(),
            frames,
            fresh,
            animation,
        }));
    }

    fn check_output_path(&mut self, path: &ast::StrLit, exts: &[&str]) {
        let ext = std::path::Path::new(&path.value)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if let Err(reason) = self.io.output_path(&path.value) {
            self.report(
                Problem::new("output_forbidden", reason)
                    .label(path.span, "refused")
                    .help(
                        "write inside the output folder (the script's folder, or `--out DIR`); \
                         pass `--allow-write-anywhere` only to a script you trust",
                    ),
            );
        }
        if !ext.as_deref().is_some_and(|e| exts.contains(&e)) {
            self.report(
                Problem::new(
                    "output_extension",
                    format!("cannot tell the format of \"{}\"", path.value),
                )
                .label(path.span, "unknown file extension")
                .help(format!(
                    "end the path with one of: {}",
                    exts.iter()
                        .map(|e| format!(".{e}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            );
        }
    }

    fn static_count(&mut self, e: &Expr, what: &str, max: f64) -> Option<usize> {
        match self.expr(e) {
            Val::Num(n) if n.fract() == 0.0 && n >= 1.0 && n <= max => Some(n as usize),
            Val::Poison => None,
            v => {
                let got = match v {
                    Val::Num(n) => format!("{n}"),
                    other => format!("a {}", val_kind(&other, &self.graph)),
                };
                self.report(
                    Problem::new(
                        "bad_argument",
                        format!("{what} must be a whole number from 1 to {max}, got {got}"),
                    )
                    .label(e.span, "not accepted")
                    .help(format!(
                        "write a whole number (or a param holding one) for {what}"
                    )),
                );
                None
            }
        }
    }

    fn optimize(
        &mut self,
        loss: &Expr,
        over: &[Ident],
        optimizer: &Expr,
        steps: &Expr,
        clauses: &[Clause],
        span: Span,
    ) {
        let lv = self.expr(loss);
        let loss_id = match lv {
            Val::Node(id) if self.graph.node(id).ty == Type::Scalar => Some(id),
            Val::Poison => None,
            other => {
                let got = val_kind(&other, &self.graph);
                self.report(
                    Problem::new(
                        "loss_not_scalar",
                        format!("`optimize` needs a scalar loss, got a {got}"),
                    )
                    .label(loss.span, format!("this is a {got}"))
                    .help("reduce it to a scalar, e.g. `loss(a, b)`, `sum(m)` or `mean(m)`"),
                );
                None
            }
        };
        let mut ids = Vec::new();
        for name in over {
            match self.lookup(&name.name).cloned() {
                Some(Binding {
                    learnable: true,
                    val: Val::Node(id),
                    ..
                }) => ids.push(id),
                Some(Binding {
                    learnable: true, ..
                }) => {}
                Some(b) => {
                    let what = if b.param { "a param" } else { "not learnable" };
                    self.report(
                        Problem::new(
                            "not_learnable",
                            format!("cannot optimize over `{}`: it is {what}", name.name),
                        )
                        .label(name.span, "not declared with `learn`")
                        .label(b.span, "defined here")
                        .help(format!(
                            "declare it with `learn {} = …` to let the optimiser change it",
                            name.name
                        )),
                    );
                }
                None => self.unknown_name(&name.name, name.span, true),
            }
        }
        if let Some(l) = loss_id {
            let reach = self.graph.ancestors(&[l]);
            for (id, name) in ids.iter().zip(over) {
                if !reach[id.0] {
                    self.report(
                        Problem::new(
                            "no_gradient",
                            format!("the loss does not depend on `{}`", name.name),
                        )
                        .label(name.span, "its gradient would be zero")
                        .label(loss.span, "this loss")
                        .help(format!(
                            "use `{}` in the loss expression, or drop it from `over`",
                            name.name
                        )),
                    );
                }
            }
        }
        let opt = self.optimizer(optimizer);
        let n = self.static_count(steps, "`steps`", MAX_STEPS);
        let mut records = Vec::new();
        let (mut log, mut stop, mut checkpoint) = (None, None, None);
        for c in clauses {
            match c {
                Clause::Record {
                    expr,
                    every,
                    path,
                    opts,
                    span,
                } => {
                    let v = self.expr(expr);
                    let node = self.expect_matrix(&v, expr.span, "record");
                    let k = self.static_count(every, "`every`", MAX_STEPS);
                    let animation = self.animation(path, opts, *span);
                    if let (Some(node), Some(every)) = (node, k) {
                        records.push(Record {
                            node,
                            every,
                            animation,
                        });
                    }
                }
                Clause::Log { path, opts, .. } => {
                    self.output_opts(opts, &[]);
                    self.check_output_path(path, &["csv"]);
                    log = Some(path.value.clone());
                }
                Clause::Stop { opts, span } => {
                    let (mut patience, mut delta) = (None, 0.0);
                    for k in opts {
                        match k.name.name.as_str() {
                            "patience" => {
                                patience = self.static_count(&k.value, "`patience`", MAX_STEPS)
                            }
                            "min_delta" => match self.expr(&k.value) {
                                Val::Num(d) if d >= 0.0 => delta = d,
                                _ => self.report(
                                    Problem::new(
                                        "bad_argument",
                                        "`min_delta` must be a number ≥ 0",
                                    )
                                    .label(k.value.span, "not accepted")
                                    .help("e.g. `stop when patience = 20, min_delta = 1e-4`"),
                                ),
                            },
                            other => self.report(
                                Problem::new(
                                    "unknown_keyword",
                                    format!("unknown stop option `{other}`"),
                                )
                                .label(k.name.span, "unknown")
                                .help("the options are `patience` and `min_delta`"),
                            ),
                        }
                    }
                    match patience {
                        Some(p) => stop = Some((p, delta)),
                        None => self.report(
                            Problem::new("arity", "`stop when` needs `patience`")
                                .label(*span, "no patience given")
                                .help("e.g. `stop when patience = 20`"),
                        ),
                    }
                }
                Clause::Checkpoint { path, .. } => {
                    self.check_output_path(path, &["ckpt"]);
                    checkpoint = Some(path.value.clone());
                }
            }
        }
        if let (Some(loss), Some(optimizer), Some(steps)) = (loss_id, opt, n) {
            if ids.len() == over.len() && !ids.is_empty() {
                self.steps.push(Step::Optimize(Optimize {
                    loss,
                    over: ids,
                    names: over.iter().map(|i| i.name.clone()).collect(),
                    optimizer,
                    steps,
                    span,
                    records,
                    log,
                    stop,
                    checkpoint,
                }));
            }
        }
    }

    fn optimizer(&mut self, e: &Expr) -> Option<Optimizer> {
        let ExprKind::Call { callee, args } = &e.kind else {
            unreachable!("grammar: the optimiser is a call")
        };
        let Some(def) = optim::lookup(&callee.name) else {
            let names = optim::OPTIMIZERS.iter().map(|d| d.name);
            let help = match did_you_mean(&callee.name, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "the optimisers are `adam(lr = …)` and `sgd(lr = …, momentum = …)`".into(),
            };
            self.report(
                Problem::new(
                    "unknown_function",
                    format!("unknown optimiser `{}`", callee.name),
                )
                .label(callee.span, "not an optimiser")
                .help(help),
            );
            return None;
        };
        let mut values: Vec<Option<f64>> = def.settings.iter().map(|s| s.default).collect();
        let mut ok = true;
        let mut given = vec![false; def.settings.len()];
        for (i, a) in args.iter().enumerate() {
            let (slot, expr, name_span) = match a {
                Arg::Positional(e) => (Some(i).filter(|i| *i < def.settings.len()), e, e.span),
                Arg::Keyword(k, e) => (
                    def.settings.iter().position(|s| s.name == k.name),
                    e,
                    k.span,
                ),
            };
            let Some(slot) = slot else {
                let names = def.settings.iter().map(|s| s.name);
                let text = match a {
                    Arg::Keyword(k, _) => k.name.clone(),
                    Arg::Positional(_) => String::new(),
                };
                let help = match did_you_mean(&text, names.clone()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "`{}` takes: {}",
                        def.name,
                        names.collect::<Vec<_>>().join(", ")
                    ),
                };
                self.report(
                    Problem::new(
                        "unknown_keyword",
                        format!("`{}` has no setting `{text}`", def.name),
                    )
                    .label(name_span, "not a setting")
                    .help(help),
                );
                ok = false;
                continue;
            };
            if std::mem::replace(&mut given[slot], true) {
                self.report(
                    Problem::new(
                        "duplicate_keyword",
                        format!("`{}` is given twice", def.settings[slot].name),
                    )
                    .label(name_span, "again here")
                    .help("give each setting once"),
                );
                ok = false;
            }
            let setting = def.settings[slot];
            match self.expr(expr) {
                Val::Num(v) if v.is_finite() => {
                    values[slot] = Some(v);
                    if !setting.accepts.holds(v) {
                        self.report(
                            Problem::new(
                                "bad_argument",
                                format!(
                                    "`{}` of `{}` must be {}, got {v}",
                                    setting.name,
                                    def.name,
                                    setting.accepts.describe()
                                ),
                            )
                            .label(expr.span, "not accepted")
                            .help(setting.outside),
                        );
                        ok = false;
                    }
                }
                Val::Poison => ok = false,
                other => {
                    let got = val_kind(&other, &self.graph);
                    self.report(
                        Problem::new(
                            "wrong_type",
                            format!("`{}` needs a number, got a {got}", setting.name),
                        )
                        .label(expr.span, "must be known before the script runs")
                        .help("write a number or a param"),
                    );
                    ok = false;
                }
            }
        }
        // a setting given with a wrong value has been reported already
        for ((s, v), given) in def.settings.iter().zip(&values).zip(&given) {
            if v.is_none() && !given {
                self.report(
                    Problem::new("arity", format!("`{}` needs `{}`", def.name, s.name))
                        .label(e.span, format!("`{}` missing", s.name))
                        .help(format!("e.g. `{}({} = 0.01)`", def.name, s.name)),
                );
                ok = false;
            }
        }
        let values: Vec<f64> = values.into_iter().map(|v| v.unwrap_or(0.0)).collect();
        ok.then(|| Optimizer::from_settings(def, &values))
    }
}

fn fold(op: Operator, x: f64, y: f64) -> Option<f64> {
    Some(match op {
        Operator::Add => x + y,
        Operator::Sub => x - y,
        Operator::Mul | Operator::ElemMul => x * y,
        Operator::Div | Operator::ElemDiv => x / y,
        Operator::Pow => x.powf(y),
        Operator::Neg | Operator::Transpose => return None,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn pointwise_names() -> String {
    ops::PRIMITIVES
        .iter()
        .filter(|p| p.pointwise().is_some())
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `name(a, b, f = exp, …)` as `imgx ops` and diagnostics show it.
pub fn signature_text(name: &str, sig: ops::Signature) -> String {
    let params: Vec<String> = sig
        .params
        .iter()
        .map(|p| match p.default {
            None => p.name.to_string(),
            Some(ops::Default::Num(v)) => format!("{} = {v}", p.name),
            Some(ops::Default::Bool(v)) => format!("{} = {v}", p.name),
            Some(ops::Default::Str(v)) => format!("{} = \"{v}\"", p.name),
            Some(ops::Default::Func(v)) => format!("{} = {v}", p.name),
        })
        .collect();
    let dots = if sig.variadic { ", …" } else { "" };
    format!("{name}({}{dots})", params.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::FakeIo;

    fn program(src: &str) -> Program {
        let script = crate::syntax::parse(src).expect("parses");
        lower(src, &script, &[], &FakeIo).unwrap_or_else(|p| panic!("{p:?}"))
    }

    /// zeros(4, 4), learn x, x .* x (16 elements each), sum (1): 49 values. On the path from
    /// x to the loss: x, the product and the sum, 33 gradients.
    const SRC: &str = "learn x = zeros(4, 4)\nl = sum(x .* x)\n";

    #[test]
    fn memory_estimate_counts_values_gradients_state_and_frames() {
        let adam = program(&format!(
            "{SRC}optimize l over x with adam(lr = 0.1) steps 10\n"
        ));
        assert_eq!(adam.graph.len(), 4);
        // Adam: two moments and the updated copy of x, 3 × 16.
        assert_eq!(estimate_bytes(&adam, 4), (49 + 33 + 48) * 4);
        let sgd = program(&format!(
            "{SRC}optimize l over x with sgd(lr = 0.1) steps 10\n"
        ));
        // SGD: one velocity and the copy, 2 × 16; in f64.
        assert_eq!(estimate_bytes(&sgd, 8), (49 + 33 + 32) * 8);
        let recorded = program(&format!(
            "{SRC}optimize l over x with adam(lr = 0.1) steps 10\n  record x every 5 to \"x.gif\"\n"
        ));
        // Frames at steps 0, 5 and 10, one byte per pixel.
        assert_eq!(estimate_bytes(&recorded, 4), (49 + 33 + 48) * 4 + 3 * 16);
    }

    /// Every setting of every optimiser is refused just outside the values it accepts and
    /// taken at their edges (0, and the decays just below 1), each refusal once, at the value.
    #[test]
    fn optimizer_settings_outside_their_values_are_refused_at_the_value() {
        let script = |opt: &str| format!("{SRC}optimize l over x with {opt} steps 10\n");
        for def in optim::OPTIMIZERS {
            for s in def.settings {
                let (taken, refused): (&[f64], &[f64]) = match s.accepts {
                    optim::Accepts::NonNegative => (&[0.0, 0.5, 1e9], &[-1e-12, -1.0]),
                    optim::Accepts::Decay => (&[0.0, 0.5, 0.999_999], &[1.0, 1.5, -0.1]),
                };
                // sgd needs lr: give it unless it is the setting under test
                let call = |v: f64| match (def.name, s.name) {
                    ("sgd", "lr") | ("adam", _) => format!("{}({} = {v:e})", def.name, s.name),
                    _ => format!("{}(lr = 0.1, {} = {v:e})", def.name, s.name),
                };
                for &v in taken {
                    program(&script(&call(v)));
                }
                for &v in refused {
                    let src = script(&call(v));
                    let parsed = crate::syntax::parse(&src).expect("parses");
                    let Err(problems) = lower(&src, &parsed, &[], &FakeIo) else {
                        panic!("{} was taken", call(v))
                    };
                    assert_eq!(problems.len(), 1, "{}: {problems:?}", call(v));
                    let p = &problems[0];
                    assert_eq!(p.code, "bad_argument");
                    assert!(p.message.contains(s.name) && p.message.contains(s.accepts.describe()));
                    let at = p.span().expect("a span");
                    assert_eq!(&src[at.start..at.end], format!("{v:e}"), "{}", call(v));
                    assert_eq!(p.help.as_deref(), Some(s.outside));
                }
            }
        }
    }

    #[test]
    fn memory_check_refuses_what_does_not_fit_and_names_the_largest_values() {
        let p = program("a = zeros(4, 4)\nb = a .* a\nc = sum(b)\n");
        let need = estimate_bytes(&p, 4);
        assert_eq!(need, 33 * 4);
        assert!(check_memory(&p, 4, Some(need)).is_ok());
        let refused = check_memory(&p, 4, Some(need - 1)).unwrap_err();
        assert_eq!(refused.code, "too_big");
        assert!(refused.message.contains("132 B") && refused.message.contains("131 B"));
        let labels: Vec<&str> = refused.labels.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "a 4×4 matrix (64 B)",
                "a 4×4 matrix (64 B)",
                "a scalar (4 B)"
            ]
        );
        assert!(check_memory(&p, 4, None).is_ok());
        // Five matrices of 2^28 elements in f64, 2 GiB each.
        let huge = program("a = ones(16384, 16384)\nb = a + 1\nc = b + 1\nd = c + 1\ne = d + 1\n");
        let e = check_memory(&huge, 8, None).unwrap_err();
        assert!(
            e.message.contains("10.0 GiB") && e.message.contains("assumed"),
            "{}",
            e.message
        );
        assert!(e.help.unwrap().contains("--f64"));
    }

    #[test]
    fn the_same_computation_written_twice_is_one_node() {
        let p = program(
            "m = zeros(4, 4)\nfn v(a) { normalize(a' * a) }\nb = v(m)\nc = v(m)\n\
             d = normalize(m' * m, signed = true)\ne = softmax_cols(m, f = x -> x + 1)\n\
             f = softmax_cols(m, f = x -> x + 2)\ng = softmax_cols(m, f = x -> x + 1)\n\
             print b\nprint c\nprint d\nprint e\nprint f\nprint g\n",
        );
        let titles: Vec<String> = p.graph.ids().map(|id| p.graph.node(id).title()).collect();
        // zeros (with its two size constants), one gram, normalize twice (unsigned and signed),
        // two softmax_cols (x + 1 once, x + 2)
        let count = |t: &str| titles.iter().filter(|n| *n == t).count();
        assert_eq!(
            (count("gram"), count("normalize"), count("softmax_cols")),
            (1, 2, 2),
            "{titles:?}"
        );
    }

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(1023), "1023 B");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 << 30), "3.0 GiB");
        assert_eq!(bytes_text(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn a_matrix_above_the_element_limit_is_refused_before_anything_allocates() {
        // 2^28 elements are fine; 10^10 are not.
        let src = "n = noise(100000, 100000)\nok = noise(16384, 16384)\n";
        let script = crate::syntax::parse(src).unwrap();
        let problems = lower(src, &script, &[], &FakeIo).err().unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, "too_big");
        assert_eq!(
            problems[0].span().map(|s| s.text(src)),
            Some("noise(100000, 100000)")
        );
    }
}
