//! The primitive registry: every operation a script can call.
//!
//! **One place per primitive.** A primitive is one file in this folder holding its name, docs,
//! argument schema, shape rule, forward, backward and tests, plus one line in [`PRIMITIVES`].
//! Nothing outside this folder names a primitive: the checker looks primitives up here by the
//! name a script wrote, and operators (`*`, `'`, `.^`, …) are mapped to primitives by
//! [`operator`], the only table that ties syntax to primitives.
//!
//! Invariants:
//! - no method has a default: a primitive without a backward does not compile;
//! - `forward` and `backward` may assume the checker accepted the arguments (kinds and shapes);
//!   a panic there is an engine bug, never a user error;
//! - a primitive never touches the disk itself: `load` asks the [`Io`] it is handed.

use crate::lambda::ElemFn;
use crate::tensor::{Real, Shape, Type, Value};
use ndarray::Array2;
use std::path::PathBuf;
use std::sync::Arc;

pub mod elementwise;
#[cfg(test)]
pub mod testing;

mod arith;
mod clamp;
mod concat;
pub(crate) mod divisor;
mod fill;
pub(crate) mod gemm;
mod gram;
mod isa;
pub(crate) mod kernel;
mod load;
mod loss;
mod matmul;
mod noise;
mod normalize;
mod reduce;
mod resize;
mod signed_diff;
mod softmax;
mod tile;
mod transpose;
mod warp;

/// Every primitive, in the order `imgx ops` lists them.
pub static PRIMITIVES: &[&dyn Primitive] = &[
    &matmul::Matmul,
    &gram::Gram,
    &transpose::Transpose,
    &warp::Warp,
    &softmax::Softmax(softmax::Axis::Rows),
    &softmax::Softmax(softmax::Axis::Cols),
    &normalize::Normalize,
    &signed_diff::SignedDiff,
    &loss::Loss,
    &noise::Noise,
    &load::Load,
    &elementwise::Unary(elementwise::Exp),
    &elementwise::Unary(elementwise::Log),
    &elementwise::Unary(elementwise::Sqrt),
    &elementwise::Unary(elementwise::Abs),
    &elementwise::Unary(elementwise::Tanh),
    &elementwise::Unary(elementwise::Sigmoid),
    &elementwise::Unary(elementwise::Relu),
    &arith::Binary(arith::Add),
    &arith::Binary(arith::Sub),
    &arith::Binary(arith::Mul),
    &arith::Binary(arith::Div),
    &arith::Binary(arith::Pow),
    &elementwise::Unary(arith::Neg),
    &clamp::Clamp,
    &reduce::Reduce(reduce::Sum),
    &reduce::Reduce(reduce::Mean),
    &reduce::Reduce(reduce::Norm),
    &reduce::Reduce(reduce::Min),
    &reduce::Reduce(reduce::Max),
    &concat::Concat::H,
    &concat::Concat::V,
    &resize::Resize,
    &fill::Fill::Zeros,
    &fill::Fill::Ones,
    &fill::Fill::Given,
];

/// Looks a primitive up by the name a script calls it by.
pub fn lookup(name: &str) -> Option<&'static dyn Primitive> {
    PRIMITIVES.iter().copied().find(|p| p.name() == name)
}

/// What kind of argument a parameter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A matrix: a graph edge, differentiable.
    Matrix,
    /// A scalar: a graph edge, differentiable (a learnable scalar may be passed).
    Scalar,
    /// A scalar or a matrix: a graph edge, differentiable.
    Numeric,
    /// A whole number known before the script runs (a literal, a param, or arithmetic of them).
    Int,
    /// A number known before the script runs.
    Num,
    /// `true` or `false`, known before the script runs.
    Bool,
    /// A string, known before the script runs.
    Str,
    /// An element-wise function: a lambda `x -> expr` or the name of an element-wise primitive.
    Func,
}

impl Kind {
    /// Whether arguments of this kind are graph edges (runtime values) rather than attributes.
    pub fn is_edge(self) -> bool {
        matches!(self, Kind::Matrix | Kind::Scalar | Kind::Numeric)
    }

