//! Never panic: whatever the input, imgx answers with diagnostics or runs; it never crashes.
//!
//! Random bytes, random text, random streams of the language's tokens, generated programs and
//! mutations of the example scripts go through parse → check (with a `DiskIo` rooted at
//! `examples/`), and — when they check and every matrix is small — run in f32 with outputs in
//! a temporary folder. Every input runs under `catch_unwind`, so a panic names the input that
//! caused it. Every problem must have a primary span inside the source, on character
//! boundaries, and must render. Case counts are bounded: the file runs in seconds in release.

use imgx::ast::Stmt;
use imgx::diag::{Problem, Report, Style};
use imgx::io::DiskIo;
use imgx::lower::{self, Override, Program, Step};
use imgx::run::{self, Events, Journal, OptimizeSummary, Saved, Settings, Shown};
use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

const EXAMPLES: &str = "examples";
/// The most elements a matrix of a program the fuzzer runs may have (64×64).
const MAX_ELEMENTS: usize = 64 * 64;
/// The most optimiser steps (or sweep frames) of a program the fuzzer runs.
const MAX_STEPS: usize = 250;

/// Says nothing.
struct Quiet;

impl Events for Quiet {
    fn begin(&mut self, _: &str, _: usize, _: usize) {}
    fn step(&mut self, _: usize, _: f64) {}
    fn frame(&mut self, _: usize) {}
    fn optimized(&mut self, _: &OptimizeSummary) {}
    fn print(&mut self, _: &str, _: &Shown) {}
    fn saved(&mut self, _: &Path, _: Saved) {}
    fn warn(&mut self, _: &str) {}
    fn profile(&mut self, _: &[imgx::profile::Row]) {}
}

/// A scratch folder: outputs, and a small input image.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One folder, emptied at the start of each run, so runs leave nothing behind but it.
        // It lies in this checkout's target folder (Cargo's folder for integration tests'
        // scratch files), not in /tmp, where two checkouts' suites running at once would
        // empty each other's.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("imgx-fuzz");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let gray = ndarray::Array2::from_shape_fn((16, 16), |(r, c)| (r + c) as f64 / 30.0);
        imgx::io::save_gray(&dir.join("small.png"), gray.view(), 8).unwrap();
        dir
    })
}

/// `--set` values that shrink the examples so they can run: small images, sizes and steps.
fn shrinking(script: &imgx::ast::Script) -> Vec<Override> {
    let small = scratch().join("small.png").display().to_string();
    let table = [
        ("a", small.as_str()),
        ("b", small.as_str()),
        ("image", small.as_str()),
        ("size", "16"),
        ("n_steps", "3"),
    ];
    let declared: Vec<&str> = script
        .stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Param { name, .. } => Some(name.name.as_str()),
            _ => None,
        })
        .collect();
    table
        .iter()
        .filter(|(name, _)| declared.contains(name))
        .map(|(name, value)| Override {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

/// Whether running the program is cheap: small matrices, few steps and frames.
fn small(program: &Program) -> bool {
    let graph = &program.graph;
    graph
        .ids()
        .all(|id| graph.node(id).ty.len() <= MAX_ELEMENTS)
        && program.steps.iter().all(|s| match s {
            Step::Optimize(o) => o.steps <= MAX_STEPS,
            Step::Sweep(s) => s.frames.len() <= MAX_STEPS,
            _ => true,
        })
}

/// Asserts that a problem points inside the source and renders.
fn check_problem(src: &str, p: &Problem) {
    assert!(p.span().is_some(), "`{}` has no span", p.message);
    for (span, _) in &p.labels {
        assert!(
            span.start <= span.end
                && span.end <= src.len()
                && src.is_char_boundary(span.start)
                && src.is_char_boundary(span.end),
            "`{}` has the span {span:?}, not inside the {} bytes of the source",
            p.message,
            src.len()
        );
    }
    Report::new("fuzz.imgx", src, vec![p.clone()]).render(Style::Plain, 80);
}

/// Reads inputs from `examples/`, writes outputs to the scratch folder.
fn disk() -> DiskIo {
    DiskIo::new(EXAMPLES.into(), ".".into()).with_outputs(scratch().join("out"), false)
}

/// Parses and checks `src`, with the examples shrunk (see [`shrinking`]).
fn check(src: &str, io: &DiskIo) -> Result<Program, Vec<Problem>> {
    imgx::syntax::parse(src).and_then(|script| lower::lower(src, &script, &shrinking(&script), io))
}

/// Parses and checks `src`, then runs it if it checked and is small.
fn check_and_run(src: &str) {
    let io = disk();
    match check(src, &io) {
        Err(problems) => {
            assert!(!problems.is_empty(), "a failed check with no problem");
            problems.iter().for_each(|p| check_problem(src, p));
        }
        Ok(program) if small(&program) => {
            let settings = Settings {
                script_sha256: String::new(),
                resume: None,
                fallback_checkpoint: "fuzz.ckpt".into(),
                interrupt: Arc::new(AtomicBool::new(false)),
                profile: false,
            };
            let mut journal = Journal::default();
            // A run may fail (a diverging loss, values out of range); it must not panic.
            let _ = run::execute::<f32>(&program, &io, &settings, &mut Quiet, &mut journal);
        }
        Ok(_) => {}
    }
}

/// Runs one input, turning a panic into a failure that shows the input.
fn exercise(src: &str) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check_and_run(src))) {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        panic!("imgx panicked ({why}) on this input:\n{src:?}");
    }
}

