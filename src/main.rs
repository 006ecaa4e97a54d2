//! The `imgx` command line: parses flags, runs the phases, renders diagnostics and events, and
//! decides the exit code: 0 success, 1 run failure, 2 script or usage error, 130 interrupted by
//! Ctrl-C (after writing what could be written and a checkpoint; a second Ctrl-C exits at once).

use clap::{Parser, Subcommand, ValueEnum};
use imgx::diag::{Problem, Report, Style};
use imgx::io::{self as disk, DiskIo};
use imgx::lower::{self, Override, Program};
use imgx::manifest;
use imgx::profile::Row;
use imgx::run::{self, End, Events, Failure, Journal, OptimizeSummary, Saved, Settings, Shown};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

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
    /// Threads a step is shared by: matrix products and element-wise passes (default: one per core, at most 8; results are identical for any value; 1 to 1024).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS))]
    threads: Option<u16>,
    /// Write events as JSON Lines on stdout.
    #[arg(long)]
    json: bool,
    /// At the end, show where the time went: each primitive's forward and backward, and the
    /// optimiser's update (calls, total, per call, share)
    #[arg(long)]
    profile: bool,
    /// Print nothing but errors and warnings.
    #[arg(long, short)]
    quiet: bool,
    /// Let the script write outside the output folder (absolute paths, `..`).
    #[arg(long)]
    allow_write_anywhere: bool,
    /// Continue an optimisation from a checkpoint it wrote (`checkpoint to "…"`, or the one a
    /// stopped run names); with the same script and --set values it follows exactly the
    /// trajectory an uninterrupted run would have (raise `steps` to go further).
    #[arg(long, value_name = "CKPT")]
    resume: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    script: ScriptArgs,
    /// Folder that output paths resolve against (default: the script's folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Accept output paths outside the output folder (absolute paths, `..`).
    #[arg(long)]
    allow_write_anywhere: bool,
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
    imgx::run::keep_freed_memory();
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
}

