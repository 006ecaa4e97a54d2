//! Documentation generated from the registries: `imgx ops` and the README's primitives table.
//! A test keeps the README identical to [`markdown_table`].

use crate::lower::signature_text;
use crate::ops::{self, Kind, Primitive};
use crate::optim;

/// The primitives table as it stands in the README.
pub fn markdown_table() -> String {
    let mut out = String::from("| primitive | meaning | gradient |\n|---|---|---|\n");
    for p in ops::PRIMITIVES {
        let d = p.doc();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            signature_text(p.name(), p.signature()),
            cell(d.summary),
            cell(d.gradient)
        ));
    }
    out.push_str("\n| optimiser | meaning |\n|---|---|\n");
    for o in optim::OPTIMIZERS {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            optimizer_signature(o),
            cell(o.summary)
        ));
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn optimizer_signature(o: &optim::Def) -> String {
    let settings: Vec<String> = o
        .settings
        .iter()
        .map(|s| match s.default {
            Some(d) => format!("{} = {d}", s.name),
            None => s.name.to_string(),
        })
        .collect();
    format!("{}({})", o.name, settings.join(", "))
}

/// One line per primitive: signature and summary.
pub fn list() -> String {
    let width = ops::PRIMITIVES
        .iter()
        .map(|p| signature_text(p.name(), p.signature()).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for p in ops::PRIMITIVES {
        let sig = signature_text(p.name(), p.signature());
        let pad = width - sig.chars().count();
        out.push_str(&format!("{sig}{}  {}\n", " ".repeat(pad), p.doc().summary));
    }
    out.push_str("\noptimisers (optimize … with NAME(…)):\n");
    for o in optim::OPTIMIZERS {
        out.push_str(&format!("  {}  {}\n", optimizer_signature(o), o.summary));
    }
    out.push_str("\n`imgx ops NAME` shows one in full.\n");
    out
}

fn kind_text(k: Kind) -> &'static str {
    if k.is_edge() {
        k.describe()
    } else {
        match k {
            Kind::Int => "whole number, known before running",
            Kind::Num => "number, known before running",
            Kind::Bool => "bool",
            Kind::Str => "string",
            _ => "element-wise function (lambda `x -> …` or a name like `exp`)",
        }
    }
}

/// Everything about one primitive (or optimiser); `None` if there is no such name.
pub fn describe(name: &str) -> Option<String> {
    if let Some(p) = ops::lookup(name) {
        return Some(describe_primitive(p));
    }
    let o = optim::lookup(name)?;
    let mut out = format!(
        "{}\n\n  {}\n\nsettings:\n",
        optimizer_signature(o),
        o.summary
    );
    for s in o.settings {
        out.push_str(&format!(
            "  {:<10} {} ({})\n",
            s.name,
            s.doc,
            s.accepts.describe()
        ));
    }
    Some(out)
}

fn describe_primitive(p: &dyn Primitive) -> String {
    let d = p.doc();
    let sig = p.signature();
    let mut out = format!("{}\n\n  {}\n\n", signature_text(p.name(), sig), d.summary);
    out.push_str("arguments:\n");
    for q in sig.params {
        let dflt = match q.default {
            None => String::from("required"),
            Some(ops::Default::Num(v)) => format!("default {v}"),
            Some(ops::Default::Bool(v)) => format!("default {v}"),
            Some(ops::Default::Str(v)) => format!("default \"{v}\""),
            Some(ops::Default::Func(v)) => format!("default {v}"),
        };
        let diff = if q.kind.is_edge() {
            ", differentiable"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {:<8} {} ({dflt}{diff}): {}\n",
            q.name,
            kind_text(q.kind),
            q.doc
        ));
    }
    if sig.variadic {
        out.push_str("  (the last argument repeats: one or more)\n");
    }
    out.push_str(&format!(
        "\ndetails:\n  {}\n\ngradient:\n  {}\n\nexample:\n  {}\n",
        d.details, d.gradient, d.example
    ));
    out
}
