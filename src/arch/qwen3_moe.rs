//! Qwen3-MoE (`model_type: qwen3_moe`) → llama.cpp's `qwen3moe`: Qwen3 attention with
//! experts stacked by mlx-lm as `mlp.switch_mlp.*` and the router in `mlp.gate`. llama.cpp
//! needs experts in every layer and always renormalises the top-k weights, so dense
//! layers (`mlp_only_layers`, `decoder_sparse_step`) and `norm_topk_prob: false` are refused.

use crate::error::{Error, Result};
use crate::source::Checkpoint;

use super::spec::groups::*;
use super::spec::{ArchSpec, Meta::*, MoeKeys};

/// As Qwen3, with experts in every layer.
pub const SPEC: ArchSpec = ArchSpec {
    arch: "qwen3moe",
    layer: &[ATTN_NORM, QK_NORM_ATTN, FFN_NORM, MLP_SWITCH],
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        HeadCount,
        HeadCountKv,
        FreqBase,
        RmsEps,
        ExpertCount,
        ExpertUsedCount,
        ExpertFeedForwardLength,
        KeyValueLength,
        RopeScaling,
    ],
    moe: Some(MoeKeys {
        count: "num_experts",
        ff: "moe_intermediate_size",
        used: &["num_experts_per_tok"],
        enabled_by: None,
        shared_ff: None,
        shared_count: None,
        dense_lead: None,
        interleave: None,
    }),
    ..super::qwen3::SPEC
};

/// Configurations llama.cpp's qwen3moe cannot express.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    if c.opt_bool("norm_topk_prob")? == Some(false) {
        return Err(Error::config(
            &c.path,
            "norm_topk_prob",
            "false: llama.cpp's qwen3moe always renormalises the selected experts' weights",
        ));
    }
    let dense = c.get("mlp_only_layers").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
    if dense || c.opt_u64("decoder_sparse_step")?.is_some_and(|s| s != 1) {
        return Err(Error::config(
            &c.path,
            "mlp_only_layers",
            "dense MLP layers in a qwen3_moe model: llama.cpp's qwen3moe needs experts in every layer",
        ));
    }
    Ok(())
}