/// Reads, parses and checks; on problems, renders them and returns the exit code.
/// `out`: the output folder (default: the script's) and whether writing outside it is allowed.
fn load(args: &ScriptArgs, style: Style, out: (Option<&Path>, bool)) -> Result<Loaded, ExitCode> {
    let name = args.file.display().to_string();
    let src = match imgx::io::read_script(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the script: {e}");
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
    let out_dir = out.0.map_or_else(|| script_dir.clone(), Path::to_path_buf);
    let io = DiskIo::new(script_dir.clone(), cwd).with_outputs(out_dir, out.1);
    let checked =
        imgx::syntax::parse(&src).and_then(|script| lower::lower(&src, &script, &args.set, &io));
    match checked {
        Ok(program) => Ok(Loaded {
            name,
            src,
            program,
            io,
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

/// Refuses (exit 2) a program whose peak memory, with values of `precision` bytes, would
/// exceed the memory available (see `lower::estimate_bytes`).
fn fits(l: &Loaded, precision: u64, style: Style) -> Result<(), ExitCode> {
    lower::check_memory(&l.program, precision, imgx::io::available_memory()).map_err(|p| {
        render(&l.name, &l.src, vec![p], style);
        ExitCode::from(2)
    })
}

fn cmd_check(args: CheckArgs, style: Style) -> ExitCode {
    let out = (args.out.as_deref(), args.allow_write_anywhere);
    match load(&args.script, style, out).and_then(|l| fits(&l, 4, style).map(|()| l)) {
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
    let l = match load(&args.script, style, (None, false)) {
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
            imgx::lower::Step::Sweep(s) => {
                for (v, id) in &s.frames {
                    marks.push((*id, format!("sweep {} = {v}", s.param)));
                }
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
    let l = match load(&args, style, (None, false)).and_then(|l| fits(&l, 8, style).map(|()| l)) {
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

/// The most threads `imgx run` takes unless `--threads` asks for more: a 512² step cuts its
/// passes into 8 row blocks, so further threads would mostly spin (while keeping cores busy
/// that others may want).
const DEFAULT_THREADS: usize = 8;

/// The most threads `--threads` accepts. Far more than the work is cut into, and far below
/// where a process runs out of memory mappings for thread stacks: on Linux at about 20 000
/// threads (65 530 mappings), where the thread library aborts the process instead of
/// failing a thread's start.
const MAX_THREADS: i64 = 1024;

fn cmd_run(args: RunArgs, style: Style) -> ExitCode {
    let (started, clock) = (SystemTime::now(), Instant::now());
    // One thread per physical core unless told, at most DEFAULT_THREADS; nothing has run yet.
    let threads = args.threads.map_or_else(
        || num_cpus::get_physical().min(DEFAULT_THREADS),
        usize::from,
    );
    imgx::par::set_threads(threads);
    // The first Ctrl-C asks the run to stop at the end of the current step; a second one
    // (the flag already set) exits at once. Writes are atomic, so no output is half-written.
    let interrupt = Arc::new(AtomicBool::new(false));
    for registered in [
        signal_hook::flag::register_conditional_shutdown(
            signal_hook::consts::SIGINT,
            130,
            Arc::clone(&interrupt),
        ),
        signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt)),
    ] {
        if let Err(e) = registered {
            eprintln!("warning: Ctrl-C will end the run at once: {e}");
        }
    }
    let precision = if args.f64 { 8 } else { 4 };
    let mut l = match load(
        &args.script,
        style,
        (args.out.as_deref(), args.allow_write_anywhere),
    )
    .and_then(|l| fits(&l, precision, style).map(|()| l))
    {
        Ok(l) => l,
        Err(code) => return code,
    };
    l.io = l.io.with_threads(threads);
    let out_dir = l.io.out_dir().to_path_buf();
    let folder = manifest::folder(&l.program, &l.io, &out_dir);
    let stem = args
        .script
        .file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy();
    let fallback = folder.strip_prefix(&out_dir).unwrap_or(Path::new(""));
    let sha256 = disk::sha256_hex(l.src.as_bytes());
    let settings = Settings {
        script_sha256: sha256.clone(),
        resume: args.resume.clone(),
        fallback_checkpoint: fallback.join(format!("{stem}.ckpt")).display().to_string(),
        interrupt,
        profile: args.profile,
    };
    let mut events: Box<dyn Events> = if args.json {
        Box::new(Json)
    } else {
        Box::new(Human::new(args.quiet))
    };
    let mut journal = Journal::default();
    let result = if args.f64 {
        run::execute::<f64>(&l.program, &l.io, &settings, events.as_mut(), &mut journal)
    } else {
        run::execute::<f32>(&l.program, &l.io, &settings, events.as_mut(), &mut journal)
    };
    let status = match &result {
        Ok(()) => "ok",
        Err(f) if f.interrupted => "interrupted",
        Err(_) => "failed",
    };
    // Each file once, where it was first written, with what was written last.
    let mut outputs: Vec<(PathBuf, String)> = Vec::new();
    let mut at: HashMap<PathBuf, usize> = HashMap::new();
    for (path, sha) in journal.outputs {
        match at.get(&path) {
            Some(&i) => outputs[i].1 = sha,
            None => {
                at.insert(path.clone(), outputs.len());
                outputs.push((path, sha));
            }
        }
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let facts = manifest::Run {
        program: &l.program,
        script: &args.script.file,
        text: &l.src,
        sha256: &sha256,
        set: args
            .script
            .set
            .iter()
            .map(|o| format!("{}={}", o.name, o.value))
            .collect(),
        resume: args.resume.clone(),
        precision: if args.f64 { "f64" } else { "f32" },
        threads,
        status,
        inputs: l.io.inputs(),
        outputs,
        optimizations: &journal.optimizations,
        started,
        seconds: clock.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string_pretty(&manifest::manifest(&facts, &folder, &cwd))
        .expect("a manifest serialises");
    let path = folder.join(manifest::NAME);
    match disk::write_atomic(&path, format!("{text}\n").as_bytes()) {
        Ok(_) => events.saved(&path, Saved::File),
        Err(e) => events.warn(&e),
    }
    drop(events);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let code = if f.interrupted { 130 } else { 1 };
            failure(&l, resumable(f, &args), style);
            ExitCode::from(code)
        }
    }
}

/// Adds to a stopped run's failure how to resume it.
fn resumable(mut f: Failure, args: &RunArgs) -> Failure {
    if let Some(ckpt) = &f.checkpoint {
        let mut command = format!("imgx run {}", args.script.file.display());
        for o in &args.script.set {
            command += &format!(" --set {}={}", o.name, o.value);
        }
        if let Some(out) = &args.out {
            command += &format!(" --out {}", out.display());
        }
        if args.f64 {
            command += " --f64";
        }
        if args.allow_write_anywhere {
            command += " --allow-write-anywhere";
        }
        f.help = format!(
            "{}; its state is saved in {}: continue with `{command} --resume {}`",
            f.help,
            ckpt.display(),
            ckpt.display()
        );
    }
    f
}

fn failure(l: &Loaded, f: Failure, style: Style) {
    let code = if f.interrupted {
        "interrupted"
    } else {
        "run_failed"
    };
    let mut p = Problem::new(code, f.message).help(f.help);
    if let Some(s) = f.span {
        p = p.label(s, "while running this");
    }
    eprint!(
        "{}",
        Report::new(&l.name, &l.src, vec![p]).render(style, 100)
    );
}

/// A duration in seconds as `0.4s`, `42s`, `3m05s` or `2h07m`.
fn clock(secs: f64) -> String {
    let whole = secs.round() as u64;
    match whole {
        _ if secs < 10.0 => format!("{secs:.1}s"),
        0..60 => format!("{whole}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        _ => format!("{}h{:02}m", whole / 3600, whole / 60 % 60),
    }
}

/// A long task's progress, for the status line.
struct Task {
    name: String,
    total: usize,
    /// Steps done when it began (a resumed optimisation), and when.
    first: usize,
    start: Instant,
    /// Steps (or frames) done, the best loss so far, and when a plain line was last printed.
    done: usize,
    best: f64,
    loss: f64,
    printed: Option<Instant>,
}

impl Task {
    /// `optimize x: step 57/227  loss 0.0123  best 0.0120  312 steps/s  ETA 1s`
    fn status(&self, unit: &str) -> String {
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = (self.done - self.first) as f64 / elapsed.max(1e-9);
        let mut s = format!("{unit} {}/{}", self.done, self.total);
        if self.loss.is_finite() {
            s += &format!("  loss {:.6}  best {:.6}", self.loss, self.best);
        }
        if self.done > self.first {
            let left = (self.total - self.done) as f64 / rate;
            s += &format!("  {rate:.1} {unit}s/s  ETA {}", clock(left));
        }
        s
    }
}

/// Human output: prints on stdout; progress and notes on stderr: a live status line on a
/// terminal, else a plain line now and then (each tenth of the way, at most every 10 s).
struct Human {
    quiet: bool,
    bar: Option<ProgressBar>,
    task: Option<Task>,
}

impl Human {
    fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            ProgressBar::hidden().with_style(
                ProgressStyle::with_template("{prefix} {wide_bar:.cyan/blue} {msg}")
                    .expect("a valid template")
                    .progress_chars("█▉▊▋▌▍▎▏ "),
            )
        });
        Human {
            quiet,
            bar,
            task: None,
        }
    }

    /// A line on stderr, above the status line if there is one.
    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(|| eprintln!("{text}")),
            _ => eprintln!("{text}"),
        }
    }

    /// Shows progress after `done` steps (or frames) of the current task.
    fn progress(&mut self, done: usize, loss: f64, unit: &str) {
        let (Some(task), false) = (&mut self.task, self.quiet) else {
            return;
        };
        task.done = done;
        task.loss = loss;
        task.best = task.best.min(loss);
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(task.status(unit));
            return;
        }
        let tenth = |d: usize| d * 10 / task.total.max(1);
        let due = task
            .printed
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
            || tenth(done) != tenth(done.saturating_sub(1))
            || done == task.total;
        if due {
            task.printed = Some(Instant::now());
            eprintln!("{}: {}", task.name, task.status(unit));
        }
    }

    /// Ends the current task's status line.
    fn end_task(&mut self) {
        self.task = None;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Events for Human {
    fn begin(&mut self, task: &str, done: usize, total: usize) {
        self.task = Some(Task {
            name: task.to_string(),
            total,
            first: done,
            start: Instant::now(),
            done,
            best: f64::INFINITY,
            loss: f64::NAN,
            printed: None,
        });
        if let Some(bar) = &mut self.bar {
            *bar = ProgressBar::new(total as u64)
                .with_style(bar.style())
                .with_prefix(task.to_string())
                .with_position(done as u64);
        }
    }
    fn step(&mut self, step: usize, loss: f64) {
        self.progress(step - 1, loss, "step");
    }
    fn frame(&mut self, done: usize) {
        self.progress(done, f64::NAN, "frame");
        if self.task.as_ref().is_some_and(|t| t.total == done) {
            self.end_task();
        }
    }
    fn optimized(&mut self, o: &OptimizeSummary) {
        self.end_task();
        if self.quiet {
            return;
        }
        let how = match o.end {
            End::Completed => String::new(),
            End::Patience => format!(
                ", stopped early: the loss stopped improving ({} of {} steps)",
                o.steps, o.planned
            ),
            End::Interrupted => format!(", interrupted after {} of {} steps", o.steps, o.planned),
            End::Diverged => format!(", diverged after {} of {} steps", o.steps, o.planned),
        };
        let resumed = if o.resumed_from > 0 {
            format!(", resumed from step {}", o.resumed_from)
        } else {
            String::new()
        };
        eprintln!(
            "optimized: {} steps, loss {:.6} ({:.2} ms per step, median{resumed}){how}",
            o.steps, o.final_loss, o.median_step_ms
        );
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
    fn saved(&mut self, path: &Path, what: Saved) {
        if self.quiet {
            return;
        }
        let path = path.display();
        self.note(&match what {
            Saved::Image { rows, cols } => format!("saved {path} ({rows}×{cols})"),
            Saved::Animation { rows, cols, frames } => {
                format!("saved {path} ({frames} frames of {rows}×{cols})")
            }
            Saved::File => format!("saved {path}"),
        });
    }
    fn warn(&mut self, message: &str) {
        self.note(&format!("warning: {message}"));
    }
    fn profile(&mut self, rows: &[Row]) {
        // asked for explicitly, so shown even with --quiet
        let total: f64 = rows.iter().map(|r| r.seconds).sum();
        eprintln!("profile: {:.3} s in primitives and updates", total);
        eprintln!(
            "  {:<16} {:<9} {:>7} {:>10} {:>10} {:>7}",
            "name", "phase", "calls", "total ms", "ms/call", "share"
        );
        for r in rows {
            let ms = r.seconds * 1e3;
            eprintln!(
                "  {:<16} {:<9} {:>7} {:>10.2} {:>10.4} {:>6.1}%",
                r.name,
                r.phase.as_str(),
                r.calls,
                ms,
                ms / r.calls.max(1) as f64,
                100.0 * r.seconds / total.max(f64::MIN_POSITIVE)
            );
        }
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
    fn begin(&mut self, _: &str, _: usize, _: usize) {}
    fn step(&mut self, step: usize, loss: f64) {
        self.emit(serde_json::json!({"event": "step", "step": step, "loss": loss}));
    }
    fn frame(&mut self, _: usize) {}
    fn optimized(&mut self, o: &OptimizeSummary) {
        self.emit(serde_json::json!({
            "event": "optimized", "steps": o.steps, "loss": o.final_loss,
            "median_step_ms": o.median_step_ms, "end": o.end,
        }));
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
    fn saved(&mut self, path: &Path, what: Saved) {
        let mut v = serde_json::json!({"event": "saved", "path": path.display().to_string()});
        match what {
            Saved::Image { rows, cols } => {
                v["rows"] = rows.into();
                v["cols"] = cols.into();
            }
            Saved::Animation { rows, cols, frames } => {
                v["rows"] = rows.into();
                v["cols"] = cols.into();
                v["frames"] = frames.into();
            }
            Saved::File => {}
        }
        self.emit(v);
    }
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
        self.emit(serde_json::json!({"event": "warning", "message": message}));
    }
    fn profile(&mut self, rows: &[Row]) {
        self.emit(serde_json::json!({"event": "profile", "rows": rows}));
    }
}