/// The example scripts, read once.
fn examples() -> &'static [String] {
    static EXAMPLE_SOURCES: OnceLock<Vec<String>> = OnceLock::new();
    EXAMPLE_SOURCES.get_or_init(|| {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(EXAMPLES)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "imgx"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no example scripts in {EXAMPLES}/");
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    })
}

/// Words and symbols of the language, and values that reach its limits.
fn tokens() -> &'static [String] {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let fixed = [
            "param",
            "learn",
            "fn",
            "print",
            "save",
            "to",
            "optimize",
            "over",
            "with",
            "steps",
            "true",
            "false",
            "record",
            "every",
            "stop",
            "when",
            "log",
            "checkpoint",
            "sweep",
            "from",
            "count",
            "adam",
            "sgd",
            "lr",
            "momentum",
            "amp",
            "f",
            "kind",
            "bits",
            "range",
            "fps",
            "palindrome",
            "patience",
            "min_delta",
            "signed",
            "seed",
            "a",
            "b",
            "m",
            "x",
            "y",
            "l",
            "0",
            "1",
            "2",
            "3",
            "0.5",
            ".5",
            "1e-3",
            "-1",
            "16",
            "64",
            "65",
            "1e9",
            "100000",
            "1.2.3",
            "\"images/clouds.png\"",
            "\"small.png\"",
            "\"out.png\"",
            "\"o.gif\"",
            "\"../x.png\"",
            "\"/tmp/x.png\"",
            "\"a.npy\"",
            "\"l.csv\"",
            "\"c.ckpt\"",
            "\"mse\"",
            "\"normalize\"",
            "\"",
            "(",
            ")",
            "{",
            "}",
            ",",
            ";",
            "=",
            "+",
            "-",
            "*",
            "/",
            ".*",
            "./",
            ".^",
            "'",
            "->",
            "\n",
            "# note\n",
            "\\\n",
            "@",
            "é",
            "−",
        ];
        let primitives = imgx::ops::PRIMITIVES.iter().map(|p| p.name());
        fixed
            .into_iter()
            .chain(primitives)
            .map(String::from)
            .collect()
    })
}

/// Splits text into tokens (names and numbers, strings, blanks, single characters), so that
/// mutations can move whole tokens; joining the pieces gives the text back.
fn pieces(src: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        let mut piece = c.to_string();
        let same_kind = |d: char| {
            if c.is_alphanumeric() || c == '_' || c == '.' {
                d.is_alphanumeric() || d == '_' || d == '.'
            } else {
                c == ' ' && d == ' '
            }
        };
        if c == '"' {
            for d in chars.by_ref() {
                piece.push(d);
                if d == '"' || d == '\n' {
                    break;
                }
            }
        } else {
            while let Some(&d) = chars.peek().filter(|&&d| same_kind(d)) {
                piece.push(d);
                chars.next();
            }
        }
        out.push(piece);
    }
    out
}

