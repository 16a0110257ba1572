//! Qwen3.5 (the language model of `qwen3_5` folders → llama.cpp's `qwen35`; of
//! `qwen3_5_moe` folders → `qwen35moe`): Qwen3-Next's layout (Gated DeltaNet layers beside
//! gated full-attention layers) with separate `in_proj_qkv`, `in_proj_z`, `in_proj_b`,
//! `in_proj_a` projections (llama.cpp's `attn_qkv`, `attn_gate`, `ssm_beta`, `ssm_alpha`),
//! a dense MLP or experts with a gated shared expert. llama.cpp broadcasts key heads over
//! value heads by tiling, so where there are more value than key heads the value heads are
//! reordered from mlx-lm's grouping in every tensor that holds them (rows of qkv's V part,
//! z, b, a and the conv1d's V channels; `A_log` and `dt_bias`; the columns of `out_proj`), as
//! llama.cpp's converter does. Text positions make its interleaved M-RoPE plain NEOX rope;
//! its sections are written as config.json states them.

use super::qwen2_moe::SHARED_EXPERT;
use super::qwen3_next::{ATTN, KEY_DIM, VALUE_DIM};
use super::spec::groups::{ATTN_NORM, MLP, MLP_SWITCH};
use super::spec::Dim::*;
use super::spec::{ArchSpec, Meta::*, MoeKeys, TensorSpec as T, VHeads, When};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::Linear;
use crate::source::Checkpoint;

