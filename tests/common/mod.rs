//! Helpers for tests that run the real `imgx` binary.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test image from ../shared/images (present beside the checkout, also in CI).
pub fn shared_image(name: &str) -> PathBuf {
    let p = root().join("../shared/images").join(name);
    assert!(
        p.exists(),
        "{} is missing: the poster tests read the shared images beside the checkout",
        p.display()
    );
    p
}

/// A fresh, empty folder for one test's outputs (`imgx-test-{name}-…` in the system's
/// temporary folder): removed with everything in it when the test passes; kept when the test
/// fails, its path printed, for a look at what the run wrote.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("the failed test's outputs are kept in {}", self.display());
        }
    }
}

pub fn temp_dir(name: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("imgx-test-{name}-"))
        .tempdir()
        .expect("a temporary folder");
    Scratch(dir)
}

/// Runs `imgx` with the given arguments from the repository root.
pub fn imgx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgx"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("imgx runs")
}

/// Asserts success and returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = imgx(args);
    assert!(
        out.status.success(),
        "imgx {} failed ({:?}):\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The JSON Lines events of a `--json` run.
pub fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Losses of the `step` events, then the `optimized` loss: loss after k updates at index k.
pub fn trajectory(events: &[serde_json::Value]) -> Vec<f64> {
    let mut losses: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["loss"].as_f64().expect("loss"))
        .collect();
    if let Some(last) = events.iter().find(|e| e["event"] == "optimized") {
        losses.push(last["loss"].as_f64().expect("loss"));
    }
    losses
}

/// A gray matrix read back through imgx's own loader (.npy exact, images as levels).
pub fn read_matrix(path: &Path) -> ndarray::Array2<f64> {
    use imgx::ops::{Io, Origin, Text};
    let io = imgx::io::DiskIo::new(root(), root());
    io.read_gray(&Text {
        value: path.display().to_string(),
        origin: Origin::CommandLine,
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
