//! Qwen2 / Qwen2.5 (`model_type: qwen2`) → llama.cpp's `qwen2`: NEOX rope (weights as
//! they are), biases on q/k/v (none on the output), tied embeddings by default.

use super::spec::groups::*;
use super::spec::{ArchSpec, LayerTypes, RopeKind};

pub const SPEC: ArchSpec = ArchSpec {
    arch: "qwen2",
    rope: RopeKind::Neox,
    front: EMBED,
    layer: &[ATTN_NORM, QKV_BIAS_ATTN, FFN_NORM, MLP],
    back: HEAD,
    metadata: DENSE_KEYS,
    moe: None,
    honours_head_dim: false,
    requires_head_dim: false,
    layer_types: LayerTypes::FullOnly,
    scalings: &["linear", "yarn"],
    fixed_yarn_betas: false,
    default_tie: true,
    default_rope_theta: 1e6,
    default_sliding_window: 0,
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
