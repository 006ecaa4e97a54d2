//! Parsing: source text → [`crate::ast::Script`] with byte spans, using the pest grammar in
//! `grammar/imgx.pest`. Knows nothing about primitives, types or the graph; the only errors it
//! reports are syntax errors.
//!
//! A syntax error is explained in the words of the language, not pest's rule names: a light
//! scan of the text before the error (open brackets, strings, the statement's first word)
//! recognises the usual slips (a missing `,`, an unclosed `(`, a bad number, a stray
//! character, a missing `to`) and says what to write. After an error, parsing resumes at the
//! next statement, so one run reports the syntax errors of every statement.

use crate::ast::{Arg, Clause, Expr, ExprKind, Ident, Kwarg, Operator, Script, Span, Stmt, StrLit};
use crate::diag::Problem;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "grammar/imgx.pest"]
struct Grammar;

/// The deepest expression the parser accepts (operators and brackets nested in one another).
/// Later phases recurse over expressions; this keeps them far from the end of the stack.
pub const MAX_DEPTH: usize = 128;
/// Syntax errors reported at most per script (one per statement).
const MAX_SYNTAX_ERRORS: usize = 10;

/// Parses a whole script. Every syntax error is reported, one per broken statement, each with
/// its position, what was expected in words, and a hint.
pub fn parse(src: &str) -> Result<Script, Vec<Problem>> {
    // Makes pest record the literal tokens it tried (`,`, `)`, `to`, …), not only rule names.
    pest::set_error_detail(true);
    let mut problems = Vec::new();
    let mut from = 0;
    loop {
        let text = blank_before(src, from);
        match Grammar::parse(Rule::file, &text) {
            Ok(pairs) => {
                let builder = Builder::default();
                let script = builder.file(pairs);
                problems.extend(builder.too_deep.take());
                return if problems.is_empty() {
                    Ok(script)
                } else {
                    Err(problems)
                };
            }
            Err(e) => {
                let (problem, at) = explain(&text, from, e);
                problems.push(problem);
                match next_statement(&text, from, at) {
                    Some(next) if problems.len() < MAX_SYNTAX_ERRORS => from = next,
                    _ => return Err(problems),
                }
            }
        }
    }
}

/// The source with everything before `from` blanked out (byte for byte, keeping line breaks),
/// so parsing resumes there while positions stay those of the whole file.
fn blank_before(src: &str, from: usize) -> Cow<'_, str> {
    if from == 0 {
        return Cow::Borrowed(src);
    }
    let blank: String = src[..from]
        .chars()
        .map(|c| {
            if c == '\n' {
                "\n"
            } else {
                &"    "[..c.len_utf8()]
            }
        })
        .collect();
    Cow::Owned(blank + &src[from..])
}

fn span(p: &Pair<Rule>) -> Span {
    Span::new(p.as_span().start(), p.as_span().end())
}

/// Inner pairs without the keyword tokens.
fn parts(p: Pair<Rule>) -> impl Iterator<Item = Pair<Rule>> {
    p.into_inner().filter(|q| !is_keyword(q.as_rule()))
}

fn is_keyword(r: Rule) -> bool {
    matches!(
        r,
        Rule::k_param
            | Rule::k_learn
            | Rule::k_fn
            | Rule::k_print
            | Rule::k_save
            | Rule::k_to
            | Rule::k_optimize
            | Rule::k_over
            | Rule::k_with
            | Rule::k_steps
            | Rule::k_record
            | Rule::k_every
            | Rule::k_stop
            | Rule::k_when
            | Rule::k_log
            | Rule::k_checkpoint
            | Rule::k_sweep
            | Rule::k_from
            | Rule::k_count
    )
}

fn ident(p: Pair<Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

fn string(p: Pair<Rule>) -> StrLit {
    let sp = span(&p);
    let raw = p.into_inner().next().map(|i| i.as_str()).unwrap_or("");
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(other) => value.push(other),
                None => {}
            }
        } else {
            value.push(c);
        }
    }
    StrLit { value, span: sp }
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::elem_mul, Assoc::Left)
                | Op::infix(Rule::elem_div, Assoc::Left))
            .op(Op::prefix(Rule::neg))
            .op(Op::infix(Rule::elem_pow, Assoc::Right))
            .op(Op::postfix(Rule::transpose))
    })
}

/// An expression with its depth (1 for a leaf).
type Deep = (Expr, usize);

/// Builds the AST from pest's pairs, refusing expressions deeper than [`MAX_DEPTH`] (in
/// brackets or in operators): a too-deep expression is recorded and replaced by a leaf, so
/// neither the builder's recursion nor the tree grows past the limit.
#[derive(Default)]
struct Builder {
    too_deep: Cell<Option<Problem>>,
    /// `expr` pairs being built, one inside the other.
    level: Cell<usize>,
}

