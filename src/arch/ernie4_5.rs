//! ERNIE 4.5 dense (`model_type: ernie4_5`) → llama.cpp's `ernie4_5`. llama.cpp's rope for it
//! is NORM (adjacent pairs), and mlx-lm's class applies rope `traditional=True` (adjacent
//! pairs too): the weights are already in that layout, so Q/K rows are not permuted. Biases
//! follow `use_bias`; llama.cpp loads them on attention only, so an MLP bias is refused (by
//! the every-tensor-used rule).

use super::spec::groups::{ATTN_NORM, FFN_NORM, HEAD};
use super::spec::Dim::*;
use super::spec::{ArchSpec, RopeKind, TensorSpec as T, When};
use crate::plan::ModuleKind::Linear;

const BIAS: When = When::Flag("use_bias");

const ATTN: &[T] = &[
    T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
    T::param("attn_q.bias", "self_attn.q_proj.bias", &[Q]).when(BIAS),
    T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear),
    T::param("attn_k.bias", "self_attn.k_proj.bias", &[Kv]).when(BIAS),
    T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
    T::param("attn_v.bias", "self_attn.v_proj.bias", &[Kv]).when(BIAS),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
    T::param("attn_output.bias", "self_attn.o_proj.bias", &[Embd]).when(BIAS),
];

const MLP: &[T] = &[
    T::weight("ffn_gate.weight", "mlp.gate_proj", &[Ff, Embd], Linear),
    T::weight("ffn_up.weight", "mlp.up_proj", &[Ff, Embd], Linear),
    T::weight("ffn_down.weight", "mlp.down_proj", &[Embd, Ff], Linear),
];

/// Qwen3's keys with NORM rope, its own attention, no rope scaling, untied by default.
pub const SPEC: ArchSpec = ArchSpec {
    arch: "ernie4_5",
    rope: RopeKind::Norm,
    layer: &[ATTN_NORM, ATTN, FFN_NORM, MLP],
    back: HEAD,
    scalings: &[],
    default_rope_theta: 500000.0,
    // llama.cpp's converter: the tokenizer's add_prefix_space, as for Llama.
    space_prefix: super::spec::SpacePrefix::FromTokenizerConfig,
    mixed_layers: None,
    vocab: super::spec::VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
    ..super::qwen3::SPEC
};
