//! Qwen3 (`model_type: qwen3`) → llama.cpp's `qwen3`: NEOX rope, per-head RMSNorm on
//! queries and keys (F32), no biases, `head_dim` from config.json (128 in every real Qwen3,
//! not hidden/heads).

use super::spec::groups::*;
use super::spec::{ArchSpec, LayerTypes, RopeKind};

pub const SPEC: ArchSpec = ArchSpec {
    arch: "qwen3",
    rope: RopeKind::Neox,
    front: EMBED,
    layer: &[ATTN_NORM, QK_NORM_ATTN, FFN_NORM, MLP],
    back: HEAD,
    metadata: DENSE_KEYS,
    moe: None,
    honours_head_dim: true,
    requires_head_dim: false,
    layer_types: LayerTypes::FullOnly,
    scalings: &["linear", "yarn"],
    fixed_yarn_betas: false,
    default_tie: false,
    default_rope_theta: 1e6,
    default_sliding_window: 0,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: false,
};
