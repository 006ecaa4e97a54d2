//! The examples and the command line, through the real binary: every example checks and runs,
//! JSON events have the documented shape, exit codes follow the README, outputs are
//! deterministic.

mod common;
use common::*;

fn examples() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "imgx"))
        .map(|p| format!("examples/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "examples missing: {v:?}");
    v
}

#[test]
fn every_example_checks_and_runs() {
    for ex in examples() {
        ok(&["check", &ex]);
        let out = temp_dir(&format!("ex-{}", ex.replace('/', "-")));
        let stdout = ok(&["run", &ex, "--json", "--out", out.to_str().unwrap()]);
        let evs = events(&stdout);
        let saved: Vec<&serde_json::Value> = evs.iter().filter(|e| e["event"] == "saved").collect();
        assert!(!saved.is_empty(), "{ex} saved nothing");
        for s in saved {
            let p = std::path::Path::new(s["path"].as_str().unwrap());
            assert!(
                p.starts_with(&out),
                "{ex} wrote {} outside --out",
                p.display()
            );
            assert!(
                std::fs::metadata(p).unwrap().len() > 0,
                "{} is empty",
                p.display()
            );
        }
    }
}

#[test]
fn committed_example_inputs_are_what_make_inputs_generates() {
    let out = temp_dir("make-inputs");
    ok(&[
        "run",
        "examples/make-inputs.imgx",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    for name in ["clouds.png", "clouds2.png"] {
        let made = std::fs::read(out.join("images").join(name)).unwrap();
        let committed = std::fs::read(root().join("examples/images").join(name)).unwrap();
        assert!(
            made == committed,
            "examples/images/{name} differs from what examples/make-inputs.imgx makes now"
        );
    }
}

#[test]
fn json_events_have_the_documented_shape() {
    let out = temp_dir("json");
    let stdout = ok(&[
        "run",
        "examples/inverse.imgx",
        "--json",
        "--set",
        "n_steps=5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let evs = events(&stdout);
    let steps: Vec<u64> = evs
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5]);
    let first_print = evs
        .iter()
        .find(|e| e["event"] == "print")
        .expect("print event");
    assert_eq!(first_print["expr"], "l");
    let l0 = first_print["value"].as_f64().unwrap();
    let step1 = evs.iter().find(|e| e["event"] == "step").unwrap();
    assert_eq!(
        step1["loss"].as_f64().unwrap(),
        l0,
        "step 1 reports the loss before the first update"
    );
    let done = evs
        .iter()
        .find(|e| e["event"] == "optimized")
        .expect("optimized event");
    assert_eq!(done["steps"], 5);
    let last_print = evs.iter().filter(|e| e["event"] == "print").nth(1).unwrap();
    assert_eq!(
        done["loss"], last_print["value"],
        "`optimized` reports the loss after the last update"
    );
    let learned = evs
        .iter()
        .find(|e| e["event"] == "saved" && e["path"].as_str().unwrap().ends_with("learned.png"))
        .expect("saved event of learned.png");
    assert_eq!(
        (learned["rows"].as_u64(), learned["cols"].as_u64()),
        (Some(256), Some(256))
    );
}

#[test]
fn profile_counts_every_primitive_call() {
    let out = temp_dir("profile");
    let args = [
        "run",
        "examples/inverse.imgx",
        "--set",
        "n_steps=4",
        "--out",
    ];
    let stdout = ok(&[&args[..], &[out.to_str().unwrap(), "--json", "--profile"]].concat());
    let evs = events(&stdout);
    let rows = evs
        .iter()
        .find(|e| e["event"] == "profile")
        .expect("profile event")["rows"]
        .as_array()
        .unwrap()
        .clone();
    let calls = |name: &str, phase: &str| {
        rows.iter()
            .find(|r| r["name"] == name && r["phase"] == phase)
            .map(|r| r["calls"].as_u64().unwrap())
    };
    // one backward of each primitive on the loss's path per update, one optimiser update each;
    // `m' * m` runs as gram
    assert_eq!(calls("gram", "backward"), Some(4));
    assert_eq!(calls("normalize", "backward"), Some(8));
    assert_eq!(calls("softmax_cols", "backward"), Some(4));
    assert_eq!(calls("adam", "update"), Some(4));
    assert_eq!(
        calls("warp", "backward"),
        None,
        "the target needs no gradient"
    );
    assert_eq!(calls("load", "forward"), Some(1));
    let seconds: Vec<f64> = rows
        .iter()
        .map(|r| r["seconds"].as_f64().unwrap())
        .collect();
    assert!(seconds.iter().all(|&s| s >= 0.0));
    assert!(seconds.windows(2).all(|w| w[0] >= w[1]), "most time first");
    // the human table goes to stderr, even with --quiet
    let o = imgx(&[&args[..], &[out.to_str().unwrap(), "--quiet", "--profile"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("profile: ") && err.contains("gram") && err.contains("backward"),
        "{err}"
    );
}

#[test]
fn the_loss_decreases_on_the_example_input() {
    let out = temp_dir("decrease");
    let evs = events(&ok(&[
        "run",
        "examples/inverse.imgx",
        "--json",
        "--set",
        "n_steps=60",
        "--out",
        out.to_str().unwrap(),
    ]));
    let t = trajectory(&evs);
    assert!(t[60] < 0.5 * t[0], "loss went from {} to {}", t[0], t[60]);
}

#[test]
fn learn_warp_recovers_the_amplitude() {
    let out = temp_dir("learn-warp");
    let evs = events(&ok(&[
        "run",
        "examples/learn-warp.imgx",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]));
    let amp = evs
        .iter()
        .find(|e| e["event"] == "print" && e["expr"] == "amp")
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    assert!((amp + 6.0).abs() < 1e-2, "recovered amp {amp}, want -6");
}

#[test]
fn exit_codes_follow_the_readme() {
    // 2: a script error, reported before anything runs
    let dir = temp_dir("exit");
    let bad = dir.join("bad.imgx");
    std::fs::write(&bad, "m = noise(4, 4)\nsave m * zeros(3, 3) to \"x.png\"\n").unwrap();
    let out = imgx(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shape_mismatch") && err.contains("bad.imgx"),
        "{err}"
    );
    assert!(!dir.join("x.png").exists());
    // 2: a usage error (unknown --set)
    let out = imgx(&["run", "examples/inverse.imgx", "--set", "ampp=3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `--set amp=3`"));
    // 2: thread counts outside 1..=1024 (tens of thousands would abort the process when the
    // helpers start)
    for threads in ["0", "1025", "20000", "two"] {
        let out = imgx(&["run", "examples/inverse.imgx", "--threads", threads]);
        assert_eq!(out.status.code(), Some(2), "--threads {threads}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--threads"), "--threads {threads}: {err}");
    }
    // 1: a failure while running (a value an image cannot hold)
    let nan = dir.join("nan.imgx");
    std::fs::write(
        &nan,
        "save log(zeros(2, 2)) to \"x.png\" with range = \"error\"\n",
    )
    .unwrap();
    let out = imgx(&["run", nan.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.join("x.png").exists(),
        "no output is written for a failed save"
    );
    // 0
    assert_eq!(
        imgx(&["check", "examples/inverse.imgx"]).status.code(),
        Some(0)
    );
}

#[test]
fn ops_lists_every_primitive_and_explains_one() {
    let list = ok(&["ops"]);
    for p in imgx::ops::PRIMITIVES {
        assert!(
            list.contains(&format!("{}(", p.name())),
            "`imgx ops` misses {}",
            p.name()
        );
    }
    let warp = ok(&["ops", "warp"]);
    assert!(
        warp.contains("amp") && warp.contains("gradient") && warp.contains("example"),
        "{warp}"
    );
    let out = imgx(&["ops", "wrap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `warp`"));
}

#[test]
fn graph_prints_dot_and_text() {
    let dot = ok(&["graph", "examples/learn-warp.imgx"]);
    assert!(
        dot.starts_with("digraph imgx {") && dot.contains("learn amp") && dot.contains("->"),
        "{dot}"
    );
    let text = ok(&["graph", "examples/learn-warp.imgx", "--format", "text"]);
    assert!(
        text.contains("warp(") && text.contains("[target]"),
        "{text}"
    );
}

#[test]
fn gradcheck_passes_on_the_examples() {
    for ex in ["examples/learn-warp.imgx", "examples/inverse.imgx"] {
        let out = ok(&["gradcheck", ex]);
        assert!(
            out.contains("ok") && !out.contains("MISMATCH"),
            "{ex}: {out}"
        );
    }
}

#[test]
fn f64_and_f32_runs_agree_closely() {
    let a = temp_dir("prec32");
    let b = temp_dir("prec64");
    let t32 = trajectory(&events(&ok(&[
        "run",
        "examples/inverse.imgx",
        "--json",
        "--set",
        "n_steps=10",
        "--out",
        a.to_str().unwrap(),
    ])));
    let t64 = trajectory(&events(&ok(&[
        "run",
        "examples/inverse.imgx",
        "--json",
        "--f64",
        "--set",
        "n_steps=10",
        "--out",
        b.to_str().unwrap(),
    ])));
    for (x, y) in t32.iter().zip(&t64) {
        assert!((x - y).abs() / y < 1e-3, "f32 {x} vs f64 {y}");
    }
    assert_ne!(t32, t64, "--f64 must change the precision");
}
