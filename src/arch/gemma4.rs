//! Gemma 4 (`model_type: gemma4_text`, and the language model of `gemma4` folders) →
//! llama.cpp's `gemma4`. Unlike Gemma 2/3, norms are plain scales (no `1 + w`) and
//! attention is unscaled (queries and keys are RMS-normed per head, values too without a
//! weight). Layers differ by type: full-attention layers have their own head size
//! (`global_head_dim`), may use their keys as values (`attention_k_eq_v`, with
//! `num_global_key_value_heads`) and turn only part of each head ("proportional" rope, as
//! factors in `rope_freqs`); the last `num_kv_shared_layers` layers reuse earlier layers'
//! KV caches and (`use_double_wide_mlp`) have MLPs twice as wide. Optional per-layer input
//! embeddings (`hidden_size_per_layer_input`), an MoE block beside the MLP
//! (`enable_moe_block`: router with its own scale and per-expert output scales), a
//! per-layer output scalar, and final logit soft-capping. The vocabulary is tokenizer.json
//! written as llama.cpp's `gemma4` tokenizer model.

use super::spec::Dim::*;
use super::spec::{
    ArchSpec, LayerTypes, Meta::*, MixedLayers, MoeKeys, RopeKind, Source, SpacePrefix, TensorSpec as T, VocabKind,
    When,
};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::{Embedding, Linear, Switch};
use crate::source::Checkpoint;

const PLE: When = When::Positive("hidden_size_per_layer_input");
const MOE: When = When::Flag("enable_moe_block");

const FRONT: &[T] = &[
    T::weight("token_embd.weight", "model.embed_tokens", &[Vocab, Embd], Embedding),
    T::weight("per_layer_token_embd.weight", "model.embed_tokens_per_layer", &[Vocab, PerLayerEmbdAll], Embedding)
        .when(PLE),
    T::weight("per_layer_model_proj.weight", "model.per_layer_model_projection", &[PerLayerEmbdAll, Embd], Linear)
        .when(PLE),
    T::param("per_layer_proj_norm.weight", "model.per_layer_projection_norm.weight", &[PerLayerEmbd]).when(PLE),
];

const ATTN: &[T] = &[
    T::param("attn_norm.weight", "input_layernorm.weight", &[Embd]),
    T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
    T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear).when(When::HasKv),
    T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear).when(When::HasV),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
    T::param("attn_q_norm.weight", "self_attn.q_norm.weight", &[HeadDim]),
    T::param("attn_k_norm.weight", "self_attn.k_norm.weight", &[HeadDim]).when(When::HasKv),
    T::param("post_attention_norm.weight", "post_attention_layernorm.weight", &[Embd]),
    T::param("layer_output_scale.weight", "layer_scalar", &[One]),
];

const MLP: &[T] = &[
    T::param("ffn_norm.weight", "pre_feedforward_layernorm.weight", &[Embd]),
    T::weight("ffn_gate.weight", "mlp.gate_proj", &[Ff, Embd], Linear),
    T::weight("ffn_up.weight", "mlp.up_proj", &[Ff, Embd], Linear),
    T::weight("ffn_down.weight", "mlp.down_proj", &[Embd, Ff], Linear),
    T::param("post_ffw_norm.weight", "post_feedforward_layernorm.weight", &[Embd]),
];

/// The experts beside the MLP (the 26B-A4B model).
const EXPERTS: &[T] = &[
    T::router("ffn_gate_inp.weight", "router.proj", &[Experts, Embd]).when(MOE),
    T::param("ffn_gate_inp.scale", "router.scale", &[Embd]).when(MOE),
    T::param("pre_ffw_norm_2.weight", "pre_feedforward_layernorm_2.weight", &[Embd]).when(MOE),
    T::param("post_ffw_norm_1.weight", "post_feedforward_layernorm_1.weight", &[Embd]).when(MOE),
    T::param("post_ffw_norm_2.weight", "post_feedforward_layernorm_2.weight", &[Embd]).when(MOE),
    T::weight("ffn_gate_exps.weight", "experts.switch_glu.gate_proj", &[Experts, ExpFf, Embd], Switch).when(MOE),
    T::weight("ffn_up_exps.weight", "experts.switch_glu.up_proj", &[Experts, ExpFf, Embd], Switch).when(MOE),
    T::weight("ffn_down_exps.weight", "experts.switch_glu.down_proj", &[Experts, Embd, ExpFf], Switch).when(MOE),
    // The router's per-expert weights scale each expert's output: llama.cpp's down scale.
    T::param("ffn_down_exps.scale", "router.per_expert_scale", &[Experts]).when(MOE),
];

