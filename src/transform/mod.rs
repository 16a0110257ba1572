//! Producing a planned tensor's bytes, row chunk by row chunk: decode or dequantize to
//! f32, apply the non-finite policy, encode to the output type. Pure functions of the
//! source bytes, so chunks can run in parallel and the result does not depend on it.

pub mod lora;

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

/// A tensor's source, resolved to byte slices once per tensor, with its adapter update.
pub struct Source<'a> {
    pub base: SourceView<'a>,
    pub lora: Option<lora::LoraFactors<'a>>,
    /// The tensor's importance weights, decoded for its chunks.
    pub imatrix: Option<Vec<f32>>,
}

impl<'a> Source<'a> {
    pub fn new(model: &'a TensorStore, adapter: Option<&'a TensorStore>, t: &PlannedTensor) -> Result<Source<'a>> {
        let missing =
            |name: &str| Error::tensor(std::path::Path::new("adapters.safetensors"), name, "vanished from the adapter");
        let base = match (&t.source, adapter) {
            (Encoding::Adapter { tensor, dtype }, Some(store)) => SourceView::Dense {
                dtype: *dtype,
                data: store.get(tensor).ok_or_else(|| missing(tensor))?.data,
                row_len: t.row_len(),
            },
            _ => SourceView::new(model, t)?,
        };
        let lora = match (&t.delta, adapter) {
            (Some(d), Some(store)) => {
                Some(lora::LoraFactors::new(store, d, t.src_shape()).ok_or_else(|| missing(&d.a))?)
            }
            _ => None,
        };
        Ok(Source { base, lora, imatrix: t.imatrix.as_ref().map(crate::imatrix::TensorWeights::decode) })
    }
}

/// A tensor's stored data, resolved to byte slices.
pub enum SourceView<'a> {
    Dense { dtype: Dtype, data: &'a [u8], row_len: usize },
    Quantized(QuantData<'a>),
    Computed(Vec<f32>),
}

impl<'a> SourceView<'a> {
    pub fn new(store: &'a TensorStore, t: &PlannedTensor) -> Result<SourceView<'a>> {
        let get = |name: &str| {
            store.get(name).ok_or_else(|| {
                Error::tensor(
                    store.file_of(name).unwrap_or_else(|| std::path::Path::new("?")),
                    name,
                    "vanished from the checkpoint",
                )
            })
        };
        Ok(match &t.source {
            Encoding::Dense { tensor, dtype } | Encoding::Adapter { tensor, dtype } => {
                let row_len = t.src_shape().last().copied().unwrap_or(1);
                SourceView::Dense { dtype: *dtype, data: get(tensor)?.data, row_len }
            }
            Encoding::Quantized { weight, scales, biases, global_scale, params, scale_float } => {
                let shape = t.src_shape();
                let rows = shape[..shape.len() - 1].iter().product();
                let rows_per_expert = if shape.len() >= 3 { shape[1..shape.len() - 1].iter().product() } else { rows };
                SourceView::Quantized(QuantData {
                    params: *params,
                    in_dim: shape.last().copied().unwrap_or(1),
                    rows,
                    rows_per_expert,
                    weight: get(weight)?.data,
                    scales: get(scales)?.data,
                    scale_float: *scale_float,
                    biases: biases.as_deref().map(|b| get(b).map(|v| v.data)).transpose()?,
                    global_scale: global_scale.as_deref().map(|g| get(g).map(|v| v.data)).transpose()?,
                })
            }
            Encoding::Computed { values, .. } => SourceView::Computed(values.clone()),
        })
    }

    /// Writes rows `first..first + out.len()/row_len` as f32 into `out`.
    pub fn rows_f32(&self, first: usize, out: &mut [f32]) {
        match self {
            SourceView::Dense { dtype, data, row_len } => {
                let es = dtype.size();
                let bytes = &data[first * row_len * es..(first * row_len + out.len()) * es];
                decode_dense(*dtype, bytes, out);
            }
            SourceView::Quantized(q) => q.dequantize_rows(first, out),
            SourceView::Computed(v) => {
                let row_len = out.len().max(1);
                let start = (first * row_len).min(v.len());
                let end = (start + out.len()).min(v.len());
                out[..end - start].copy_from_slice(&v[start..end]);
            }
        }
    }
}

/// Gemma's norm scale `1 + w`, exactly in f32, as transformers computes it
/// (`1.0 + weight.float()`) and MLX does when it runs the model in float32.
fn add_one(f: &mut [f32]) {
    for v in f.iter_mut() {
        *v += 1.0;
    }
}

/// Little-endian F32/F16/BF16 bytes → f32 (the one dense decoder).
pub(crate) fn decode_dense(dtype: Dtype, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Dtype::F16 => quant::f16::decode_into(bytes, out),
        Dtype::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = quant::bf16::to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        // The plan admits only float dtypes as dense sources.
        _ => out.iter_mut().for_each(|o| *o = f32::NAN),
    }
}

/// How much of an adapter's update the written tensor keeps, on sampled rows. With
/// `D = Q(W+ΔW) − Q(W)` (what the update changed in the output), D splits into its part
/// along ΔW (`kept`·ΔW) and quantization noise orthogonal to it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Survival {
    /// ‖ΔW‖², ‖W‖², ‖D‖² and ⟨D, ΔW⟩.
    pub delta_sq: f64,
    pub base_sq: f64,
    pub survived_sq: f64,
    pub along: f64,
}

