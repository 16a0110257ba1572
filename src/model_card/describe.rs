//! Which folder, name and parameter counts describe each output file.
//!
//! - The model: its folder, as `convert_hf_to_gguf.py` reads it. A Hugging Face cache
//!   snapshot (`models--ORG--NAME/snapshots/<commit>`) is read as a folder named NAME: the
//!   commit hash names nothing.
//! - A model with an adapter fused: llama.cpp has no such conversion; mlx-lm's `fuse` writes
//!   the base model's card with `base_model` set to the model it fused into, so the fused
//!   file's base model is that model (its repo id when known, else adapter_config.json's
//!   `model` when it is a repo id, else the folder name), and the adapter folder's name is
//!   added to `general.finetune`, so that the fused file is not named as the base model.
//!   `general.name` stays the model's: llama.cpp reads it for name-based rules (a name
//!   containing "phi3" makes it look up Phi-3's `<|end|>` token), so text from an adapter
//!   folder's name must not reach it.
//! - A separate LoRA file (`--adapter-out`): as `convert_lora_to_gguf.py`, from the adapter
//!   folder, with a negative parameter count (so no size label from it); its base model,
//!   when the adapter's own card names none, as for a fused adapter (gguf-py leaves reading
//!   adapter_config.json as a to-do).

use std::path::Path;

use super::{count_params, size_label, ModelCard, ParamCounts, Text};
use crate::adapter_gguf::AdapterPlan;
use crate::error::Result;
use crate::gguf::Value;
use crate::plan::Plan;
use crate::source::adapter::Adapter;
use crate::source::Checkpoint;

/// The model-card keys of the model file. `fused` is the adapter fused into it, if any;
/// `model_name` replaces `general.name` last (llama.cpp's `--model-name`).
pub fn for_model(
    ckpt: &Checkpoint,
    fused: Option<&Adapter>,
    plan: &Plan,
    override_path: Option<&Path>,
    model_name: Option<&str>,
) -> Result<ModelCard> {
    let counts = model_counts(plan);
    let folder = ckpt.name().unwrap_or_default();
    let mut card = ModelCard::derive(&ckpt.dir, &folder, counts.total)?;
    if let Some(a) = fused {
        describe_fused(&mut card, ckpt, a, counts.total);
    }
    if let Some(path) = override_path {
        card.apply_override(path)?;
    }
    if let Some(n) = model_name {
        card.set_text(Text::Name, n, &ckpt.dir);
    }
    // convert_hf_to_gguf.py's prepare_metadata: a name in any case, and a size label from the
    // counts when nothing gave one.
    if !card.has(Text::Name) {
        card.set_text(Text::Name, &folder, &ckpt.dir);
    }
    if !card.has(Text::SizeLabel) && counts.total > 0 {
        card.set_text(Text::SizeLabel, &size_label(&counts), &ckpt.dir);
    }
    Ok(card)
}

/// Counts the plan's tensors, with their logical (dequantized) shapes.
pub fn model_counts(plan: &Plan) -> ParamCounts {
    count_params(plan.tensors.iter().map(|t| (t.name.as_str(), t.shape.as_slice())))
}

fn describe_fused(card: &mut ModelCard, ckpt: &Checkpoint, a: &Adapter, total_params: i64) {
    card.set_base_models(&[base_model_id(ckpt, a)], total_params, &a.config_path, "model");
    let label = crate::source::folder_name(&a.dir, a.repo.as_deref()).unwrap_or_else(|| "adapter".into());
    let finetune = match card.text(Text::Finetune) {
        Some(f) => format!("{f}-{label}"),
        None => label.clone(),
    };
    card.set_text(Text::Finetune, &finetune, &a.dir);
}

/// The model an adapter applies to, as a Hub id when one is known.
fn base_model_id(ckpt: &Checkpoint, a: &Adapter) -> String {
    if let Some(id) =
        ckpt.repo.as_ref().map(|(id, _)| id.clone()).or_else(|| crate::source::hub::cached_repo_id(&ckpt.dir))
    {
        return id;
    }
    // mlx_lm.lora records its --model argument: a repo id, or a path on the training machine.
    let trained_on = a.base_model.as_deref().filter(|m| {
        crate::source::hub::parse_repo_id(m).is_some_and(|(_, rev)| rev.is_none()) && !Path::new(m).exists()
    });
    trained_on.map(str::to_string).or_else(|| ckpt.name()).unwrap_or_default()
}

