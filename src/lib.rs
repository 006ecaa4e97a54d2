//! imgx: multiply images as matrices, compose them with Transformer primitives into small
//! machines, and optimise those machines by gradient descent.
//!
//! Phases, each in its own module: [`syntax`] (pest) → [`ast`] → [`lower`] (checked [`graph`])
//! → [`eval`] (forward) → [`grad`] (reverse mode) → [`optim`]; [`run`] executes a checked
//! program, keeping [`checkpoint`]s, drawing loss curves with [`plot`], describing the run in a
//! [`manifest`] and timing primitives with [`profile`]; [`io`] is the only module that touches
//! the disk ([`lzw`] compresses its GIF frames); primitives live in [`ops`].

pub mod ast;
pub mod checkpoint;
pub mod diag;
pub mod docs;
pub mod eval;
pub mod grad;
pub mod gradcheck;
pub mod graph;
pub mod io;
pub mod lambda;
pub mod lower;
pub mod lzw;
pub mod manifest;
pub mod ops;
pub mod optim;
pub mod par;
pub mod plot;
pub mod profile;
pub mod run;
pub mod syntax;
pub mod tensor;