impl Survival {
    pub fn add(&mut self, o: &Survival) {
        self.delta_sq += o.delta_sq;
        self.base_sq += o.base_sq;
        self.survived_sq += o.survived_sq;
        self.along += o.along;
    }
    /// ‖ΔW‖ / ‖W‖.
    pub fn relative_delta(&self) -> f64 {
        (self.delta_sq / self.base_sq.max(f64::MIN_POSITIVE)).sqrt()
    }
    /// ⟨D, ΔW⟩ / ‖ΔW‖²: the fraction of the update the output keeps (1 = all of it).
    pub fn kept(&self) -> f64 {
        if self.delta_sq == 0.0 {
            return 1.0;
        }
        self.along / self.delta_sq
    }
    /// ‖D − kept·ΔW‖ / ‖ΔW‖: quantization noise the update brought, relative to the update.
    pub fn noise(&self) -> f64 {
        if self.delta_sq == 0.0 {
            return 0.0;
        }
        (self.survived_sq / self.delta_sq - self.kept().powi(2)).max(0.0).sqrt()
    }
    /// Less than half the update kept, or more noise than update kept.
    pub fn swamped(&self) -> bool {
        self.kept() < 0.5 || self.noise() > self.kept()
    }
}

/// Every how many rows the survival estimate samples one (about 64 rows per tensor).
pub fn survival_stride(rows: usize) -> usize {
    (rows / 64).max(1)
}

/// The encoded bytes of one row chunk and the non-finite values it had.
pub struct Chunk {
    /// The chunk's bytes are `bytes[start..]` (a placed buffer has room in front).
    pub bytes: Vec<u8>,
    pub start: usize,
    pub non_finite: u64,
    pub survival: Option<Survival>,
    /// A chunk planned as a copy whose blocks could not be copied after all (the input
    /// changed since planning): the conversion fails rather than silently re-encoding.
    pub copy_failed: bool,
}