    /// How the kind reads in signatures and diagnostics.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Matrix => "matrix",
            Kind::Scalar => "scalar",
            Kind::Numeric => "scalar or matrix",
            Kind::Int => "whole number",
            Kind::Num => "number",
            Kind::Bool => "bool",
            Kind::Str => "string",
            Kind::Func => "element-wise function",
        }
    }
}

/// A default value for an optional parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    Num(f64),
    Bool(bool),
    Str(&'static str),
    /// The name of an element-wise primitive, e.g. `"exp"`.
    Func(&'static str),
}

/// One parameter of a primitive's signature.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    /// `None`: the argument is required.
    pub default: Option<Default>,
    pub doc: &'static str,
}

/// Shorthand for a required parameter.
pub const fn req(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        default: None,
        doc,
    }
}

/// Shorthand for an optional parameter.
pub const fn opt(name: &'static str, kind: Kind, default: Default, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        default: Some(default),
        doc,
    }
}

/// A primitive's argument schema.
#[derive(Clone, Copy, Debug)]
pub struct Signature {
    pub params: &'static [Param],
    /// The last parameter repeats: one or more arguments of its kind (`hcat(a, b, …)`).
    pub variadic: bool,
}

/// A primitive's documentation, rendered by `imgx ops` and the README table.
#[derive(Clone, Copy, Debug)]
pub struct Doc {
    /// One line: what it computes.
    pub summary: &'static str,
    /// The maths, conventions and edge cases (may be several sentences).
    pub details: &'static str,
    /// How gradients flow (or why none do).
    pub gradient: &'static str,
    /// A line of `.imgx` using it.
    pub example: &'static str,
}

/// Where a string came from, which decides what a relative path in it is relative to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Written in the script: relative to the script's folder.
    Script,
    /// Given on the command line (`--set`): relative to the current folder.
    CommandLine,
}

/// A string argument with its origin.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Text {
    pub value: String,
    pub origin: Origin,
}

/// An attribute: an argument known before the script runs.
#[derive(Clone, Debug)]
pub enum Static {
    Num(f64),
    Bool(bool),
    Str(Text),
    Func(Arc<ElemFn>),
}

/// The attributes of one call, by parameter name (edges are not here).
#[derive(Clone, Debug, Default)]
pub struct Attrs {
    pub values: Vec<(&'static str, Static)>,
}

impl Attrs {
    fn get(&self, name: &str) -> &Static {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| unreachable!("checked call: attribute `{name}` missing"))
    }
    /// A `Num` or `Int` attribute.
    pub fn num(&self, name: &str) -> f64 {
        match self.get(name) {
            Static::Num(v) => *v,
            other => unreachable!("checked call: `{name}` is {other:?}, not a number"),
        }
    }
    /// An `Int` attribute (the checker made sure it is a whole, non-negative number).
    pub fn int(&self, name: &str) -> usize {
        self.num(name) as usize
    }
    pub fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            Static::Bool(v) => *v,
            other => unreachable!("checked call: `{name}` is {other:?}, not a bool"),
        }
    }
    pub fn str(&self, name: &str) -> &Text {
        match self.get(name) {
            Static::Str(v) => v,
            other => unreachable!("checked call: `{name}` is {other:?}, not a string"),
        }
    }
    pub fn func(&self, name: &str) -> &ElemFn {
        match self.get(name) {
            Static::Func(v) => v,
            other => unreachable!("checked call: `{name}` is {other:?}, not a function"),
        }
    }
}

/// Which argument a [`CheckError`] is about, for labelling the right span.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// The i-th edge (numeric) argument, counting only edges, in call order.
    Input(usize),
    /// An attribute, by parameter name.
    Attr(&'static str),
}

/// Why a call's arguments were refused by a primitive's shape rule.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckError {
    /// Stable diagnostic code without the `imgx::` prefix, e.g. `"shape_mismatch"`.
    pub code: &'static str,
    pub message: String,
    /// The arguments to point at, each with a label (e.g. its shape).
    pub labels: Vec<(Arg, String)>,
    /// What to do about it.
    pub help: String,
}

impl CheckError {
    pub fn new(code: &'static str, message: impl Into<String>, help: impl Into<String>) -> Self {
        CheckError {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: help.into(),
        }
    }
    pub fn label(mut self, arg: Arg, text: impl Into<String>) -> Self {
        self.labels.push((arg, text.into()));
        self
    }
}

