//! Checkpoints: everything an optimisation needs to continue exactly where it stopped — the
//! learnables, the optimiser's state (moments and step count), the losses so far and the frames
//! its `record` clauses kept — bit for bit, so that resuming gives the trajectory an
//! uninterrupted run would have had.
//!
//! The file is a [safetensors](https://huggingface.co/docs/safetensors) file (an 8-byte
//! little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
//! then the raw little-endian data), so numpy and torch can open it as it is. Its
//! `__metadata__` holds one entry, `imgx`, with a JSON [`Meta`]. Tensors, by name:
//! `learnable.NAME`, `first_moment.NAME`, `second_moment.NAME` (absent for SGD), `losses` (f64,
//! the loss before each update done), `recordN.frames` (u8, frames × rows × cols) and
//! `recordN.steps` (i64, the step of each frame). Bytes depend on the contents alone.
//! Pure encoding: `run` reads and writes the bytes through `io` (the bytes are made into any
//! writer `io` hands over, as they are written).

use crate::optim::State;
use crate::tensor::{Real, Value};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// What identifies the optimisation a checkpoint belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// `imgx-checkpoint/1`
    pub format: String,
    /// The imgx version that wrote it.
    pub imgx: String,
    /// `f32` or `f64`: resuming needs the same.
    pub precision: String,
    /// SHA-256 of the script it was made by.
    pub script_sha256: String,
    /// Which `optimize` statement of the script, counting from 0.
    pub optimize: usize,
    /// The learnables, in `over` order.
    pub learnables: Vec<String>,
    /// The optimiser and its settings.
    pub optimizer: serde_json::Value,
    /// Updates done.
    pub step: u64,
    /// The `record` clauses' `every`, in order.
    pub record_every: Vec<usize>,
}

pub const FORMAT: &str = "imgx-checkpoint/1";

/// Frames of one recording: (step, 8-bit levels).
pub type Frames = Vec<(usize, Array2<u8>)>;

/// A checkpoint in the float type `T` of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<T> {
    pub meta: Meta,
    /// The learnables' values, in `meta.learnables` order.
    pub values: Vec<Value<T>>,
    pub state: State<T>,
    /// The loss before each update done: `meta.step` entries.
    pub losses: Vec<f64>,
    /// The frames of each `record` clause taken before step `meta.step`.
    pub recordings: Vec<Frames>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Dtype {
    F32,
    F64,
    U8,
    I64,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::U8 => "U8",
            Dtype::I64 => "I64",
        }
    }
    fn of<T: Real>() -> Dtype {
        if T::NAME == "f32" {
            Dtype::F32
        } else {
            Dtype::F64
        }
    }
}

/// A tensor to write: its header entry and where its bytes come from (nothing is copied
/// before it is written).
struct Tensor<'a, T> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Data<'a, T>,
}

enum Data<'a, T> {
    Floats(&'a Value<T>),
    Losses(&'a [f64]),
    Frames(&'a Frames),
    Steps(&'a Frames),
}

fn floats<T: Real>(v: &Value<T>) -> Tensor<'_, T> {
    let shape = match v {
        Value::Scalar(_) => vec![],
        Value::Matrix(m) => vec![m.nrows(), m.ncols()],
    };
    Tensor {
        dtype: Dtype::of::<T>(),
        shape,
        data: Data::Floats(v),
    }
}

impl<T: Real> Tensor<'_, T> {
    /// Bytes of data.
    fn len(&self) -> usize {
        let size = match self.dtype {
            Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 => 1,
        };
        self.shape.iter().product::<usize>() * size
    }

    /// The data, little-endian, in row-major order.
    fn write(&self, w: &mut dyn Write) -> io::Result<()> {
        match self.data {
            Data::Floats(v) => {
                let values: Box<dyn Iterator<Item = &T>> = match v {
                    Value::Scalar(s) => Box::new(std::iter::once(s)),
                    Value::Matrix(m) => Box::new(m.iter()),
                };
                // In pieces: one write per entry would cost more than the conversion.
                let mut piece = Vec::with_capacity(1 << 16);
                for v in values {
                    match self.dtype {
                        // Exact: the value is an f32 widened to f64.
                        Dtype::F32 => piece.extend((v.as_f64() as f32).to_le_bytes()),
                        _ => piece.extend(v.as_f64().to_le_bytes()),
                    }
                    if piece.len() >= 1 << 16 {
                        w.write_all(&piece)?;
                        piece.clear();
                    }
                }
                w.write_all(&piece)
            }
            Data::Losses(l) => l.iter().try_for_each(|v| w.write_all(&v.to_le_bytes())),
            Data::Frames(frames) => frames.iter().try_for_each(|(_, f)| match f.as_slice() {
                Some(levels) => w.write_all(levels),
                None => w.write_all(&f.iter().copied().collect::<Vec<u8>>()),
            }),
            Data::Steps(frames) => {
                (frames.iter()).try_for_each(|(s, _)| w.write_all(&(*s as i64).to_le_bytes()))
            }
        }
    }
}

/// The checkpoint as bytes.
pub fn encode<T: Real>(c: &Checkpoint<T>) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_to(c, &mut bytes).unwrap_or_else(|_| unreachable!("writing to a Vec cannot fail"));
    bytes
}

