//! DeepSeek V3 (`model_type: deepseek_v3`, and `kimi_k2`, which mlx-lm runs with the same
//! class) → llama.cpp's `deepseek2`: multi-head latent attention. mlx-lm already keeps
//! `kv_b_proj` split per head as `embed_q` (`[n_head, kv_lora_rank, qk_nope]`) and
//! `unembed_out` (`[n_head, v_head, kv_lora_rank]`), which are llama.cpp's `attn_k_b` and
//! `attn_v_b` as they are. Queries through a low-rank pair with its own norm
//! (`q_lora_rank`, or one `q_proj` when null); rope on adjacent pairs (mlx-lm's
//! `traditional=True`, llama.cpp's NORM rope: no permutation) over `qk_rope_head_dim`;
//! dense MLPs in the first `first_k_dense_replace` layers, then routed experts with a
//! sigmoid router, its `e_score_correction_bias`, expert groups, renormalisation and a
//! routed scaling factor, beside shared experts; yarn with mscale.

use super::spec::groups::{ATTN_NORM, EMBED, FFN_NORM};
use super::spec::Dim::*;
use super::spec::{ArchSpec, LayerTypes, Meta::*, MoeKeys, RopeKind, SpacePrefix, TensorSpec as T, VocabKind, When};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::{Linear, Switch};
use crate::source::Checkpoint;

const Q_LORA: When = When::Positive("q_lora_rank");

pub const MLA: &[T] = &[
    T::weight(
        "attn_q.weight",
        "self_attn.q_proj",
        &[HeadsTimes(&["qk_nope_head_dim", "qk_rope_head_dim"]), Embd],
        Linear,
    )
    .when(When::NotPositive("q_lora_rank")),
    T::weight("attn_q_a.weight", "self_attn.q_a_proj", &[Config(&["q_lora_rank"]), Embd], Linear).when(Q_LORA),
    T::param("attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight", &[Config(&["q_lora_rank"])]).when(Q_LORA),
    T::weight(
        "attn_q_b.weight",
        "self_attn.q_b_proj",
        &[HeadsTimes(&["qk_nope_head_dim", "qk_rope_head_dim"]), Config(&["q_lora_rank"])],
        Linear,
    )
    .when(Q_LORA),
    T::weight(
        "attn_kv_a_mqa.weight",
        "self_attn.kv_a_proj_with_mqa",
        &[Config(&["kv_lora_rank", "qk_rope_head_dim"]), Embd],
        Linear,
    ),
    T::param("attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight", &[Config(&["kv_lora_rank"])]),
    // Per head: kv_lora_rank rows of qk_nope (keys) and v_head rows of kv_lora_rank (values).
    T::weight(
        "attn_k_b.weight",
        "self_attn.embed_q",
        &[Heads, Config(&["kv_lora_rank"]), Config(&["qk_nope_head_dim"])],
        Switch,
    ),
    T::weight(
        "attn_v_b.weight",
        "self_attn.unembed_out",
        &[Heads, Config(&["v_head_dim"]), Config(&["kv_lora_rank"])],
        Switch,
    ),
    T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, HeadsTimes(&["v_head_dim"])], Linear),
];

/// Dense MLPs in the leading layers (shared with GLM-4.5).
pub const DENSE_MLP: &[T] = &[
    T::weight("ffn_gate.weight", "mlp.gate_proj", &[Ff, Embd], Linear).when(When::DenseLayer),
    T::weight("ffn_up.weight", "mlp.up_proj", &[Ff, Embd], Linear).when(When::DenseLayer),
    T::weight("ffn_down.weight", "mlp.down_proj", &[Embd, Ff], Linear).when(When::DenseLayer),
];

/// Routed experts with a sigmoid router and its correction bias, beside shared experts
/// (shared with GLM-4.5).
pub const MOE: &[T] = &[
    T::router("ffn_gate_inp.weight", "mlp.gate", &[Experts, Embd]).when(When::MoeLayer),
    T::param("exp_probs_b.bias", "mlp.gate.e_score_correction_bias", &[Experts]).when(When::MoeLayer).optional(),
    T::weight("ffn_gate_exps.weight", "mlp.switch_mlp.gate_proj", &[Experts, ExpFf, Embd], Switch).when(When::MoeLayer),
    T::weight("ffn_up_exps.weight", "mlp.switch_mlp.up_proj", &[Experts, ExpFf, Embd], Switch).when(When::MoeLayer),
    T::weight("ffn_down_exps.weight", "mlp.switch_mlp.down_proj", &[Experts, Embd, ExpFf], Switch).when(When::MoeLayer),
    T::weight("ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj", &[ShExpFf, Embd], Linear).when(When::MoeLayer),
    T::weight("ffn_up_shexp.weight", "mlp.shared_experts.up_proj", &[ShExpFf, Embd], Linear).when(When::MoeLayer),
    T::weight("ffn_down_shexp.weight", "mlp.shared_experts.down_proj", &[Embd, ShExpFf], Linear).when(When::MoeLayer),
];

