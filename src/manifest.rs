//! The run manifest: `manifest.json` beside a run's outputs, saying what made them — imgx's
//! version, the script (text and SHA-256), the effective params and the `--set` values, the
//! input and output files with their SHA-256, the precision and thread count, and what each
//! optimisation did. Everything that varies between two runs of the same script on the same
//! inputs is under `"timing"`, so that such runs have manifests equal apart from it.
//! Pure: `main` gathers the facts and writes the bytes through `io`.

use crate::lower::{Program, Step};
use crate::ops::{Io, Static};
use crate::run::OptimizeSummary;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// The manifest's file name.
pub const NAME: &str = "manifest.json";

/// The folder a run's manifest goes in: the deepest folder holding every output the script
/// declares, if that lies in the output folder; else the output folder itself.
pub fn folder(program: &Program, io: &dyn Io, out_dir: &Path) -> PathBuf {
    let declared = program.steps.iter().flat_map(|s| match s {
        Step::Save(s) => vec![s.path.as_str()],
        Step::Sweep(s) => vec![s.animation.path.as_str()],
        Step::Optimize(o) => (o.records.iter().map(|r| r.animation.path.as_str()))
            .chain(o.log.as_deref())
            .chain(o.checkpoint.as_deref())
            .collect(),
        Step::Learn { .. } | Step::Print { .. } => vec![],
    });
    let mut common: Option<PathBuf> = None;
    for path in declared.filter_map(|p| io.output_path(p).ok()) {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        common = Some(match common {
            None => dir,
            Some(c) => c
                .components()
                .zip(dir.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    common
        .filter(|c| c.starts_with(out_dir))
        .unwrap_or_else(|| out_dir.to_path_buf())
}

/// `path` relative to the folder `base`, lexically (`..` where needed), both taken relative to
/// the current folder `cwd` when not absolute; so a manifest stays true when its folder moves
/// together with the files it names.
pub fn relative(path: &Path, base: &Path, cwd: &Path) -> PathBuf {
    let parts = |p: &Path| {
        let mut out: Vec<OsString> = Vec::new();
        for c in cwd.join(p).components() {
            match c {
                Component::CurDir => {}
                // The first part is the root: `..` stops there.
                Component::ParentDir if out.len() > 1 => {
                    out.pop();
                }
                Component::ParentDir => {}
                c => out.push(c.as_os_str().to_os_string()),
            }
        }
        out
    };
    let (p, b) = (parts(path), parts(base));
    let shared = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out: PathBuf = std::iter::repeat_n(OsStr::new(".."), b.len() - shared).collect();
    out.extend(&p[shared..]);
    out
}

/// The facts of one run.
pub struct Run<'a> {
    pub program: &'a Program,
    /// The script as given on the command line, its text and SHA-256.
    pub script: &'a Path,
    pub text: &'a str,
    pub sha256: &'a str,
    /// `--set` values as typed, and `--resume`'s checkpoint.
    pub set: Vec<String>,
    pub resume: Option<PathBuf>,
    pub precision: &'static str,
    pub threads: usize,
    /// `ok`, `interrupted` or `failed`.
    pub status: &'static str,
    /// Input and output files (as written by the run) with their SHA-256.
    pub inputs: Vec<(PathBuf, String)>,
    pub outputs: Vec<(PathBuf, String)>,
    pub optimizations: &'a [OptimizeSummary],
    pub started: SystemTime,
    pub seconds: f64,
}

/// A manifest, in the order it reads.
#[derive(Serialize)]
pub struct Manifest<'a> {
    imgx: &'static str,
    status: &'static str,
    script: Script<'a>,
    command: Command,
    params: Map<String, Value>,
    precision: &'static str,
    threads: usize,
    inputs: Vec<File>,
    outputs: Vec<File>,
    optimizations: &'a [OptimizeSummary],
    timing: Timing,
}

#[derive(Serialize)]
struct Script<'a> {
    path: String,
    sha256: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct Command {
    set: Vec<String>,
    resume: Option<String>,
}

#[derive(Serialize)]
struct File {
    path: String,
    sha256: String,
}

/// Everything that differs between two runs of the same script.
#[derive(Serialize)]
struct Timing {
    started: String,
    seconds: f64,
    /// Of each optimisation, in order.
    median_step_ms: Vec<f64>,
}

/// The manifest of `run`, with every path relative to `folder` (where it is written).
pub fn manifest<'a>(run: &'a Run, folder: &Path, cwd: &Path) -> Manifest<'a> {
    let rel = |p: &Path| relative(p, folder, cwd).display().to_string();
    let files = |files: &[(PathBuf, String)]| -> Vec<File> {
        files
            .iter()
            .map(|(p, sha)| File {
                path: rel(p),
                sha256: sha.clone(),
            })
            .collect()
    };
    let params = (run.program.params.iter())
        .map(|(name, v)| {
            let v = match v {
                Static::Num(n) => json!(n),
                Static::Bool(b) => json!(b),
                Static::Str(t) => json!(t.value),
                Static::Func(_) => Value::Null,
            };
            (name.clone(), v)
        })
        .collect();
    Manifest {
        imgx: env!("CARGO_PKG_VERSION"),
        status: run.status,
        script: Script {
            path: rel(run.script),
            sha256: run.sha256,
            text: run.text,
        },
        command: Command {
            set: run.set.clone(),
            resume: run.resume.as_deref().map(rel),
        },
        params,
        precision: run.precision,
        threads: run.threads,
        inputs: files(&run.inputs),
        outputs: files(&run.outputs),
        optimizations: run.optimizations,
        timing: Timing {
            started: rfc3339(run.started),
            seconds: run.seconds,
            median_step_ms: run.optimizations.iter().map(|o| o.median_step_ms).collect(),
        },
    }
}

/// A time as `2026-11-27T23:11:56.123Z` (UTC).
fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_times() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn relative_paths() {
        let cwd = Path::new("/work/repo");
        let r = |p: &str, b: &str| relative(Path::new(p), Path::new(b), cwd);
        assert_eq!(
            r("examples/images/a.png", "examples/out/inverse"),
            Path::new("../../images/a.png")
        );
        assert_eq!(r("/work/repo/x/y.png", "x"), Path::new("y.png"));
        assert_eq!(
            r("./x/../z.png", "/tmp/out"),
            Path::new("../../work/repo/z.png")
        );
    }
}