/// Writes the checkpoint's bytes to `w` as they are made: the run's frames and state are not
/// copied first (at 512² with 39 frames, that halved the memory a run peaks at).
pub fn encode_to<T: Real>(c: &Checkpoint<T>, w: &mut dyn Write) -> io::Result<()> {
    let mut tensors: BTreeMap<String, Tensor<'_, T>> = BTreeMap::new();
    for (i, name) in c.meta.learnables.iter().enumerate() {
        tensors.insert(format!("learnable.{name}"), floats(&c.values[i]));
        tensors.insert(format!("first_moment.{name}"), floats(&c.state.first[i]));
        if let Some(v) = c.state.second.get(i) {
            tensors.insert(format!("second_moment.{name}"), floats(v));
        }
    }
    tensors.insert(
        "losses".into(),
        Tensor {
            dtype: Dtype::F64,
            shape: vec![c.losses.len()],
            data: Data::Losses(&c.losses),
        },
    );
    for (i, frames) in c.recordings.iter().enumerate() {
        let (rows, cols) = frames.first().map_or((0, 0), |(_, f)| f.dim());
        tensors.insert(
            format!("record{i}.frames"),
            Tensor {
                dtype: Dtype::U8,
                shape: vec![frames.len(), rows, cols],
                data: Data::Frames(frames),
            },
        );
        tensors.insert(
            format!("record{i}.steps"),
            Tensor {
                dtype: Dtype::I64,
                shape: vec![frames.len()],
                data: Data::Steps(frames),
            },
        );
    }
    let mut header = serde_json::Map::new();
    let meta = serde_json::to_string(&c.meta).expect("metadata serialises");
    header.insert("__metadata__".into(), serde_json::json!({ "imgx": meta }));
    let mut offset = 0;
    for (name, t) in &tensors {
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": t.dtype.name(),
                "shape": t.shape,
                "data_offsets": [offset, offset + t.len()],
            }),
        );
        offset += t.len();
    }
    let mut json = serde_json::Value::Object(header).to_string();
    // Pad with spaces so that the data starts 8-byte aligned, as safetensors does.
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    w.write_all(&(json.len() as u64).to_le_bytes())?;
    w.write_all(json.as_bytes())?;
    tensors.values().try_for_each(|t| t.write(w))
}