/// Why an MLX-quantized tensor's blocks cannot be copied exactly into their ggml twin, or
/// `None` when they can: every scale (and bias) must have an exact ggml form. Reads only
/// the scale and bias tensors.
pub fn copy_obstacle(store: &TensorStore, source: &Encoding) -> Option<String> {
    let Encoding::Quantized { scales, biases, params, scale_float, .. } = source else {
        return Some("not an MLX-quantized tensor".into());
    };
    let scales = store.get(scales)?.data;
    let count = |bad: usize, what: &str| (bad > 0).then(|| format!("{bad} {what}"));
    match params.mode {
        crate::mlx::QuantMode::Mxfp4 => {
            count(scales.iter().filter(|&&b| b == 0xFF).count(), "scale bytes are 0xFF (NaN in MLX, no MXFP4 form)")
        }
        crate::mlx::QuantMode::Nvfp4 => count(
            scales.iter().filter(|&&b| b & 0x80 != 0 || b == 0x7F).count(),
            "scale bytes are negative or 0x7F (no NVFP4 form)",
        ),
        _ => {
            let exact = |v: f32| v.is_finite() && half::f16::from_f32(v).to_f32() == v;
            let inexact = |bytes: &[u8]| {
                (0..bytes.len() / scale_float.size()).filter(|&i| !exact(scale_float.read(bytes, i))).count()
            };
            let bias_bytes = biases.as_deref().and_then(|b| store.get(b)).map(|v| v.data).unwrap_or(&[]);
            count(inexact(scales) + inexact(bias_bytes), "scales or biases are not exact f16 values")
        }
    }
}

/// Rows `first..first+n` of an MLX-quantized tensor repacked losslessly into its ggml
/// twin, or `None` when some block cannot be held exactly (MXFP4 scale byte 0xFF, which
/// MLX decodes as inf/NaN; NVFP4 scales with the sign bit or 0x7F; affine scales or biases
/// that are not f16 values).
fn repack_chunk(q: &QuantData<'_>, first: usize, n: usize, order: Option<&[u32]>) -> Option<Vec<u8>> {
    let gpr = q.groups_per_row();
    let wpr = q.words_per_row() * 4;
    let ss = if q.params.mode == crate::mlx::QuantMode::Affine { q.scale_float.size() } else { 1 };
    let mut bytes = Vec::new();
    for r in (first..first + n).map(|r| order.map_or(r, |o| o[r] as usize)) {
        let words = &q.weight[r * wpr..(r + 1) * wpr];
        let scales = &q.scales[r * gpr * ss..(r + 1) * gpr * ss];
        match q.params.mode {
            crate::mlx::QuantMode::Mxfp4 => {
                if scales.contains(&0xFF) {
                    return None;
                }
                quant::mxfp4::repack_mlx_row(words, scales, &mut bytes);
            }
            crate::mlx::QuantMode::Nvfp4 => {
                if !quant::nvfp4::repack_mlx_row(words, scales, &mut bytes) {
                    return None;
                }
            }
            _ => {
                let biases = &q.biases?[r * gpr * ss..(r + 1) * gpr * ss];
                let gs = q.params.group_size as usize;
                if !crate::mlx::affine::repack_row_q4_1_q5_1(
                    words,
                    q.params.bits,
                    gs,
                    scales,
                    biases,
                    q.scale_float,
                    &mut bytes,
                ) {
                    return None;
                }
            }
        }
    }
    Some(bytes)
}

/// Reorders rows within each group of `group` rows: output row `2i + j` takes source row
/// `j·group/2 + i` (llama.cpp's `LlamaModel.permute`, which acts on output rows only, so
/// it applies equally to f32 rows and to rows of quantized blocks).
pub fn permute_rope_rows<T: Copy>(data: &mut [T], row_len: usize, group: usize) {
    let half = group / 2;
    if half == 0 || row_len == 0 {
        return;
    }
    let mut tmp = vec![data[0]; group * row_len];
    for g in data.chunks_exact_mut(group * row_len) {
        tmp.copy_from_slice(g);
        for i in 0..half {
            for j in 0..2 {
                let (dst, src) = (2 * i + j, j * half + i);
                g[dst * row_len..(dst + 1) * row_len].copy_from_slice(&tmp[src * row_len..(src + 1) * row_len]);
            }
        }
    }
}