impl Builder {
    fn file(&self, mut pairs: pest::iterators::Pairs<Rule>) -> Script {
        let file = pairs.next().into_iter().flat_map(|p| p.into_inner());
        let stmts = file
            .filter(|p| p.as_rule() != Rule::EOI)
            .map(|p| self.stmt(p))
            .collect();
        Script { stmts }
    }

    fn stmt(&self, p: Pair<Rule>) -> Stmt {
        let rule = p.as_rule();
        let whole = span(&p);
        let mut it = parts(p);
        let mut next = || {
            it.next()
                .unwrap_or_else(|| unreachable!("grammar guarantees the part"))
        };
        match rule {
            Rule::param_stmt => Stmt::Param {
                name: ident(next()),
                value: self.literal(next()),
            },
            Rule::learn_stmt => Stmt::Learn {
                name: ident(next()),
                value: self.expr(next()),
            },
            Rule::let_stmt => Stmt::Let {
                name: ident(next()),
                value: self.expr(next()),
            },
            Rule::print_stmt => Stmt::Print {
                expr: self.expr(next()),
            },
            Rule::save_stmt => {
                let e = self.expr(next());
                let path = string(next());
                let opts = it.next().map(|w| self.with_opts(w)).unwrap_or_default();
                Stmt::Save {
                    expr: e,
                    path,
                    opts,
                }
            }
            Rule::fn_stmt => {
                let name = ident(next());
                let mut params = Vec::new();
                let mut locals = Vec::new();
                let mut result = None;
                for q in it {
                    match q.as_rule() {
                        Rule::fn_params => params = q.into_inner().map(ident).collect(),
                        Rule::block => {
                            for b in q.into_inner() {
                                if b.as_rule() == Rule::block_let {
                                    let mut bi = b.into_inner();
                                    let (n, v) = (bi.next(), bi.next());
                                    if let (Some(n), Some(v)) = (n, v) {
                                        locals.push((ident(n), self.expr(v)));
                                    }
                                } else {
                                    result = Some(self.expr(b));
                                }
                            }
                        }
                        _ => result = Some(self.expr(q)),
                    }
                }
                Stmt::Fn {
                    name,
                    params,
                    locals,
                    result: result.unwrap_or_else(|| unreachable!("grammar guarantees a result")),
                }
            }
            Rule::optimize_stmt => {
                let loss = self.expr(next());
                let over = next().into_inner().map(ident).collect();
                let optimizer = self.primary(next()).0;
                let steps = self.expr(next());
                let clauses = it.map(|c| self.clause(c)).collect();
                Stmt::Optimize {
                    loss,
                    over,
                    optimizer,
                    steps,
                    clauses,
                    span: whole,
                }
            }
            Rule::sweep_stmt => {
                let name = ident(next());
                let (from, to, count) = (self.expr(next()), self.expr(next()), self.expr(next()));
                let expr = self.expr(next());
                let path = string(next());
                let opts = it.next().map(|w| self.with_opts(w)).unwrap_or_default();
                Stmt::Sweep {
                    name,
                    from,
                    to,
                    count,
                    expr,
                    path,
                    opts,
                    span: whole,
                }
            }
            _ => unreachable!("grammar: unexpected statement {rule:?}"),
        }
    }

    fn with_opts(&self, p: Pair<Rule>) -> Vec<Kwarg> {
        parts(p).map(|k| self.kwarg(k).0).collect()
    }

    /// `name = value`, with the value's depth.
    fn kwarg(&self, p: Pair<Rule>) -> (Kwarg, usize) {
        let mut it = p.into_inner();
        let name = ident(it.next().unwrap_or_else(|| unreachable!("kwarg name")));
        let (value, depth) =
            self.deep_expr(it.next().unwrap_or_else(|| unreachable!("kwarg value")));
        (Kwarg { name, value }, depth)
    }

    fn clause(&self, p: Pair<Rule>) -> Clause {
        let rule = p.as_rule();
        let sp = span(&p);
        let mut it = parts(p);
        let mut next = || {
            it.next()
                .unwrap_or_else(|| unreachable!("grammar guarantees the part"))
        };
        match rule {
            Rule::record_clause => {
                let e = self.expr(next());
                let every = self.expr(next());
                let path = string(next());
                let opts = it.next().map(|w| self.with_opts(w)).unwrap_or_default();
                Clause::Record {
                    expr: e,
                    every,
                    path,
                    opts,
                    span: sp,
                }
            }
            Rule::stop_clause => Clause::Stop {
                opts: it.map(|k| self.kwarg(k).0).collect(),
                span: sp,
            },
            Rule::log_clause => {
                let path = string(next());
                let opts = it.next().map(|w| self.with_opts(w)).unwrap_or_default();
                Clause::Log {
                    path,
                    opts,
                    span: sp,
                }
            }
            Rule::checkpoint_clause => Clause::Checkpoint {
                path: string(next()),
                span: sp,
            },
            _ => unreachable!("grammar: unexpected clause {rule:?}"),
        }
    }