/// What a primitive may ask of the outside world. Implemented by `io.rs`, the only module that
/// touches the disk; tests use an in-memory stand-in.
pub trait Io {
    /// Resolves a path as written (relative to the script or the current folder, by origin).
    fn resolve(&self, path: &Text) -> PathBuf;
    /// The shape of the image at `path` (rows = height), reading as little as the format allows.
    fn image_shape(&self, path: &Text) -> Result<Shape, String>;
    /// The image at `path` as gray levels in [0, 1] (see `load`).
    fn read_gray(&self, path: &Text) -> Result<Array2<f64>, String>;
    /// Where an output written in the script as `path` goes, or why the script may not write
    /// there (it leaves the output folder). The checker asks before anything runs.
    fn output_path(&self, path: &str) -> Result<PathBuf, String>;
}

/// An element-wise function's value and derivative, for both float types: what lambdas call.
#[derive(Clone, Copy)]
pub struct PointwiseFns {
    pub name: &'static str,
    pub f32: fn(f32) -> f32,
    pub df32: fn(f32, f32) -> f32,
    pub f64: fn(f64) -> f64,
    pub df64: fn(f64, f64) -> f64,
}

impl std::fmt::Debug for PointwiseFns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Static facts about a primitive: name, docs, schema and shape rule.
pub trait Meta: Sync {
    fn name(&self) -> &'static str;
    fn doc(&self) -> Doc;
    fn signature(&self) -> Signature;
    /// The type of the result, given the edge arguments' types (already checked against the
    /// signature's kinds) and the attributes. Also validates attribute values.
    fn check(&self, inputs: &[Type], attrs: &Attrs, io: &dyn Io) -> Result<Type, CheckError>;
    /// `Some` for element-wise functions of one argument, which lambdas may call.
    fn pointwise(&self) -> Option<PointwiseFns>;
}

/// Numbers a primitive's forward keeps for its backward besides its result (`normalize` keeps
/// its input's extremes, so its backward need not search for them again). The engine keeps
/// them with the node's value and hands them back; most primitives keep none.
pub type Notes<T> = Vec<T>;

/// A forward's result, or why it failed (only outside-world reasons: a file that vanished).
pub type Forward<T> = Result<Value<T>, String>;

/// The numeric part of a primitive, for one float type.
pub trait Op<T: Real> {
    /// Computes the result, and pushes onto `notes` (empty when called) whatever its backward
    /// wants kept. Fails only for outside-world reasons (a file that vanished).
    fn forward(
        &self,
        inputs: &[&Value<T>],
        attrs: &Attrs,
        io: &dyn Io,
        notes: &mut Notes<T>,
    ) -> Forward<T>;

    /// Vector-Jacobian product: given the gradient of a scalar with respect to the output,
    /// returns one entry per edge input: its gradient, or `None` where `needs[i]` is false
    /// (the engine does not want it). `output` is the forward result (softmax, sigmoid and
    /// normalize use it), `notes` what the forward kept. `grad` is the primitive's to keep: an element-wise rule may write
    /// its result over it (its entries were just written, so they are in the cache, and no
    /// new buffer is touched).
    fn backward(
        &self,
        inputs: &[&Value<T>],
        output: &Value<T>,
        notes: &[T],
        grad: Value<T>,
        attrs: &Attrs,
        needs: &[bool],
    ) -> Vec<Option<Value<T>>>;
}

/// A registered primitive: metadata plus numerics in both float types.
pub trait Primitive: Meta + Op<f32> + Op<f64> {}
impl<P: Meta + Op<f32> + Op<f64>> Primitive for P {}

/// An element-wise rule for one float type: f(x), and f'(x) given (x, f(x)).
pub type Rule<T> = (fn(T) -> T, fn(T, T) -> T);

/// Dispatches the numeric part by float type, so generic engine code can call a `dyn Primitive`.
pub trait Dispatch: Real {
    fn op(p: &dyn Primitive) -> &dyn Op<Self>;
    fn pointwise(p: &PointwiseFns) -> Rule<Self>;
}

impl Dispatch for f32 {
    fn op(p: &dyn Primitive) -> &dyn Op<f32> {
        p
    }
    fn pointwise(p: &PointwiseFns) -> Rule<f32> {
        (p.f32, p.df32)
    }
}