/// Output rows `first..` of `t` into `out`, through `read(source row, buffer)` (which fills
/// whole source rows from there): contiguous, gathered by `row_order`, or transposed per head.
fn read_rows(t: &PlannedTensor, first: usize, out: &mut [f32], mut read: impl FnMut(usize, &mut [f32])) {
    let row_len = t.row_len();
    match (&t.row_order, &t.head_transpose) {
        (Some(order), _) => {
            for (i, row) in out.chunks_exact_mut(row_len).enumerate() {
                read(order[first + i] as usize, row);
            }
        }
        (None, Some(h)) => {
            // Whole heads per chunk (rows_per_chunk): source block [src_rows × out_rows].
            let mut block = vec![0.0f32; h.src_rows * h.out_rows];
            for (i, head_out) in out.chunks_exact_mut(h.out_rows * row_len).enumerate() {
                let head = first / h.out_rows + i;
                read(head * h.src_stride + h.src_offset, &mut block);
                for (c, row) in head_out.chunks_exact_mut(row_len).enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = block[j * h.out_rows + c];
                    }
                }
            }
        }
        (None, None) => read(first, out),
    }
}

/// Encodes rows `first..` given importance weights per column, each expert's rows with that
/// expert's weights.
fn encode_weighted(t: &PlannedTensor, first: usize, f: &[f32], w: &[f32], out: &mut Vec<u8>) {
    let row_len = t.row_len();
    let rows_per_expert = if t.shape.len() >= 3 { t.shape[1..t.shape.len() - 1].iter().product() } else { t.rows() };
    let mut row = 0;
    let n = f.len() / row_len;
    while row < n {
        let global = first + row;
        let e = global / rows_per_expert.max(1);
        let run = (rows_per_expert - global % rows_per_expert).min(n - row);
        let qw = &w[e * row_len..(e + 1) * row_len];
        quant::encode_weighted(t.ggml_type, &f[row * row_len..(row + run) * row_len], qw, out);
        row += run;
    }
}

/// Within each row of `row_len`, column `j` becomes the old column `order[j]`.
pub fn gather_columns(data: &mut [f32], row_len: usize, order: &[u32]) {
    let mut tmp = vec![0.0f32; row_len];
    for row in data.chunks_exact_mut(row_len) {
        tmp.copy_from_slice(row);
        for (dst, &src) in row.iter_mut().zip(order) {
            *dst = tmp[src as usize];
        }
    }
}

/// Produces rows `first..first+n` of a tensor in its output type; `place` is the output file
/// offset of the chunk's first byte (its buffer is placed for it).
pub fn produce_chunk(
    src: &Source<'_>,
    t: &PlannedTensor,
    first: usize,
    n: usize,
    policy: NanPolicy,
    place: u64,
) -> Chunk {
    if t.passthrough() {
        let copied = match &src.base {
            SourceView::Quantized(q) => repack_chunk(q, first, n, t.row_order.as_deref()),
            _ => None,
        };
        let Some(mut bytes) = copied else {
            return Chunk { bytes: Vec::new(), start: 0, non_finite: 0, survival: None, copy_failed: true };
        };
        if let Some(g) = t.rope_permute {
            let row_bytes = bytes.len() / n.max(1);
            permute_rope_rows(&mut bytes, row_bytes, g);
        }
        return Chunk { bytes, start: 0, non_finite: 0, survival: None, copy_failed: false };
    }
    SCRATCH.with(|scratch| {
        let row_bytes = t.ggml_type.row_bytes(t.row_len() as u64).unwrap_or(0) as usize;
        let (mut bytes, start) = crate::sink::placed_buffer(place, row_bytes * n);
        let (non_finite, survival) = compute_chunk(src, t, first, n, policy, &mut scratch.borrow_mut(), &mut bytes);
        Chunk { bytes, start, non_finite, survival, copy_failed: false }
    })
}

thread_local! {
    /// Per-worker f32 buffers reused across chunks: every element is written before it is
    /// read, so reuse saves the allocation and zeroing of a fresh chunk each time.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// How many values are inf or NaN: a loop that vectorizes, also compiled for AVX2 on x86-64
/// (the baseline's 128-bit copy was 5 % of a q4_k_m conversion's CPU time).
fn count_non_finite(f: &[f32]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::simd_level() >= crate::quant::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 (runtime-detected).
        return unsafe { count_non_finite_avx2(f) };
    }
    count_non_finite_lanes(f)
}

