//! An mlx-lm LoRA adapter as a llama.cpp LoRA GGUF (`general.type = adapter`,
//! `adapter.type = lora`, `adapter.lora.alpha`), so the base GGUF stays unchanged and
//! adapters can be swapped at run time.
//!
//! llama.cpp (`src/llama-adapter.cpp`) pairs `<base tensor>.lora_a` / `.lora_b`, checks
//! `a.ne[0] == W.ne[0]`, `b.ne[1] == W.ne[1]`, `a.ne[1] == b.ne[0]` (for `token_embd`,
//! `a.ne[1] == n_vocab` and `b.ne[1] == n_embd`), and scales `B·A` by
//! `alpha / rank` with rank = `b.ne[0]`. mlx-lm multiplies by `scale`, so alpha = scale·rank.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::gguf::Value;
use crate::plan::{Delta, ModuleKind, Plan};
use crate::quant::GgmlType;
use crate::sink::{AtomicFile, GgufWriter, HeaderTensor};
use crate::source::adapter::{Adapter, FineTuneType};

/// One adapter tensor to write: name, ggml dims, and whether the MLX matrix must be
/// transposed (its last two dims swapped) to get llama.cpp's layout.
pub struct AdapterTensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub source: String,
    pub transpose: bool,
    /// The base tensor's Q/K row permutation, applied to lora_b's rows (P(W + BA) = PW + (PB)A).
    pub rope_permute: Option<usize>,
    /// The base tensor's row order (applied to lora_b's rows) or column order (to
    /// lora_a's columns).
    pub row_order: Option<Vec<u32>>,
    pub col_order: Option<Vec<u32>>,
}

pub struct AdapterPlan {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<AdapterTensor>,
}

pub fn plan_adapter(plan: &Plan, adapter: &Adapter) -> Result<AdapterPlan> {
    if adapter.fine_tune_type != FineTuneType::Lora {
        let what = if adapter.fine_tune_type == FineTuneType::Dora { "a DoRA adapter" } else { "a full fine-tune" };
        return Err(Error::config(
            &adapter.config_path,
            "fine_tune_type",
            format!("{what} cannot be applied by llama.cpp at run time; fuse it instead (drop --adapter-out)"),
        ));
    }
    let mut tensors = Vec::new();
    let mut alpha = None;
    for t in &plan.tensors {
        let Some(Delta { a, b, rank, kind, scale, .. }) = &t.delta else { continue };
        if t.source_shape.is_some() {
            let msg = format!("{} is a part of the adapted module, which a llama.cpp LoRA cannot express; fuse the adapter instead (drop --adapter-out)", t.name);
            return Err(Error::tensor(&adapter.weights_path, a, msg));
        }
        let r = *rank as u64;
        let s: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
        let (a_ne, a_t, b_ne, b_t) = match kind {
            ModuleKind::Linear => (vec![s[1], r], true, vec![r, s[0]], true),
            ModuleKind::Switch => (vec![s[2], r, s[0]], false, vec![r, s[1], s[0]], false),
            ModuleKind::Embedding => (vec![r, s[0]], false, vec![r, s[1]], true),
        };
        tensors.push(AdapterTensor {
            name: format!("{}.lora_a", t.name),
            ne: a_ne,
            source: a.clone(),
            transpose: a_t,
            rope_permute: None,
            row_order: None,
            col_order: t.col_order.clone(),
        });
        tensors.push(AdapterTensor {
            name: format!("{}.lora_b", t.name),
            ne: b_ne,
            source: b.clone(),
            transpose: b_t,
            rope_permute: t.rope_permute,
            row_order: t.row_order.clone(),
            col_order: None,
        });
        alpha = Some(scale * *rank as f32);
        if tensors.iter().any(|x| x.name.len() > crate::gguf::MAX_NAME_LEN) {
            return Err(Error::tensor(&adapter.weights_path, a, "the llama.cpp tensor name would exceed 63 bytes"));
        }
    }
    let Some(alpha) = alpha else {
        return Err(Error::input(&adapter.weights_path, "the adapter changes no tensor"));
    };
    let metadata = vec![
        ("general.architecture".into(), Value::String(plan.arch.into())),
        ("general.type".into(), Value::String("adapter".into())),
        ("adapter.type".into(), Value::String("lora".into())),
        ("adapter.lora.alpha".into(), Value::F32(alpha)),
    ];
    Ok(AdapterPlan { metadata, tensors })
}

/// Writes the adapter GGUF (F32 tensors) to a temporary file, returned uncommitted.
pub fn write_adapter(p: &AdapterPlan, adapter: &Adapter, path: &Path) -> Result<AtomicFile> {
    let header: Vec<HeaderTensor> = p
        .tensors
        .iter()
        .map(|t| HeaderTensor { name: t.name.clone(), ne: t.ne.clone(), ggml_type: GgmlType::F32 })
        .collect();
    let io = |e| Error::io(path, e);
    let file = AtomicFile::create(path).map_err(io)?;
    let mut w = GgufWriter::new(file, &p.metadata, &header).map_err(io)?;
    for t in &p.tensors {
        let v =
            adapter.tensors.get(&t.source).ok_or_else(|| Error::tensor(&adapter.weights_path, &t.source, "missing"))?;
        let mut vals = crate::transform::lora::to_f32(&v);
        if t.transpose {
            let (rows, cols) = (v.shape[v.shape.len() - 2], v.shape[v.shape.len() - 1]);
            vals = crate::transform::lora::transpose(&vals, rows, cols);
        }
        if let Some(g) = t.rope_permute {
            crate::transform::permute_rope_rows(&mut vals, t.ne[0] as usize, g);
        }
        let row_len = t.ne[0] as usize;
        if let Some(order) = &t.row_order {
            let old = vals.clone();
            for (i, &src) in order.iter().enumerate() {
                let s = src as usize;
                vals[i * row_len..(i + 1) * row_len].copy_from_slice(&old[s * row_len..(s + 1) * row_len]);
            }
        }
        if let Some(order) = &t.col_order {
            crate::transform::gather_columns(&mut vals, row_len, order);
        }
        let mut bytes = Vec::with_capacity(vals.len() * 4);
        crate::quant::f32::encode(&vals, &mut bytes);
        w.write(&bytes).map_err(io)?;
    }
    let mut file = w.finish().map_err(io)?;
    file.flush().map_err(io)?;
    Ok(file)
}
