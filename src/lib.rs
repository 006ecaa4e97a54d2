//! imgx: multiply images as matrices, compose them with Transformer primitives into small
//! machines, and optimise those machines by gradient descent.

pub mod lambda;
pub mod ops;
pub mod tensor;
