//! Producing a planned tensor's bytes, row chunk by row chunk: decode or dequantize to
//! f32, apply the non-finite policy, encode to the output type. Pure functions of the
//! source bytes, so chunks can run in parallel and the result does not depend on it.

use crate::error::{Error, Result};
use crate::mlx::QuantData;
use crate::plan::{Encoding, PlannedTensor};
use crate::quant;
use crate::source::{Dtype, TensorStore};

/// What to do with inf/NaN values found in the (dequantized) source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NanPolicy {
    /// Fail, naming the tensor and the count.
    #[default]
    Error,
    /// Replace them with 0.
    Zero,
    /// Write them as they are.
    Keep,
}

/// A tensor's source, resolved to byte slices once per tensor.
pub enum SourceView<'a> {
    Dense {
        dtype: Dtype,
        data: &'a [u8],
        row_len: usize,
    },
    Quantized(QuantData<'a>),
}

impl<'a> SourceView<'a> {
    pub fn new(store: &'a TensorStore, t: &PlannedTensor) -> Result<SourceView<'a>> {
        let get = |name: &str| {
            store.get(name).ok_or_else(|| {
                Error::tensor(
                    store
                        .file_of(name)
                        .unwrap_or_else(|| std::path::Path::new("?")),
                    name,
                    "vanished from the checkpoint",
                )
            })
        };
        Ok(match &t.source {
            Encoding::Dense { tensor, dtype } => SourceView::Dense {
                dtype: *dtype,
                data: get(tensor)?.data,
                row_len: t.row_len(),
            },
            Encoding::Quantized {
                weight,
                scales,
                biases,
                global_scale,
                params,
                scale_float,
            } => {
                let rows = t.rows();
                let rows_per_expert = if t.shape.len() >= 3 {
                    t.shape[1..t.shape.len() - 1].iter().product()
                } else {
                    rows
                };
                SourceView::Quantized(QuantData {
                    params: *params,
                    in_dim: t.row_len(),
                    rows,
                    rows_per_expert,
                    weight: get(weight)?.data,
                    scales: get(scales)?.data,
                    scale_float: *scale_float,
                    biases: biases
                        .as_deref()
                        .map(|b| get(b).map(|v| v.data))
                        .transpose()?,
                    global_scale: global_scale
                        .as_deref()
                        .map(|g| get(g).map(|v| v.data))
                        .transpose()?,
                })
            }
        })
    }

    /// Writes rows `first..first + out.len()/row_len` as f32 into `out`.
    pub fn rows_f32(&self, first: usize, out: &mut [f32]) {
        match self {
            SourceView::Dense {
                dtype,
                data,
                row_len,
            } => {
                let es = dtype.size();
                let bytes = &data[first * row_len * es..(first * row_len + out.len()) * es];
                decode_dense(*dtype, bytes, out);
            }
            SourceView::Quantized(q) => q.dequantize_rows(first, out),
        }
    }
}

fn decode_dense(dtype: Dtype, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Dtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
        Dtype::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = quant::bf16::to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        // The plan admits only float dtypes as dense sources.
        _ => out.iter_mut().for_each(|o| *o = f32::NAN),
    }
}

/// The encoded bytes of one row chunk and the non-finite values it had.
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub non_finite: u64,
}

/// Produces rows `first..first+n` of a tensor in its output type.
pub fn produce_chunk(
    src: &SourceView<'_>,
    t: &PlannedTensor,
    first: usize,
    n: usize,
    policy: NanPolicy,
) -> Chunk {
    let mut f = vec![0f32; n * t.row_len()];
    src.rows_f32(first, &mut f);
    let mut non_finite = 0u64;
    for v in f.iter_mut() {
        if !v.is_finite() {
            non_finite += 1;
            if policy == NanPolicy::Zero {
                *v = 0.0;
            }
        }
    }
    let mut bytes = Vec::new();
    if let Some(enc) = quant::encoder(t.ggml_type) {
        enc(&f, &mut bytes);
    }
    Chunk { bytes, non_finite }
}