pub const BACK: &[T] = &[
    T::param("output_norm.weight", "model.norm.weight", &[Embd]),
    T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear),
];

pub const SPEC: ArchSpec = ArchSpec {
    arch: "deepseek2",
    rope: RopeKind::Norm,
    front: EMBED,
    layer: &[ATTN_NORM, MLA, FFN_NORM, DENSE_MLP, MOE],
    back: BACK,
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        HeadCount,
        // MLA runs as multi-query attention over the latent: one KV head.
        FixedU32 { key: "attention.head_count_kv", value: 1 },
        FreqBase,
        RmsEps,
        ExpertCount,
        ExpertUsedCount,
        ConfigU32 { key: "expert_group_count", config: "n_group", default: None },
        ConfigU32 { key: "expert_group_used_count", config: "topk_group", default: None },
        // mlx-lm's class scores with a sigmoid whatever `scoring_func` says.
        FixedU32 { key: "expert_gating_func", value: 2 },
        ConfigU32 { key: "leading_dense_block_count", config: "first_k_dense_replace", default: Some(0) },
        VocabSize,
        // 0 without a q LoRA: llama.cpp requires the key (but for its "lite" layer counts).
        ConfigSum { key: "attention.q_lora_rank", configs: &["q_lora_rank"] },
        ConfigU32 { key: "attention.kv_lora_rank", config: "kv_lora_rank", default: Some(512) },
        ConfigSum { key: "attention.key_length", configs: &["kv_lora_rank", "qk_rope_head_dim"] },
        ConfigSum { key: "attention.value_length", configs: &["kv_lora_rank"] },
        ConfigSum { key: "attention.key_length_mla", configs: &["qk_nope_head_dim", "qk_rope_head_dim"] },
        ConfigSum { key: "attention.value_length_mla", configs: &["v_head_dim"] },
        ExpertFeedForwardLength,
        ConfigU32 { key: "expert_shared_count", config: "n_shared_experts", default: Some(0) },
        ConfigF32 { key: "expert_weights_scale", config: "routed_scaling_factor", default: Some(1.0) },
        ConfigTrue { key: "expert_weights_norm", config: "norm_topk_prob", default: true },
        ConfigSum { key: "rope.dimension_count", configs: &["qk_rope_head_dim"] },
        RopeScaling,
        YarnLogMul,
    ],
    moe: Some(MoeKeys {
        count: "n_routed_experts",
        ff: "moe_intermediate_size",
        used: &["num_experts_per_tok"],
        enabled_by: None,
        shared_ff: None,
        shared_count: Some("n_shared_experts"),
        dense_lead: Some("first_k_dense_replace"),
        interleave: None,
    }),
    honours_head_dim: false,
    requires_head_dim: false,
    layer_types: LayerTypes::FullOnly,
    scalings: &["yarn"],
    fixed_yarn_betas: false,
    default_tie: false,
    default_rope_theta: 10000.0,
    default_sliding_window: 0,
    default_head_dim: None,
    tie_from_weights: false,
    query_scalar: None,
    partial_rotary: false,
    space_prefix: SpacePrefix::Default,
    mixed_layers: None,
    vocab: VocabKind::Standard,
    config_defaults: &[
        ("q_lora_rank", 1536),
        ("kv_lora_rank", 512),
        ("qk_rope_head_dim", 64),
        ("v_head_dim", 128),
        ("qk_nope_head_dim", 128),
    ],
    linear_attention: None,
};

/// What mlx-lm's class or llama.cpp's deepseek2 cannot run.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    if c.opt_bool("attention_bias")?.unwrap_or(false) {
        return Err(Error::config(&c.path, "attention_bias", "true: llama.cpp's deepseek2 has no attention biases"));
    }
    if c.opt_u64("moe_layer_freq")?.is_some_and(|f| f != 1) {
        let msg =
            "experts every few layers: llama.cpp's deepseek2 has them in every layer after the leading dense ones";
        return Err(Error::config(&c.path, "moe_layer_freq", msg));
    }
    if c.opt_u64("n_shared_experts")?.unwrap_or(0) == 0 {
        let msg = "missing or 0: llama.cpp's deepseek2 needs shared experts beside the routed ones";
        return Err(Error::config(&c.path, "n_shared_experts", msg));
    }
    if let Some(m) = c.get("topk_method").and_then(|v| v.as_str()).filter(|m| *m != "noaux_tc") {
        let msg = format!("'{m}': mlx-lm's deepseek_v3 class runs only noaux_tc");
        return Err(Error::config(&c.path, "topk_method", msg));
    }
    Ok(())
}
