//! llama.cpp file types (`LLAMA_FTYPE_*`) and the per-tensor type mixture llama-quantize
//! applies for them (`src/llama-quant.cpp`: `llama_tensor_get_type_impl` and
//! `tensor_type_fallback`), so that `--outtype q5_0` gives the tensor types
//! `llama-quantize … Q5_0` would give for the same model.

use std::collections::HashMap;

use crate::quant::GgmlType;

use super::{PlannedTensor, TensorClass};

/// A llama.cpp file type this tool can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    F32,
    F16,
    Bf16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Mxfp4Moe,
}

impl FileType {
    /// (name, file type) for `--outtype`, lower case.
    pub const ALL: [(&'static str, FileType); 9] = [
        ("f32", FileType::F32),
        ("f16", FileType::F16),
        ("bf16", FileType::Bf16),
        ("q4_0", FileType::Q4_0),
        ("q4_1", FileType::Q4_1),
        ("q5_0", FileType::Q5_0),
        ("q5_1", FileType::Q5_1),
        ("q8_0", FileType::Q8_0),
        ("mxfp4_moe", FileType::Mxfp4Moe),
    ];

    pub fn parse(s: &str) -> Option<FileType> {
        let l = s.to_ascii_lowercase();
        let l = if l == "mxfp4" { "mxfp4_moe".to_string() } else { l };
        Self::ALL.iter().find(|(n, _)| *n == l).map(|(_, f)| *f).filter(|f| f.default_type().can_encode())
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, f)| *f == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// `llama_ftype_get_default_type`.
    pub fn default_type(self) -> GgmlType {
        match self {
            FileType::F32 => GgmlType::F32,
            FileType::F16 => GgmlType::F16,
            FileType::Bf16 => GgmlType::Bf16,
            FileType::Q4_0 => GgmlType::Q4_0,
            FileType::Q4_1 => GgmlType::Q4_1,
            FileType::Q5_0 => GgmlType::Q5_0,
            FileType::Q5_1 => GgmlType::Q5_1,
            FileType::Q8_0 => GgmlType::Q8_0,
            FileType::Mxfp4Moe => GgmlType::Mxfp4,
        }
    }

    /// `LLAMA_FTYPE_*` (general.file_type).
    pub fn id(self) -> u32 {
        match self {
            FileType::F32 => 0,
            FileType::F16 => 1,
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q5_0 => 8,
            FileType::Q5_1 => 9,
            FileType::Bf16 => 32,
            FileType::Mxfp4Moe => 38,
        }
    }
}

/// llama-quant's `tensor_get_category`, by GGUF name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnQkv,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    let has = |s: &str| name.contains(s);
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" {
        Category::TokenEmbd
    } else if has("attn_qkv.weight") {
        Category::AttnQkv
    } else if has("attn_v.weight") {
        Category::AttnV
    } else if has("attn_k.weight") {
        Category::AttnK
    } else if has("attn_q.weight") {
        Category::AttnQ
    } else if has("attn_output.weight") {
        Category::AttnOutput
    } else if has("ffn_up") {
        Category::FfnUp
    } else if has("ffn_gate") {
        Category::FfnGate
    } else if has("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

/// The type llama-quantize gives each tensor for `ftype`, by tensor index. Tensors it
/// does not quantize (1-D, norms, the MoE router, non-`weight`) are F32 here, as
/// llama.cpp's converter writes them.
pub fn mixture(ftype: FileType, tensors: &[PlannedTensor]) -> Vec<GgmlType> {
    let default = ftype.default_type();
    let has_output = tensors.iter().any(|t| t.name == "output.weight");
    // llama-quantize walks tensors in name order (its weights map is sorted).
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| tensors[a].name.cmp(&tensors[b].name));
    let mut out: HashMap<usize, GgmlType> = HashMap::new();
    for &i in &order {
        let t = &tensors[i];
        let quantizable = t.class == TensorClass::Matrix && t.shape.len() >= 2 && t.name.ends_with("weight");
        let ty = if !quantizable {
            GgmlType::F32
        } else if matches!(default, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16) {
            default
        } else {
            fallback(t.row_len() as u64, tensor_type(ftype, default, t, has_output))
        };
        out.insert(i, ty);
    }
    (0..tensors.len()).map(|i| out[&i]).collect()
}

/// `llama_tensor_get_type_impl` for the file types above (the K-quant and IQ branches of
/// the original do not apply to them).
fn tensor_type(ftype: FileType, default: GgmlType, t: &PlannedTensor, has_output: bool) -> GgmlType {
    let cat = category(&t.name);
    let nx = t.row_len() as u64;
    if cat == Category::Output || (!has_output && cat == Category::TokenEmbd) {
        if ftype == FileType::Mxfp4Moe || !nx.is_multiple_of(default.block_size() as u64) {
            return GgmlType::Q8_0;
        }
        return if default != GgmlType::Q8_0 { GgmlType::Q6K } else { default };
    }
    if ftype == FileType::Mxfp4Moe {
        // ne[2] > 1: stacked experts.
        return if t.shape.len() >= 3 && t.shape[0] > 1 { GgmlType::Mxfp4 } else { GgmlType::Q8_0 };
    }
    default
}

/// `tensor_type_fallback`: a type whose block does not divide the row length is replaced.
pub fn fallback(ncols: u64, target: GgmlType) -> GgmlType {
    if ncols.is_multiple_of(target.block_size() as u64) {
        return target;
    }
    let t = match target {
        GgmlType::Q2K | GgmlType::Q3K => GgmlType::Q4_0,
        GgmlType::Q4K => GgmlType::Q5_0,
        GgmlType::Q5K => GgmlType::Q5_1,
        GgmlType::Q6K => GgmlType::Q8_0,
        other => other,
    };
    if !ncols.is_multiple_of(t.block_size() as u64) {
        GgmlType::F16
    } else {
        t
    }
}
