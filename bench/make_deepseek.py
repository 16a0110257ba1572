"""A synthetic DeepSeek V3 checkpoint at the real model's per-layer shapes for the memory
benchmark (hidden 7168, 128 heads, q_lora_rank 1536, kv_lora_rank 512, rope 64 + no-rope 128
dims, v_head 128; layer 0 dense with intermediate 18432, then MoE layers with 8 of the 256
experts of 2048 and one shared expert), quantized as mlx-community's 4-bit conversions
(affine 4-bit g64, 8-bit embeddings) by mlx-lm's own model class and quantize_model, with a
rank-16 LoRA adapter on attention, routed and shared experts. The vocabulary is cut to 32,000
rows (the embedding is not a per-layer shape). Packed weights and scales are random.

Usage: python make_deepseek.py OUT_DIR N_LAYERS
"""
import sys
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracle"))
from synthetic import save_random_lora, save_random_quantized  # noqa: E402


def config(n_layers):
    return dict(model_type="deepseek_v3", architectures=["DeepseekV3ForCausalLM"], vocab_size=32000,
                hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048, num_hidden_layers=n_layers,
                num_attention_heads=128, num_key_value_heads=128, n_shared_experts=1, n_routed_experts=8,
                routed_scaling_factor=2.5, kv_lora_rank=512, q_lora_rank=1536, qk_rope_head_dim=64,
                v_head_dim=128, qk_nope_head_dim=128, topk_method="noaux_tc", scoring_func="sigmoid",
                norm_topk_prob=True, n_group=1, topk_group=1, num_experts_per_tok=8, moe_layer_freq=1,
                first_k_dense_replace=1, max_position_embeddings=163840, rms_norm_eps=1e-6, rope_theta=10000.0,
                rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                              "original_max_position_embeddings": 4096, "type": "yarn"},
                attention_bias=False, tie_word_embeddings=False)


def main(out: Path, n_layers: int):
    from mlx_lm.models import deepseek_v3
    from mlx_lm.utils import quantize_model

    model_dir, adapter_dir = out / "model", out / "adapter"
    cfg = config(n_layers)
    model = deepseek_v3.Model(deepseek_v3.ModelArgs.from_dict(cfg))
    model.set_dtype(mx.bfloat16)

    def predicate(path, module):
        if "embed_tokens" in path or "lm_head" in path:
            return {"group_size": 64, "bits": 8}
        return {"group_size": 64, "bits": 4}

    model, cfg = quantize_model(model, cfg, group_size=64, bits=4, quant_predicate=predicate)
    save_random_quantized(model, cfg, model_dir)

    keys = ["self_attn.q_a_proj", "self_attn.q_b_proj", "self_attn.kv_a_proj_with_mqa", "self_attn.o_proj",
            "mlp.switch_mlp.gate_proj", "mlp.switch_mlp.up_proj", "mlp.switch_mlp.down_proj",
            "mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj", "mlp.shared_experts.down_proj"]
    save_random_lora(model, n_layers, keys, adapter_dir)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
