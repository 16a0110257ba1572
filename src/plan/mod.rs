//! The plan: every output tensor (name, shape, ggml type, how to produce it) and all
//! metadata, decided from config.json and the safetensors headers before any weight is
//! read. The writer's header, `--dry-run` and size checks all come from here.

mod adapter;
pub mod mixture;
mod resolve;

pub use mixture::{FileType, ModelShape, TypeOverrides};

pub use adapter::attach_adapter;
pub use resolve::{resolve_param, resolve_weight};

use std::fmt;
use std::str::FromStr;

use crate::gguf::Value;
use crate::mlx::{QuantMode, QuantParams, ScaleFloat};
use crate::quant::GgmlType;
use crate::source::Dtype;

/// The user's `--outtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutType {
    /// Per tensor: lossless MXFP4 passthrough for unadapted MLX mxfp4 weights, the source's
    /// float type for dense weights, Q8_0 for other quantized weights, F32 where ggml needs it.
    Auto,
    /// A llama.cpp file type, with llama-quantize's per-tensor mixture.
    File(FileType),
}

impl FromStr for OutType {
    type Err = String;
    fn from_str(s: &str) -> Result<OutType, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(OutType::Auto);
        }
        FileType::parse(s)
            .map(OutType::File)
            .ok_or_else(|| format!("unknown output type '{s}' (valid: {})", outtype_names().join(", ")))
    }
}

impl fmt::Display for OutType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutType::Auto => f.write_str("auto"),
            OutType::File(t) => f.write_str(t.name()),
        }
    }
}

/// The `--outtype` values this version accepts: `auto` and every llama.cpp file type whose
/// tensor types it can write (from the file-type table, so the help cannot drift).
pub fn outtype_names() -> Vec<&'static str> {
    let files = FileType::ALL.iter().filter(|(_, f)| f.writable()).map(|(n, _)| *n);
    std::iter::once("auto").chain(files).collect()
}

/// Options that shape the plan.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub outtype: OutType,
    /// `general.name` instead of the one the model card and folder give (llama.cpp's
    /// `--model-name`).
    pub name: Option<String>,
    pub overrides: TypeOverrides,
    /// `tokenizer.ggml.pre` chosen by the user instead of by the tokenizer's hash.
    pub tokenizer_pre: Option<String>,
    /// An importance matrix for the quantizers (`--imatrix`).
    pub imatrix: Option<std::sync::Arc<crate::imatrix::Imatrix>>,
}

/// Parses `REGEX=TYPE` (`--tensor-type`), with a ggml type name this tool can write.
pub fn parse_tensor_type(spec: &str) -> Result<(regex::Regex, GgmlType), String> {
    let (pat, ty) = spec.rsplit_once('=').ok_or_else(|| format!("--tensor-type '{spec}': expected REGEX=TYPE"))?;
    let re = regex::Regex::new(pat).map_err(|e| format!("--tensor-type '{spec}': bad regex: {e}"))?;
    let valid: Vec<&str> = crate::quant::ALL_TYPES.iter().filter(|t| t.can_write()).map(|t| t.name()).collect();
    let t = crate::quant::ALL_TYPES
        .iter()
        .copied()
        .find(|t| t.name().eq_ignore_ascii_case(ty) && t.can_write())
        .ok_or_else(|| format!("--tensor-type '{spec}': unknown type '{ty}' (valid: {})", valid.join(", ")))?;
    Ok((re, t))
}

/// How a source tensor is stored in the checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Encoding {
    /// A float tensor (F32/F16/BF16).
    Dense { tensor: String, dtype: Dtype },
    /// A tensor of a `full` fine-tune adapter, replacing the model's.
    Adapter { tensor: String, dtype: Dtype },
    /// An MLX-quantized module weight.
    Quantized {
        weight: String,
        scales: String,
        biases: Option<String>,
        global_scale: Option<String>,
        params: QuantParams,
        scale_float: ScaleFloat,
    },
    /// Values computed from config.json (llama3's `rope_freqs`).
    Computed { what: String, values: Vec<f32> },
}

