//! Gemma 3 (`model_type: gemma3_text`, and the language model of `gemma3` folders) →
//! llama.cpp's `gemma3`. NEOX rope; norms stored as offsets (written as `1 + w` in f32)
//! before and after attention and MLP and on q/k per head;
//! embeddings scaled by √n_embd inside llama.cpp; every 6th layer (`sliding_window_pattern`)
//! global, the others sliding with their own rope base (`rope_local_base_freq` →
//! `rope.freq_base_swa`) and no rope scaling; tied unless the checkpoint has an `lm_head`.
//! llama.cpp scales queries by head_dim^-½ (n_embd/n_head^-½ at 62 layers) and has no key
//! for `query_pre_attn_scalar`, so another value is refused; mlx-lm ignores
//! `final_logit_softcapping`, so none is written.

use super::spec::Dim::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, QueryScalar, RopeKind, TensorSpec as T, When};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::{Embedding, Linear};
use crate::source::Checkpoint;

const FRONT: &[T] = &[T::weight("token_embd.weight", "model.embed_tokens", &[Vocab, Embd], Embedding)];

/// Gemma 3 adds per-head q/k norms to Gemma 2's layer.
const QK_NORM: &[T] = &[
    T::param("attn_q_norm.weight", "self_attn.q_norm.weight", &[HeadDim]).plus_one(),
    T::param("attn_k_norm.weight", "self_attn.k_norm.weight", &[HeadDim]).plus_one(),
];

const BACK: &[T] = &[
    T::param("output_norm.weight", "model.norm.weight", &[Embd]).plus_one(),
    T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear).when(When::Untied),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "gemma3",
    rope: RopeKind::Neox,
    front: FRONT,
    layer: &[super::gemma2::ATTN, QK_NORM, super::gemma2::MLP],
    back: BACK,
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        HeadCount,
        HeadCountKv,
        KeyValueLength,
        RmsEps,
        FreqBase,
        ConfigF32 { key: "rope.freq_base_swa", config: "rope_local_base_freq", default: Some(10000.0) },
        SlidingWindow,
        SlidingWindowPattern,
        RopeScaling,
    ],
    moe: None,
    honours_head_dim: true,
    requires_head_dim: false,
    layer_types: LayerTypes::Periodic { period: 6, key: Some("sliding_window_pattern") },
    scalings: &["linear"],
    fixed_yarn_betas: false,
    default_tie: true,
    default_rope_theta: 1_000_000.0,
    default_sliding_window: 512,
    default_head_dim: Some(256),
    tie_from_weights: true,
    query_scalar: Some(QueryScalar { default: 256.0, n_layer_27b: 62 }),
    partial_rotary: false,
    space_prefix: super::spec::SpacePrefix::OffForSentencePiece,
    mixed_layers: None,
    vocab: super::spec::VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
};

/// Attention-logit soft-capping: llama.cpp's gemma3 has none (its converter asserts so).
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    match ckpt.config.opt_f64("attn_logit_softcapping")? {
        Some(v) => Err(Error::config(
            &ckpt.config.path,
            "attn_logit_softcapping",
            format!("{v}: llama.cpp's gemma3 has no attention soft-capping"),
        )),
        None => Ok(()),
    }
}