/// Reads a checkpoint made by a run in float type `T`.
pub fn decode<T: Real>(bytes: &[u8]) -> Result<Checkpoint<T>, String> {
    let bad = |why: String| format!("not an imgx checkpoint: {why}");
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| bad("the file is shorter than its header".into()))?;
    let json = bytes
        .get(8..8usize.saturating_add(len))
        .ok_or_else(|| bad("the header is truncated".into()))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(json).map_err(|e| bad(format!("the header is not JSON ({e})")))?;
    let data = &bytes[8 + len..];
    let meta: Meta = header
        .get("__metadata__")
        .and_then(|m| m.get("imgx"))
        .and_then(|m| m.as_str())
        .ok_or_else(|| bad("no imgx metadata".into()))
        .and_then(|m| serde_json::from_str(m).map_err(|e| bad(format!("bad metadata ({e})"))))?;
    if meta.format != FORMAT {
        return Err(format!(
            "the checkpoint's format is `{}`; this imgx reads `{FORMAT}`",
            meta.format
        ));
    }
    if meta.precision != T::NAME {
        let flag = if meta.precision == "f64" {
            "with --f64"
        } else {
            "without --f64"
        };
        return Err(format!(
            "the checkpoint was made in {} and this run computes in {}; resume {flag}",
            meta.precision,
            T::NAME
        ));
    }
    let tensor = |name: &str, dtype: Dtype| -> Result<(Vec<usize>, &[u8]), String> {
        let missing = || bad(format!("tensor `{name}` is missing or malformed"));
        let t = header.get(name).ok_or_else(missing)?;
        if t["dtype"] != dtype.name() {
            return Err(missing());
        }
        let shape: Vec<usize> =
            serde_json::from_value(t["shape"].clone()).map_err(|_| missing())?;
        let [a, b]: [usize; 2] =
            serde_json::from_value(t["data_offsets"].clone()).map_err(|_| missing())?;
        let width = match dtype {
            Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 => 1,
        };
        let expected = shape.iter().product::<usize>().checked_mul(width);
        match data.get(a..b) {
            Some(slice) if Some(slice.len()) == expected => Ok((shape, slice)),
            _ => Err(bad(format!("tensor `{name}` does not fit the file"))),
        }
    };
    let value = |name: String| -> Result<Value<T>, String> {
        let (shape, raw) = tensor(&name, Dtype::of::<T>())?;
        let values: Vec<T> = match Dtype::of::<T>() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| T::lit(f64::from(f32::from_le_bytes(b.try_into().expect("4")))))
                .collect(),
            _ => raw
                .chunks_exact(8)
                .map(|b| T::lit(f64::from_le_bytes(b.try_into().expect("8"))))
                .collect(),
        };
        match shape[..] {
            [] => Ok(Value::Scalar(values[0])),
            [r, c] => Ok(Value::Matrix(
                Array2::from_shape_vec((r, c), values).expect("length checked"),
            )),
            _ => Err(bad(format!(
                "tensor `{name}` is neither a scalar nor a matrix"
            ))),
        }
    };
    let names = &meta.learnables;
    let values = names
        .iter()
        .map(|n| value(format!("learnable.{n}")))
        .collect::<Result<Vec<_>, _>>()?;
    let first = names
        .iter()
        .map(|n| value(format!("first_moment.{n}")))
        .collect::<Result<Vec<_>, _>>()?;
    let has_second = names
        .first()
        .is_some_and(|n| header.contains_key(&format!("second_moment.{n}")));
    let second = if has_second {
        names
            .iter()
            .map(|n| value(format!("second_moment.{n}")))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let (_, raw) = tensor("losses", Dtype::F64)?;
    let losses = raw
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8")))
        .collect();
    let recordings = (0..meta.record_every.len())
        .map(|i| {
            let (shape, raw) = tensor(&format!("record{i}.frames"), Dtype::U8)?;
            let (_, steps) = tensor(&format!("record{i}.steps"), Dtype::I64)?;
            let [n, r, c] = shape[..] else {
                return Err(bad(format!("record{i}.frames is not frames × rows × cols")));
            };
            if steps.len() != 8 * n {
                return Err(bad(format!("record{i}.steps does not match its frames")));
            }
            Ok((0..n)
                .map(|k| {
                    let step = i64::from_le_bytes(steps[8 * k..8 * k + 8].try_into().expect("8"));
                    let frame = raw[k * r * c..(k + 1) * r * c].to_vec();
                    (
                        step as usize,
                        Array2::from_shape_vec((r, c), frame).expect("length checked"),
                    )
                })
                .collect())
        })
        .collect::<Result<Vec<_>, String>>()?;
    let state = State {
        step: meta.step,
        first,
        second,
    };
    Ok(Checkpoint {
        meta,
        values,
        state,
        losses,
        recordings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<T: Real>() -> Checkpoint<T> {
        let m = |seed: f64| {
            Value::Matrix(Array2::from_shape_fn((2, 3), |(i, j)| {
                T::lit((i as f64 * 3.0 + j as f64 + seed).sin() / 7.0)
            }))
        };
        Checkpoint {
            meta: Meta {
                format: FORMAT.into(),
                imgx: "0.1.0".into(),
                precision: T::NAME.into(),
                script_sha256: "ab".repeat(32),
                optimize: 1,
                learnables: vec!["x".into(), "s".into()],
                optimizer: serde_json::json!({"name": "adam", "lr": 0.001}),
                step: 2,
                record_every: vec![1],
            },
            values: vec![m(0.0), Value::Scalar(T::lit(0.1))],
            state: State {
                step: 2,
                first: vec![m(1.0), Value::Scalar(T::lit(-1e-30))],
                second: vec![m(2.0), Value::Scalar(T::lit(3e-12))],
            },
            losses: vec![0.5, 0.25],
            recordings: vec![vec![
                (0, Array2::from_elem((2, 4), 7)),
                (1, Array2::from_shape_fn((2, 4), |(i, j)| (i * 4 + j) as u8)),
            ]],
        }
    }

    #[test]
    fn round_trips_bit_for_bit_in_both_precisions() {
        let c = sample::<f32>();
        let bytes = encode(&c);
        assert_eq!(decode::<f32>(&bytes).unwrap(), c);
        assert_eq!(encode(&c), bytes, "deterministic bytes");
        let c = sample::<f64>();
        assert_eq!(decode::<f64>(&encode(&c)).unwrap(), c);
        // SGD has no second moments.
        let mut sgd = sample::<f64>();
        sgd.state.second.clear();
        assert_eq!(decode::<f64>(&encode(&sgd)).unwrap(), sgd);
    }

    #[test]
    fn is_a_safetensors_file() {
        let bytes = encode(&sample::<f32>());
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + len) % 8, 0, "data 8-byte aligned");
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
        assert_eq!(header["learnable.x"]["dtype"], "F32");
        assert_eq!(header["learnable.x"]["shape"], serde_json::json!([2, 3]));
        assert_eq!(header["learnable.s"]["shape"], serde_json::json!([]));
        assert_eq!(
            header["record0.frames"]["shape"],
            serde_json::json!([2, 2, 4])
        );
        let end = header
            .as_object()
            .unwrap()
            .values()
            .filter_map(|t| t["data_offsets"][1].as_u64())
            .max()
            .unwrap() as usize;
        assert_eq!(8 + len + end, bytes.len(), "tensors fill the data exactly");
    }

    #[test]
    fn refusals_say_why() {
        let bytes = encode(&sample::<f64>());
        let e = decode::<f32>(&bytes).unwrap_err();
        assert!(e.contains("made in f64") && e.contains("with --f64"), "{e}");
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(decode::<f64>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode::<f64>(b"\x02\0\0\0\0\0\0\0{}")
            .unwrap_err()
            .contains("no imgx metadata"));
    }
}
