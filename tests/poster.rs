//! Reproduces the JuliaCon 2021 poster on its own images (../shared/images) and compares with
//! independent references: the float64 loss trajectory of ../shared/reference (PyTorch and JAX
//! in float64), the Julia notebooks' own figures, and numpy panels (tests/fixtures).

mod common;
use common::*;

fn reference() -> serde_json::Value {
    let text =
        std::fs::read_to_string(root().join("../shared/reference/mandrill-inverse-f64.json"))
            .expect("reference json");
    serde_json::from_str(&text).expect("reference parses")
}

/// The reference loss after k = 0, 1, … Adam updates.
fn reference_losses(r: &serde_json::Value) -> Vec<f64> {
    r["losses_after_k_updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn inverse_run(extra: &[&str], out: &std::path::Path) -> Vec<f64> {
    let mandrill = shared_image("mandrill.tiff");
    let mut args = vec![
        "run",
        "examples/inverse.imgx",
        "--json",
        "--set",
        "n_steps=200",
        "--out",
        out.to_str().unwrap(),
    ];
    let set = format!("image={}", mandrill.display());
    args.extend(["--set", &set]);
    args.extend(extra);
    trajectory(&events(&ok(&args)))
}

fn worst_relative(ours: &[f64], reference: &[f64], upto: usize) -> (f64, usize) {
    (0..=upto)
        .map(|k| ((ours[k] - reference[k]).abs() / reference[k], k))
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
}

#[test]
fn inverse_problem_f64_matches_the_reference_trajectory() {
    let r = reference();
    let want = reference_losses(&r);
    let got = inverse_run(&["--f64"], &temp_dir("f64"));
    assert_eq!(got.len(), 201, "losses after 0..=200 updates");
    let (worst, k) = worst_relative(&got, &want, 200);
    assert!(
        worst <= 1e-6,
        "f64 loss after {k} updates: {} vs reference {} (relative {worst:e})",
        got[k],
        want[k]
    );
}

#[test]
fn inverse_problem_f32_stays_within_float32_scatter() {
    let r = reference();
    let want = reference_losses(&r);
    let got = inverse_run(&[], &temp_dir("f32"));
    let (w100, k100) = worst_relative(&got, &want, 100);
    assert!(w100 <= 1e-3, "f32 after {k100} updates: relative {w100:e}");
    let (w200, k200) = worst_relative(&got, &want, 200);
    assert!(w200 <= 1e-2, "f32 after {k200} updates: relative {w200:e}");
    // The Julia notebooks (Float32) printed these; float32 runs scatter about 1e-4 around them.
    let julia = &r["julia_notebook_figures"];
    for (key, k) in [("may_2021_L0", 0), ("oct_2021_L0", 0), ("may_2021_L1", 1)] {
        let j = julia[key].as_f64().unwrap();
        assert!(
            (got[k] - j).abs() / j <= 1e-4,
            "{key}: ours {} vs Julia {j}",
            got[k]
        );
    }
}

#[test]
fn results_are_bit_identical_across_thread_counts() {
    // 1 and 2 threads, and 3 (more threads than this machine's cores, uneven panels)
    let a = temp_dir("threads1");
    let one = inverse_run(&["--threads", "1", "--set", "n_steps=20"], &a);
    for threads in ["2", "3"] {
        let b = temp_dir(&format!("threads{threads}"));
        let other = inverse_run(&["--threads", threads, "--set", "n_steps=20"], &b);
        assert_eq!(
            one, other,
            "losses differ between --threads 1 and {threads}"
        );
        // every output, the GIF (its frames are compressed on as many threads) and the
        // checkpoint included; the manifest says how many threads ran and how long, so it differs
        let outputs = a.join("out/inverse");
        let mut compared = 0;
        for entry in std::fs::read_dir(&outputs).unwrap() {
            let name = entry.unwrap().file_name();
            if name == "manifest.json" {
                continue;
            }
            let theirs = b.join("out/inverse").join(&name);
            assert!(
                std::fs::read(outputs.join(&name)).unwrap() == std::fs::read(theirs).unwrap(),
                "{name:?} differs between --threads 1 and {threads}"
            );
            compared += 1;
        }
        assert!(compared >= 8, "only {compared} outputs");
    }
}

#[test]
fn product_panels_match_numpy() {
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/products-reference.json")).unwrap(),
    )
    .unwrap();
    let out = temp_dir("products");
    let a = format!("a={}", shared_image("mandrill.tiff").display());
    let b = format!("b={}", shared_image("jetplane.tif").display());
    ok(&[
        "run",
        "examples/products.imgx",
        "--f64",
        "--quiet",
        "--set",
        &a,
        "--set",
        &b,
        "--out",
        out.to_str().unwrap(),
    ]);
    let all = read_matrix(&out.join("out/products/panels.npy"));
    let order = ["mm", "mb", "sym_plus1", "asym_plus1", "sym_exp", "asym_exp"];
    assert_eq!(all.dim(), (512, 512 * order.len()));
    for (i, name) in order.iter().enumerate() {
        let panel = all.slice(ndarray::s![.., i * 512..(i + 1) * 512]);
        let want = &fx["panels"][name];
        let mean = panel.mean().unwrap();
        assert!(
            (mean - want["mean"].as_f64().unwrap()).abs() <= 1e-5,
            "{name}: mean {mean}"
        );
        for s in want["samples"].as_array().unwrap() {
            let (r, c, v) = (
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
                s[2].as_f64().unwrap(),
            );
            assert!(
                (panel[[r, c]] - v).abs() <= 1e-5,
                "{name}[{r},{c}] = {} vs numpy {v}",
                panel[[r, c]]
            );
        }
    }
}

#[test]
fn gray_levels_match_julia_for_mandrill_and_jetplane() {
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/products-reference.json")).unwrap(),
    )
    .unwrap();
    for (file, key) in [
        ("mandrill.tiff", "m_corner_u8"),
        ("jetplane.tif", "b_corner_u8"),
    ] {
        let m = read_matrix(&shared_image(file));
        assert_eq!(m.dim(), (512, 512), "{file}");
        for (r, row) in fx[key].as_array().unwrap().iter().enumerate() {
            for (c, v) in row.as_array().unwrap().iter().enumerate() {
                assert_eq!(m[[r, c]], v.as_f64().unwrap() / 255.0, "{file}[{r},{c}]");
            }
        }
    }
}