impl Encoding {
    /// The model's tensors this encoding reads.
    pub fn model_tensors(&self) -> Vec<&str> {
        match self {
            Encoding::Dense { tensor, .. } => vec![tensor],
            Encoding::Quantized { weight, scales, biases, global_scale, .. } => {
                [Some(weight), Some(scales), biases.as_ref(), global_scale.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str())
                    .collect()
            }
            Encoding::Adapter { .. } | Encoding::Computed { .. } => Vec::new(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Encoding::Dense { dtype, .. } | Encoding::Adapter { dtype, .. } => format!("{dtype:?}").to_lowercase(),
            Encoding::Quantized { params, .. } => params.to_string(),
            Encoding::Computed { .. } => "computed".into(),
        }
    }
}

/// What role a tensor plays, which decides which output types it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TensorClass {
    /// Norm weights, biases, attention sinks: ggml requires F32 operands.
    F32Only,
    /// The MoE router: llama.cpp's converter and quantizer keep it F32.
    Router,
    /// A weight matrix (attention, experts, embeddings, output).
    Matrix,
}

/// How an MLX module applies its weight, which fixes the shapes of its LoRA tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// `Linear`/`QuantizedLinear`: weight `[out, in]`.
    Linear,
    /// `SwitchLinear` (stacked experts): weight `[E, out, in]`.
    Switch,
    /// `Embedding`: weight `[vocab, dims]`.
    Embedding,
}

/// The MLX module a weight tensor belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleRef {
    pub path: String,
    pub kind: ModuleKind,
}

/// A LoRA/DoRA update fused into a weight: `W + L·R` per expert, where (mlx-lm `fuse`)
/// Linear: L = scale·Bᵀ, R = Aᵀ; Switch: L = scale·B_e, R = A_e; Embedding: L = scale·A,
/// R = B. DoRA then rescales each row to `m / ‖row‖`.
#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    pub a: String,
    pub b: String,
    pub m: Option<String>,
    pub scale: f32,
    pub rank: usize,
    pub kind: ModuleKind,
}

/// How an output tensor is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// The MLX blocks copied into ggml's layout: lossless, nothing recomputed.
    Copy,
    /// Dequantized (or read) to f32 and encoded in the output type.
    Encode,
    /// As `Encode`, with an adapter's update fused in.
    Fuse,
}

impl How {
    pub fn name(self) -> &'static str {
        match self {
            How::Copy => "copy",
            How::Encode => "encode",
            How::Fuse => "fuse",
        }
    }
}

/// One output tensor.
#[derive(Clone, Debug)]
pub struct PlannedTensor {
    pub name: String,
    /// Logical row-major shape (MLX order: the last dim is the contiguous row).
    pub shape: Vec<usize>,
    pub ggml_type: GgmlType,
    pub class: TensorClass,
    pub source: Encoding,
    /// The MLX module, for weights an adapter may touch.
    pub module: Option<ModuleRef>,
    /// The adapter update to fuse, if any.
    pub delta: Option<Delta>,
    /// llama.cpp's Q/K row permutation for NORM-rope architectures: within each group of
    /// this many rows (one head), row `2i + j` of the output is row `j·group/2 + i` of the
    /// source (HF rotate-half layout → interleaved pairs).
    pub rope_permute: Option<usize>,
    /// Gemma norms: the value written is `1 + w`.
    pub plus_one: bool,
    /// Linear attention's `A_log`: the value written is `-exp(w)`.
    pub neg_exp: bool,
    /// Output row `i` is source row `row_order[i]`; within each row, output column `j` is
    /// source column `col_order[j]` (Qwen3.5's value heads, tiled for llama.cpp).
    pub row_order: Option<Vec<u32>>,
    pub col_order: Option<Vec<u32>>,
    /// Importance weights per column (per expert, one after the other) for an output type
    /// that takes them.
    pub imatrix: Option<crate::imatrix::TensorWeights>,
    /// Its type is one llama-quantize makes only with importance weights.
    pub needs_imatrix: bool,
    /// The source module's shape when it differs from the output's (a part of its rows).
    pub source_shape: Option<Vec<usize>>,
    /// Per head, output rows that are the columns of source rows (DeepSeek V2's keys from
    /// `kv_b_proj`, transposed for llama.cpp's `attn_k_b`).
    pub head_transpose: Option<HeadTranspose>,
    /// Decided by [`Plan::decide_how`], once types are assigned.
    pub how: How,
    /// Why a tensor whose type could hold its MLX blocks exactly is encoded instead.
    pub not_copied: Option<String>,
}

