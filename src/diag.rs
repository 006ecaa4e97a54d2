//! User-facing problems: one type for every diagnostic imgx reports, with a stable code, labelled
//! spans and a help line. Problems carry spans only; the source is attached once, where a report
//! is rendered ([`Report`]).

use crate::ast::Span;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;

/// One diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Stable code without the `imgx::` prefix, e.g. `shape_mismatch`.
    pub code: &'static str,
    pub message: String,
    /// Spans to point at; the first is the primary one.
    pub labels: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }
    /// The primary span (where the problem is).
    pub fn span(&self) -> Option<Span> {
        self.labels.first().map(|(s, _)| *s)
    }
}

/// Problems of one script, with its source, ready to render.
#[derive(Debug)]
pub struct Report {
    pub source: NamedSource<String>,
    pub problems: Vec<Problem>,
}

/// One problem bound to its source: what miette renders.
#[derive(Debug)]
pub struct Rendered<'a> {
    problem: &'a Problem,
    source: &'a NamedSource<String>,
}

impl Report {
    pub fn new(name: &str, src: &str, problems: Vec<Problem>) -> Self {
        Report {
            source: NamedSource::new(name, src.to_string()),
            problems,
        }
    }
    /// Each problem as a miette diagnostic.
    pub fn diagnostics(&self) -> impl Iterator<Item = Rendered<'_>> {
        self.problems.iter().map(|problem| Rendered {
            problem,
            source: &self.source,
        })
    }
    /// Renders every problem in the given style, `width` columns wide.
    pub fn render(&self, style: Style, width: usize) -> String {
        let mut out = String::new();
        for d in self.diagnostics() {
            // Writing into a String cannot fail.
            let _ = match style {
                Style::Color | Style::Plain => {
                    let theme = if style == Style::Color {
                        miette::GraphicalTheme::unicode()
                    } else {
                        miette::GraphicalTheme::unicode_nocolor()
                    };
                    miette::GraphicalReportHandler::new_themed(theme)
                        .without_syntax_highlighting()
                        .with_width(width)
                        .render_report(&mut out, &d)
                }
                Style::Narrated => {
                    miette::NarratableReportHandler::new().render_report(&mut out, &d)
                }
                Style::Json => {
                    let r = miette::JSONReportHandler::new().render_report(&mut out, &d);
                    out.push('\n');
                    r
                }
            };
        }
        out
    }
}

/// How a report is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Graphical, coloured (a terminal).
    Color,
    /// Graphical without colour (`--color never`, `NO_COLOR`, snapshots).
    Plain,
    /// Plain sentences (output that is not a terminal).
    Narrated,
    /// One JSON object per problem and line (`--format json`).
    Json,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(format!("imgx::{}", self.problem.code)))
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.problem.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.problem.labels.iter().enumerate().map(
            |(i, (span, text))| {
                let at = SourceSpan::from((span.start, span.end.saturating_sub(span.start)));
                let text = (!text.is_empty()).then(|| text.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, at)
                } else {
                    LabeledSpan::new_with_span(text, at)
                }
            },
        )))
    }
}
