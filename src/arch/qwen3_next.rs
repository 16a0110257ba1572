//! Qwen3-Next (`model_type: qwen3_next`) → llama.cpp's `qwen3next`: three Gated DeltaNet
//! (linear-attention) layers to one full-attention layer (`full_attention_interval`), experts
//! with a gated shared expert in every layer. The linear layers' projections go over as mlx-lm
//! holds them: `in_proj_qkvz` (q, k, v, z grouped per key head) as llama.cpp's `ssm_in`,
//! `in_proj_ba` as `ssm_ba`; the depthwise conv1d `[C, K, 1]` as `{K, C}`; `A_log` as the
//! decay `-exp(A_log)`. Full-attention layers: queries with a sigmoid output gate per head
//! (`q_proj` twice as wide), q/k norms, NEOX rope on `partial_rotary_factor` of each head.
//! mlx-lm's conversion already stored the norms as `1 + w`.

use super::qwen2_moe::SHARED_EXPERT;
use super::spec::groups::{ATTN_NORM, EMBED, HEAD, MLP_SWITCH};
use super::spec::Dim::*;
use super::spec::{
    ArchSpec, LayerTypes, LinearAttention, Meta::*, MoeKeys, RopeKind, SpacePrefix, TensorSpec as T, VocabKind, When,
};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::Linear;
use crate::source::Checkpoint;

const FULL: When = When::FullAttnLayer;
const LIN: When = When::LinearLayer;
pub const KEY_DIM: &[&str] = &["linear_key_head_dim", "linear_num_key_heads"];
pub const VALUE_DIM: &[&str] = &["linear_value_head_dim", "linear_num_value_heads"];

/// Full attention with a sigmoid output gate per head (shared with Qwen3.5).
pub const ATTN: &[T] = &[
    T::weight("attn_q.weight", "self_attn.q_proj", &[QGated, Embd], Linear).when(FULL),
    T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear).when(FULL),
    T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear).when(FULL),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear).when(FULL),
    T::param("attn_q_norm.weight", "self_attn.q_norm.weight", &[HeadDim]).when(FULL),
    T::param("attn_k_norm.weight", "self_attn.k_norm.weight", &[HeadDim]).when(FULL),
];

const DELTA_NET: &[T] = &[
    T::weight(
        "ssm_in.weight",
        "linear_attn.in_proj_qkvz",
        &[Terms(&[KEY_DIM, KEY_DIM, VALUE_DIM, VALUE_DIM]), Embd],
        Linear,
    )
    .when(LIN),
    T::weight(
        "ssm_ba.weight",
        "linear_attn.in_proj_ba",
        &[Terms(&[&["linear_num_value_heads"], &["linear_num_value_heads"]]), Embd],
        Linear,
    )
    .when(LIN),
    T::param(
        "ssm_conv1d.weight",
        "linear_attn.conv1d.weight",
        &[Terms(&[KEY_DIM, KEY_DIM, VALUE_DIM]), Config(&["linear_conv_kernel_dim"])],
    )
    .when(LIN),
    T::param("ssm_dt.bias", "linear_attn.dt_bias", &[Config(&["linear_num_value_heads"])]).when(LIN),
    T::param("ssm_a", "linear_attn.A_log", &[Config(&["linear_num_value_heads"])]).neg_exp().when(LIN),
    T::param("ssm_norm.weight", "linear_attn.norm.weight", &[Config(&["linear_value_head_dim"])]).when(LIN),
    T::weight("ssm_out.weight", "linear_attn.out_proj", &[Embd, Terms(&[VALUE_DIM])], Linear).when(LIN),
];

const POST_NORM: &[T] = &[T::param("post_attention_norm.weight", "post_attention_layernorm.weight", &[Embd])];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "qwen3next",
    rope: RopeKind::Neox,
    front: EMBED,
    layer: &[ATTN_NORM, ATTN, DELTA_NET, POST_NORM, MLP_SWITCH, SHARED_EXPERT],
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
        KeyValueLength,
        ExpertFeedForwardLength,
        ExpertSharedFeedForwardLength,
        ConfigSum { key: "ssm.conv_kernel", configs: &["linear_conv_kernel_dim"] },
        ConfigSum { key: "ssm.state_size", configs: &["linear_key_head_dim"] },
        ConfigSum { key: "ssm.group_count", configs: &["linear_num_key_heads"] },
        ConfigSum { key: "ssm.time_step_rank", configs: &["linear_num_value_heads"] },
        ConfigTerms { key: "ssm.inner_size", terms: &[VALUE_DIM] },
        ConfigU32 { key: "full_attention_interval", config: "full_attention_interval", default: Some(4) },
        RopeDimensionCount,
        RopeScaling,
    ],
    moe: Some(MoeKeys {
        count: "num_experts",
        ff: "moe_intermediate_size",
        used: &["num_experts_per_tok"],
        enabled_by: None,
        shared_ff: Some("shared_expert_intermediate_size"),
        shared_count: None,
        dense_lead: None,
        interleave: None,
    }),
    honours_head_dim: true,
    requires_head_dim: true,
    layer_types: LayerTypes::FullOnly,
    scalings: &["linear", "yarn"],
    fixed_yarn_betas: false,
    default_tie: false,
    default_rope_theta: 10000.0,
    default_sliding_window: 0,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: true,
    space_prefix: SpacePrefix::Default,
    mixed_layers: None,
    vocab: VocabKind::Standard,
    config_defaults: &[],
    linear_attention: Some(LinearAttention { interval_key: "full_attention_interval", default_interval: 4 }),
};

/// What llama.cpp's qwen3next cannot express.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    if c.opt_bool("norm_topk_prob")? != Some(true) {
        let msg = "false or missing (mlx-lm's default false): llama.cpp's qwen3next always renormalises the selected experts' weights";
        return Err(Error::config(&c.path, "norm_topk_prob", msg));
    }
    if c.opt_bool("attention_bias")?.unwrap_or(false) {
        return Err(Error::config(&c.path, "attention_bias", "true: llama.cpp's qwen3next has no attention biases"));
    }
    let dense = c.get("mlp_only_layers").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
    if dense || c.opt_u64("decoder_sparse_step")?.is_some_and(|s| s != 1) {
        let msg = "dense MLP layers: llama.cpp's qwen3next needs experts in every layer";
        return Err(Error::config(&c.path, "mlp_only_layers", msg));
    }
    // llama.cpp sizes the value heads by the key head size (`ssm.state_size`).
    if c.opt_u64("linear_key_head_dim")? != c.opt_u64("linear_value_head_dim")? {
        let msg = "differs from linear_key_head_dim: llama.cpp's qwen3next takes both from ssm.state_size";
        return Err(Error::config(&c.path, "linear_value_head_dim", msg));
    }
    Ok(())
}
