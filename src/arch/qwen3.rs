//! Qwen3 dense (`model_type: qwen3`) → llama.cpp's `qwen3`. NEOX rope, no biases,
//! per-head RMSNorm on queries and keys (`attn_q_norm`/`attn_k_norm`, F32), an explicit
//! `head_dim` that need not be hidden/heads.

use super::decoder::{DecoderSpec, RopeKind};

pub const SPEC: DecoderSpec = DecoderSpec {
    arch: "qwen3",
    rope: RopeKind::Neox,
    qkv_bias: false,
    qk_norm: true,
    moe: None,
    honours_head_dim: true,
    write_rope_dims: false,
    default_tie: false,
    default_rope_theta: 1e6,
};
