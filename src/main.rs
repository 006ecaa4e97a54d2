//! The `imgx` command line: parses flags, runs the phases, renders diagnostics and events, and
//! decides the exit code (0 success, 1 run failure, 2 script or usage error).

use clap::{Parser, Subcommand, ValueEnum};
use imgx::diag::{Problem, Report, Style};
use imgx::io::DiskIo;
use imgx::lower::{self, Override, Program};
use imgx::run::{self, Events, Failure, Settings, Shown};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "imgx", version, about = "Multiply images as matrices, compose them into small machines, optimise them by gradient descent.", long_about = None)]
struct Cli {
    /// When to colour diagnostics (also honours NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Check and run a script.
    Run(RunArgs),
    /// Check a script without running it (exit 0 if fine, 2 with diagnostics).
    Check(CheckArgs),
    /// List the primitives and optimisers, or show one in full.
    Ops(OpsArgs),
    /// Print a script's dataflow graph (Graphviz DOT, or text for the terminal).
    Graph(GraphArgs),
    /// Check the script's gradients against central finite differences in f64.
    Gradcheck(ScriptArgs),
}

#[derive(clap::Args)]
struct OpsArgs {
    /// A primitive or optimiser to show in full.
    name: Option<String>,
    /// Print the README's primitives table (Markdown).
    #[arg(long)]
    markdown: bool,
}