    fn literal(&self, p: Pair<Rule>) -> Expr {
        let inner = p
            .into_inner()
            .next()
            .unwrap_or_else(|| unreachable!("literal"));
        self.primary(inner).0
    }

    fn expr(&self, p: Pair<Rule>) -> Expr {
        self.deep_expr(p).0
    }

    /// An `expr` pair. Pest's Pratt parser recurses once per prefix operator and per `.^`, so
    /// an expression with more parts than [`MAX_DEPTH`] allows is refused before it runs.
    fn deep_expr(&self, p: Pair<Rule>) -> Deep {
        let sp = span(&p);
        let level = self.level.get();
        if level >= MAX_DEPTH || p.clone().into_inner().count() > 2 * MAX_DEPTH {
            return self.refuse(sp);
        }
        self.level.set(level + 1);
        let (e, depth) = pratt()
            .map_primary(|q| self.primary(q))
            .map_prefix(|op, (arg, d)| {
                let e = Expr {
                    span: span(&op).to(arg.span),
                    kind: ExprKind::Unary {
                        op: Operator::Neg,
                        op_span: span(&op),
                        arg: Box::new(arg),
                    },
                };
                (e, d + 1)
            })
            .map_postfix(|(arg, d), op| {
                let e = Expr {
                    span: arg.span.to(span(&op)),
                    kind: ExprKind::Unary {
                        op: Operator::Transpose,
                        op_span: span(&op),
                        arg: Box::new(arg),
                    },
                };
                (e, d + 1)
            })
            .map_infix(|(lhs, dl), op, (rhs, dr)| {
                let operator = match op.as_rule() {
                    Rule::add => Operator::Add,
                    Rule::sub => Operator::Sub,
                    Rule::mul => Operator::Mul,
                    Rule::div => Operator::Div,
                    Rule::elem_mul => Operator::ElemMul,
                    Rule::elem_div => Operator::ElemDiv,
                    Rule::elem_pow => Operator::Pow,
                    r => unreachable!("grammar: unexpected operator {r:?}"),
                };
                let e = Expr {
                    span: lhs.span.to(rhs.span),
                    kind: ExprKind::Binary {
                        op: operator,
                        op_span: span(&op),
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                };
                (e, dl.max(dr) + 1)
            })
            .parse(p.into_inner());
        self.level.set(level);
        if depth > MAX_DEPTH {
            self.refuse(sp)
        } else {
            (e, depth)
        }
    }

    /// Records that the expression at `sp` is too deep (the first one only) and stands in a leaf.
    fn refuse(&self, sp: Span) -> Deep {
        let first = self.too_deep.take().unwrap_or_else(|| {
            Problem::new(
                "syntax",
                format!("this expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            )
            .label(sp, "too deep")
            .help("split it into named steps: `t = …` on one line, then use `t`")
        });
        self.too_deep.set(Some(first));
        (
            Expr {
                kind: ExprKind::Num(0.0),
                span: sp,
            },
            1,
        )
    }

    /// A primary expression (or a whole `expr` pair).
    fn primary(&self, p: Pair<Rule>) -> Deep {
        let sp = span(&p);
        let (kind, depth) = match p.as_rule() {
            Rule::expr => return self.deep_expr(p),
            Rule::paren => {
                let inner = p.into_inner().next();
                let (e, depth) = self.deep_expr(inner.unwrap_or_else(|| unreachable!("paren")));
                return (Expr { span: sp, ..e }, depth);
            }
            Rule::number | Rule::signed_number => {
                (ExprKind::Num(p.as_str().parse().unwrap_or(f64::NAN)), 1)
            }
            Rule::string => (ExprKind::Str(string(p).value), 1),
            Rule::boolean => (ExprKind::Bool(p.as_str() == "true"), 1),
            Rule::ident => (ExprKind::Name(p.as_str().to_string()), 1),
            Rule::lambda => {
                let mut it = p.into_inner();
                let param = ident(it.next().unwrap_or_else(|| unreachable!("lambda param")));
                let (body, d) =
                    self.deep_expr(it.next().unwrap_or_else(|| unreachable!("lambda body")));
                let body = Box::new(body);
                (ExprKind::Lambda { param, body }, d + 1)
            }
            Rule::call => {
                let mut it = p.into_inner();
                let callee = ident(it.next().unwrap_or_else(|| unreachable!("callee")));
                let mut depth = 0;
                let args = it
                    .map(|a| match a.as_rule() {
                        Rule::kwarg => {
                            let (k, d) = self.kwarg(a);
                            depth = depth.max(d);
                            Arg::Keyword(k.name, k.value)
                        }
                        _ => {
                            let (e, d) = self.deep_expr(a);
                            depth = depth.max(d);
                            Arg::Positional(e)
                        }
                    })
                    .collect();
                (ExprKind::Call { callee, args }, depth + 1)
            }
            r => unreachable!("grammar: unexpected primary {r:?}"),
        };
        if depth > MAX_DEPTH {
            return self.refuse(sp);
        }
        (Expr { kind, span: sp }, depth)
    }
}

// ---- Syntax errors, in words ---------------------------------------------------------------

/// Words that cannot be names.
const RESERVED: &[&str] = &[
    "param", "learn", "fn", "print", "save", "to", "optimize", "over", "with", "steps", "true",
    "false",
];
/// Words that start a statement.
const STATEMENT_WORDS: &[&str] = &["param", "learn", "fn", "print", "save", "optimize", "sweep"];
/// Words that start a clause of `optimize` on a line of its own.
const CLAUSE_WORDS: &[&str] = &["record", "stop", "log", "checkpoint"];
/// Literal tokens worth naming when they were expected.
const SHOWN_TOKENS: &[&str] = &[
    ",", ")", "}", "(", "{", "=", "->", "to", "over", "with", "steps", "every", "when",
];

/// A light scan of the text: brackets, strings, comments and statement boundaries. It only
/// explains errors and finds where to resume; the grammar alone decides what parses.
#[derive(Clone, Default)]
struct Scanner {
    /// Open brackets with their positions, innermost last.
    open: Vec<(char, usize)>,
    /// The first character of the current statement.
    stmt_start: Option<usize>,
    /// The opening quote of the string being scanned.
    string: Option<usize>,
    escaped: bool,
    comment: bool,
    /// The line so far ends in `\`: the statement goes on on the next line.
    continued: bool,
}

impl Scanner {
    /// Scans `text[from..to]`.
    fn over(text: &str, from: usize, to: usize) -> Scanner {
        let mut s = Scanner::default();
        for (i, c) in text.get(from..to).unwrap_or("").char_indices() {
            s.feed(from + i, c);
        }
        s
    }

    /// Feeds the character `c` at byte `i`; true if a statement ends with it.
    fn feed(&mut self, i: usize, c: char) -> bool {
        if c == '\n' {
            let ends = self.open.is_empty() && !self.continued;
            (self.string, self.escaped, self.comment, self.continued) = (None, false, false, false);
            if ends {
                self.stmt_start = None;
            }
            return ends;
        }
        if self.comment {
            return false;
        }
        if self.string.is_some() {
            match (std::mem::take(&mut self.escaped), c) {
                (false, '\\') => self.escaped = true,
                (false, '"') => self.string = None,
                _ => {}
            }
            return false;
        }
        if c.is_whitespace() {
            return false;
        }
        if c == '#' {
            self.comment = true;
            return false;
        }
        self.continued = c == '\\';
        self.stmt_start.get_or_insert(i);
        match c {
            '"' => self.string = Some(i),
            '(' | '{' => self.open.push((c, i)),
            ')' | '}' => {
                self.open.pop();
            }
            ';' if self.open.is_empty() => {
                self.stmt_start = None;
                return true;
            }
            _ => {}
        }
        false
    }
}

/// Where parsing resumes after an error at `at`: the start of the next statement, unless the
/// broken one never ends (an unclosed bracket) or the next line is a clause of it.
fn next_statement(text: &str, from: usize, at: usize) -> Option<usize> {
    let mut s = Scanner::default();
    let at = at.max(from);
    for (i, c) in text[from..].char_indices() {
        let i = from + i;
        if s.feed(i, c) && i >= at {
            let next = i + c.len_utf8();
            let word = word_at(text, skip_blank(text, next));
            if !CLAUSE_WORDS.contains(&word) {
                return Some(next);
            }
        }
    }
    None
}

/// The first position at or after `at` that is not a space or a tab.
fn skip_blank(text: &str, at: usize) -> usize {
    at + text[at..]
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(text.len() - at)
}

/// The name or number starting at `at` (empty if there is none).
fn word_at(text: &str, at: usize) -> &str {
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The last character before `at` that is not white space, with its position.
fn prev_char(text: &str, at: usize) -> Option<(usize, char)> {
    text[..at]
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_whitespace())
}

fn is_operand_end(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | ')' | '"' | '\'')
}

fn is_operand_start(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '"' | '(')
}

/// The token at `at`, as a span and in words.
fn found(text: &str, at: usize) -> (Span, String) {
    let rest = &text[at..];
    let point = Span::new(at, at);
    let len = match rest.chars().next() {
        None => return (point, "the end of the file".into()),
        Some('\n' | '\r') => return (point, "the end of the line".into()),
        Some('"') => rest[1..].find(['"', '\n']).map_or(rest.len(), |e| {
            e + 1 + usize::from(rest[1 + e..].starts_with('"'))
        }),
        Some(c) if c.is_alphanumeric() || c == '_' => word_at(text, at).len(),
        Some(_)
            if [".*", "./", ".^", "->"]
                .iter()
                .any(|op| rest.starts_with(op)) =>
        {
            2
        }
        Some(c) => c.len_utf8(),
    };
    let token = &rest[..len];
    (Span::new(at, at + len), format!("`{token}`"))
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(items: &[String]) -> String {
    match items {
        [] => "something else".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The rules and tokens pest expected, in words, operators last and once.
fn expected_words(rules: &[Rule], tokens: &[String], after_name: bool) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut operator = false;
    let mut push = |w: String| {
        if !words.contains(&w) {
            words.push(w);
        }
    };
    for r in rules {
        match r {
            Rule::add
            | Rule::sub
            | Rule::mul
            | Rule::div
            | Rule::elem_mul
            | Rule::elem_div
            | Rule::elem_pow
            | Rule::transpose => operator = true,
            r => push(rule_name(r).into()),
        }
    }
    // After a name, pest also tried `(` (a call), `->` (a lambda) and `=` (a keyword
    // argument); they are worth naming only when nothing else was expected.
    let continues_name = |t: &str| after_name && ["(", "->", "="].contains(&t);
    let tokens: Vec<&str> = tokens
        .iter()
        .map(String::as_str)
        .filter(|_| !wants_expression(rules))
        .collect();
    for t in tokens.iter().filter(|t| !continues_name(t)) {
        if SHOWN_TOKENS.contains(t) {
            push(format!("`{t}`"));
        } else if *t == "\n" || *t == ";" {
            push("the end of the statement".into());
        }
    }
    if operator {
        push("an operator".into());
    }
    if words.is_empty() {
        words = tokens
            .iter()
            .filter(|t| continues_name(t))
            .map(|t| format!("`{t}`"))
            .collect();
    }
    words
}

/// Whether pest wanted an expression (or a part that starts one).
fn wants_expression(rules: &[Rule]) -> bool {
    rules.iter().any(|r| {
        matches!(
            r,
            Rule::expr
                | Rule::primary
                | Rule::paren
                | Rule::ident
                | Rule::number
                | Rule::string
                | Rule::neg
                | Rule::literal
        )
    })
}

/// The words a user reads for a grammar rule.
fn rule_name(r: &Rule) -> &'static str {
    match r {
        Rule::EOI => "the end of the statement",
        Rule::expr | Rule::primary | Rule::paren => "an expression",
        Rule::ident => "a name",
        Rule::number | Rule::signed_number => "a number",
        Rule::string | Rule::inner => "a string in double quotes",
        Rule::boolean => "`true` or `false`",
        Rule::literal => "a number, a string or `true`/`false`",
        Rule::call => "a call like `adam(lr = 0.001)`",
        Rule::lambda => "a lambda like `x -> x + 1`",
        Rule::kwarg => "`name = value`",
        Rule::neg => "`-`",
        Rule::fn_params => "parameter names",
        Rule::block => "`{`",
        Rule::names => "the names of learnables",
        Rule::with_opts | Rule::k_with => "`with`",
        Rule::record_clause
        | Rule::stop_clause
        | Rule::log_clause
        | Rule::checkpoint_clause
        | Rule::k_record
        | Rule::k_stop
        | Rule::k_log
        | Rule::k_checkpoint => "a clause (`record`, `stop when`, `log to`, `checkpoint to`)",
        Rule::k_to => "`to`",
        Rule::k_over => "`over`",
        Rule::k_steps => "`steps`",
        Rule::k_every => "`every`",
        Rule::k_when => "`when`",
        Rule::k_from => "`from`",
        Rule::k_count => "`count`",
        _ => "a statement",
    }
}

/// How to write the statement (or clause) that starts with `word`.
fn usage(word: &str) -> &'static str {
    match word {
        "param" => "a param is `param name = value` with a number, a string in double quotes, or `true`/`false`",
        "learn" => "write `learn name = expression`, e.g. `learn x = load(image)`",
        "fn" => "write `fn name(a, b) = expression`, or `fn name(a) { t = …; result }`",
        "print" => "write `print expression`",
        "save" => "write `save expression to \"file.png\"`, optionally followed by `with bits = 16`",
        "optimize" => "write `optimize loss over x, y with adam(lr = 0.01) steps 100`, then any clauses",
        "record" => "write `record expression every 10 to \"file.gif\"`",
        "stop" => "write `stop when patience = 20`, optionally with `, min_delta = 1e-4`",
        "log" => "write `log to \"loss.csv\"`",
        "checkpoint" => "write `checkpoint to \"run.ckpt\"`",
        "sweep" => "write `sweep knob from 0 to 31 count 32 record expression to \"file.gif\"`, optionally followed by `with fps = 30, palindrome = true`",
        "" => "the statements are `name = …`, `param name = …`, `learn name = …`, `fn name(…) = …`, `print …`, `save … to \"…\"`, `optimize …` and `sweep …`",
        _ => "write `name = expression`",
    }
}

/// What to write instead of a character the language does not use.
fn stray_hint(c: char) -> &'static str {
    match c {
        '@' | '×' | '·' | '⋅' | '∙' => "write `*` for a matrix product and `.*` for an element-wise one",
        '−' | '–' | '—' => "this is a typographic dash: write `-`",
        '“' | '”' | '„' | '«' | '»' => "write strings in straight double quotes: `\"…\"`",
        '’' | '‘' | 'ᵀ' | '`' => "write `'` after a matrix to transpose it",
        '^' => "powers are element-wise: write `.^`, e.g. `m .^ 2`",
        '[' | ']' => "imgx has no lists or indexing: make matrices with `load`, `zeros`, `ones`, `fill` or `noise`",
        '<' | '>' | '!' | '&' | '|' | '?' | '%' => "imgx has no comparisons, logic or `%`; `imgx ops` lists what it computes",
        c if c.is_alphabetic() => "names use ASCII letters, digits and `_`",
        _ => "remove it; imgx uses names, numbers, strings in double quotes, `+ - * / .* ./ .^ '`, `( ) { } , ; =` and `->`",
    }
}

