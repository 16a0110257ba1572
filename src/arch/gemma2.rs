//! Gemma 2 (`model_type: gemma2`) → llama.cpp's `gemma2`. NEOX rope; norms stored as
//! offsets (written as `1 + w` in f32) before and after
//! attention and MLP; embeddings scaled by √n_embd inside llama.cpp; attention and final
//! logit soft-capping (mlx-lm's defaults 50 and 30 when config.json is silent); always tied
//! (llama.cpp has no output tensor for it). llama.cpp makes every other layer sliding
//! (`sliding_window`, 4096 by default); mlx-lm's class has no sliding window, so the two
//! agree up to that length. Queries: as Gemma 3 (`query_pre_attn_scalar` must be what
//! llama.cpp assumes: head_dim, or n_embd/n_head at 46 layers).

use super::spec::Dim::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, QueryScalar, RopeKind, TensorSpec as T};
use crate::plan::ModuleKind::{Embedding, Linear};

const FRONT: &[T] = &[T::weight("token_embd.weight", "model.embed_tokens", &[Vocab, Embd], Embedding)];

/// Before attention: the attention block (shared with Gemma 3).
pub const ATTN: &[T] = &[
    T::param("attn_norm.weight", "input_layernorm.weight", &[Embd]).plus_one(),
    T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
    T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear),
    T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
];

/// After attention: its post-norm and the MLP between its two norms (shared with Gemma 3).
pub const MLP: &[T] = &[
    T::param("post_attention_norm.weight", "post_attention_layernorm.weight", &[Embd]).plus_one(),
    T::param("ffn_norm.weight", "pre_feedforward_layernorm.weight", &[Embd]).plus_one(),
    T::weight("ffn_gate.weight", "mlp.gate_proj", &[Ff, Embd], Linear),
    T::weight("ffn_up.weight", "mlp.up_proj", &[Ff, Embd], Linear),
    T::weight("ffn_down.weight", "mlp.down_proj", &[Embd, Ff], Linear),
    T::param("post_ffw_norm.weight", "post_feedforward_layernorm.weight", &[Embd]).plus_one(),
];

const BACK: &[T] = &[T::param("output_norm.weight", "model.norm.weight", &[Embd]).plus_one()];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "gemma2",
    rope: RopeKind::Neox,
    front: FRONT,
    layer: &[ATTN, MLP],
    back: BACK,
    metadata: &[
        ContextLength,
        EmbeddingLength,
        BlockCount,
        FeedForwardLength,
        HeadCount,
        HeadCountKv,
        RmsEps,
        KeyValueLength,
        ConfigF32 { key: "attn_logit_softcapping", config: "attn_logit_softcapping", default: Some(50.0) },
        ConfigF32 { key: "final_logit_softcapping", config: "final_logit_softcapping", default: Some(30.0) },
        SlidingWindow,
        FreqBase,
    ],
    moe: None,
    honours_head_dim: true,
    requires_head_dim: true,
    layer_types: LayerTypes::Periodic { period: 2, key: None },
    scalings: &[],
    fixed_yarn_betas: false,
    default_tie: true,
    default_rope_theta: 10000.0,
    default_sliding_window: 4096,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: Some(QueryScalar { default: 144.0, n_layer_27b: 46 }),
    partial_rotary: false,
    space_prefix: super::spec::SpacePrefix::OffForSentencePiece,
    mixed_layers: None,
    vocab: super::spec::VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
};
