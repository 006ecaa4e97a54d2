//! Experiments you can watch, repeat and resume, through the real binary: recordings, loss
//! logs, false-colour differences and manifests of one run; sweeps; resuming bit for bit;
//! Ctrl-C; divergence; early stopping; `.npy` interop with numpy. And `io::save_gif` itself,
//! on frames made to show how it draws each frame over the last.

mod common;
use common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A GIF frame as decoded: its delay (1/100 s), transparent index, rectangle (top, left,
/// width, height), and the picture as seen (drawn over the one before, its transparent pixels
/// leaving the one before visible).
struct Drawn {
    delay: u16,
    transparent: Option<u8>,
    rect: (u16, u16, u16, u16),
    seen: Vec<u8>,
}

/// A GIF's width, height and frames; asserts the exact 256-level gray palette imgx writes and
/// that each frame is drawn over the last.
fn gif_drawn(path: &Path) -> (usize, usize, Vec<Drawn>) {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut d = options
        .read_info(fs::File::open(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (w, h) = (usize::from(d.width()), usize::from(d.height()));
    let gray: Vec<u8> = (0..=255u8).flat_map(|k| [k, k, k]).collect();
    assert_eq!(d.global_palette(), Some(&gray[..]), "exact gray palette");
    let mut canvas = vec![0u8; w * h];
    let mut frames = Vec::new();
    while let Some(f) = d.read_next_frame().unwrap() {
        let (top, left) = (usize::from(f.top), usize::from(f.left));
        let fw = usize::from(f.width);
        assert_eq!(
            f.dispose,
            gif::DisposalMethod::Keep,
            "each frame drawn over the last"
        );
        for (i, v) in f.buffer.iter().enumerate() {
            if Some(*v) != f.transparent {
                canvas[(top + i / fw) * w + left + i % fw] = *v;
            }
        }
        frames.push(Drawn {
            delay: f.delay,
            transparent: f.transparent,
            rect: (f.top, f.left, f.width, f.height),
            seen: canvas.clone(),
        });
    }
    (w, h, frames)
}

/// A GIF's width, height, frame delays (1/100 s) and frames as seen ([`gif_drawn`]).
fn gif_frames(path: &Path) -> (usize, usize, Vec<u16>, Vec<Vec<u8>>) {
    let (w, h, frames) = gif_drawn(path);
    let delays = frames.iter().map(|f| f.delay).collect();
    (w, h, delays, frames.into_iter().map(|f| f.seen).collect())
}

/// `io::save_gif` on frames made to show its cases: the first whole; one that changes a few
/// pixels (a rectangle with the others transparent, the lowest level the changed pixels lack
/// as the transparent index); one whose changed pixels have every level (no transparency);
/// one unchanged. Every frame as seen is the frame saved.
#[test]
fn gif_frames_are_drawn_over_the_last_with_unchanged_pixels_transparent() {
    let (rows, cols) = (24, 40);
    let first =
        ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 7 + j * 13) % 256) as u8);
    let mut few = first.clone();
    for (at, level) in [((3, 5), 0u8), ((3, 9), 1), ((10, 20), 3), ((15, 6), 200)] {
        few[at] = level;
    }
    let all = ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| ((i * cols + j) % 256) as u8);
    let frames = [first, few, all.clone(), all];
    let dir = temp_dir("gif-transparency");
    let path = dir.join("frames.gif");
    imgx::io::save_gif(&path, &frames.each_ref().map(|f| f.view()), 10.0, 2).unwrap();
    let (w, h, drawn) = gif_drawn(&path);
    assert_eq!((w, h, drawn.len()), (cols, rows, 4));
    for (k, (d, frame)) in drawn.iter().zip(&frames).enumerate() {
        assert_eq!(d.seen, frame.as_slice().unwrap(), "frame {k} as seen");
    }
    assert_eq!(
        (drawn[0].transparent, drawn[0].rect),
        (None, (0, 0, 40, 24))
    );
    // rows 3 to 15, columns 5 to 20; levels 0, 1, 3 and 200 changed, so 2 is transparent
    assert_eq!(
        (drawn[1].transparent, drawn[1].rect),
        (Some(2), (3, 5, 16, 13))
    );
    assert_eq!(
        drawn[2].transparent, None,
        "the changed pixels have all 256 levels"
    );
    assert_eq!(
        drawn[3].rect,
        (0, 0, 1, 1),
        "an unchanged frame stores one pixel"
    );
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Asserts that no temporary file is left and that the manifest's outputs are the files there
/// with their SHA-256.
fn assert_complete(dir: &Path, manifest: &serde_json::Value) {
    let all = files(dir);
    assert!(
        all.iter().all(|p| !p.to_string_lossy().ends_with(".tmp")),
        "a temporary file was left: {all:?}"
    );
    let folder = dir.join(
        all.iter()
            .find(|p| p.ends_with("manifest.json"))
            .and_then(|p| p.parent())
            .unwrap(),
    );
    for o in manifest["outputs"].as_array().unwrap() {
        let path = folder.join(o["path"].as_str().unwrap());
        assert_eq!(
            imgx::io::sha256_hex(&std::fs::read(&path).unwrap()),
            o["sha256"].as_str().unwrap(),
            "{}",
            path.display()
        );
    }
}

