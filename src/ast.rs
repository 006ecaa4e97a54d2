//! The syntax tree of a script. Every node carries the byte span it was parsed from, so every
//! later phase can point at the source. A plain value type: it knows nothing about tensors,
//! primitives or the graph.

/// A byte range in the script's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
    pub fn text(self, src: &str) -> &str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// The operators of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Add,
    Sub,
    /// `*`: matrix product of two matrices, scaling when either side is a scalar.
    Mul,
    /// `.*`
    ElemMul,
    /// `/`: division by a scalar.
    Div,
    /// `./`
    ElemDiv,
    /// `.^` with a scalar exponent.
    Pow,
    /// unary `-`
    Neg,
    /// postfix `'`
    Transpose,
}

impl Operator {
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Add => "+",
            Operator::Sub => "-",
            Operator::Mul => "*",
            Operator::ElemMul => ".*",
            Operator::Div => "/",
            Operator::ElemDiv => "./",
            Operator::Pow => ".^",
            Operator::Neg => "unary -",
            Operator::Transpose => "'",
        }
    }
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Num(f64),
    Str(String),
    Bool(bool),
    Name(String),
    Call {
        callee: Ident,
        args: Vec<Arg>,
    },
    Binary {
        op: Operator,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: Operator,
        op_span: Span,
        arg: Box<Expr>,
    },
    Lambda {
        param: Ident,
        body: Box<Expr>,
    },
}

/// A call argument: positional or `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Positional(Expr),
    Keyword(Ident, Expr),
}

/// `name = value` in `with` lists and `stop when`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kwarg {
    pub name: Ident,
    pub value: Expr,
}

/// A string literal with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `param name = literal`
    Param { name: Ident, value: Expr },
    /// `name = expr`
    Let { name: Ident, value: Expr },
    /// `learn name = expr`
    Learn { name: Ident, value: Expr },
    /// `fn name(params) = result` or `fn name(params) { locals; result }`
    Fn {
        name: Ident,
        params: Vec<Ident>,
        locals: Vec<(Ident, Expr)>,
        result: Expr,
    },
    /// `print expr`
    Print { expr: Expr },
    /// `save expr to "path" [with …]`
    Save {
        expr: Expr,
        path: StrLit,
        opts: Vec<Kwarg>,
    },
    /// `optimize loss over names with optimizer(…) steps n clauses…`
    Optimize {
        loss: Expr,
        over: Vec<Ident>,
        optimizer: Expr,
        steps: Expr,
        clauses: Vec<Clause>,
        span: Span,
    },
    /// `sweep name from a to b count n record expr to "path" [with …]`
    Sweep {
        name: Ident,
        from: Expr,
        to: Expr,
        count: Expr,
        expr: Expr,
        path: StrLit,
        opts: Vec<Kwarg>,
        span: Span,
    },
}

/// Optional parts of an `optimize` statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    /// `record expr every k to "path" [with …]`
    Record {
        expr: Expr,
        every: Expr,
        path: StrLit,
        opts: Vec<Kwarg>,
        span: Span,
    },
    /// `stop when patience = n, min_delta = d`
    Stop { opts: Vec<Kwarg>, span: Span },
    /// `log to "loss.csv" [with …]`
    Log {
        path: StrLit,
        opts: Vec<Kwarg>,
        span: Span,
    },
    /// `checkpoint to "path"`
    Checkpoint { path: StrLit, span: Span },
}

/// A parsed script.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Script {
    pub stmts: Vec<Stmt>,
}
