"""Synthetic gpt-oss checkpoints at the real model's per-layer shapes for the benchmark
(hidden 2880, 64 heads, 8 KV heads, head_dim 64, intermediate 2880, vocab 201,088, 32
experts), quantized as the seed model (mxfp4 experts, 8-bit affine attention and
embeddings, 8-bit g64 router) by mlx-lm's own model class and quantize_model, with a
rank-16 LoRA adapter (mlx-lm's LoRA layers) on attention, router and experts.

Packed weights and scales are filled with random data directly (the 0.8 G expert weights
per layer never exist in float), then saved with mlx-lm's save_model.

Usage: python make_checkpoint.py OUT_DIR N_LAYERS
"""
import sys
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracle"))
from fixtures import gpt_oss_config  # noqa: E402
from synthetic import save_random_lora, save_random_quantized  # noqa: E402


def main(out: Path, n_layers: int):
    from mlx_lm.models import gpt_oss
    from mlx_lm.utils import quantize_model

    model_dir, adapter_dir = out / "model", out / "adapter"
    cfg = gpt_oss_config(hidden_size=2880, intermediate_size=2880, num_hidden_layers=n_layers,
                         num_attention_heads=64, num_key_value_heads=8, head_dim=64, num_local_experts=32,
                         num_experts_per_tok=4, experts_per_token=4, vocab_size=201088, sliding_window=128,
                         layer_types=["sliding_attention", "full_attention"] * (n_layers // 2))
    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(cfg))
    model.set_dtype(mx.bfloat16)

    def predicate(path, module):
        if "router" in path:
            return {"group_size": 64, "bits": 8}
        if "experts" in path:
            return {"group_size": 32, "bits": 4, "mode": "mxfp4"}
        return {"group_size": 64, "bits": 8}

    model, cfg = quantize_model(model, cfg, group_size=64, bits=8, quant_predicate=predicate)
    save_random_quantized(model, cfg, model_dir)

    keys = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.router",
            "mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj"]
    save_random_lora(model, n_layers, keys, adapter_dir)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
