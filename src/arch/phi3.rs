//! Phi-3, 3.5 and 4-mini (`model_type: phi3`) → llama.cpp's `phi3`. NEOX rope, on the first
//! `partial_rotary_factor · head_dim` dimensions (Phi-4-mini: 0.75); Q, K and V fused in
//! `qkv_proj` and gate and up fused in `gate_up_proj`, which llama.cpp takes as they are
//! (`attn_qkv`, and `ffn_up` of 2·n_ff rows, gate first); LongRoPE factors as
//! `rope_factors_long`/`rope_factors_short` tensors with the attention factor llama.cpp's
//! converter computes. mlx-lm applies the long factors at every length where llama.cpp uses
//! the short ones up to `original_max_position_embeddings`: both follow config.json, and
//! agree exactly when the two lists are equal. `sliding_window` is written (0 when absent),
//! as llama.cpp's converter does; llama.cpp's phi3 does not apply it.

use super::spec::groups::EMBED;
use super::spec::Dim::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, RopeKind, Source, TensorSpec as T, When};
use crate::plan::ModuleKind::Linear;

const LAYER: &[T] = &[
    T::param("attn_norm.weight", "input_layernorm.weight", &[Embd]),
    T::weight("attn_qkv.weight", "self_attn.qkv_proj", &[Qkv, Embd], Linear),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
    T::param("ffn_norm.weight", "post_attention_layernorm.weight", &[Embd]),
    T::weight("ffn_up.weight", "mlp.gate_up_proj", &[Ff2, Embd], Linear),
    T::weight("ffn_down.weight", "mlp.down_proj", &[Embd, Ff], Linear),
];

const BACK: &[T] = &[
    T::param("output_norm.weight", "model.norm.weight", &[Embd]),
    T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear).when(When::Untied),
    T::param("rope_factors_long.weight", "rope_scaling", &[HalfRot]).computed(Source::LongRopeFactors(true)),
    T::param("rope_factors_short.weight", "rope_scaling", &[HalfRot]).computed(Source::LongRopeFactors(false)),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "phi3",
    rope: RopeKind::Neox,
    front: EMBED,
    layer: &[LAYER],
    back: BACK,
    metadata: &[
        ContextLength,
        OriginalContextLength,
        EmbeddingLength,
        FeedForwardLength,
        BlockCount,
        HeadCount,
        HeadCountKv,
        RmsEps,
        RopeDimensionCount,
        FreqBase,
        SlidingWindow,
        RopeScaling,
    ],
    moe: None,
    honours_head_dim: false,
    requires_head_dim: false,
    layer_types: LayerTypes::FullOnly,
    scalings: &["longrope", "su", "linear"],
    fixed_yarn_betas: false,
    default_tie: false,
    default_rope_theta: 10000.0,
    default_sliding_window: 0,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: true,
    space_prefix: super::spec::SpacePrefix::Default,
    mixed_layers: None,
    vocab: super::spec::VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
};
