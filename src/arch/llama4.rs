//! Llama 4 (the language model of `llama4` folders, `text_config.model_type: llama4_text`)
//! → llama.cpp's `llama4`. Rope on adjacent pairs in both (mlx-lm's `traditional=True`,
//! llama.cpp's NORM rope: no permutation) with Llama 3 scaling as `rope_freqs`; every 4th
//! layer without rope, attending globally (llama.cpp's fixed step), the others chunked
//! (8192 in llama.cpp, with its fixed temperature tuning); q/k RMS-normed without weights
//! in the rope layers; experts every `interleave_moe_layer_step`-th layer, one per token,
//! its sigmoid weight applied to the input, beside a shared expert of the same size; the
//! other layers a dense MLP of `intermediate_size_mlp`.

use super::spec::groups::{ATTN_NORM, EMBED, FFN_NORM, HEAD, ROPE_FREQS};
use super::spec::Dim::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, MoeKeys, RopeKind, SpacePrefix, TensorSpec as T, VocabKind, When};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::{Linear, Switch};
use crate::source::Checkpoint;

const BIAS: When = When::Flag("attention_bias");
const MLP_FF: super::spec::Dim = Config(&["intermediate_size_mlp"]);

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

const FEED_FORWARD: &[T] = &[
    T::weight("ffn_gate.weight", "feed_forward.gate_proj", &[MLP_FF, Embd], Linear).when(When::DenseLayer),
    T::weight("ffn_up.weight", "feed_forward.up_proj", &[MLP_FF, Embd], Linear).when(When::DenseLayer),
    T::weight("ffn_down.weight", "feed_forward.down_proj", &[Embd, MLP_FF], Linear).when(When::DenseLayer),
    T::router("ffn_gate_inp.weight", "feed_forward.router", &[Experts, Embd]).when(When::MoeLayer),
    T::weight("ffn_gate_exps.weight", "feed_forward.experts.gate_proj", &[Experts, ExpFf, Embd], Switch)
        .when(When::MoeLayer),
    T::weight("ffn_up_exps.weight", "feed_forward.experts.up_proj", &[Experts, ExpFf, Embd], Switch)
        .when(When::MoeLayer),
    T::weight("ffn_down_exps.weight", "feed_forward.experts.down_proj", &[Experts, Embd, ExpFf], Switch)
        .when(When::MoeLayer),
    T::weight("ffn_gate_shexp.weight", "feed_forward.shared_expert.gate_proj", &[ShExpFf, Embd], Linear)
        .when(When::MoeLayer),
    T::weight("ffn_up_shexp.weight", "feed_forward.shared_expert.up_proj", &[ShExpFf, Embd], Linear)
        .when(When::MoeLayer),
    T::weight("ffn_down_shexp.weight", "feed_forward.shared_expert.down_proj", &[Embd, ShExpFf], Linear)
        .when(When::MoeLayer),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "llama4",
    rope: RopeKind::Norm,
    front: EMBED,
    layer: &[ATTN_NORM, ATTN, FFN_NORM, FEED_FORWARD],
    back: &[HEAD[0], HEAD[1], ROPE_FREQS[0]],
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        ConfigSum { key: "feed_forward_length", configs: &["intermediate_size_mlp"] },
        HeadCount,
        HeadCountKv,
        FreqBase,
        RmsEps,
        KeyValueLength,
        ExpertCount,
        ExpertUsedCount,
        VocabSize,
        RopeDimensionCount,
        RopeScaling,
        ConfigU32 { key: "interleave_moe_layer_step", config: "interleave_moe_layer_step", default: None },
        ExpertFeedForwardLength,
    ],
    moe: Some(MoeKeys {
        count: "num_local_experts",
        ff: "intermediate_size",
        used: &["num_experts_per_tok"],
        enabled_by: None,
        shared_ff: Some("intermediate_size"),
        shared_count: None,
        dense_lead: None,
        interleave: Some("interleave_moe_layer_step"),
    }),
    honours_head_dim: true,
    requires_head_dim: false,
    layer_types: LayerTypes::FullOnly,
    scalings: &["llama3"],
    fixed_yarn_betas: false,
    default_tie: false,
    default_rope_theta: 500_000.0,
    default_sliding_window: 0,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: false,
    space_prefix: SpacePrefix::Default,
    mixed_layers: None,
    vocab: VocabKind::Standard,
    config_defaults: &[],
    linear_attention: None,
};

/// What llama.cpp's llama4 fixes and mlx-lm's class reads from config.json.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    let fixed = |key: &str, value: f64, default: f64| -> Result<()> {
        let v = c.opt_f64(key)?.unwrap_or(default);
        if v != value {
            let msg = format!("{v}: llama.cpp's llama4 uses {value} and has no key to change it");
            return Err(Error::config(&c.path, key, msg));
        }
        Ok(())
    };
    fixed("attention_chunk_size", 8192.0, 8192.0)?;
    fixed("floor_scale", 8192.0, 8192.0)?;
    fixed("attn_scale", 0.1, 0.1)?;
    fixed("num_experts_per_tok", 1.0, 1.0)?;
    if c.opt_u64("attn_temperature_tuning")? == Some(0) {
        let msg = "0: llama.cpp's llama4 always tunes the attention temperature of layers without rope";
        return Err(Error::config(&c.path, "attn_temperature_tuning", msg));
    }
    // llama.cpp normalises q/k exactly when the model does not have 128 experts.
    let experts = c.opt_u64("num_local_experts")?.unwrap_or(0);
    if c.opt_bool("use_qk_norm")?.unwrap_or(false) != (experts != 128) {
        let msg = format!("does not match llama.cpp's llama4, which normalises q/k exactly when there are not 128 experts ({experts} here)");
        return Err(Error::config(&c.path, "use_qk_norm", msg));
    }
    Ok(())
}