const LIN: When = When::LinearLayer;
const V_HEAD: &[&str] = &["linear_value_head_dim"];
const NV: &[&str] = &["linear_num_value_heads"];
/// Value heads in rows (`cols: false`) or columns, after `offset`, of `head` entries each.
const fn v(cols: bool, offset: &'static [&'static [&'static str]], head: &'static [&'static str]) -> VHeads {
    VHeads { cols, offset, head }
}

const DELTA_NET: &[T] = &[
    T::weight("attn_qkv.weight", "linear_attn.in_proj_qkv", &[Terms(&[KEY_DIM, KEY_DIM, VALUE_DIM]), Embd], Linear)
        .v_heads(v(false, &[KEY_DIM, KEY_DIM], V_HEAD))
        .when(LIN),
    T::weight("attn_gate.weight", "linear_attn.in_proj_z", &[Terms(&[VALUE_DIM]), Embd], Linear)
        .v_heads(v(false, &[], V_HEAD))
        .when(LIN),
    T::weight("ssm_beta.weight", "linear_attn.in_proj_b", &[Config(NV), Embd], Linear)
        .v_heads(v(false, &[], &[]))
        .when(LIN),
    T::weight("ssm_alpha.weight", "linear_attn.in_proj_a", &[Config(NV), Embd], Linear)
        .v_heads(v(false, &[], &[]))
        .when(LIN),
    T::param(
        "ssm_conv1d.weight",
        "linear_attn.conv1d.weight",
        &[Terms(&[KEY_DIM, KEY_DIM, VALUE_DIM]), Config(&["linear_conv_kernel_dim"])],
    )
    .v_heads(v(false, &[KEY_DIM, KEY_DIM], V_HEAD))
    .when(LIN),
    T::param("ssm_dt.bias", "linear_attn.dt_bias", &[Config(NV)]).v_heads(v(true, &[], &[])).when(LIN),
    T::param("ssm_a", "linear_attn.A_log", &[Config(NV)]).neg_exp().v_heads(v(true, &[], &[])).when(LIN),
    T::param("ssm_norm.weight", "linear_attn.norm.weight", &[Config(V_HEAD)]).when(LIN),
    T::weight("ssm_out.weight", "linear_attn.out_proj", &[Embd, Terms(&[VALUE_DIM])], Linear)
        .v_heads(v(true, &[], V_HEAD))
        .when(LIN),
];

const POST_NORM: &[T] = &[T::param("post_attention_norm.weight", "post_attention_layernorm.weight", &[Embd])];

/// The keys both variants write (the expert keys are left out for the dense one).
const KEYS: &[super::spec::Meta] = &[
    BlockCount,
    ContextLength,
    EmbeddingLength,
    FeedForwardLength,
    HeadCount,
    HeadCountKv,
    FreqBase,
    RmsEps,
    KeyValueLength,
    ConfigSum { key: "ssm.conv_kernel", configs: &["linear_conv_kernel_dim"] },
    ConfigSum { key: "ssm.state_size", configs: &["linear_key_head_dim"] },
    ConfigSum { key: "ssm.group_count", configs: &["linear_num_key_heads"] },
    ConfigSum { key: "ssm.time_step_rank", configs: &["linear_num_value_heads"] },
    ConfigTerms { key: "ssm.inner_size", terms: &[VALUE_DIM] },
    ConfigU32 { key: "full_attention_interval", config: "full_attention_interval", default: Some(4) },
    RopeDimensionCount,
    RopeSections,
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "qwen35",
    layer: &[ATTN_NORM, ATTN, DELTA_NET, POST_NORM, MLP],
    metadata: KEYS,
    moe: None,
    default_rope_theta: 100_000.0,
    ..super::qwen3_next::SPEC
};

pub const MOE_SPEC: ArchSpec = ArchSpec {
    arch: "qwen35moe",
    layer: &[ATTN_NORM, ATTN, DELTA_NET, POST_NORM, MLP_SWITCH, SHARED_EXPERT],
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        HeadCount,
        HeadCountKv,
        FreqBase,
        RmsEps,
        KeyValueLength,
        ExpertCount,
        ExpertUsedCount,
        ExpertFeedForwardLength,
        ExpertSharedFeedForwardLength,
        ConfigSum { key: "ssm.conv_kernel", configs: &["linear_conv_kernel_dim"] },
        ConfigSum { key: "ssm.state_size", configs: &["linear_key_head_dim"] },
        ConfigSum { key: "ssm.group_count", configs: &["linear_num_key_heads"] },
        ConfigSum { key: "ssm.time_step_rank", configs: &["linear_num_value_heads"] },
        ConfigTerms { key: "ssm.inner_size", terms: &[VALUE_DIM] },
        ConfigU32 { key: "full_attention_interval", config: "full_attention_interval", default: Some(4) },
        RopeDimensionCount,
        RopeSections,
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
    default_rope_theta: 100_000.0,
    ..super::qwen3_next::SPEC
};

/// What llama.cpp's qwen35 / qwen35moe cannot express.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    // mlx-lm takes the rotated part from rope_parameters (0.25 when it is silent); the
    // planner reads it from there or the top level, so it must be stated and agree.
    let from_params = c.get("rope_parameters").and_then(|p| p.get("partial_rotary_factor")).and_then(|v| v.as_f64());
    let Some(factor) = from_params else {
        let msg = "missing: mlx-lm then rotates a quarter of each head; state it";
        return Err(Error::config(&c.path, "rope_parameters.partial_rotary_factor", msg));
    };
    if c.opt_f64("partial_rotary_factor")?.is_some_and(|f| f != factor) {
        let msg = format!("differs from rope_parameters.partial_rotary_factor ({factor}), which mlx-lm uses");
        return Err(Error::config(&c.path, "partial_rotary_factor", msg));
    }
    if c.opt_bool("attention_bias")?.unwrap_or(false) {
        return Err(Error::config(&c.path, "attention_bias", "true: llama.cpp's qwen35 has no attention biases"));
    }
    if c.opt_u64("linear_key_head_dim")? != c.opt_u64("linear_value_head_dim")? {
        let msg = "differs from linear_key_head_dim: llama.cpp's qwen35 takes both from ssm.state_size";
        return Err(Error::config(&c.path, "linear_value_head_dim", msg));
    }
    Ok(())
}

/// The MoE variant: llama.cpp's qwen35moe always renormalises the top-k weights (mlx-lm's
/// default for Qwen3.5 too).
pub fn refuse_moe(ckpt: &Checkpoint) -> Result<()> {
    refuse(ckpt)?;
    if ckpt.config.opt_bool("norm_topk_prob")? == Some(false) {
        let msg = "false: llama.cpp's qwen35moe always renormalises the selected experts' weights";
        return Err(Error::config(&ckpt.config.path, "norm_topk_prob", msg));
    }
    Ok(())
}
