//! Llama 1/2/3.x and Mistral (`model_type: llama | mistral`; mlx-lm runs both with its
//! `llama` class) → llama.cpp's `llama`. Rope is NORM, so Q/K rows are permuted from the
//! HF/MLX rotate-half layout (unless `rope_traditional`); Llama 3.1 rope scaling becomes a
//! `rope_freqs` tensor; embeddings are tied unless config.json says otherwise (mlx-lm's
//! default).

use super::decoder::{DecoderSpec, RopeKind};

pub const SPEC: DecoderSpec = DecoderSpec {
    arch: "llama",
    rope: RopeKind::Norm,
    qkv_bias: false,
    qk_norm: false,
    moe: None,
    honours_head_dim: true,
    write_rope_dims: true,
    default_tie: true,
    default_rope_theta: 10000.0,
};
