//! Qwen3 (`model_type: qwen3`) → llama.cpp's `qwen3`: NEOX rope, per-head RMSNorm on
//! queries and keys (F32), no biases, `head_dim` from config.json (128 in every real Qwen3,
//! not hidden/heads).

use super::spec::groups::*;
use super::spec::ArchSpec;

/// As Qwen2 without biases, with q/k norms and `head_dim`; untied by default.
pub const SPEC: ArchSpec = ArchSpec {
    arch: "qwen3",
    layer: &[ATTN_NORM, QK_NORM_ATTN, FFN_NORM, MLP],
    honours_head_dim: true,
    default_tie: false,
    ..super::qwen2::SPEC
};