/// The model-card keys of a separate LoRA adapter file.
pub fn for_adapter(ckpt: &Checkpoint, a: &Adapter, plan: &AdapterPlan) -> Result<ModelCard> {
    let total = -adapter_counts(plan).total;
    let folder = crate::source::folder_name(&a.dir, a.repo.as_deref()).unwrap_or_default();
    let mut card = ModelCard::derive(&a.dir, &folder, total)?;
    if !card.has_base_models() {
        card.set_base_models(&[base_model_id(ckpt, a)], total, &a.config_path, "model");
    }
    if !card.has(Text::Name) {
        card.set_text(Text::Name, &ckpt.name().unwrap_or_default(), &ckpt.dir);
    }
    Ok(card)
}

/// gguf-py's count for a LoRA file: each `lora_b` stands for the base weight it adapts, its
/// shape with the last dim taken from the preceding `lora_a`.
pub fn adapter_counts(plan: &AdapterPlan) -> ParamCounts {
    let mut adapted: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut last_a: Option<&crate::adapter_gguf::AdapterTensor> = None;
    for t in &plan.tensors {
        if t.name.ends_with(".lora_a") {
            last_a = Some(t);
        } else if let Some(a) =
            last_a.filter(|a| t.name.ends_with(".lora_b") && a.name[..a.name.len() - 1] == t.name[..t.name.len() - 1])
        {
            // ggml dims reversed = row-major shape.
            let mut shape: Vec<usize> = t.ne.iter().rev().map(|&d| d as usize).collect();
            if let Some(last) = shape.last_mut() {
                *last = a.ne[0] as usize;
            }
            adapted.push((&t.name, shape));
        }
    }
    count_params(adapted.iter().map(|(n, s)| (*n, s.as_slice())))
}

/// Inserts `keys` after `after` (or at the end).
pub fn insert_after(metadata: &mut Vec<(String, Value)>, after: &str, keys: Vec<(String, Value)>) {
    let at = metadata.iter().position(|(k, _)| k == after).map_or(metadata.len(), |i| i + 1);
    metadata.splice(at..at, keys);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter_gguf::AdapterTensor;

    fn tensor(name: &str, ne: &[u64]) -> AdapterTensor {
        AdapterTensor {
            name: name.into(),
            ne: ne.to_vec(),
            source: String::new(),
            transpose: false,
            rope_permute: None,
            row_order: None,
            col_order: None,
        }
    }

    #[test]
    fn a_lora_pair_counts_as_the_weight_it_adapts() {
        // attn_q (ne [128, 256]) at rank 4, and stacked experts (ne [128, 64, 8]).
        let plan = AdapterPlan {
            metadata: Vec::new(),
            tensors: vec![
                tensor("blk.0.attn_q.weight.lora_a", &[128, 4]),
                tensor("blk.0.attn_q.weight.lora_b", &[4, 256]),
                tensor("blk.0.ffn_up_exps.weight.lora_a", &[128, 4, 8]),
                tensor("blk.0.ffn_up_exps.weight.lora_b", &[4, 64, 8]),
            ],
        };
        let c = adapter_counts(&plan);
        assert_eq!(c.total, 256 * 128 + 8 * 64 * 128);
        assert_eq!((c.expert, c.expert_count), (64 * 128, 8));
    }

    #[test]
    fn keys_go_after_the_named_one() {
        let kv = |k: &str| (k.to_string(), Value::U32(0));
        let mut md = vec![kv("general.architecture"), kv("general.type"), kv("x.y")];
        insert_after(&mut md, "general.type", vec![kv("general.name")]);
        let keys: Vec<&str> = md.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["general.architecture", "general.type", "general.name", "x.y"]);
    }
}
