//! Parsing: source text → [`ast::Script`] with byte spans, using the pest grammar in
//! `grammar/imgx.pest`. Knows nothing about primitives, types or the graph; the only errors it
//! reports are syntax errors.

use crate::ast::{Arg, Clause, Expr, ExprKind, Ident, Kwarg, Operator, Script, Span, Stmt, StrLit};
use crate::diag::Problem;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "grammar/imgx.pest"]
struct Grammar;

/// Parses a whole script. A syntax error is reported with the position pest gives, the rules it
/// expected in words, and a hint.
pub fn parse(src: &str) -> Result<Script, Problem> {
    let mut pairs = Grammar::parse(Rule::file, src).map_err(|e| syntax_problem(src, e))?;
    let file = pairs.next().into_iter().flat_map(|p| p.into_inner());
    let stmts = file
        .filter(|p| p.as_rule() != Rule::EOI)
        .map(stmt)
        .collect();
    Ok(Script { stmts })
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

fn stmt(p: Pair<Rule>) -> Stmt {
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
            value: literal(next()),
        },
        Rule::learn_stmt => Stmt::Learn {
            name: ident(next()),
            value: expr(next()),
        },
        Rule::let_stmt => Stmt::Let {
            name: ident(next()),
            value: expr(next()),
        },
        Rule::print_stmt => Stmt::Print { expr: expr(next()) },
        Rule::save_stmt => {
            let e = expr(next());
            let path = string(next());
            let opts = it.next().map(with_opts).unwrap_or_default();
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
                                    locals.push((ident(n), expr(v)));
                                }
                            } else {
                                result = Some(expr(b));
                            }
                        }
                    }
                    _ => result = Some(expr(q)),
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
            let loss = expr(next());
            let over = next().into_inner().map(ident).collect();
            let optimizer = expr_of(next());
            let steps = expr(next());
            let clauses = it.map(clause).collect();
            Stmt::Optimize {
                loss,
                over,
                optimizer,
                steps,
                clauses,
                span: whole,
            }
        }
        _ => unreachable!("grammar: unexpected statement {rule:?}"),
    }
}

fn with_opts(p: Pair<Rule>) -> Vec<Kwarg> {
    parts(p).map(kwarg).collect()
}

fn kwarg(p: Pair<Rule>) -> Kwarg {
    let mut it = p.into_inner();
    let name = ident(it.next().unwrap_or_else(|| unreachable!("kwarg name")));
    let value = expr(it.next().unwrap_or_else(|| unreachable!("kwarg value")));
    Kwarg { name, value }
}