fn in_alphabet(c: char) -> bool {
    c.is_ascii_alphanumeric() || " \t\r\n_#\"\\(){},;=+-*/.'".contains(c)
}

/// A syntax error in words, and the position it was found at.
fn explain(text: &str, from: usize, e: pest::error::Error<Rule>) -> (Problem, usize) {
    let pos = match e.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    let rules = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        // pest's own guards: the native stack or its call budget ran out.
        ErrorVariant::CustomError { .. } => {
            let problem = Problem::new("syntax", "the script nests too deeply to parse")
                .label(found(text, pos).0, "too deep from here on")
                .help("split deeply nested expressions into named steps: `t = …`, then use `t`");
            return (problem, pos);
        }
    };
    let attempts = e.parse_attempts();
    let max = attempts.as_ref().map_or(pos, |a| a.max_position);
    let tokens: Vec<String> = attempts
        .map(|a| {
            a.expected_tokens()
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    let scan = Scanner::over(text, from, pos);
    let stmt_word = word_at(text, scan.stmt_start.unwrap_or(pos));
    let mut problem = if scan.stmt_start.is_none() {
        // Pest gave up at the start of a statement; what went wrong is at the farthest point
        // it reached, where only the literal tokens it tried are known.
        statement_start(text, pos, max, &tokens)
    } else {
        let tokens = if max == pos { tokens } else { Vec::new() };
        within_statement(text, pos, &scan, &rules, &tokens)
    };
    if problem.help.is_none() {
        problem = problem.help(usage(stmt_word));
    }
    (problem, pos.max(max))
}

/// An error where a statement should begin (or its first word did not lead anywhere).
fn statement_start(text: &str, pos: usize, max: usize, tokens: &[String]) -> Problem {
    let word = word_at(text, pos);
    let after = skip_blank(text, pos + word.len());
    if let Some(p) = stray(text, pos) {
        return p;
    }
    if RESERVED.contains(&word) && !STATEMENT_WORDS.contains(&word) {
        return reserved(pos, word);
    }
    if !word.is_empty() && !STATEMENT_WORDS.contains(&word) && text[after..].starts_with('(') {
        return Problem::new("syntax", format!("a statement cannot be a bare call of `{word}`"))
            .label(Span::new(pos, pos + word.len()), "the result of this call goes nowhere")
            .help(format!("keep it (`y = {word}(…)`), print it (`print {word}(…)`) or save it (`save {word}(…) to \"out.png\"`)"));
    }
    if max > pos {
        let scan = Scanner::over(text, pos, max);
        return within_statement(text, max, &scan, &[], tokens);
    }
    let (sp, what) = found(text, pos);
    Problem::new("syntax", format!("expected a statement, found {what}"))
        .label(sp, "a statement should start here")
}

/// An error inside a statement, at `at`, with the text before it scanned.
fn within_statement(
    text: &str,
    at: usize,
    scan: &Scanner,
    rules: &[Rule],
    tokens: &[String],
) -> Problem {
    let (sp, what) = found(text, at);
    let next = text[at..].chars().next();
    let prev = prev_char(text, at);
    let after_operand = prev.is_some_and(|(_, c)| is_operand_end(c));
    if let Some(p) = stray(text, at) {
        return p;
    }
    if let Some(q) = scan.string.or((next == Some('"')).then_some(at)) {
        if let Some(p) = bad_string(text, q) {
            return p;
        }
    }
    if let Some(p) = bad_number(text, at) {
        return p;
    }
    let word = word_at(text, at);
    if RESERVED.contains(&word) && wants_expression(rules) {
        return reserved(at, word);
    }
    if let Some(c @ (')' | '}')) = next.filter(|_| scan.open.is_empty()) {
        let open = if c == ')' { '(' } else { '{' };
        return Problem::new("syntax", format!("unmatched `{c}`"))
            .label(sp, "nothing to close here")
            .help(format!("remove it, or add the `{open}` it should close"));
    }
    let stmt_word = scan.stmt_start.map_or("", |s| word_at(text, s));
    if stmt_word == "param" && (rules == [Rule::literal] || rules.contains(&Rule::EOI)) {
        return Problem::new(
            "syntax",
            format!("a param's value must be a single literal, found {what}"),
        )
        .label(sp, "a param is a number, a string or `true`/`false`")
        .help("write the value itself (`param n = 128`); compute derived values with `name = …`, e.g. `n2 = 2 * n`");
    }
    if let Some((o, op)) = prev.filter(|(_, c)| wants_expression(rules) && "+-*/^=,(".contains(*c))
    {
        return missing_operand(text, o, op, sp, &what);
    }
    let line_rest = text[at..].lines().next().unwrap_or("");
    let rest_blank = line_rest.trim().is_empty() || line_rest.trim_start().starts_with('#');
    if let Some(&(b, opened)) = scan.open.last() {
        let earlier_line = text[opened..at].contains('\n');
        if (rest_blank || earlier_line) && !closes_later(text, scan, at) {
            let close = if b == '(' { ')' } else { '}' };
            return Problem::new("syntax", format!("unclosed `{b}`"))
                .label(
                    Span::new(opened, opened + 1),
                    format!("this `{b}` is never closed"),
                )
                .label(sp, format!("expected `,` or `{close}` by here"))
                .help(format!(
                    "close it with `{close}`; inside brackets, a line may break after a `,`"
                ));
        }
        // `f(a b)`, or `f(a` with `b)` on the next line: two operands in a row.
        let following = text[at..].trim_start().chars().next();
        if b == '(' && after_operand && following.is_some_and(is_operand_start) {
            let end = prev.map_or(at, |(p, c)| p + c.len_utf8());
            let gap = if rest_blank {
                Span::new(end, end)
            } else {
                Span::new(end, at)
            };
            return Problem::new("syntax", "expected `,` between two arguments")
                .label(gap, "a `,` belongs here")
                .help("separate arguments (and parameters) with `,`: `f(a, b)`");
        }
    }
    let after_name = prev.is_some_and(|(_, c)| c.is_alphanumeric() || c == '_');
    let words = one_of(&expected_words(rules, tokens, after_name));
    let problem = Problem::new("syntax", format!("expected {words}, found {what}"));
    if wants_expression(rules) {
        return problem.label(sp, "an expression should start here");
    }
    let keywords: Vec<String> = rules
        .iter()
        .filter(|r| is_keyword(**r))
        .map(|r| rule_name(r).to_string())
        .collect();
    if !keywords.is_empty() {
        return problem.label(sp, format!("expected {} here", one_of(&keywords)));
    }
    let operators = rules.iter().any(|r| matches!(r, Rule::add | Rule::mul));
    if operators && after_operand && next.is_some_and(is_operand_start) {
        return problem.label(sp, "a second value").help(
            "join the two with an operator (`a * b`, `a + b`, …), or end the statement with a new line or `;`",
        );
    }
    problem.label(sp, format!("expected {words} here"))
}

/// An operator (or `=`, `,`, `(`) at `o` with nothing after it.
fn missing_operand(text: &str, o: usize, op: char, sp: Span, what: &str) -> Problem {
    let dotted = o.checked_sub(1).and_then(|s| text.get(s..=o));
    let op_text = dotted
        .filter(|t| [".*", "./", ".^"].contains(t))
        .unwrap_or(&text[o..=o]);
    let (message, label, help) = match op {
        '=' => (
            "`=` needs a value on its right".to_string(),
            "a value should follow here",
            "write the value after `=`",
        ),
        ',' => (
            "expected another argument after `,`".to_string(),
            "an argument should follow here",
            "remove the trailing `,`, or add the missing argument",
        ),
        '(' => (
            "expected an expression after `(`".to_string(),
            "an expression should follow here",
            "write an expression inside the brackets",
        ),
        _ => (
            format!("`{op_text}` needs an operand on its right"),
            "an operand should follow here",
            "finish the expression on this line, or end the line with `\\` to continue it on the next",
        ),
    };
    Problem::new("syntax", format!("{message}, found {what}"))
        .label(sp, label)
        .help(help)
}

/// Whether the innermost bracket open at `at` is closed somewhere after it.
fn closes_later(text: &str, scan: &Scanner, at: usize) -> bool {
    let mut s = scan.clone();
    let depth = s.open.len();
    for (i, c) in text[at..].char_indices() {
        s.feed(at + i, c);
        if s.open.len() < depth {
            return true;
        }
    }
    false
}

fn stray(text: &str, at: usize) -> Option<Problem> {
    let c = text[at..].chars().next().filter(|c| !in_alphabet(*c))?;
    Some(
        Problem::new("syntax", format!("unexpected character `{c}`"))
            .label(Span::new(at, at + c.len_utf8()), "not part of the language")
            .help(stray_hint(c)),
    )
}

fn reserved(at: usize, word: &str) -> Problem {
    Problem::new("syntax", format!("`{word}` is a reserved word, not a name"))
        .label(Span::new(at, at + word.len()), "reserved")
        .help(format!(
            "pick another name (e.g. `{word}_`); the reserved words are {}",
            RESERVED.join(", ")
        ))
}

/// What is wrong with the string literal that opens at `quote`, if anything.
fn bad_string(text: &str, quote: usize) -> Option<Problem> {
    let mut chars = text[quote + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return None,
            '\n' => break,
            '\\' => match chars.next() {
                Some((_, '"' | '\\' | 'n' | 't')) => {}
                Some((_, '\n')) | None => break,
                Some((_, e)) => {
                    let at = quote + 1 + i;
                    let escape = Span::new(at, at + 1 + e.len_utf8());
                    return Some(
                        Problem::new("syntax", format!("unknown escape `\\{e}` in a string"))
                            .label(escape, "not an escape")
                            .help("the escapes are `\\\"`, `\\\\`, `\\n` and `\\t`; write `\\\\` for a backslash"),
                    );
                }
            },
            _ => {}
        }
    }
    Some(
        Problem::new("syntax", "unclosed string")
            .label(Span::new(quote, quote + 1), "this string never ends")
            .help("end it with `\"` on the same line; strings cannot span lines"),
    )
}

