//! DeepSeek V2 / V2.5 / V2-Lite (`model_type: deepseek_v2`) → llama.cpp's `deepseek2`, as
//! DeepSeek V3 but for two things. mlx-lm's V2 class keeps `kv_b_proj` whole (per head
//! `qk_nope` key rows then `v_head` value rows): llama.cpp's `attn_k_b` is each head's key
//! rows transposed and `attn_v_b` its value rows, as its converter splits them; dequantized
//! (and with any adapter fused) first when quantized. The router is a softmax without
//! renormalisation or correction bias, scaled by `routed_scaling_factor`.

use super::deepseek_v3::{BACK, DENSE_MLP};
use super::spec::groups::{ATTN_NORM, EMBED, FFN_NORM};
use super::spec::Dim::*;
use super::spec::{ArchSpec, HeadSplit, Meta::*, MoeKeys, TensorSpec as T, When};
use crate::error::{Error, Result};
use crate::plan::ModuleKind::{Linear, Switch};
use crate::source::Checkpoint;

const KV_B: &[&str] = &["qk_nope_head_dim", "v_head_dim"];

/// V3's attention with `embed_q` / `unembed_out` made from `kv_b_proj`.
const MLA: &[T] = &[
    super::deepseek_v3::MLA[0],
    super::deepseek_v3::MLA[1],
    super::deepseek_v3::MLA[2],
    super::deepseek_v3::MLA[3],
    super::deepseek_v3::MLA[4],
    super::deepseek_v3::MLA[5],
    T::weight(
        "attn_k_b.weight",
        "self_attn.kv_b_proj",
        &[Heads, Config(&["kv_lora_rank"]), Config(&["qk_nope_head_dim"])],
        Linear,
    )
    .split(HeadSplit { parts: KV_B, part: 0, transpose: true }),
    T::weight(
        "attn_v_b.weight",
        "self_attn.kv_b_proj",
        &[Heads, Config(&["v_head_dim"]), Config(&["kv_lora_rank"])],
        Linear,
    )
    .split(HeadSplit { parts: KV_B, part: 1, transpose: false }),
    super::deepseek_v3::MLA[8],
];

const MOE: &[T] = &[
    T::router("ffn_gate_inp.weight", "mlp.gate", &[Experts, Embd]).when(When::MoeLayer),
    T::weight("ffn_gate_exps.weight", "mlp.switch_mlp.gate_proj", &[Experts, ExpFf, Embd], Switch).when(When::MoeLayer),
    T::weight("ffn_up_exps.weight", "mlp.switch_mlp.up_proj", &[Experts, ExpFf, Embd], Switch).when(When::MoeLayer),
    T::weight("ffn_down_exps.weight", "mlp.switch_mlp.down_proj", &[Experts, Embd, ExpFf], Switch).when(When::MoeLayer),
    T::weight("ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj", &[ShExpFf, Embd], Linear).when(When::MoeLayer),
    T::weight("ffn_up_shexp.weight", "mlp.shared_experts.up_proj", &[ShExpFf, Embd], Linear).when(When::MoeLayer),
    T::weight("ffn_down_shexp.weight", "mlp.shared_experts.down_proj", &[Embd, ShExpFf], Linear).when(When::MoeLayer),
];

pub const SPEC: ArchSpec = ArchSpec {
    layer: &[ATTN_NORM, MLA, FFN_NORM, DENSE_MLP, MOE],
    back: BACK,
    front: EMBED,
    metadata: &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        HeadCount,
        FixedU32 { key: "attention.head_count_kv", value: 1 },
        FreqBase,
        RmsEps,
        ExpertCount,
        ExpertUsedCount,
        // mlx-lm's V2 router is a softmax.
        FixedU32 { key: "expert_gating_func", value: 1 },
        ConfigU32 { key: "leading_dense_block_count", config: "first_k_dense_replace", default: Some(0) },
        VocabSize,
        ConfigSum { key: "attention.q_lora_rank", configs: &["q_lora_rank"] },
        ConfigU32 { key: "attention.kv_lora_rank", config: "kv_lora_rank", default: Some(512) },
        ConfigSum { key: "attention.key_length", configs: &["kv_lora_rank", "qk_rope_head_dim"] },
        ConfigSum { key: "attention.value_length", configs: &["kv_lora_rank"] },
        ConfigSum { key: "attention.key_length_mla", configs: &["qk_nope_head_dim", "qk_rope_head_dim"] },
        ConfigSum { key: "attention.value_length_mla", configs: &["v_head_dim"] },
        ExpertFeedForwardLength,
        ConfigU32 { key: "expert_shared_count", config: "n_shared_experts", default: Some(0) },
        ConfigF32 { key: "expert_weights_scale", config: "routed_scaling_factor", default: Some(1.0) },
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
    ..super::deepseek_v3::SPEC
};

/// What mlx-lm's V2 class runs and llama.cpp's deepseek2 cannot.
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
    // mlx-lm's group-limited routing keeps the groups with the best single expert; llama.cpp's
    // the groups with the best two: they choose different experts.
    let limited = c.get("topk_method").and_then(|v| v.as_str()) == Some("group_limited_greedy");
    let (groups, used) = (c.opt_u64("n_group")?.unwrap_or(1), c.opt_u64("topk_group")?.unwrap_or(1));
    if limited && used < groups {
        let msg = format!("group_limited_greedy over {groups} groups: llama.cpp ranks expert groups by their best two experts, DeepSeek V2 by its best one");
        return Err(Error::config(&c.path, "topk_method", msg));
    }
    Ok(())
}