/// One edit of a script.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteChars(usize, usize),
    DuplicateChars(usize, usize),
    SwapChars(usize, usize),
    DeleteToken(usize),
    DuplicateToken(usize),
    SwapTokens(usize, usize),
    InsertToken(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..12usize).prop_map(|(i, n)| Mutation::DeleteChars(i, n)),
        (at, 1..12usize).prop_map(|(i, n)| Mutation::DuplicateChars(i, n)),
        (at, at).prop_map(|(i, j)| Mutation::SwapChars(i, j)),
        at.prop_map(Mutation::DeleteToken),
        at.prop_map(Mutation::DuplicateToken),
        (at, at).prop_map(|(i, j)| Mutation::SwapTokens(i, j)),
        (at, at).prop_map(|(i, t)| Mutation::InsertToken(i, t)),
    ]
}

fn mutate(src: &str, edits: &[Mutation]) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    for edit in edits {
        let n = chars.len().max(1);
        let mut toks = pieces(&chars.iter().collect::<String>());
        let m = toks.len().max(1);
        match *edit {
            Mutation::DeleteChars(i, k) => {
                let i = i % n;
                chars.drain(i.min(chars.len())..(i + k).min(chars.len()));
            }
            Mutation::DuplicateChars(i, k) => {
                let i = (i % n).min(chars.len());
                let copy: Vec<char> = chars[i..(i + k).min(chars.len())].to_vec();
                chars.splice(i..i, copy);
            }
            Mutation::SwapChars(i, j) if !chars.is_empty() => chars.swap(i % n, j % n),
            Mutation::DeleteToken(i) if !toks.is_empty() => {
                toks.remove(i % m);
                chars = toks.concat().chars().collect();
            }
            Mutation::DuplicateToken(i) if !toks.is_empty() => {
                let t = toks[i % m].clone();
                toks.insert(i % m, t);
                chars = toks.concat().chars().collect();
            }
            Mutation::SwapTokens(i, j) if !toks.is_empty() => {
                toks.swap(i % m, j % m);
                chars = toks.concat().chars().collect();
            }
            Mutation::InsertToken(i, t) => {
                let all = tokens();
                toks.insert(i % (toks.len() + 1), format!(" {} ", all[t % all.len()]));
                chars = toks.concat().chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// A matrix expression over the names the generated programs define, mostly 3×3, with the
/// odd mistake (another shape, a scalar where a matrix belongs).
fn expression() -> impl Strategy<Value = String> {
    let side = prop_oneof![40 => Just(3usize), 1 => 0..6usize];
    let leaf = prop_oneof![
        8 => prop::sample::select(vec!["a", "b", "x"]).prop_map(String::from),
        4 => (side.clone(), side, 0..3u8).prop_map(|(r, c, k)| match k {
            0 => format!("zeros({r}, {c})"),
            1 => format!("ones({r}, {c})"),
            _ => format!("noise({r}, {c}, seed = 2)"),
        }),
        1 => prop::sample::select(vec!["s", "1", "load(\"images/clouds.png\")"])
            .prop_map(String::from),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        let op = prop::sample::select(vec!["+", "-", "*", ".*", "./"]);
        let scalar = prop::sample::select(vec!["2", "0.5", "s", "-1", "sum(x)", "mean(a)"]);
        let unary = prop::sample::select(vec![
            "exp",
            "log",
            "sqrt",
            "abs",
            "tanh",
            "sigmoid",
            "relu",
            "normalize",
            "softmax_rows",
            "softmax_cols",
            "transpose",
            "neg",
        ]);
        prop_oneof![
            (inner.clone(), op.clone(), inner.clone())
                .prop_map(|(l, o, r)| format!("({l} {o} {r})")),
            (inner.clone(), op, scalar).prop_map(|(l, o, r)| format!("({l} {o} {r})")),
            (inner.clone(), 1..3u8).prop_map(|(e, p)| format!("({e} .^ {p})")),
            inner.clone().prop_map(|e| format!("-{e}")),
            inner.clone().prop_map(|e| format!("{e}'")),
            (unary, inner.clone()).prop_map(|(f, e)| format!("{f}({e})")),
            inner
                .clone()
                .prop_map(|e| format!("softmax_rows({e}, f = x -> x .^ 2 + 1)")),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("hcat({l}, {r})")),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("fill(3, 3, loss({l}, {r}))")),
            (inner.clone(), 1..5usize).prop_map(|(e, n)| format!("resize({e}, {n}, 3)")),
            (inner.clone(), -3..3i32).prop_map(|(e, a)| format!("warp({e}, amp = {a} * s)")),
            inner.prop_map(|e| format!("clamp({e}, 0, 1)")),
        ]
    })
}

