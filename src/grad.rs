//! Reverse-mode gradients over the same graph forward evaluation ran on. Knows no primitive:
//! it asks each node's primitive for its vector-Jacobian product, checks it returned one entry
//! per input, and sums contributions at fan-out.

use crate::eval::Values;
use crate::graph::{Graph, NodeId, NodeKind};
use crate::ops::Dispatch;
use crate::profile::{timed, Phase};
use crate::tensor::Value;

/// The nodes a gradient flows through: on some path from one of `wrt` to `loss`.
pub fn relevant(graph: &Graph, loss: NodeId, wrt: &[NodeId]) -> Vec<bool> {
    let up = graph.ancestors(&[loss]);
    let down = graph.descendants(wrt);
    up.iter().zip(&down).map(|(a, b)| *a && *b).collect()
}

/// d loss / d w for each w in `wrt` (zeros where the loss does not depend on it). `values`
/// must hold the forward values of every relevant node; `relevant` is [`relevant`]'s answer.
/// Forward values marked in `spent` are dropped as soon as no backward reads them any more.
pub fn backward<T: Dispatch>(
    graph: &Graph,
    values: &mut Values<T>,
    loss: NodeId,
    wrt: &[NodeId],
    relevant: &[bool],
    spent: &[bool],
) -> Vec<Value<T>> {
    let seed = Value::Scalar(T::one());
    backward_from(graph, values, loss, seed, wrt, relevant, spent)
}

/// The vector-Jacobian product ⟨seed, d output / d w⟩ for each w in `wrt`: [`backward`] for an
/// output of any type, seeded with `seed` (same type as the output).
///
/// A node's value is read by its own backward and by its consumers', which come later in the
/// graph and so run before it. Once its own has run, a value marked in `spent` (one the caller
/// drops after the gradients anyway) is dropped: the forward matrices do not all stay alive to
/// the end of the backward pass, which then runs in less memory (BENCHMARKS.md: the poster's
/// step 1–2% faster on one thread at 512², one matrix less at its peak).
pub fn backward_from<T: Dispatch>(
    graph: &Graph,
    values: &mut Values<T>,
    loss: NodeId,
    seed: Value<T>,
    wrt: &[NodeId],
    relevant: &[bool],
    spent: &[bool],
) -> Vec<Value<T>> {
    let mut grads: Vec<Option<Value<T>>> = vec![None; graph.len()];
    grads[loss.0] = Some(seed);
    for id in (0..=loss.0).rev().map(NodeId) {
        if !relevant[id.0] {
            continue;
        }
        let NodeKind::Apply { prim, attrs } = &graph.node(id).kind else {
            continue;
        };
        // Taking the gradient frees it as soon as it has been passed on.
        let Some(g) = grads[id.0].take() else {
            continue;
        };
        let inputs = graph.inputs(id);
        let needs: Vec<bool> = inputs.iter().map(|i| relevant[i.0]).collect();
        let args: Vec<&Value<T>> = inputs.iter().map(|i| values.get(*i)).collect();
        let op = T::op(*prim);
        let back = timed(values.profile(), prim.name(), Phase::Backward, || {
            op.backward(&args, values.get(id), values.notes(id), g, attrs, &needs)
        });
        assert_eq!(
            back.len(),
            inputs.len(),
            "`{}` backward must return one entry per input",
            prim.name()
        );
        if spent[id.0] {
            drop(values.take(id));
        }
        for ((input, d), need) in inputs.iter().zip(back).zip(needs) {
            let Some(d) = d.filter(|_| need) else {
                continue;
            };
            match &mut grads[input.0] {
                Some(acc) => acc.accumulate(&d),
                slot @ None => *slot = Some(d),
            }
        }
    }
    wrt.iter()
        .map(|w| {
            grads[w.0]
                .take()
                .unwrap_or_else(|| Value::zeros(graph.node(*w).ty))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::Step;
    use crate::ops::testing::FakeIo;

    /// The backward pass drops the spent forward values (each after its own backward, which
    /// reads it last), keeps the others, and gives the gradients bit for bit of a pass that
    /// drops none; the dropped values are computed again, the same, when next read.
    #[test]
    fn spent_values_are_dropped_and_the_gradients_do_not_change() {
        let src = "learn x = noise(6, 6, seed = 3)\nl = sum(normalize(x' * x) .* x)\n";
        let script = crate::syntax::parse(src).expect("parses");
        let program = crate::lower::lower(src, &script, &[], &FakeIo).expect("checks");
        let graph = &program.graph;
        let &Step::Learn { node: x, init } = &program.steps[0] else {
            panic!("the script starts with `learn`")
        };
        let l = program.names.iter().find(|(n, _)| n == "l").expect("l").1;
        let mut values = Values::<f64>::new(graph);
        values.compute(graph, &[init], &FakeIo).expect("runs");
        values.set(x, values.get(init).clone());
        values.compute(graph, &[l], &FakeIo).expect("runs");
        let before: Vec<Option<Value<f64>>> = (graph.ids())
            .map(|id| values.is_computed(id).then(|| values.get(id).clone()))
            .collect();
        let relevant = relevant(graph, l, &[x]);
        let kept = vec![false; graph.len()];
        let want = backward(graph, &mut values, l, &[x], &relevant, &kept);
        assert!(graph
            .ids()
            .all(|id| values.is_computed(id) == before[id.0].is_some()));
        let spent = graph.descendants(&[x]);
        let got = backward(graph, &mut values, l, &[x], &relevant, &spent);
        assert_eq!(bits(&got[0]), bits(&want[0]));
        let mut dropped = 0;
        for id in graph.ids() {
            let applied = matches!(graph.node(id).kind, NodeKind::Apply { .. });
            let drop = spent[id.0] && relevant[id.0] && applied;
            assert_eq!(values.is_computed(id), before[id.0].is_some() && !drop);
            dropped += drop as usize;
        }
        // x' * x, normalize, .* and sum
        assert_eq!(dropped, 4);
        values.compute(graph, &[l], &FakeIo).expect("runs");
        for id in graph.ids().filter(|id| before[id.0].is_some()) {
            assert_eq!(Some(bits(values.get(id))), before[id.0].as_ref().map(bits));
        }
    }

    fn bits(v: &Value<f64>) -> Vec<u64> {
        match v {
            Value::Scalar(s) => vec![s.to_bits()],
            Value::Matrix(m) => m.iter().map(|e| e.to_bits()).collect(),
        }
    }
}
