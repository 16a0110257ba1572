//! Mixtral (`model_type: mixtral`) → llama.cpp's `llama` with experts: Llama's attention
//! (NORM rope, Q/K permuted), the router `block_sparse_moe.gate` and the experts mlx-lm's
//! sanitize stacks into `block_sparse_moe.switch_mlp`. mlx-lm's class ignores `head_dim`.

use super::spec::groups::*;
use super::spec::Dim::*;
use super::spec::{ArchSpec, Meta::*, MoeKeys, TensorSpec as T};
use crate::plan::ModuleKind::Switch;

const MOE: &[T] = &[
    T::router("ffn_gate_inp.weight", "block_sparse_moe.gate", &[Experts, Embd]),
    T::weight("ffn_gate_exps.weight", "block_sparse_moe.switch_mlp.gate_proj", &[Experts, ExpFf, Embd], Switch),
    T::weight("ffn_up_exps.weight", "block_sparse_moe.switch_mlp.up_proj", &[Experts, ExpFf, Embd], Switch),
    T::weight("ffn_down_exps.weight", "block_sparse_moe.switch_mlp.down_proj", &[Experts, Embd, ExpFf], Switch),
];

/// As Llama (NORM rope, Q/K permuted), with experts; untied and rope base 1e6 by default.
pub const SPEC: ArchSpec = ArchSpec {
    layer: &[ATTN_NORM, LLAMA_ATTN, FFN_NORM, MOE],
    metadata: &[
        VocabSize,
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
        RopeDimensionCount,
        RopeScaling,
    ],
    moe: Some(MoeKeys {
        count: "num_local_experts",
        ff: "intermediate_size",
        used: &["num_experts_per_tok"],
        enabled_by: None,
        shared_ff: None,
        shared_count: None,
        dense_lead: None,
        interleave: None,
    }),
    honours_head_dim: false,
    default_tie: false,
    default_rope_theta: 1e6,
    ..super::llama::SPEC
};
