"""Synthetic gpt-oss checkpoints at the real model's per-layer shapes for the benchmark
(hidden 2880, 64 heads, 8 KV heads, head_dim 64, intermediate 2880, vocab 201,088, 32
experts), quantized as the seed model (mxfp4 experts, 8-bit affine attention and
embeddings, 8-bit g64 router) by mlx-lm's own model class and quantize_model, with a
rank-16 LoRA adapter (mlx-lm's LoRA layers) on attention, router and experts.

Packed weights and scales are filled with random data directly (the 0.8 G expert weights
per layer never exist in float), then saved with mlx-lm's save_model.

Usage: python make_checkpoint.py OUT_DIR N_LAYERS
"""
import json
import sys
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracle"))
from fixtures import build_tokenizer, gpt_oss_config  # noqa: E402


def main(out: Path, n_layers: int):
    from mlx_lm.models import gpt_oss
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import quantize_model, save_config, save_model

    model_dir, adapter_dir = out / "model", out / "adapter"
    model_dir.mkdir(parents=True, exist_ok=True)
    adapter_dir.mkdir(parents=True, exist_ok=True)
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
    mx.random.seed(0)
    params = []
    for name, p in tree_flatten(model.parameters()):
        if p.dtype == mx.uint32:
            p = mx.random.randint(0, 2**31, p.shape).astype(mx.uint32)
        elif p.dtype == mx.uint8:
            p = mx.random.randint(118, 127, p.shape).astype(mx.uint8)
        elif name.endswith(".scales"):
            p = (mx.random.uniform(1e-4, 2e-4, p.shape)).astype(p.dtype)
        elif name.endswith(".biases"):
            p = (mx.random.uniform(-0.02, 0.0, p.shape)).astype(p.dtype)
        params.append((name, p))
    model.update(tree_unflatten(params))
    mx.eval(model.parameters())
    save_model(model_dir, model, donate_model=False)
    save_config(cfg, model_dir / "config.json")
    build_tokenizer(model_dir)

    keys = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.router",
            "mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj"]
    lora = {"rank": 16, "scale": 20.0, "dropout": 0.0, "keys": keys}
    model.freeze()
    linear_to_lora_layers(model, n_layers, lora)
    trainable = dict(tree_flatten(model.trainable_parameters()))
    trainable = {k: (mx.random.normal(v.shape) * 1e-3).astype(mx.float32) for k, v in trainable.items()}
    mx.save_safetensors(str(adapter_dir / "adapters.safetensors"), trainable)
    (adapter_dir / "adapter_config.json").write_text(json.dumps(
        {"fine_tune_type": "lora", "num_layers": n_layers, "lora_parameters": lora}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
