//! gpt-oss (`model_type: gpt_oss` in mlx-lm; `gpt-oss` in llama.cpp).
//!
//! MLX already stores experts split into gate/up/down as `[E, out, in]`, which is GGUF's
//! `ne = [in, out, E]` byte for byte, so every tensor is a rename. Rope is NEOX: no Q/K
//! permutation. Norms, biases (including the 2-D expert biases), sinks and the router are
//! F32 (ggml asserts F32 sinks and bias operands; llama.cpp keeps the router F32).
//! `head_dim` and `layer_types` are required (llama.cpp would assume n_embd/n_head = 45, and
//! the sliding-window layers must be stated); yarn is the only rope scaling, with
//! llama.cpp's fixed betas.

use super::spec::groups::{ATTN_NORM, EMBED};
use super::spec::Dim::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, MoeKeys, RopeKind, TensorSpec as T};
use crate::plan::ModuleKind::{Linear, Switch};

pub const ARCH: &str = "gpt-oss";

const LAYER: &[T] = &[
    T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
    T::param("attn_q.bias", "self_attn.q_proj.bias", &[Q]),
    T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear),
    T::param("attn_k.bias", "self_attn.k_proj.bias", &[Kv]),
    T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
    T::param("attn_v.bias", "self_attn.v_proj.bias", &[Kv]),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
    T::param("attn_output.bias", "self_attn.o_proj.bias", &[Embd]),
    T::param("attn_sinks.weight", "self_attn.sinks", &[Heads]),
    T::router("ffn_gate_inp.weight", "mlp.router", &[Experts, Embd]),
    T::param("ffn_gate_inp.bias", "mlp.router.bias", &[Experts]),
    T::weight("ffn_gate_exps.weight", "mlp.experts.gate_proj", &[Experts, ExpFf, Embd], Switch),
    T::param("ffn_gate_exps.bias", "mlp.experts.gate_proj.bias", &[Experts, ExpFf]),
    T::weight("ffn_up_exps.weight", "mlp.experts.up_proj", &[Experts, ExpFf, Embd], Switch),
    T::param("ffn_up_exps.bias", "mlp.experts.up_proj.bias", &[Experts, ExpFf]),
    T::weight("ffn_down_exps.weight", "mlp.experts.down_proj", &[Experts, Embd, ExpFf], Switch),
    T::param("ffn_down_exps.bias", "mlp.experts.down_proj.bias", &[Experts, Embd]),
    T::param("post_attention_norm.weight", "post_attention_layernorm.weight", &[Embd]),
];

const BACK: &[T] = &[
    T::param("output_norm.weight", "model.norm.weight", &[Embd]),
    T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: ARCH,
    rope: RopeKind::Neox,
    front: EMBED,
    layer: &[ATTN_NORM, LAYER],
    back: BACK,
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        ExpertFeedForwardLength,
        HeadCount,
        HeadCountKv,
        KeyValueLength,
        RmsEps,
        SlidingWindow,
        FreqBase,
        ExpertCount,
        ExpertUsedCount,
        RopeScaling,
        SlidingWindowPattern,
    ],
    moe: Some(MoeKeys {
        count: "num_local_experts",
        ff: "intermediate_size",
        used: &["num_experts_per_tok", "experts_per_token"],
        enabled_by: None,
        shared_ff: None,
        shared_count: None,
        dense_lead: None,
        interleave: None,
    }),
    honours_head_dim: true,
    requires_head_dim: true,
    layer_types: LayerTypes::AlternatingSliding,
    scalings: &["yarn"],
    fixed_yarn_betas: true,
    default_tie: false,
    default_rope_theta: 150000.0,
    default_sliding_window: 128,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: false,
    space_prefix: super::spec::SpacePrefix::Default,
    mixed_layers: None,
    vocab: super::spec::VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
};
