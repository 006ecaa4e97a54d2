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
pub fn backward<T: Dispatch>(
    graph: &Graph,
    values: &Values<T>,
    loss: NodeId,
    wrt: &[NodeId],
    relevant: &[bool],
) -> Vec<Value<T>> {
    backward_from(graph, values, loss, Value::Scalar(T::one()), wrt, relevant)
}

/// The vector-Jacobian product ⟨seed, d output / d w⟩ for each w in `wrt`: [`backward`] for an
/// output of any type, seeded with `seed` (same type as the output).
pub fn backward_from<T: Dispatch>(
    graph: &Graph,
    values: &Values<T>,
    loss: NodeId,
    seed: Value<T>,
    wrt: &[NodeId],
    relevant: &[bool],
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