const PER_LAYER_INPUT: &[T] = &[
    T::weight("inp_gate.weight", "per_layer_input_gate", &[PerLayerEmbd, Embd], Linear).when(PLE),
    T::weight("proj.weight", "per_layer_projection", &[Embd, PerLayerEmbd], Linear).when(PLE),
    T::param("post_norm.weight", "post_per_layer_input_norm.weight", &[Embd]).when(PLE),
];

const BACK: &[T] = &[
    T::param("output_norm.weight", "model.norm.weight", &[Embd]),
    T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear).when(When::Untied),
    T::param("rope_freqs.weight", "rope_parameters", &[HalfHeadDim]).computed(Source::ProportionalRope),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "gemma4",
    rope: RopeKind::Neox,
    front: FRONT,
    layer: &[ATTN, MLP, EXPERTS, PER_LAYER_INPUT],
    back: BACK,
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        HeadCount,
        HeadCountKv,
        FreqBase,
        RmsEps,
        KeyValueLength,
        ConfigF32 { key: "final_logit_softcapping", config: "final_logit_softcapping", default: Some(30.0) },
        SlidingWindow,
        ConfigU32 { key: "attention.shared_kv_layers", config: "num_kv_shared_layers", default: Some(20) },
        ConfigU32 {
            key: "embedding_length_per_layer_input",
            config: "hidden_size_per_layer_input",
            default: Some(256),
        },
        SlidingWindowPattern,
        KeyValueLengthSwa,
        ExpertFeedForwardLength,
        RopeDimensionCount,
        RopeDimensionCountSwa,
        FreqBaseSwa,
        ExpertCount,
        ExpertUsedCount,
    ],
    moe: Some(MoeKeys {
        count: "num_experts",
        ff: "moe_intermediate_size",
        used: &["top_k_experts"],
        enabled_by: Some("enable_moe_block"),
        shared_ff: None,
        shared_count: None,
        dense_lead: None,
        interleave: None,
    }),
    honours_head_dim: true,
    requires_head_dim: false,
    layer_types: LayerTypes::Listed { period: 5, key: "sliding_window_pattern" },
    scalings: &[],
    fixed_yarn_betas: false,
    default_tie: true,
    default_rope_theta: 1_000_000.0,
    default_sliding_window: 512,
    default_head_dim: Some(256),
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: false,
    space_prefix: SpacePrefix::OffForSentencePiece,
    mixed_layers: Some(MixedLayers {
        global_head_dim: "global_head_dim",
        global_kv_heads: "num_global_key_value_heads",
        k_eq_v: "attention_k_eq_v",
        kv_shared: "num_kv_shared_layers",
        double_wide_mlp: "use_double_wide_mlp",
        rope_parameters: "rope_parameters",
        per_layer_input: "hidden_size_per_layer_input",
    }),
    vocab: VocabKind::Gemma4,
    config_defaults: &[],
    linear_attention: None,
};

/// What llama.cpp's gemma4 cannot express.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    let rows = c.opt_u64("vocab_size")?;
    // Both embeddings are indexed by the same token ids in llama.cpp.
    if let (Some(per_layer), Some(rows)) = (c.opt_u64("vocab_size_per_layer_input")?, rows) {
        if per_layer != rows && ckpt.tensors.contains("model.embed_tokens_per_layer.weight") {
            let msg =
                format!("{per_layer}, but vocab_size is {rows}: llama.cpp indexes both embeddings with one vocabulary");
            return Err(Error::config(&c.path, "vocab_size_per_layer_input", msg));
        }
    }
    if c.opt_bool("attention_bias")?.unwrap_or(false) {
        return Err(Error::config(&c.path, "attention_bias", "true: llama.cpp's gemma4 has no attention biases"));
    }
    Ok(())
}