/// A program: definitions of `a`, `b`, a learnable `x`, a scalar `s`, then statements.
fn program() -> impl Strategy<Value = String> {
    let statement = (0..8u8, expression(), 1..6usize).prop_map(|(k, e, n)| match k {
        0 => format!("c = {e}"),
        1 => format!("print {e}"),
        2 => format!("save {e} to \"gen/o.png\" with range = \"normalize\""),
        3 => format!("save {e} to \"gen/o.npy\""),
        4 => format!("optimize sum({e} .* x) over x with adam(lr = 0.1) steps {n}"),
        5 => format!("optimize mean({e}) over s, x with sgd(lr = 0.01, momentum = 0.5) steps {n}\n  record x every 2 to \"gen/x.gif\""),
        6 => format!("fn g(m) = {e} + m\nprint g(x)"),
        _ => format!("param k = {n}\nsweep k from 0 to 1 count {n} record {e} .* x to \"gen/k.gif\""),
    });
    prop::collection::vec(statement, 1..5).prop_map(|stmts| {
        let prelude = "a = noise(3, 3)\nb = ones(3, 3)\nlearn x = zeros(3, 3)\nlearn s = 0.5";
        format!("{prelude}\n{}\n", stmts.join("\n"))
    })
}

/// Bounded, reproducible runs: a fixed seed unless `PROPTEST_RNG_SEED` asks for another (so CI
/// is repeatable, and longer explorations stay one variable away).
fn config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1D6C_5EED);
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_text(text in "\\PC{0,200}") {
        exercise(&text);
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn random_token_streams(
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..60)
    ) {
        let all = tokens();
        let src: String = picks
            .iter()
            .map(|(i, spaced)| format!("{}{}", i.get(all), if *spaced { " " } else { "" }))
            .collect();
        exercise(&src);
    }

    #[test]
    fn mutated_examples(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(mutation(), 1..4),
    ) {
        exercise(&mutate(which.get(examples()).as_str(), &edits));
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn generated_programs(src in program()) {
        exercise(&src);
    }
}

/// The examples check, and shrunk by `--set` they are small enough to run here.
#[test]
fn examples_check_and_run_small() {
    for src in examples() {
        match check(src, &disk()) {
            Ok(program) => assert!(small(&program), "an example is too big to run:\n{src}"),
            Err(problems) => panic!("an example does not check: {problems:?}\n{src}"),
        }
        exercise(src);
    }
}

/// Inputs built to exhaust a stack, a counter or a size: each is refused with a diagnostic.
#[test]
fn pathological_inputs_are_refused() {
    let nested =
        |open: &str, close: &str, n: usize| format!("x = {}1{}", open.repeat(n), close.repeat(n));
    let mut chain = String::from("fn f0(m) = m + m\n");
    for k in 1..40 {
        chain.push_str(&format!("fn f{k}(m) = f{}(m) .* f{}(m)\n", k - 1, k - 1));
    }
    chain.push_str("y = f39(1)\n");
    let cases = [
        nested("(", ")", 100_000),
        nested("f(", ")", 5_000),
        nested("-", "", 100_000),
        nested("", "'", 100_000),
        format!("x = 1{}", " .^ 1".repeat(50_000)),
        format!("x = 1{}", " + 1".repeat(100_000)),
        format!("x = {}1", "y -> ".repeat(5_000)),
        "x = \"".repeat(10_000),
        "(".repeat(100_000),
        chain,
        "z = zeros(1e9, 1e9)".to_string(),
        "u = ones(200000, 1)\nprint sum(u * u')".to_string(),
    ];
    for src in &cases {
        exercise(src);
        let refused = imgx::syntax::parse(src)
            .and_then(|s| lower::lower(src, &s, &[], &DiskIo::new(".".into(), ".".into())));
        assert!(refused.is_err(), "accepted: {}…", &src[..src.len().min(60)]);
    }
}
