"""What the synthetic benchmark checkpoints share: random packed weights and scales for an
mlx-lm model already quantized by quantize_model (the large weights never exist in float),
saving it as mlx-lm does, and a random rank-16 LoRA adapter from mlx-lm's own LoRA layers."""
import json
import sys
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracle"))
from fixtures import build_tokenizer  # noqa: E402


def save_random_quantized(model, cfg, model_dir: Path):
    """Fills every packed weight, scale and bias with random values and saves the model,
    its config and a tokenizer."""
    from mlx_lm.utils import save_config, save_model

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
    model_dir.mkdir(parents=True, exist_ok=True)
    save_model(model_dir, model, donate_model=False)
    save_config(cfg, model_dir / "config.json")
    build_tokenizer(model_dir)


def save_random_lora(model, n_layers: int, keys, adapter_dir: Path):
    """A rank-16 LoRA on `keys` of the last `n_layers` layers, small random values."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    adapter_dir.mkdir(parents=True, exist_ok=True)
    lora = {"rank": 16, "scale": 20.0, "dropout": 0.0, "keys": keys}
    model.freeze()
    linear_to_lora_layers(model, n_layers, lora)
    trainable = dict(tree_flatten(model.trainable_parameters()))
    trainable = {k: (mx.random.normal(v.shape) * 1e-3).astype(mx.float32) for k, v in trainable.items()}
    mx.save_safetensors(str(adapter_dir / "adapters.safetensors"), trainable)
    (adapter_dir / "adapter_config.json").write_text(json.dumps(
        {"fine_tune_type": "lora", "num_layers": n_layers, "lora_parameters": lora}, indent=2))
