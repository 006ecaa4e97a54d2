//! Test helpers shared by the primitive files: random inputs, an in-memory [`Io`], and a
//! gradient check of one primitive against central finite differences in f64.

use super::{lookup, Attrs, Dispatch, Io, Primitive, Static, Text};
use crate::tensor::{Shape, Type, Value};
use ndarray::Array2;
use std::path::PathBuf;

/// A deterministic pseudo-random matrix with entries in (0.1, 1.1), different for each seed.
pub fn matrix(rows: usize, cols: usize, seed: u64) -> Value<f64> {
    let mut state = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    Value::Matrix(Array2::from_shape_fn((rows, cols), |_| {
        0.1 + next(&mut state)
    }))
}

/// A matrix of given entries, row by row.
pub fn rows(r: usize, c: usize, v: &[f64]) -> Value<f64> {
    Value::Matrix(Array2::from_shape_vec((r, c), v.to_vec()).expect("rows × cols entries"))
}

/// splitmix64 → [0, 1)
fn next(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// An [`Io`] with no disk: every path is a 4×6 image whose level at (r, c) is (r·6 + c)/23.
pub struct FakeIo;

impl Io for FakeIo {
    fn resolve(&self, path: &Text) -> PathBuf {
        PathBuf::from(&path.value)
    }
    fn image_shape(&self, _: &Text) -> Result<Shape, String> {
        Ok(Shape::new(4, 6))
    }
    fn read_gray(&self, _: &Text) -> Result<Array2<f64>, String> {
        Ok(Array2::from_shape_fn((4, 6), |(r, c)| {
            (r * 6 + c) as f64 / 23.0
        }))
    }
    /// Every output may be written, where the script says.
    fn output_path(&self, path: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(path))
    }
}

/// The registered primitive called `name` (panics in tests if it is not registered).
pub fn prim(name: &str) -> &'static dyn Primitive {
    lookup(name).unwrap_or_else(|| panic!("`{name}` is not in the registry"))
}

/// Attributes: the given ones, then every other attribute's default.
pub fn attrs(p: &dyn Primitive, given: &[(&'static str, Static)]) -> Attrs {
    let mut values: Vec<(&'static str, Static)> = given.to_vec();
    for param in p.signature().params.iter().filter(|q| !q.kind.is_edge()) {
        if !values.iter().any(|(n, _)| *n == param.name) {
            if let Some(d) = param.default {
                values.push((param.name, d.to_static()));
            }
        }
    }
    Attrs { values }
}

/// Runs the shape rule, then forward in f64; asserts that the result has the checked type.
pub fn forward(name: &str, inputs: &[Value<f64>], given: &[(&'static str, Static)]) -> Value<f64> {
    let p = prim(name);
    let a = attrs(p, given);
    let types: Vec<Type> = inputs.iter().map(Value::ty).collect();
    let ty = p
        .check(&types, &a, &FakeIo)
        .unwrap_or_else(|e| panic!("{name}: check refused: {e:?}"));
    let refs: Vec<&Value<f64>> = inputs.iter().collect();
    let out = <f64 as Dispatch>::op(p)
        .forward(&refs, &a, &FakeIo, &mut Vec::new())
        .expect("forward");
    assert_eq!(
        out.ty(),
        ty,
        "{name}: forward result differs from the checked type"
    );
    out
}

/// Checks the primitive's backward against central finite differences in f64, for every edge
/// input and every element (inputs are small). The output is reduced to a scalar with fixed
/// random weights w, so the check covers the whole Jacobian-vector product ⟨w, J·dx⟩.
/// Tolerances as `torch.autograd.gradcheck`: eps 1e-6, |analytic − numeric| ≤ 1e-5 + 1e-3·|numeric|.
pub fn gradcheck_primitive(name: &str, inputs: &[Value<f64>], given: &[(&'static str, Static)]) {
    let p = prim(name);
    let a = attrs(p, given);
    let op = <f64 as Dispatch>::op(p);
    let refs: Vec<&Value<f64>> = inputs.iter().collect();
    let mut notes = Vec::new();
    let out = op.forward(&refs, &a, &FakeIo, &mut notes).expect("forward");
    let w = match out.ty() {
        Type::Scalar => Value::Scalar(0.7),
        Type::Matrix(s) => matrix(s.rows, s.cols, 99),
    };
    let project = |v: &Value<f64>| -> f64 { v.iter().zip(w.iter()).map(|(a, b)| a * b).sum() };
    let needs = vec![true; inputs.len()];
    let grads = op.backward(&refs, &out, &notes, w.clone(), &a, &needs);
    assert_eq!(
        grads.len(),
        inputs.len(),
        "{name}: backward must return one entry per input"
    );
    let eps = 1e-6;
    for (i, g) in grads.iter().enumerate() {
        let g = g
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no gradient for input {i}"));
        assert_eq!(
            g.ty(),
            inputs[i].ty(),
            "{name}: gradient {i} has the wrong type"
        );
        let analytic: Vec<f64> = g.iter().collect();
        for (k, &an) in analytic.iter().enumerate() {
            let at = |delta: f64| {
                let mut moved = inputs.to_vec();
                match &mut moved[i] {
                    Value::Scalar(s) => *s += delta,
                    Value::Matrix(m) => {
                        let cell = m.iter_mut().nth(k).expect("element");
                        *cell += delta;
                    }
                }
                let r: Vec<&Value<f64>> = moved.iter().collect();
                project(
                    &op.forward(&r, &a, &FakeIo, &mut Vec::new())
                        .expect("forward"),
                )
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!(
                (an - numeric).abs() <= 1e-5 + 1e-3 * numeric.abs(),
                "{name}: input {i} element {k}: backward gives {an}, finite differences {numeric}"
            );
        }
    }
}

/// Checks an element-wise primitive's values at a few points, on a scalar and in a matrix.
pub fn check_pointwise(p: &dyn Primitive, cases: &[(f64, f64)]) {
    for &(x, want) in cases {
        let got = forward(p.name(), &[Value::Scalar(x)], &[]).scalar();
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{}({x}) = {got}, want {want}",
            p.name()
        );
        let m = forward(p.name(), &[rows(1, 2, &[x, x])], &[]);
        assert!(
            m.iter().all(|v| v == got),
            "{}: matrix and scalar disagree",
            p.name()
        );
    }
}