impl Dispatch for f64 {
    fn op(p: &dyn Primitive) -> &dyn Op<f64> {
        p
    }
    fn pointwise(p: &PointwiseFns) -> Rule<f64> {
        (p.f64, p.df64)
    }
}

pub use crate::ast::Operator;

/// The primitive an operator means for operands of these types. `Err` holds a hint when the
/// operator does not apply to them (e.g. `/` by a matrix).
pub fn operator(op: Operator, operands: &[Type]) -> Result<&'static dyn Primitive, String> {
    let is_matrix = |i: usize| matches!(operands.get(i), Some(Type::Matrix(_)));
    let name = match op {
        Operator::Add => "add",
        Operator::Sub => "sub",
        Operator::Mul if is_matrix(0) && is_matrix(1) => "matmul",
        Operator::Mul | Operator::ElemMul => "mul",
        Operator::Div if is_matrix(1) => {
            return Err(
                "`/` divides by a scalar; for element-wise division of matrices write `./`".into(),
            )
        }
        Operator::Div | Operator::ElemDiv => "div",
        Operator::Pow => "pow",
        Operator::Neg => "neg",
        Operator::Transpose => "transpose",
    };
    lookup(name).ok_or_else(|| {
        format!(
            "the primitive `{name}` behind `{}` is not registered",
            op.symbol()
        )
    })
}

/// A cheaper primitive computing the same as `prim` applied to `inputs`, if the registry knows
/// one: `matmul(transpose(m), m)` (that is, `m' * m`) becomes `gram(m)`. `producer` tells what
/// computes an input: its primitive and that primitive's inputs. Like [`operator`], this is a
/// table the checker consults without knowing any primitive itself.
pub fn fuse<Id: Copy + PartialEq>(
    prim: &dyn Primitive,
    inputs: &[Id],
    producer: impl Fn(Id) -> Option<(&'static dyn Primitive, Vec<Id>)>,
) -> Option<(&'static dyn Primitive, Vec<Id>)> {
    if prim.name() != "matmul" {
        return None;
    }
    let (left, right) = (inputs[0], inputs[1]);
    match producer(left) {
        Some((t, of)) if t.name() == "transpose" && of == [right] => {
            Some((lookup("gram")?, vec![right]))
        }
        _ => None,
    }
}

/// Shared shape rule of element-wise binary operations with scalar broadcasting: both matrices
/// of one shape, or either side a scalar.
pub fn broadcast(inputs: &[Type], what: &str) -> Result<Type, CheckError> {
    match (inputs[0], inputs[1]) {
        (Type::Scalar, t) | (t, Type::Scalar) => Ok(t),
        (Type::Matrix(a), Type::Matrix(b)) if a == b => Ok(Type::Matrix(a)),
        (Type::Matrix(a), Type::Matrix(b)) => Err(CheckError::new(
            "shape_mismatch",
            format!("{what} needs matrices of one shape, got {a} and {b}"),
            "element-wise operations take two matrices of the same shape, or a scalar and a matrix; \
             use resize(m, rows, cols) or transpose (') to make the shapes agree",
        )
        .label(Arg::Input(0), format!("{a}"))
        .label(Arg::Input(1), format!("{b}"))),
    }
}

/// Sums a gradient of a broadcast result back to an input of type `ty` (a scalar input receives
/// the sum over the matrix).
pub fn unbroadcast<T: Real>(grad: Value<T>, ty: Type) -> Value<T> {
    match (grad, ty) {
        (Value::Matrix(g), Type::Scalar) => Value::Scalar(g.sum()),
        (g, _) => g,
    }
}

impl Default {
    /// The attribute this default stands for.
    pub fn to_static(self) -> Static {
        match self {
            Default::Num(v) => Static::Num(v),
            Default::Bool(v) => Static::Bool(v),
            Default::Str(v) => Static::Str(Text {
                value: v.to_string(),
                origin: Origin::Script,
            }),
            Default::Func(name) => {
                let p = lookup(name).and_then(|p| p.pointwise());
                let p = p.unwrap_or_else(|| {
                    unreachable!("default function `{name}` is a registered element-wise primitive")
                });
                Static::Func(Arc::new(ElemFn::call(p, ElemFn::X)))
            }
        }
    }
}
