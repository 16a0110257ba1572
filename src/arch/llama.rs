//! Llama 1/2/3.x and Mistral (`model_type: llama | mistral`; mlx-lm runs both with its
//! `llama` class) → llama.cpp's `llama`. Rope is NORM, so Q/K rows are permuted from the
//! HF/MLX rotate-half layout (unless `rope_traditional`); Llama 3.1 rope scaling becomes a
//! `rope_freqs` tensor; embeddings are tied unless config.json says otherwise (mlx-lm's
//! default).

use super::spec::groups::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, RopeKind};

pub const SPEC: ArchSpec = ArchSpec {
    arch: "llama",
    rope: RopeKind::Norm,
    front: EMBED,
    layer: &[ATTN_NORM, LLAMA_ATTN, FFN_NORM, MLP],
    back: &[HEAD[0], HEAD[1], ROPE_FREQS[0]],
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
        KeyValueLength,
        RopeDimensionCount,
        RopeScaling,
    ],
    moe: None,
    honours_head_dim: true,
    requires_head_dim: false,
    layer_types: LayerTypes::FullOnly,
    scalings: &["linear", "yarn", "llama3"],
    fixed_yarn_betas: false,
    default_tie: true,
    default_rope_theta: 10000.0,
    default_sliding_window: 0,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: false,
    space_prefix: super::spec::SpacePrefix::FromTokenizerConfig,
    mixed_layers: None,
    vocab: super::spec::VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
};