impl PlannedTensor {
    /// A tensor whose output type is assigned later, once the whole plan and any adapter
    /// are known.
    pub fn new(
        name: String,
        shape: Vec<usize>,
        class: TensorClass,
        source: Encoding,
        module: Option<ModuleRef>,
    ) -> Self {
        let ggml_type = GgmlType::F32;
        PlannedTensor {
            name,
            shape,
            ggml_type,
            class,
            source,
            module,
            delta: None,
            rope_permute: None,
            neg_exp: false,
            row_order: None,
            col_order: None,
            imatrix: None,
            needs_imatrix: false,
            source_shape: None,
            head_transpose: None,
            plus_one: false,
            how: How::Encode,
            not_copied: None,
        }
    }

    pub fn row_len(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    pub fn rows(&self) -> usize {
        self.shape[..self.shape.len().saturating_sub(1)].iter().product()
    }

    /// The shape of the source it is read from.
    pub fn src_shape(&self) -> &[usize] {
        self.source_shape.as_deref().unwrap_or(&self.shape)
    }

    /// Rows per work chunk for chunks of about `elems` elements; a whole number of
    /// permutation groups, so a row permutation never crosses a chunk.
    pub fn rows_per_chunk(&self, elems: usize) -> usize {
        let rows = (elems / self.row_len().max(1)).max(1);
        let group = match (self.rope_permute, &self.head_transpose) {
            (Some(g), _) if g > 0 => g,
            (_, Some(h)) => h.out_rows,
            _ => 1,
        };
        (rows / group).max(1) * group
    }

    /// ggml dims, innermost first.
    pub fn ne(&self) -> Vec<u64> {
        self.shape.iter().rev().map(|&d| d as u64).collect()
    }

    pub fn nbytes(&self) -> u64 {
        crate::gguf::tensor_nbytes(self.ggml_type, &self.ne()).unwrap_or(0)
    }

    /// Whether the tensor is copied from the MLX blocks without dequantizing.
    pub fn passthrough(&self) -> bool {
        self.how == How::Copy
    }

    /// Whether the output type holds the MLX blocks' layout (MLX mxfp4 → MXFP4, nvfp4 →
    /// NVFP4, affine 4-bit → Q4_1, affine 5-bit → Q5_1), so that a copy is possible when the
    /// scales allow it.
    fn copy_candidate(&self) -> bool {
        let Encoding::Quantized { params, global_scale, .. } = &self.source else { return false };
        // nvfp4's per-expert global scale has no ggml counterpart.
        // Reordered rows are still whole blocks; reordered or transposed columns are not.
        !self.adapted()
            && global_scale.is_none()
            && self.col_order.is_none()
            && self.head_transpose.is_none()
            && lossless_target(params) == Some(self.ggml_type)
    }

    /// Whether an adapter changes this tensor.
    pub fn adapted(&self) -> bool {
        self.delta.is_some() || matches!(self.source, Encoding::Adapter { .. })
    }

    /// The tensor's name without its block number (`blk.3.attn_q.weight` → `attn_q.weight`).
    pub fn class_name(&self) -> String {
        match self.name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            Some((_, rest)) => rest.to_string(),
            None => self.name.clone(),
        }
    }

    /// The checkpoint tensor this one is read from (for messages).
    pub fn source_name(&self) -> &str {
        match &self.source {
            Encoding::Dense { tensor, .. } | Encoding::Adapter { tensor, .. } => tensor,
            Encoding::Quantized { weight, .. } => weight,
            Encoding::Computed { what, .. } => what,
        }
    }
}

/// Output rows `h·out_rows + c` are column `c` of source rows `h·src_stride + src_offset ..
/// + src_rows`: each head's block transposed.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadTranspose {
    pub out_rows: usize,
    pub src_rows: usize,
    pub src_stride: usize,
    pub src_offset: usize,
}

/// The whole conversion, decided up front.
#[derive(Clone, Debug)]
pub struct Plan {
    pub arch: &'static str,
    /// Layer and expert counts (llama-quantize's mixture depends on them).
    pub shape: ModelShape,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<PlannedTensor>,
}

