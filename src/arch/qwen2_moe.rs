//! Qwen2-MoE / Qwen1.5-MoE (`model_type: qwen2_moe`) → llama.cpp's `qwen2moe`: Qwen2's
//! attention (q/k/v biases, head size n_embd / n_head as mlx-lm computes it), experts in
//! every layer (softmax router, top-k weights not renormalised in either) and a shared
//! expert whose output is scaled by the sigmoid of its one-row gate. llama.cpp always
//! creates `output.weight`, so a tied model is refused. mlx-lm's class reads neither
//! `norm_topk_prob` nor `mlp_only_layers`, and neither does this conversion: the file runs
//! what mlx-lm runs.

use super::spec::groups::*;
use super::spec::Dim::*;
use super::spec::{ArchSpec, Meta::*, MoeKeys, TensorSpec as T};
use crate::plan::ModuleKind::Linear;

/// The shared expert beside the routed ones; its gate is one row, written as `{n_embd}`.
pub const SHARED_EXPERT: &[T] = &[
    T::router("ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate", &[One, Embd]),
    T::weight("ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj", &[ShExpFf, Embd], Linear),
    T::weight("ffn_up_shexp.weight", "mlp.shared_expert.up_proj", &[ShExpFf, Embd], Linear),
    T::weight("ffn_down_shexp.weight", "mlp.shared_expert.down_proj", &[Embd, ShExpFf], Linear),
];

const BACK: &[T] = &[
    T::param("output_norm.weight", "model.norm.weight", &[Embd]),
    T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "qwen2moe",
    layer: &[ATTN_NORM, QKV_BIAS_ATTN, FFN_NORM, MLP_SWITCH, SHARED_EXPERT],
    back: BACK,
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
        ExpertSharedFeedForwardLength,
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
    scalings: &["linear"],
    default_tie: false,
    ..super::qwen2::SPEC
};
