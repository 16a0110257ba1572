//! GLM-4.5 / 4.6 (`model_type: glm4_moe`) → llama.cpp's `glm4moe`: GQA attention with q/k/v
//! biases (`attention_bias`) and optional q/k norms (`use_qk_norm`), NEOX rope on the first
//! `partial_rotary_factor` of each head, the norm before the MLP named as a post-attention
//! norm, and DeepSeek V3's MoE (leading dense layers, sigmoid router with correction bias,
//! groups, renormalisation, scaling, shared experts). mlx-lm drops the next-token
//! prediction layer when it loads or converts a checkpoint, so the file has none
//! (`nextn_predict_layers` is not written).

use super::deepseek_v3::{DENSE_MLP, MOE};
use super::spec::groups::{ATTN_NORM, EMBED, HEAD};
use super::spec::Dim::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, MoeKeys, RopeKind, SpacePrefix, TensorSpec as T, VocabKind, When};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::Linear;
use crate::source::Checkpoint;

const QK_NORM: When = When::Flag("use_qk_norm");
const BIAS: When = When::Flag("attention_bias");

const ATTN: &[T] = &[
    T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
    T::param("attn_q.bias", "self_attn.q_proj.bias", &[Q]).when(BIAS),
    T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear),
    T::param("attn_k.bias", "self_attn.k_proj.bias", &[Kv]).when(BIAS),
    T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
    T::param("attn_v.bias", "self_attn.v_proj.bias", &[Kv]).when(BIAS),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
    T::param("attn_q_norm.weight", "self_attn.q_norm.weight", &[HeadDim]).when(QK_NORM),
    T::param("attn_k_norm.weight", "self_attn.k_norm.weight", &[HeadDim]).when(QK_NORM),
    T::param("post_attention_norm.weight", "post_attention_layernorm.weight", &[Embd]),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "glm4moe",
    rope: RopeKind::Neox,
    front: EMBED,
    layer: &[ATTN_NORM, ATTN, DENSE_MLP, MOE],
    back: HEAD,
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
        ConfigU32 { key: "expert_group_count", config: "n_group", default: None },
        ConfigU32 { key: "expert_group_used_count", config: "topk_group", default: None },
        KeyValueLength,
        RopeDimensionCount,
        ExpertFeedForwardLength,
        ConfigU32 { key: "expert_shared_count", config: "n_shared_experts", default: None },
        ConfigU32 { key: "leading_dense_block_count", config: "first_k_dense_replace", default: None },
        // mlx-lm's class scores with a sigmoid whatever `scoring_func` says.
        FixedU32 { key: "expert_gating_func", value: 2 },
        ConfigF32 { key: "expert_weights_scale", config: "routed_scaling_factor", default: None },
        ConfigTrue { key: "expert_weights_norm", config: "norm_topk_prob", default: false },
        RopeScaling,
    ],
    moe: Some(MoeKeys {
        count: "n_routed_experts",
        ff: "moe_intermediate_size",
        used: &["num_experts_per_tok"],
        enabled_by: None,
        shared_ff: None,
        shared_count: Some("n_shared_experts"),
        dense_lead: Some("first_k_dense_replace"),
        interleave: None,
    }),
    honours_head_dim: true,
    requires_head_dim: true,
    layer_types: LayerTypes::FullOnly,
    scalings: &[],
    fixed_yarn_betas: false,
    default_tie: false,
    default_rope_theta: 1_000_000.0,
    default_sliding_window: 0,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: true,
    space_prefix: SpacePrefix::Default,
    mixed_layers: None,
    vocab: VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
};

/// What llama.cpp's glm4moe or this table cannot express.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    if c.opt_u64("n_shared_experts")?.unwrap_or(0) == 0 {
        let msg = "missing or 0: llama.cpp's glm4moe is converted here with its shared experts";
        return Err(Error::config(&c.path, "n_shared_experts", msg));
    }
    if c.opt_bool("tie_word_embeddings")? == Some(true) {
        let msg = "true, but mlx-lm's glm4_moe class always has its own lm_head";
        return Err(Error::config(&c.path, "tie_word_embeddings", msg));
    }
    Ok(())
}
