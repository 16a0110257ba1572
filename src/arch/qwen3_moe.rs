//! Qwen3-MoE (`model_type: qwen3_moe`) → llama.cpp's `qwen3moe`: Qwen3 attention with
//! experts stacked by mlx-lm as `mlp.switch_mlp.*` and the router in `mlp.gate`. llama.cpp
//! needs experts in every layer and always renormalises the top-k weights, so dense
//! layers (`mlp_only_layers`, `decoder_sparse_step`) and `norm_topk_prob: false` are refused.

use crate::error::{Error, Result};
use crate::plan::{Plan, PlanOptions};
use crate::source::Checkpoint;

use super::decoder::{DecoderSpec, MoeSpec, RopeKind};

pub const SPEC: DecoderSpec = DecoderSpec {
    arch: "qwen3moe",
    rope: RopeKind::Neox,
    qkv_bias: false,
    qk_norm: true,
    moe: Some(MoeSpec {
        block: "mlp",
        count_key: "num_experts",
        ff_key: "moe_intermediate_size",
        write_expert_ff: true,
    }),
    honours_head_dim: true,
    write_rope_dims: false,
    default_tie: false,
    default_rope_theta: 1e6,
};

pub fn plan(ckpt: &Checkpoint, opts: &PlanOptions) -> Result<Plan> {
    let c = &ckpt.config;
    if c.opt_bool("norm_topk_prob")? == Some(false) {
        return Err(Error::config(
            &c.path,
            "norm_topk_prob",
            "false: llama.cpp's qwen3moe always renormalises the selected experts' weights",
        ));
    }
    let dense = c.get("mlp_only_layers").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
    if dense || c.opt_u64("decoder_sparse_step")?.is_some_and(|s| s != 1) {
        return Err(Error::config(
            &c.path,
            "mlp_only_layers",
            "dense MLP layers in a qwen3_moe model: llama.cpp's qwen3moe needs experts in every layer",
        ));
    }
    super::decoder::plan(ckpt, &SPEC, opts)
}