fn write_script(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("script.imgx");
    fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn inverse_example_makes_everything_in_one_run() {
    let out = temp_dir("inverse-all");
    let stdout = ok(&["run", "examples/inverse.imgx", "--json", "--out", s(&out)]);
    let evs = events(&stdout);
    let dir = out.join("out/inverse");
    for name in [
        "learned.png",
        "learned.npy",
        "learned_and_value.png",
        "optimization.gif",
        "loss.csv",
        "loss.png",
        "loss.svg",
        "difference.png",
        "run.ckpt",
        "manifest.json",
    ] {
        assert!(dir.join(name).is_file(), "{name} missing");
    }
    // The animation: every 6 of 227 steps, and after the last: 0, 6, …, 222, 227.
    let (w, h, delays, frames) = gif_frames(&dir.join("optimization.gif"));
    assert_eq!((w, h), (512, 256));
    assert_eq!(frames.len(), 227 / 6 + 2);
    assert!(delays.iter().all(|d| *d == 10), "10 fps: {delays:?}");
    let saved = evs
        .iter()
        .find(|e| e["event"] == "saved" && e["path"].as_str().unwrap().ends_with(".gif"))
        .unwrap();
    assert_eq!(saved["frames"], 39);
    // The last frame is hcat(x, value(x)) as saved, level for level.
    let learned = image::open(dir.join("learned_and_value.png"))
        .unwrap()
        .into_luma8();
    assert_eq!(frames.last().unwrap(), learned.as_raw());
    // The loss log: the losses the events reported (as f32, the run's type), and a picture.
    let csv = fs::read_to_string(dir.join("loss.csv")).unwrap();
    let logged: Vec<f32> = csv
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(csv.lines().next(), Some("step,loss"));
    let reported: Vec<f32> = trajectory(&evs).iter().map(|l| *l as f32).collect();
    assert_eq!(logged, reported);
    let chart = image::open(dir.join("loss.png")).unwrap();
    assert_eq!((chart.width(), chart.height()), (720, 420));
    let svg = fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(svg.contains(">loss (log scale)</text>") && svg.contains(">step</text>"));
    // The difference: colour, purple where x is above m, green where below.
    let diff = image::open(dir.join("difference.png")).unwrap().into_rgb8();
    let purple = diff.pixels().filter(|p| p[2] > p[1] && p[0] > p[1]).count();
    let green = diff.pixels().filter(|p| p[1] > p[0] && p[1] > p[2]).count();
    assert!(
        purple > 1000 && green > 1000,
        "{purple} purple, {green} green"
    );
    // The manifest names all of it.
    let m = json(&dir.join("manifest.json"));
    assert_eq!(m["status"], "ok");
    assert_eq!(m["precision"], "f32");
    assert_eq!(m["params"]["n_steps"], 227.0);
    assert_eq!(
        m["script"]["sha256"],
        imgx::io::sha256_hex(&std::fs::read(root().join("examples/inverse.imgx")).unwrap())
    );
    // Paths are relative to the manifest's folder.
    let input = dir.join(m["inputs"][0]["path"].as_str().unwrap());
    assert_eq!(
        fs::canonicalize(input).unwrap(),
        fs::canonicalize(root().join("examples/images/clouds.png")).unwrap()
    );
    assert_eq!(m["optimizations"][0]["steps"], 227);
    assert_eq!(m["optimizations"][0]["learnables"][0], "x");
    assert_eq!(m["outputs"].as_array().unwrap().len(), 10);
    assert_complete(&out, &m);
}

#[test]
fn two_runs_differ_only_in_timing() {
    let out = temp_dir("determinism");
    let run = || {
        ok(&[
            "run",
            "examples/inverse.imgx",
            "--quiet",
            "--out",
            s(&out),
            "--set",
            "n_steps=40",
        ]);
        files(&out)
            .into_iter()
            .map(|p| {
                let bytes = fs::read(out.join(&p)).unwrap();
                (p, bytes)
            })
            .collect::<Vec<_>>()
    };
    let (first, second) = (run(), run());
    assert_eq!(first.len(), second.len());
    for ((path, a), (_, b)) in first.iter().zip(&second) {
        if path.ends_with("manifest.json") {
            let mut a: serde_json::Value = serde_json::from_slice(a).unwrap();
            let mut b: serde_json::Value = serde_json::from_slice(b).unwrap();
            assert_ne!(a["timing"], serde_json::Value::Null);
            a["timing"].take();
            b["timing"].take();
            assert_eq!(a, b, "manifests differ beyond timing");
            assert_eq!(a["command"]["set"][0], "n_steps=40");
        } else {
            assert!(a == b, "{} differs between runs", path.display());
        }
    }
}

#[test]
fn resuming_gives_the_straight_run_bit_for_bit() {
    let (straight, part) = (temp_dir("straight"), temp_dir("part"));
    ok(&[
        "run",
        "examples/inverse.imgx",
        "--quiet",
        "--out",
        s(&straight),
    ]);
    ok(&[
        "run",
        "examples/inverse.imgx",
        "--quiet",
        "--out",
        s(&part),
        "--set",
        "n_steps=100",
    ]);
    let ckpt = part.join("out/inverse/run.ckpt");
    let stdout = ok(&[
        "run",
        "examples/inverse.imgx",
        "--json",
        "--out",
        s(&part),
        "--resume",
        s(&ckpt),
    ]);
    let steps: Vec<u64> = events(&stdout)
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (101..=227).collect::<Vec<_>>(), "127 more updates");
    for name in [
        "learned.npy",
        "loss.csv",
        "optimization.gif",
        "run.ckpt",
        "difference.png",
    ] {
        let (a, b) = (
            fs::read(straight.join("out/inverse").join(name)).unwrap(),
            fs::read(part.join("out/inverse").join(name)).unwrap(),
        );
        assert!(a == b, "{name}: 100 + 127 steps differ from 227");
    }
    let m = json(&part.join("out/inverse/manifest.json"));
    assert_eq!(m["optimizations"][0]["resumed_from"], 100);
    assert_eq!(m["optimizations"][0]["steps"], 227);
}