#[inline(always)]
fn count_non_finite_lanes(f: &[f32]) -> u64 {
    f.chunks(1 << 20).map(|c| u64::from(c.iter().map(|v| u32::from(!v.is_finite())).sum::<u32>())).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn count_non_finite_avx2(f: &[f32]) -> u64 {
    count_non_finite_lanes(f)
}

/// Dequantize → fuse → non-finite policy → permute → encode, in the given buffers; the
/// encoding is appended to `bytes`.
fn compute_chunk(
    src: &Source<'_>,
    t: &PlannedTensor,
    first: usize,
    n: usize,
    policy: NanPolicy,
    (f, delta): &mut (Vec<f32>, Vec<f32>),
    bytes: &mut Vec<u8>,
) -> (u64, Option<Survival>) {
    let row_len = t.row_len();
    f.resize(n * row_len, 0.0);
    read_rows(t, first, f, |src_row, out| src.base.rows_f32(src_row, out));
    if t.plus_one {
        add_one(f);
    }
    if t.neg_exp {
        // The decay rate from its log, in f32 as torch's `-exp` computes it.
        f.iter_mut().for_each(|v| *v = -v.exp());
    }
    let survival = src.lora.as_ref().map(|l| {
        let stride = survival_stride(t.rows());
        let sampled: Vec<usize> = (0..n).filter(|i| (first + i).is_multiple_of(stride)).collect();
        let rows_of = |x: &[f32]| -> Vec<f32> {
            sampled.iter().flat_map(|&i| x[i * row_len..(i + 1) * row_len].iter().copied()).collect()
        };
        let base = rows_of(f);
        if t.head_transpose.is_none() {
            // Each output row is one source row: ΔW is added in place.
            read_rows(t, first, f, |src_row, out| l.add_delta_rows(src_row, out));
            l.rescale_rows(first, f);
        } else {
            delta.resize(f.len(), 0.0);
            read_rows(t, first, delta, |src_row, out| l.delta_rows(src_row, out));
            l.fuse_rows(first, f, delta);
        }
        survival_of(t.ggml_type, &base, &rows_of(f))
    });
    // Counted first; replaced only when there are any.
    let non_finite = count_non_finite(f);
    if non_finite > 0 && policy == NanPolicy::Zero {
        f.iter_mut().filter(|v| !v.is_finite()).for_each(|v| *v = 0.0);
    }
    if let Some(g) = t.rope_permute {
        let unit = if t.shape.len() == 1 { 1 } else { row_len };
        permute_rope_rows(f, unit, g);
    }
    if let Some(order) = &t.col_order {
        gather_columns(f, row_len, order);
    }
    match &src.imatrix {
        Some(w) => encode_weighted(t, first, f, w, bytes),
        None => {
            if let Some(enc) = quant::encoder(t.ggml_type) {
                enc(f, bytes);
            }
        }
    }
    (non_finite, survival)
}

/// Round-trips base and fused rows through the output type and measures what is left of
/// their difference.
fn survival_of(ty: quant::GgmlType, base: &[f32], fused: &[f32]) -> Survival {
    let (Some(enc), Some(dec)) = (quant::encoder(ty), quant::decoder(ty)) else {
        return Survival::default();
    };
    let round_trip = |x: &[f32]| {
        let (mut bytes, mut back) = (Vec::new(), Vec::with_capacity(x.len()));
        enc(x, &mut bytes);
        dec(&bytes, &mut back);
        back
    };
    let (qb, qf) = (round_trip(base), round_trip(fused));
    let mut s = Survival::default();
    for i in 0..base.len() {
        let d = (fused[i] - base[i]) as f64;
        s.delta_sq += d * d;
        s.base_sq += (base[i] as f64).powi(2);
        let q = (qf[i] - qb[i]) as f64;
        if q.is_finite() {
            s.survived_sq += q * q;
            s.along += q * d;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every copy of the count sees inf, NaN (any payload) and only them: not the largest
    /// finite values, subnormals or zeros, also in a vector's tail.
    #[test]
    fn non_finite_counts_agree() {
        let specials =
            [f32::INFINITY, -f32::INFINITY, f32::NAN, f32::from_bits(0xFF80_0001), f32::from_bits(0x7FC0_1234)];
        let finite = [f32::MAX, -f32::MAX, f32::MIN_POSITIVE / 2.0, 0.0, -0.0, 1.5];
        let mut next = crate::quant::test_values(7);
        let f: Vec<f32> = (0..1003)
            .map(|i| {
                if i % 7 == 3 {
                    specials[i % 5]
                } else if i % 5 == 1 {
                    finite[i % 6]
                } else {
                    next()
                }
            })
            .collect();
        let want = f.iter().filter(|v| !v.is_finite()).count() as u64;
        assert_eq!(count_non_finite_lanes(&f), want);
        assert_eq!(count_non_finite(&f), want);
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx2() {
            // SAFETY: the CPU has AVX2.
            assert_eq!(unsafe { count_non_finite_avx2(&f) }, want);
        }
    }

    /// `w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2).reshape(w.shape)`, written out with
    /// index arithmetic on a [n_head·hd, in] matrix.
    fn reshape_swap(w: &[u32], n_head: usize, hd: usize, cols: usize) -> Vec<u32> {
        let half = hd / 2;
        let mut out = vec![0; w.len()];
        // out[h, i, j, c] = w[h, j, i, c] with out shaped (n_head, half, 2, cols).
        for h in 0..n_head {
            for i in 0..half {
                for j in 0..2 {
                    for c in 0..cols {
                        out[((h * half + i) * 2 + j) * cols + c] = w[((h * 2 + j) * half + i) * cols + c];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn rope_permutation_is_llama_cpp_reshape_swapaxes() {
        for (n_head, hd, cols) in [(1, 2, 1), (4, 8, 3), (2, 64, 5), (3, 6, 2)] {
            let w: Vec<u32> = (0..(n_head * hd * cols) as u32).collect();
            let mut got = w.clone();
            permute_rope_rows(&mut got, cols, hd);
            assert_eq!(got, reshape_swap(&w, n_head, hd, cols), "n_head {n_head} hd {hd}");
        }
    }

    #[test]
    fn survival_separates_kept_update_from_noise() {
        let s = |pairs: &[(f64, f64)]| {
            let mut v = Survival::default();
            for &(d, q) in pairs {
                v.add(&Survival { delta_sq: d * d, base_sq: 1.0, survived_sq: q * q, along: q * d });
            }
            v
        };
        let whole = s(&[(1.0, 1.0), (2.0, 2.0)]);
        assert_eq!((whole.kept(), whole.noise()), (1.0, 0.0));
        // Half the update, no noise.
        let half = s(&[(2.0, 1.0), (2.0, 1.0)]);
        assert_eq!((half.kept(), half.noise()), (0.5, 0.0));
        // Rounding that doubles one element and drops the other keeps the update on
        // average but adds noise as large as the update (the old ratio read 141 %).
        let noisy = s(&[(1.0, 2.0), (1.0, 0.0)]);
        assert!((noisy.kept() - 1.0).abs() < 1e-12 && (noisy.noise() - 1.0).abs() < 1e-12);
        assert!(!noisy.swamped() && half.kept() == 0.5 && s(&[(1.0, 0.0)]).swamped());
    }

    #[test]
    fn chunks_hold_whole_permutation_groups() {
        let mut t = crate::plan::PlannedTensor::new(
            "blk.0.attn_q.weight".into(),
            vec![96, 1000],
            crate::plan::TensorClass::Matrix,
            Encoding::Computed { what: "x".into(), values: vec![] },
            None,
        );
        t.rope_permute = Some(48);
        assert_eq!(t.rows_per_chunk(50_000), 48);
        assert_eq!(t.rows_per_chunk(10), 48);
        assert_eq!(t.rows_per_chunk(100_000), 96);
        t.rope_permute = None;
        assert_eq!(t.rows_per_chunk(50_000), 50);
    }
}
