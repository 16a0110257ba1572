//! Qwen2 / Qwen2.5 (`model_type: qwen2`) → llama.cpp's `qwen2`. NEOX rope (weights as
//! they are), biases on q/k/v (F32), tied embeddings by default.

use super::decoder::{DecoderSpec, RopeKind};

pub const SPEC: DecoderSpec = DecoderSpec {
    arch: "qwen2",
    rope: RopeKind::Neox,
    qkv_bias: true,
    qk_norm: false,
    moe: None,
    honours_head_dim: false,
    write_rope_dims: false,
    default_tie: true,
    default_rope_theta: 1e6,
};