/// A long optimisation of a small image, with everything an optimisation can write.
const LONG: &str = r#"
param n = 100000
m = resize(load("IMAGE"), 48, 64)
target = normalize(softmax_cols(m, f = x -> x + 1))
learn x = m .* 0.5
l = loss(normalize(softmax_cols(x, f = x -> x + 1)), target)
optimize l over x with adam(lr = 0.002) steps n
    record hcat(x, m) every 10 to "anim.gif" with range = "normalize"
    log to "loss.csv"
    checkpoint to "run.ckpt"
save x to "x.npy"
save x to "x.png" with range = "normalize"
"#;

#[test]
fn ctrl_c_stops_cleanly_and_the_checkpoint_resumes() {
    let dir = temp_dir("sigint");
    let image = root().join("examples/images/clouds.png");
    let script = write_script(&dir, &LONG.replace("IMAGE", s(&image)));
    let out = dir.join("interrupted");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgx"))
        .args(["run", s(&script), "--json", "--out", s(&out)])
        .stdout(Stdio::piped())
        .stderr(fs::File::create(dir.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let e: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if e["event"] == "step" && e["step"].as_u64() >= Some(25) {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    lines.for_each(drop);
    let status = child.wait().unwrap();
    let stderr = fs::read_to_string(dir.join("stderr.txt")).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted (Ctrl-C) after step"),
        "{stderr}"
    );
    assert!(stderr.contains("--resume"), "says how to resume: {stderr}");
    assert!(
        out.join("x.png").is_file(),
        "the saves after the optimisation ran"
    );
    // Complete outputs: the loss log, the animation up to the stop, the saves after it.
    let m = json(&out.join("manifest.json"));
    assert_eq!(m["status"], "interrupted");
    assert_eq!(m["optimizations"][0]["end"], "interrupted");
    let done = m["optimizations"][0]["steps"].as_u64().unwrap() as usize;
    // Interrupted, not finished: how far it got past step 25 depends on how soon the signal
    // lands (a loaded machine runs a thousand of these small steps before `kill` starts).
    assert!((25..100_000).contains(&done), "stopped after {done} steps");
    assert_complete(&out, &m);
    let csv = fs::read_to_string(out.join("loss.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        done + 2,
        "header and losses 0..={done}"
    );
    let (w, h, _, frames) = gif_frames(&out.join("anim.gif"));
    assert_eq!((w, h), (128, 48));
    assert_eq!(
        frames.len(),
        done / 10 + 1 + usize::from(!done.is_multiple_of(10))
    );
    assert_eq!(read_matrix(&out.join("x.npy")).dim(), (48, 64));
    // Resuming the checkpoint to `done + 15` steps is the straight run of `done + 15` steps.
    let total = format!("n={}", done + 15);
    let (resumed, straight) = (dir.join("resumed"), dir.join("straight"));
    let ckpt = out.join("run.ckpt");
    ok(&[
        "run",
        s(&script),
        "--quiet",
        "--set",
        &total,
        "--out",
        s(&resumed),
        "--resume",
        s(&ckpt),
    ]);
    ok(&[
        "run",
        s(&script),
        "--quiet",
        "--set",
        &total,
        "--out",
        s(&straight),
    ]);
    for name in ["x.npy", "loss.csv", "anim.gif", "run.ckpt"] {
        assert!(
            fs::read(resumed.join(name)).unwrap() == fs::read(straight.join(name)).unwrap(),
            "{name}: interrupted and resumed differs from straight"
        );
    }
}

/// Runs `text` as a script in a directory of its own (`name`), in f64, as a run that fails
/// with exit code 1 and no panic: the directory, the script's checkpoint and stderr.
fn diverging(name: &str, text: &str) -> (Scratch, imgx::checkpoint::Checkpoint<f64>, String) {
    let dir = temp_dir(name);
    let script = write_script(&dir, text);
    let out = imgx(&["run", s(&script), "--f64"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let bytes = fs::read(dir.join("script.ckpt")).unwrap();
    let c = imgx::checkpoint::decode::<f64>(&bytes).unwrap();
    (dir, c, stderr)
}

#[test]
fn divergence_names_the_step_and_keeps_the_last_finite_state() {
    // s: 1 → 0.75 → 0.461… → 0.093… → −0.727…: the loss sqrt(s) is NaN before update 5.
    let (dir, c, stderr) = diverging(
        "nan",
        "learn s = 1\nl = sqrt(s)\noptimize l over s with sgd(lr = 0.5) steps 50\n    log to \"loss.csv\"\nsave fill(2, 2, s) to \"s.npy\"\n",
    );
    assert!(
        stderr.contains("diverged at step 5: the loss is not finite"),
        "{stderr}"
    );
    assert!(stderr.contains("--resume"), "{stderr}");
    // What can be written is: the log up to the NaN, the save, and a checkpoint of step 4.
    let csv = fs::read_to_string(dir.join("loss.csv")).unwrap();
    assert_eq!(csv.lines().last(), Some("4,NaN"));
    let s4 = read_matrix(&dir.join("s.npy"))[[0, 0]];
    assert!(s4 < 0.0, "the state after update 4 is finite: {s4}");
    assert_eq!(c.state.step, 4);
    assert_eq!(c.losses.len(), 4);
    let m = json(&dir.join("manifest.json"));
    assert_eq!(m["status"], "failed");
    assert_eq!(m["optimizations"][0]["end"], "diverged");
}

#[test]
fn a_gradient_that_is_not_finite_changes_nothing_and_what_follows_is_written() {
    // sqrt at 0: the loss is 0, its gradient infinite. The backward pass dropped sqrt(s)'s
    // value; the save after the optimisation computes it again from the unchanged s.
    let (dir, c, stderr) = diverging(
        "inf-gradient",
        "learn s = 0\nl = sqrt(s)\noptimize l over s with sgd(lr = 0.5) steps 10\nsave fill(2, 2, l + 1) to \"l.npy\"\n",
    );
    assert!(stderr.contains("a gradient is not finite"), "{stderr}");
    assert_eq!(
        read_matrix(&dir.join("l.npy")),
        ndarray::Array2::<f64>::ones((2, 2))
    );
    assert_eq!(c.state.step, 0);
    assert_eq!(c.values[0].scalar(), 0.0, "s is unchanged");
}

#[test]
fn a_file_written_twice_is_in_the_manifest_once_with_its_last_bytes() {
    let dir = temp_dir("twice");
    let script = write_script(
        &dir,
        "save fill(2, 3, 0.25) to \"a.png\"\nsave fill(4, 4, 1) to \"b.npy\"\nsave fill(3, 2, 0.75) to \"a.png\"\n",
    );
    ok(&["run", s(&script), "--quiet"]);
    let m = json(&dir.join("manifest.json"));
    let outputs = m["outputs"].as_array().unwrap();
    let listed: Vec<&str> = outputs
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["a.png", "b.npy"]);
    assert_eq!(read_matrix(&dir.join("a.png")).dim(), (3, 2));
    for o in outputs {
        let bytes = fs::read(dir.join(o["path"].as_str().unwrap())).unwrap();
        assert_eq!(o["sha256"], imgx::io::sha256_hex(&bytes));
    }
}

#[test]
fn an_optimisation_writes_what_it_can_when_one_output_cannot_be_written() {
    // The checkpoint, the loss log and the animation are written at once (the checkpoint on
    // a thread of its own, or before the animation on one thread); one that fails does not
    // stop the others, and is the run's error.
    for (blocked, threads) in [("run.ckpt", "2"), ("a.gif", "2"), ("run.ckpt", "1")] {
        let dir = temp_dir(&format!("blocked-{blocked}-{threads}"));
        let script = write_script(
            &dir,
            "learn x = noise(16, 16, seed = 1)\nl = loss(x, zeros(16, 16))\noptimize l over x with adam(lr = 0.01) steps 12\n    record x every 4 to \"a.gif\"\n    log to \"loss.csv\"\n    checkpoint to \"run.ckpt\"\nsave x to \"x.npy\"\n",
        );
        // a folder where the file would go: it cannot be replaced by a file
        fs::create_dir(dir.join(blocked)).unwrap();
        let out = imgx(&["run", s(&script), "--json", "--threads", threads]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{blocked}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot write `{}`", s(&dir.join(blocked))))
                && stderr.contains("line 3: optimize l over x"),
            "{blocked}: {stderr}"
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let saved: Vec<String> = events(&stdout)
            .iter()
            .filter(|e| e["event"] == "saved")
            .map(|e| {
                e["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let all = ["run.ckpt", "loss.csv", "loss.svg", "loss.png", "a.gif"];
        let want: Vec<&str> = all.iter().copied().filter(|f| *f != blocked).collect();
        // reported in this order, the one that failed left out; the script stops there
        assert_eq!(
            saved,
            [want.as_slice(), &["manifest.json"]].concat(),
            "{blocked}"
        );
        for f in &want {
            assert!(dir.join(f).is_file(), "{blocked}: {f} was not written");
        }
        assert!(dir.join(blocked).is_dir());
        assert!(!dir.join("x.npy").exists(), "{blocked}: the script went on");
        let names: Vec<String> = (fs::read_dir(&dir).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.ends_with(".tmp")),
            "{blocked}: {names:?}"
        );
        let m = json(&dir.join("manifest.json"));
        assert_eq!(m["status"], "failed");
        let listed: Vec<&str> = (m["outputs"].as_array().unwrap().iter())
            .map(|o| o["path"].as_str().unwrap())
            .collect();
        assert_eq!(listed, want, "{blocked}");
    }
}

#[test]
fn early_stopping_and_its_checkpoint() {
    let dir = temp_dir("patience");
    // Each update improves the loss by less than min_delta: stop after `patience` of them.
    let script = write_script(
        &dir,
        "learn s = 3\nl = s .^ 2\noptimize l over s with adam(lr = 0.01) steps 100\n    stop when patience = 4, min_delta = 0.5\n    checkpoint to \"s.ckpt\"\n",
    );
    let evs = events(&ok(&["run", s(&script), "--json"]));
    let done = evs.iter().find(|e| e["event"] == "optimized").unwrap();
    assert_eq!(
        (done["steps"].as_u64(), done["end"].as_str()),
        (Some(4), Some("patience"))
    );
    // Resuming an early-stopped optimisation stops again at once.
    let evs = events(&ok(&[
        "run",
        s(&script),
        "--json",
        "--resume",
        s(&dir.join("s.ckpt")),
    ]));
    assert!(!evs.iter().any(|e| e["event"] == "step"));
}

#[test]
fn sweep_example_makes_a_palindrome_animation() {
    let out = temp_dir("sweep");
    ok(&["run", "examples/sweep.imgx", "--quiet", "--out", s(&out)]);
    let (w, h, delays, frames) = gif_frames(&out.join("out/sweep/variations.gif"));
    assert_eq!((w, h), (512, 256));
    // knob 0, 1, …, 31, then 30, …, 1: a seamless loop.
    assert_eq!(frames.len(), 32 + 30);
    for i in 1..31 {
        assert!(
            frames[i] == frames[62 - i],
            "frame {i} and {} differ",
            62 - i
        );
    }
    assert!(frames[0] != frames[31]);
    // 30 fps in hundredths of a second: 3, 4, 3, 3, 4, 3, … averaging 1/30 s.
    assert_eq!(&delays[..6], [3, 4, 3, 3, 4, 3]);
    assert_eq!(delays.iter().map(|d| u32::from(*d)).sum::<u32>(), 207);
    // The middle frame (knob 16: amp 0) shows the image itself on the left.
    let m = read_matrix(&root().join("examples/images/clouds.png"));
    let left: Vec<u8> = (0..256)
        .flat_map(|r| frames[16][r * 512..r * 512 + 256].to_vec())
        .collect();
    let levels: Vec<u8> = m.iter().map(|v| (v * 255.0).round() as u8).collect();
    assert!(left == levels);
}

#[test]
fn sweep_and_colormap_mistakes_are_caught_before_running() {
    let dir = temp_dir("sweep-check");
    let cases = [
        (
            "m = noise(8, 8)\nsweep k from 0 to 1 count 3 record m to \"a.gif\"\n",
            "`sweep` needs a number param",
        ),
        (
            "param k = 0\na = k * 2\nsweep k from 0 to 1 count 3 record fill(2, 2, a) to \"a.gif\"\n",
            "does not use `k`",
        ),
        (
            "param k = 1\nsweep k from 1 to 3 count 3 record ones(k, 2) to \"a.gif\"\n",
            "must have one shape",
        ),
        (
            "m = noise(8, 8)\nsave m to \"m.npy\" with colormap = \"signed\"\n",
            "8-bit colour image",
        ),
        (
            "param k = 0\nsweep k from 0 to 1 count 3 record fill(2, 2, k) to \"a.gif\" with palindrome = 1\n",
            "`palindrome` is `true` or `false`",
        ),
    ];
    for (text, expected) in cases {
        let script = write_script(&dir, text);
        let out = imgx(&["check", s(&script)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}

#[test]
fn npy_files_interoperate_with_numpy_exactly() {
    let dir = temp_dir("numpy");
    let fixtures = root().join("tests/fixtures/numpy");
    // numpy → imgx: float64 and Fortran-order float32, every bit kept.
    let f8 = read_matrix(&fixtures.join("f8.npy"));
    let expected = [
        1.0 / 3.0,
        -0.0,
        1e-300,
        5e-324,
        1e300,
        std::f64::consts::PI,
        -2.5,
        0.1,
        7.0,
        -1.0 / 7.0,
        2f64.powi(-30),
        123456.789,
    ];
    assert!(f8
        .iter()
        .zip(expected)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    let f4 = read_matrix(&fixtures.join("f4-fortran.npy"));
    let expected = [0.1f32, -2.0, 3.25, 1e30, 1e-40, -0.0].map(f64::from);
    assert!(f4
        .iter()
        .zip(expected)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    // imgx → numpy: loading and saving writes the very bytes numpy's np.save writes.
    let script = write_script(
        &dir,
        &format!(
            "save load(\"{}\") to \"copy.npy\"\n",
            s(&fixtures.join("f8.npy"))
        ),
    );
    ok(&["run", s(&script), "--f64", "--quiet"]);
    assert!(fs::read(dir.join("copy.npy")).unwrap() == fs::read(fixtures.join("f8.npy")).unwrap());
    // And where numpy is installed, it reads what imgx wrote.
    let check = "import numpy, sys; a = numpy.load(sys.argv[1]); \
                 print(a.dtype, a.shape, a[0, 0].hex(), a[0, 3].hex())";
    if let Ok(out) = Command::new("python3")
        .args(["-c", check, s(&dir.join("copy.npy"))])
        .output()
    {
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "float64 (3, 4) 0x1.5555555555555p-2 0x0.0000000000001p-1022"
            );
        }
    }
}
