//! Granite 3.x (`model_type: granite`) → llama.cpp's `granite`: Llama's tensors and NORM
//! rope (Q/K rows permuted, as llama.cpp's converter, a LlamaModel, does), plus four scalars
//! without which the logits are silently wrong: the embedding, attention and residual
//! multipliers and the logits divisor (`embedding_scale`, `attention.scale`,
//! `residual_scale`, `logit_scale`). `head_dim` is ignored, as by both mlx-lm and llama.cpp.

use super::spec::groups::*;
use super::spec::{ArchSpec, Meta::*};

/// As Llama, without `rope_freqs`, ignoring `head_dim`, with the four scalars last.
pub const SPEC: ArchSpec = ArchSpec {
    arch: "granite",
    back: HEAD,
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
        ConfigF32 { key: "attention.scale", config: "attention_multiplier", default: None },
        ConfigF32 { key: "embedding_scale", config: "embedding_multiplier", default: None },
        ConfigF32 { key: "residual_scale", config: "residual_multiplier", default: None },
        ConfigF32 { key: "logit_scale", config: "logits_scaling", default: None },
    ],
    honours_head_dim: false,
    scalings: &["linear", "yarn"],
    ..super::llama::SPEC
};
