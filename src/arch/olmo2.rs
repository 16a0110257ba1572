//! OLMo 2 (`model_type: olmo2`) → llama.cpp's `olmo2`: NEOX rope; RMSNorm on the whole
//! query and key projections (not per head) before rope; norms after attention and after
//! the MLP instead of before (`post_attention_norm`, `post_ffw_norm`); no biases; an
//! output matrix of its own (llama.cpp requires it, so tied embeddings are refused).

use super::spec::Dim::*;
use super::spec::{ArchSpec, TensorSpec as T};
use crate::plan::ModuleKind::Linear;

const LAYER: &[T] = &[
    T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
    T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear),
    T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
    T::param("attn_q_norm.weight", "self_attn.q_norm.weight", &[Q]),
    T::param("attn_k_norm.weight", "self_attn.k_norm.weight", &[Kv]),
    T::param("post_attention_norm.weight", "post_attention_layernorm.weight", &[Embd]),
    T::weight("ffn_gate.weight", "mlp.gate_proj", &[Ff, Embd], Linear),
    T::weight("ffn_up.weight", "mlp.up_proj", &[Ff, Embd], Linear),
    T::weight("ffn_down.weight", "mlp.down_proj", &[Embd, Ff], Linear),
    T::param("post_ffw_norm.weight", "post_feedforward_layernorm.weight", &[Embd]),
];

const BACK: &[T] = &[
    T::param("output_norm.weight", "model.norm.weight", &[Embd]),
    T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear),
];

/// As Qwen3's keys and rope, with its own layer layout and output; tied by default in
/// mlx-lm (refused: llama.cpp needs the output), rope base 10000.
pub const SPEC: ArchSpec = ArchSpec {
    arch: "olmo2",
    layer: &[LAYER],
    back: BACK,
    default_tie: true,
    default_rope_theta: 10000.0,
    ..super::qwen3::SPEC
};