impl Plan {
    /// Decides every tensor's output type (after any adapter is attached) and
    /// `general.file_type`. Fails if a type is needed that this tool cannot write.
    pub fn assign_types(&mut self, outtype: OutType, ov: &TypeOverrides) -> crate::error::Result<()> {
        let types: Vec<GgmlType> = match outtype {
            OutType::Auto => self
                .tensors
                .iter()
                .map(|t| match ov.patterns.iter().find(|(re, _)| mixture::quantizable(t) && re.is_match(&t.name)) {
                    Some((_, ty)) => mixture::fallback(t.row_len() as u64, *ty),
                    None => auto_type(t),
                })
                .collect(),
            OutType::File(f) => mixture::mixture(f, &self.tensors, self.shape, ov),
        };
        let ftype = match outtype {
            OutType::File(f) => Some(f),
            OutType::Auto => None,
        };
        for (t, ty) in self.tensors.iter_mut().zip(types) {
            let weights_only = !ty.can_encode() && crate::quant::takes_weights(ty);
            let needs = mixture::quantizable(t) && (mixture::requires_imatrix(&t.name, ty, ftype) || weights_only);
            if needs && !self.shape.has_imatrix {
                return Err(crate::error::Error::Usage(format!(
                    "--outtype {outtype} puts tensor '{}' in {ty}, which llama-quantize only makes with an importance matrix: add --imatrix FILE",
                    t.name
                )));
            }
            if !ty.can_encode() && !weights_only {
                return Err(crate::error::Error::Usage(format!(
                    "--outtype {outtype} puts tensor '{}' in {ty}, which this version cannot write yet",
                    t.name
                )));
            }
            t.needs_imatrix = needs;
            t.ggml_type = ty;
        }
        self.set_file_type(outtype);
        Ok(())
    }

    /// Attaches an importance matrix's weights to every tensor whose output type takes them,
    /// as llama-quantize applies them (by tensor name; an entry of the wrong size fails).
    pub fn attach_imatrix(&mut self, m: &std::sync::Arc<crate::imatrix::Imatrix>) -> crate::error::Result<()> {
        for t in &mut self.tensors {
            if !crate::quant::takes_weights(t.ggml_type) || !mixture::quantizable(t) {
                continue;
            }
            let n_expert = if t.shape.len() >= 3 { t.shape[0] } else { 1 };
            if m.applies_to(&t.name, t.row_len(), n_expert)? {
                t.imatrix = Some(crate::imatrix::TensorWeights::new(m, &t.name));
            }
        }
        if let Some(t) = self.tensors.iter().find(|t| t.needs_imatrix && t.imatrix.is_none()) {
            return Err(crate::error::Error::Usage(format!(
                "{}: no importance-matrix entry for tensor '{}', which is {} here; llama-quantize refuses a very low-bit type without one (make the imatrix from this model, or choose its type with --tensor-type)",
                m.path.display(),
                t.name,
                t.ggml_type
            )));
        }
        // llama-quantize records what it used.
        // The path as the user gave it, as llama-quantize writes it.
        let file = m.path.to_string_lossy().into_owned();
        self.metadata.push(("quantize.imatrix.file".into(), Value::String(file)));
        if let Some(d) = m.datasets.first() {
            self.metadata.push(("quantize.imatrix.dataset".into(), Value::String(d.clone())));
        }
        // The entries it was given (not those it used), and the chunk count when known.
        self.metadata.push(("quantize.imatrix.entries_count".into(), Value::U32(m.len() as u32)));
        if m.chunks > 0 {
            self.metadata.push(("quantize.imatrix.chunks_count".into(), Value::U32(m.chunks)));
        }
        Ok(())
    }

    /// Sets `general.file_type` from the final tensor types (after the adapter is attached).
    pub fn set_file_type(&mut self, outtype: OutType) {
        let ft = Value::U32(file_type(outtype, &self.tensors));
        match self.metadata.iter_mut().find(|(k, _)| k == "general.file_type") {
            Some((_, v)) => *v = ft,
            None => {
                let at =
                    self.metadata.iter().position(|(k, _)| !k.starts_with("general.")).unwrap_or(self.metadata.len());
                self.metadata.insert(at, ("general.file_type".into(), ft));
            }
        }
    }

