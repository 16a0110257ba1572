//! Mixtral (`model_type: mixtral`) → llama.cpp's `llama` with experts. mlx-lm stacks the
//! experts as `block_sparse_moe.switch_mlp.{gate,up,down}_proj` (`[E, out, in]`, which is
//! GGUF's `ffn_*_exps` byte for byte) with the router in `block_sparse_moe.gate`. Q/K rows
//! are permuted as for Llama; head size is always hidden/heads in mlx-lm's class.

use super::decoder::{DecoderSpec, MoeSpec, RopeKind};

pub const SPEC: DecoderSpec = DecoderSpec {
    arch: "llama",
    rope: RopeKind::Norm,
    qkv_bias: false,
    qk_norm: false,
    moe: Some(MoeSpec {
        block: "block_sparse_moe",
        count_key: "num_local_experts",
        ff_key: "intermediate_size",
        write_expert_ff: false,
    }),
    honours_head_dim: false,
    write_rope_dims: true,
    default_tie: false,
    default_rope_theta: 1e6,
};
