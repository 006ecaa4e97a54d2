//! The diagnostics catalogue: every `tests/diagnostics/*.imgx` is a script with mistakes, and
//! its first line (`# …`) says which. Each is parsed and checked as `imgx check` checks it (its
//! folder is the script's and the output folder; a `# set: name=value` line is a `--set`), with
//! the memory budget fixed at 8 GiB so the text does not depend on the machine, then rendered
//! without colour at 80 columns and compared with its snapshot in `diagnostics/snapshots/`.
//!
//! Beyond the snapshot, every case must: report at least one problem; give each problem a
//! primary span inside the source and a help line; and name the primary span's `file:line:col`.

use imgx::diag::{Problem, Report, Style};
use imgx::io::DiskIo;
use imgx::lower::{self, Override};
use std::path::PathBuf;

const CASES: &str = "tests/diagnostics";
/// The memory the cases are checked against (what imgx assumes when the system does not say).
const BUDGET: u64 = lower::ASSUMED_MEMORY;

/// The `--set` overrides a case asks for with `# set: name=value` lines.
fn overrides(src: &str) -> Vec<Override> {
    src.lines()
        .filter_map(|l| l.strip_prefix("# set: "))
        .map(|s| {
            let (name, value) = s.split_once('=').expect("`# set: name=value`");
            Override {
                name: name.to_string(),
                value: value.to_string(),
            }
        })
        .collect()
}

/// Parses and checks `src` as `imgx check` does, in f32.
fn problems(src: &str, io: &DiskIo) -> Vec<Problem> {
    let checked = imgx::syntax::parse(src)
        .and_then(|script| lower::lower(src, &script, &overrides(src), io))
        .and_then(|program| lower::check_memory(&program, 4, Some(BUDGET)).map_err(|p| vec![p]));
    checked.err().unwrap_or_default()
}

/// `line:col` (1-based, columns in characters) of a byte offset, as miette prints it.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Asserts the catalogue's rules for one problem of the case `name` and renders it.
fn render_checked(name: &str, src: &str, problem: Problem) -> String {
    let primary = problem
        .span()
        .unwrap_or_else(|| panic!("{name}: `{}` has no span", problem.message));
    for (span, _) in &problem.labels {
        assert!(
            span.start <= span.end && span.end <= src.len(),
            "{name}: `{}` points outside the source: {span:?}",
            problem.message
        );
    }
    assert!(
        problem.help.as_ref().is_some_and(|h| !h.trim().is_empty()),
        "{name}: `{}` has no help line",
        problem.message
    );
    let text = Report::new(name, src, vec![problem]).render(Style::Plain, 80);
    let (line, col) = line_col(src, primary.start);
    assert!(
        text.contains(&format!("{name}:{line}:{col}")),
        "{name}: the rendering does not name {name}:{line}:{col}:\n{text}"
    );
    text
}

#[test]
fn every_case_is_explained() {
    let io = DiskIo::new(PathBuf::from(CASES), PathBuf::from("."));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("diagnostics/snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!("diagnostics/*.imgx", |path| {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let src = std::fs::read_to_string(path).unwrap();
            let what = src.lines().next().and_then(|l| l.strip_prefix("# "));
            let what = what
                .unwrap_or_else(|| panic!("{name}: the first line must say `# what it exercises`"));
            let problems = problems(&src, &io);
            assert!(!problems.is_empty(), "{name}: no problem reported");
            let rendered: String = problems
                .into_iter()
                .map(|p| render_checked(&name, &src, p))
                .collect();
            insta::with_settings!({ description => what, omit_expression => true }, {
                insta::assert_snapshot!(rendered);
            });
        });
    });
}

/// Output paths are checked before anything runs: a folder link that leads out of the output
/// folder is refused, pointing at the path, unless writing anywhere is allowed.
#[cfg(unix)]
#[test]
fn a_link_out_of_the_output_folder_is_refused_at_check_time() {
    let dir = std::env::temp_dir().join(format!("imgx-diagnostics-link-{}", std::process::id()));
    let (out, elsewhere) = (dir.join("out"), dir.join("elsewhere"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("link")).unwrap();
    let src = "m = noise(4, 4)\nsave m to \"link/x.png\"\n";
    let check = |allow: bool| {
        let io = DiskIo::new(out.clone(), out.clone()).with_outputs(out.clone(), allow);
        problems(src, &io)
    };
    let refused = check(false);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].code, "output_forbidden");
    assert!(
        refused[0].message.contains("symbolic link"),
        "{}",
        refused[0].message
    );
    assert_eq!(
        refused[0].span().map(|s| s.text(src)),
        Some("\"link/x.png\"")
    );
    assert!(refused[0]
        .help
        .as_deref()
        .unwrap()
        .contains("--allow-write-anywhere"));
    assert!(check(true).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `imgx check` reports every problem of a script at once and exits 2; with `--format json`
/// it prints one JSON object per problem and line; it takes `--allow-write-anywhere` as `run`
/// does.
#[test]
fn check_reports_every_problem_at_once() {
    let case = format!("{CASES}/several-errors.imgx");
    let src = std::fs::read_to_string(&case).unwrap();
    let io = DiskIo::new(PathBuf::from(CASES), PathBuf::from("."));
    let expected: Vec<&str> = problems(&src, &io).iter().map(|p| p.code).collect();
    assert!(expected.len() >= 4, "{expected:?}");
    let imgx = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_imgx"))
            .args(args)
            .output()
            .unwrap()
    };
    let human = imgx(&["--color", "never", "check", &case]);
    assert_eq!(human.status.code(), Some(2));
    let stderr = String::from_utf8(human.stderr).unwrap();
    for code in &expected {
        assert!(
            stderr.contains(&format!("imgx::{code}")),
            "{code} missing:\n{stderr}"
        );
    }
    // The output rules of `imgx run` apply: `--allow-write-anywhere` lifts them.
    let absolute = format!("{CASES}/output-absolute.imgx");
    assert_eq!(imgx(&["check", &absolute]).status.code(), Some(2));
    let allowed = imgx(&["check", "--allow-write-anywhere", &absolute]);
    assert_eq!(allowed.status.code(), Some(0));
    let json = imgx(&["check", "--format", "json", &case]);
    assert_eq!(json.status.code(), Some(2));
    let codes: Vec<String> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
            v["code"]
                .as_str()
                .unwrap()
                .trim_start_matches("imgx::")
                .to_string()
        })
        .collect();
    assert_eq!(codes, expected);
}