fn bad_number(text: &str, at: usize) -> Option<Problem> {
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_part(*c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = at
        + text[at..]
            .find(|c: char| !is_part(c))
            .unwrap_or(text.len() - at);
    let run = &text[start..end];
    let numeric = run.starts_with(|c: char| c.is_ascii_digit())
        || (run.starts_with('.') && run[1..].starts_with(|c: char| c.is_ascii_digit()));
    (numeric && start < at && at < end).then(|| {
        Problem::new("syntax", format!("`{run}` is not a number"))
            .label(Span::new(start, end), "malformed number")
            .help("numbers look like `3`, `0.5`, `.5` or `1e-3`; names start with a letter or `_`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Stmt {
        parse(src).expect("parses").stmts.remove(0)
    }

    #[test]
    fn precedence_follows_the_language() {
        // `-m .^ 2` is `-(m .^ 2)`; `a + b * c'` is `a + (b * (c'))`
        let Stmt::Let { value, .. } = one("y = -m .^ 2") else {
            panic!()
        };
        let ExprKind::Unary {
            op: Operator::Neg,
            arg,
            ..
        } = value.kind
        else {
            panic!("{value:?}")
        };
        assert!(matches!(
            arg.kind,
            ExprKind::Binary {
                op: Operator::Pow,
                ..
            }
        ));
        let Stmt::Let { value, .. } = one("y = a + b * c'") else {
            panic!()
        };
        let ExprKind::Binary {
            op: Operator::Add,
            rhs,
            ..
        } = value.kind
        else {
            panic!()
        };
        let ExprKind::Binary {
            op: Operator::Mul,
            rhs: c,
            ..
        } = rhs.kind
        else {
            panic!()
        };
        assert!(matches!(
            c.kind,
            ExprKind::Unary {
                op: Operator::Transpose,
                ..
            }
        ));
    }

    #[test]
    fn keywords_are_whole_words() {
        assert!(matches!(one("paramx = 1"), Stmt::Let { .. }));
        assert!(matches!(one("log = 1"), Stmt::Let { .. }));
    }

    #[test]
    fn spans_point_at_source() {
        let src = "m = noise(4, 4)\nprint m' * m";
        let s = parse(src).unwrap();
        let Stmt::Print { expr } = &s.stmts[1] else {
            panic!()
        };
        assert_eq!(expr.span.text(src), "m' * m");
    }

    #[test]
    fn optimize_clauses_on_following_lines() {
        let src = "optimize l over x with adam(lr = 0.01) steps 10\n  record x every 2 to \"a.gif\"\n  log to \"l.csv\"\nprint l";
        let s = parse(src).unwrap();
        let Stmt::Optimize { clauses, .. } = &s.stmts[0] else {
            panic!()
        };
        assert_eq!(clauses.len(), 2);
        assert_eq!(s.stmts.len(), 2);
    }

    /// The first problem of a script that must not parse.
    fn error(src: &str) -> Problem {
        parse(src).expect_err("a syntax error").remove(0)
    }

    #[test]
    fn missing_comma_is_named_where_it_belongs() {
        let src = "p = matmul(a b)";
        let e = error(src);
        assert_eq!(e.message, "expected `,` between two arguments");
        assert_eq!(e.span(), Some(Span::new(12, 13)));
    }
}