    /// Decides how every tensor is made. A copy needs every scale (and bias) to have an
    /// exact ggml form, so the scale tensors of copy candidates are read here: the plan,
    /// not the transform, decides, and `--dry-run` says what `convert` does.
    pub fn decide_how(&mut self, tensors: &crate::source::TensorStore) {
        for t in &mut self.tensors {
            t.how = if t.adapted() { How::Fuse } else { How::Encode };
            t.not_copied = None;
            if !t.copy_candidate() {
                continue;
            }
            match crate::transform::copy_obstacle(tensors, &t.source) {
                None => t.how = How::Copy,
                Some(why) => t.not_copied = Some(why),
            }
        }
    }

    pub fn header_tensors(&self) -> Vec<crate::sink::HeaderTensor> {
        self.tensors
            .iter()
            .map(|t| crate::sink::HeaderTensor { name: t.name.clone(), ne: t.ne(), ggml_type: t.ggml_type })
            .collect()
    }
}

/// The ggml type that holds an MLX quantization exactly, if there is one.
pub fn lossless_target(p: &QuantParams) -> Option<GgmlType> {
    match (p.mode, p.bits) {
        (QuantMode::Mxfp4, _) => Some(GgmlType::Mxfp4),
        (QuantMode::Nvfp4, _) => Some(GgmlType::Nvfp4),
        (QuantMode::Affine, 4) => Some(GgmlType::Q4_1),
        (QuantMode::Affine, 5) => Some(GgmlType::Q5_1),
        _ => None,
    }
}

/// The `auto` output type of one tensor.
fn auto_type(t: &PlannedTensor) -> GgmlType {
    if t.class != TensorClass::Matrix || t.shape.len() < 2 {
        return GgmlType::F32;
    }
    let wanted = match &t.source {
        Encoding::Dense { dtype: Dtype::F16, .. } | Encoding::Adapter { dtype: Dtype::F16, .. } => GgmlType::F16,
        Encoding::Dense { dtype: Dtype::BF16, .. } | Encoding::Adapter { dtype: Dtype::BF16, .. } => GgmlType::Bf16,
        Encoding::Dense { .. } | Encoding::Adapter { .. } | Encoding::Computed { .. } => GgmlType::F32,
        // MLX mxfp4 and affine 4/5-bit are ggml's MXFP4, Q4_1 and Q5_1 up to the block
        // layout: pass them through unless an adapter changed the weights (an adapted
        // tensor is never coarser than Q8_0, so a small delta is not rounded away).
        Encoding::Quantized { params, .. }
            if !t.adapted() && lossless_target(params).is_some_and(|t| t.can_encode()) =>
        {
            lossless_target(params).unwrap_or(GgmlType::Q8_0)
        }
        Encoding::Quantized { .. } => GgmlType::Q8_0,
    };
    mixture::fallback(t.row_len() as u64, wanted)
}

/// `general.file_type` (`LLAMA_FTYPE_*`) for an output type.
pub fn file_type(outtype: OutType, tensors: &[PlannedTensor]) -> u32 {
    match outtype {
        OutType::File(f) => f.id(),
        // ggml-org's own gpt-oss files: MXFP4 experts, Q8_0 elsewhere = MOSTLY_MXFP4_MOE.
        OutType::Auto if tensors.iter().any(|t| t.ggml_type == GgmlType::Mxfp4) => FileType::Mxfp4Moe.id(),
        OutType::Auto => {
            // The most common matrix type, as llama.cpp guesses it when the key is absent.
            let mut counts = std::collections::BTreeMap::new();
            for t in tensors.iter().filter(|t| t.class == TensorClass::Matrix) {
                *counts.entry(t.ggml_type).or_insert(0usize) += 1;
            }
            let common = counts.into_iter().max_by_key(|(_, n)| *n).map(|(t, _)| t).unwrap_or(GgmlType::F32);
            FileType::ALL.iter().map(|(_, f)| *f).find(|f| f.default_type() == common).map(|f| f.id()).unwrap_or(0)
        }
    }
}