fn clause(p: Pair<Rule>) -> Clause {
    let rule = p.as_rule();
    let sp = span(&p);
    let mut it = parts(p);
    let mut next = || {
        it.next()
            .unwrap_or_else(|| unreachable!("grammar guarantees the part"))
    };
    match rule {
        Rule::record_clause => {
            let e = expr(next());
            let every = expr(next());
            let path = string(next());
            let opts = it.next().map(with_opts).unwrap_or_default();
            Clause::Record {
                expr: e,
                every,
                path,
                opts,
                span: sp,
            }
        }
        Rule::stop_clause => Clause::Stop {
            opts: it.map(kwarg).collect(),
            span: sp,
        },
        Rule::log_clause => {
            let path = string(next());
            let opts = it.next().map(with_opts).unwrap_or_default();
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

fn literal(p: Pair<Rule>) -> Expr {
    let inner = p
        .into_inner()
        .next()
        .unwrap_or_else(|| unreachable!("literal"));
    expr_of(inner)
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

fn expr(p: Pair<Rule>) -> Expr {
    pratt()
        .map_primary(expr_of)
        .map_prefix(|op, arg| Expr {
            span: span(&op).to(arg.span),
            kind: ExprKind::Unary {
                op: Operator::Neg,
                op_span: span(&op),
                arg: Box::new(arg),
            },
        })
        .map_postfix(|arg, op| Expr {
            span: arg.span.to(span(&op)),
            kind: ExprKind::Unary {
                op: Operator::Transpose,
                op_span: span(&op),
                arg: Box::new(arg),
            },
        })
        .map_infix(|lhs, op, rhs| {
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
            Expr {
                span: lhs.span.to(rhs.span),
                kind: ExprKind::Binary {
                    op: operator,
                    op_span: span(&op),
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            }
        })
        .parse(p.into_inner())
}

/// A primary expression (or a whole `expr` pair).
fn expr_of(p: Pair<Rule>) -> Expr {
    let sp = span(&p);
    let kind = match p.as_rule() {
        Rule::expr => return expr(p),
        Rule::number | Rule::signed_number => ExprKind::Num(p.as_str().parse().unwrap_or(f64::NAN)),
        Rule::string => ExprKind::Str(string(p).value),
        Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
        Rule::ident => ExprKind::Name(p.as_str().to_string()),
        Rule::lambda => {
            let mut it = p.into_inner();
            let param = ident(it.next().unwrap_or_else(|| unreachable!("lambda param")));
            let body = expr(it.next().unwrap_or_else(|| unreachable!("lambda body")));
            ExprKind::Lambda {
                param,
                body: Box::new(body),
            }
        }
        Rule::call => {
            let mut it = p.into_inner();
            let callee = ident(it.next().unwrap_or_else(|| unreachable!("callee")));
            let args = it
                .map(|a| match a.as_rule() {
                    Rule::kwarg => {
                        let k = kwarg(a);
                        Arg::Keyword(k.name, k.value)
                    }
                    _ => Arg::Positional(expr(a)),
                })
                .collect();
            ExprKind::Call { callee, args }
        }
        r => unreachable!("grammar: unexpected primary {r:?}"),
    };
    Expr { kind, span: sp }
}

/// The words a user reads for a grammar rule.
fn rule_name(r: &Rule) -> String {
    match r {
        Rule::EOI => "end of file",
        Rule::expr => "an expression",
        Rule::ident => "a name",
        Rule::number | Rule::signed_number => "a number",
        Rule::string => "a string in double quotes",
        Rule::boolean => "`true` or `false`",
        Rule::literal => "a number, string or `true`/`false`",
        Rule::call => "a call like `adam(lr = 0.001)`",
        Rule::lambda => "a lambda like `x -> x + 1`",
        Rule::kwarg => "`name = value`",
        Rule::add | Rule::sub => "`+` or `-`",
        Rule::mul | Rule::div | Rule::elem_mul | Rule::elem_div | Rule::elem_pow => "an operator",
        Rule::transpose => "`'`",
        Rule::neg => "`-`",
        Rule::param_stmt
        | Rule::learn_stmt
        | Rule::let_stmt
        | Rule::print_stmt
        | Rule::save_stmt
        | Rule::optimize_stmt
        | Rule::fn_stmt => "a statement",
        Rule::fn_params => "parameter names",
        Rule::block => "`{`",
        Rule::names => "learnable names",
        Rule::with_opts => "`with`",
        Rule::record_clause | Rule::stop_clause | Rule::log_clause | Rule::checkpoint_clause => {
            "a clause (`record`, `stop when`, `log to`, `checkpoint to`)"
        }
        Rule::k_to => "`to`",
        Rule::k_over => "`over`",
        Rule::k_with => "`with`",
        Rule::k_steps => "`steps`",
        Rule::k_every => "`every`",
        Rule::k_when => "`when`",
        other => return format!("{other:?}"),
    }
    .to_string()
}

fn syntax_problem(src: &str, e: pest::error::Error<Rule>) -> Problem {
    let e = e.renamed_rules(rule_name);
    let (start, end) = match e.location {
        pest::error::InputLocation::Pos(p) => (p, p),
        pest::error::InputLocation::Span(s) => s,
    };
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { .. } => e.variant.message().to_string(),
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let found = describe_at(src, start);
    let mut problem = Problem::new("syntax", format!("syntax error: {message}, found {found}"));
    // pest reports where the attempt failed; a missing comma between call arguments shows up
    // at the second argument, so say what is likely missing.
    let before = src[..start.min(src.len())].trim_end();
    let help = if before.ends_with(|c: char| c.is_alphanumeric() || c == ')' || c == '"')
        && in_brackets(before)
    {
        "is a `,` missing between two arguments?".to_string()
    } else if found == "end of line" || found == "end of file" {
        "the statement is incomplete: finish it on this line, or end the line with `\\` to continue it".to_string()
    } else {
        "see the language reference in the README (`imgx ops` lists the primitives)".to_string()
    };
    problem = problem.label(
        Span::new(start, end.max(start + 1).min(src.len().max(start))),
        format!("expected {message_short}", message_short = short(&message)),
    );
    problem.help(help)
}

fn short(message: &str) -> &str {
    message.strip_prefix("expected ").unwrap_or(message)
}

fn in_brackets(before: &str) -> bool {
    let line = before.rsplit('\n').next().unwrap_or("");
    line.matches('(').count() > line.matches(')').count()
}

fn describe_at(src: &str, at: usize) -> String {
    match src.get(at..).and_then(|s| s.chars().next()) {
        None => "end of file".into(),
        Some('\n') | Some('\r') => "end of line".into(),
        Some(c) => {
            let word: String = src[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if word.is_empty() {
                format!("`{c}`")
            } else {
                format!("`{word}`")
            }
        }
    }
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

    #[test]
    fn missing_comma_is_named() {
        let e = parse("p = matmul(a b)").unwrap_err();
        assert_eq!(e.code, "syntax");
        assert!(e.help.unwrap().contains("`,` missing"));
    }
}