#[derive(clap::Args)]
struct GraphArgs {
    #[command(flatten)]
    script: ScriptArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum GraphFormat {
    /// Graphviz DOT (`imgx graph f.imgx | dot -Tpng > g.png`).
    Dot,
    /// One line per node.
    Text,
}

#[derive(clap::Args)]
struct ScriptArgs {
    /// The .imgx script.
    file: PathBuf,
    /// Override a param: --set amp=-5 --set image=photo.png (paths relative to the current folder).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<Override>,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    script: ScriptArgs,
    /// Folder that output paths resolve against (default: the script's folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Compute in f64 instead of f32.
    #[arg(long)]
    f64: bool,
    /// Threads for matrix products (results are identical for any value).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Write events as JSON Lines on stdout.
    #[arg(long)]
    json: bool,
    /// Print nothing but errors and warnings.
    #[arg(long, short)]
    quiet: bool,
    /// Let the script write outside the output folder (absolute paths, `..`).
    #[arg(long)]
    allow_write_anywhere: bool,
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    script: ScriptArgs,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Human,
    Json,
}

fn parse_set(s: &str) -> Result<Override, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
    if name.is_empty() {
        return Err(format!("`{s}` has no name before `=`"));
    }
    Ok(Override {
        name: name.trim().to_string(),
        value: value.to_string(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = match cli.color {
        Color::Always => Style::Color,
        Color::Never => Style::Plain,
        Color::Auto if !std::io::stderr().is_terminal() => Style::Narrated,
        Color::Auto if std::env::var_os("NO_COLOR").is_some() => Style::Plain,
        Color::Auto => Style::Color,
    };
    match cli.command {
        Command::Run(args) => cmd_run(args, style),
        Command::Check(args) => {
            let style = if args.format == Format::Json {
                Style::Json
            } else {
                style
            };
            cmd_check(args, style)
        }
        Command::Ops(args) => cmd_ops(args),
        Command::Graph(args) => cmd_graph(args, style),
        Command::Gradcheck(args) => cmd_gradcheck(args, style),
    }
}

/// A loaded and checked script.
struct Loaded {
    name: String,
    src: String,
    program: Program,
    io: DiskIo,
    script_dir: PathBuf,
}

/// Reads, parses and checks; on problems, renders them and returns the exit code.
fn load(args: &ScriptArgs, style: Style) -> Result<Loaded, ExitCode> {
    let name = args.file.display().to_string();
    let src = match std::fs::read_to_string(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the script {name}: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let script_dir = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_default();
    let script_dir = if script_dir.as_os_str().is_empty() {
        cwd.clone()
    } else {
        script_dir
    };
    let io = DiskIo::new(script_dir.clone(), cwd);
    let checked = imgx::syntax::parse(&src)
        .map_err(|p| vec![p])
        .and_then(|script| lower::lower(&src, &script, &args.set, &io));
    match checked {
        Ok(program) => Ok(Loaded {
            name,
            src,
            program,
            io,
            script_dir,
        }),
        Err(problems) => {
            render(&name, &src, problems, style);
            Err(ExitCode::from(2))
        }
    }
}

fn render(name: &str, src: &str, problems: Vec<Problem>, style: Style) {
    let n = problems.len();
    let text = Report::new(name, src, problems).render(style, 100);
    if style == Style::Json {
        print!("{text}");
    } else {
        eprint!("{text}");
        eprintln!("{n} problem{} in {name}", if n == 1 { "" } else { "s" });
    }
}

fn cmd_check(args: CheckArgs, style: Style) -> ExitCode {
    match load(&args.script, style) {
        Ok(l) => {
            if args.format == Format::Human {
                eprintln!(
                    "{}: ok ({} nodes, {} statements)",
                    l.name,
                    l.program.graph.len(),
                    l.program.steps.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn cmd_ops(args: OpsArgs) -> ExitCode {
    if args.markdown {
        print!("{}", imgx::docs::markdown_table());
        return ExitCode::SUCCESS;
    }
    match args.name {
        None => print!("{}", imgx::docs::list()),
        Some(name) => match imgx::docs::describe(&name) {
            Some(text) => print!("{text}"),
            None => {
                let names = imgx::ops::PRIMITIVES
                    .iter()
                    .map(|p| p.name())
                    .chain(imgx::optim::OPTIMIZERS.iter().map(|o| o.name));
                match lower::did_you_mean(&name, names) {
                    Some(s) => {
                        eprintln!("error: no primitive or optimiser `{name}`; did you mean `{s}`?")
                    }
                    None => eprintln!(
                        "error: no primitive or optimiser `{name}`; `imgx ops` lists them"
                    ),
                }
                return ExitCode::from(2);
            }
        },
    }
    ExitCode::SUCCESS
}

/// 1-based line of a byte offset.
fn line_of(src: &str, at: usize) -> usize {
    src.get(..at).map_or(0, |s| s.matches('\n').count()) + 1
}

fn cmd_graph(args: GraphArgs, style: Style) -> ExitCode {
    let l = match load(&args.script, style) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let graph = &l.program.graph;
    let mut marks: Vec<(imgx::graph::NodeId, String)> = Vec::new();
    for step in &l.program.steps {
        match step {
            imgx::lower::Step::Save(s) => marks.push((s.node, format!("save {}", s.path))),
            imgx::lower::Step::Print {
                what: imgx::lower::Printable::Node(id),
                text,
                ..
            } => marks.push((*id, format!("print {text}"))),
            imgx::lower::Step::Optimize(o) => {
                marks.push((o.loss, format!("optimize over {}", o.names.join(", "))))
            }
            _ => {}
        }
    }
    match args.format {
        GraphFormat::Dot => print!("{}", graph.to_dot(|s| line_of(&l.src, s.start), &marks)),
        GraphFormat::Text => {
            for id in graph.ids() {
                let n = graph.node(id);
                let inputs: Vec<String> = graph
                    .inputs(id)
                    .iter()
                    .map(|i| format!("%{}", i.0))
                    .collect();
                let names: Vec<&str> = l
                    .program
                    .names
                    .iter()
                    .filter(|(_, n)| *n == id)
                    .map(|(s, _)| s.as_str())
                    .collect();
                let mark: Vec<&str> = marks
                    .iter()
                    .filter(|(n, _)| *n == id)
                    .map(|(_, m)| m.as_str())
                    .collect();
                println!(
                    "%{:<4} = {}({})  : {}  line {}{}{}",
                    id.0,
                    n.title(),
                    inputs.join(", "),
                    n.ty,
                    line_of(&l.src, n.span.start),
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", names.join(", "))
                    },
                    if mark.is_empty() {
                        String::new()
                    } else {
                        format!("  → {}", mark.join("; "))
                    }
                );
            }
        }
    }
    ExitCode::SUCCESS
}

fn cmd_gradcheck(args: ScriptArgs, style: Style) -> ExitCode {
    let l = match load(&args, style) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match imgx::gradcheck::check_script(&l.program, &l.io) {
        Ok(results) if results.is_empty() => {
            eprintln!("{}: no `optimize` statement, nothing to check", l.name);
            ExitCode::SUCCESS
        }
        Ok(results) => {
            let mut ok = true;
            for (_, outcomes) in results {
                for o in outcomes {
                    ok &= o.passed();
                    println!(
                        "{:<12} {:>4} {}  worst relative error {:.2e}  {}",
                        o.learnable,
                        o.checked,
                        if o.checked == 1 {
                            "direction "
                        } else {
                            "directions"
                        },
                        o.worst_relative_error,
                        if o.passed() { "ok" } else { "MISMATCH" }
                    );
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("gradients disagree with finite differences (|analytic − numeric| > 1e-5 + 1e-3·|numeric|)");
                ExitCode::from(1)
            }
        }
        Err(f) => {
            failure(&l, f, style);
            ExitCode::from(1)
        }
    }
}

fn cmd_run(args: RunArgs, style: Style) -> ExitCode {
    if let Some(n) = args.threads {
        if n == 0 {
            eprintln!("error: --threads must be at least 1");
            return ExitCode::from(2);
        }
        // matrixmultiply reads this once, at its first product: nothing has run yet.
        std::env::set_var("MATMUL_NUM_THREADS", n.to_string());
    }
    let l = match load(&args.script, style) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let out_dir = args.out.clone().unwrap_or_else(|| l.script_dir.clone());
    let settings = Settings {
        out_dir,
        allow_write_anywhere: args.allow_write_anywhere,
    };
    let mut events: Box<dyn Events> = if args.json {
        Box::new(Json)
    } else {
        Box::new(Human::new(args.quiet))
    };
    let result = if args.f64 {
        run::execute::<f64>(&l.program, &l.io, &settings, events.as_mut())
    } else {
        run::execute::<f32>(&l.program, &l.io, &settings, events.as_mut())
    };
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(f) => {
            failure(&l, f, style);
            ExitCode::from(1)
        }
    }
}

fn failure(l: &Loaded, f: Failure, style: Style) {
    let mut p = Problem::new("run_failed", f.message).help(f.help);
    if let Some(s) = f.span {
        p = p.label(s, "while running this");
    }
    eprint!(
        "{}",
        Report::new(&l.name, &l.src, vec![p]).render(style, 100)
    );
}

/// Human output: prints on stdout, progress and notes on stderr.
struct Human {
    quiet: bool,
    tty: bool,
}

impl Human {
    fn new(quiet: bool) -> Self {
        Human {
            quiet,
            tty: std::io::stderr().is_terminal(),
        }
    }
}

impl Events for Human {
    fn step(&mut self, step: usize, loss: f64) {
        if self.quiet {
            return;
        }
        if self.tty {
            eprint!("\rstep {step:>6}  loss {loss:.6}   ");
        } else if step == 1 || step.is_multiple_of(50) {
            eprintln!("step {step:>6}  loss {loss:.6}");
        }
    }
    fn optimized(&mut self, steps: usize, loss: f64, median_step_ms: f64) {
        if !self.quiet {
            if self.tty {
                eprintln!();
            }
            eprintln!("optimized: {steps} steps, loss {loss:.6} ({median_step_ms:.2} ms per step, median)");
        }
    }
    fn print(&mut self, expr: &str, shown: &Shown) {
        match shown {
            Shown::Scalar(v) => println!("{expr} = {v}"),
            Shown::Text(t) => println!("{expr} = {t}"),
            Shown::Matrix {
                rows,
                cols,
                min,
                max,
                mean,
            } => {
                println!(
                    "{expr} = {rows}×{cols} matrix, min {min:.6}, max {max:.6}, mean {mean:.6}"
                )
            }
        }
    }
    fn saved(&mut self, path: &Path, rows: usize, cols: usize) {
        if !self.quiet {
            eprintln!("saved {} ({rows}×{cols})", path.display());
        }
    }
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// `--json`: one JSON object per event on stdout.
struct Json;

impl Json {
    fn emit(&self, v: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
    }
}

impl Events for Json {
    fn step(&mut self, step: usize, loss: f64) {
        self.emit(serde_json::json!({"event": "step", "step": step, "loss": loss}));
    }
    fn optimized(&mut self, steps: usize, loss: f64, median_step_ms: f64) {
        self.emit(serde_json::json!({"event": "optimized", "steps": steps, "loss": loss, "median_step_ms": median_step_ms}));
    }
    fn print(&mut self, expr: &str, shown: &Shown) {
        let v = match shown {
            Shown::Scalar(v) => serde_json::json!({"event": "print", "expr": expr, "value": v}),
            Shown::Text(t) => serde_json::json!({"event": "print", "expr": expr, "value": t}),
            Shown::Matrix {
                rows,
                cols,
                min,
                max,
                mean,
            } => serde_json::json!({
                "event": "print", "expr": expr, "rows": rows, "cols": cols, "min": min, "max": max, "mean": mean
            }),
        };
        self.emit(v);
    }
    fn saved(&mut self, path: &Path, rows: usize, cols: usize) {
        self.emit(serde_json::json!({"event": "saved", "path": path.display().to_string(), "rows": rows, "cols": cols}));
    }
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
        self.emit(serde_json::json!({"event": "warning", "message": message}));
    }
}
