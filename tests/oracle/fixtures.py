"""Tiny MLX checkpoints built by the real mlx-lm, and MLX's reference logits.

Every fixture is made with mlx-lm's own model class, `quantize_model` and `save_model`,
so the files are exactly what mlx-lm users have. Weights are random with a fixed seed;
all parameters (norms, biases, sinks too) are randomized so that a mis-mapped tensor
changes the logits.

CLI:  python fixtures.py gpt-oss OUT_DIR [--dtype bfloat16]
"""
import argparse
import json
import shutil
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

# Harmony special tokens in o200k_harmony order (real ids 199998..200018).
HARMONY_SPECIALS = (
    ["<|startoftext|>", "<|endoftext|>", "<|reserved_200000|>", "<|reserved_200001|>", "<|return|>",
     "<|constrain|>", "<|reserved_200004|>", "<|channel|>", "<|start|>", "<|end|>", "<|message|>",
     "<|reserved_200009|>", "<|reserved_200010|>", "<|reserved_200011|>", "<|call|>"]
    + [f"<|reserved_{i}|>" for i in range(200013, 200019)]
)

# The o200k pre-tokenizer split pattern (as in tiktoken's o200k_base).
O200K_PATTERN = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])

TRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "def convert(model_dir, outfile):\n    return write_gguf(plan(model_dir), outfile)\n",
    "Numbers 12345 and 3.14159, dates 2026-11-27; 你好世界 and café naïve résumé.",
    "MLX checkpoints become GGUF files that llama.cpp runs with the same logits.",
    "    indented code\n\ttabs\n\nnew paragraphs   with   runs of spaces.",
]

TOKENS = [3, 17, 250, 99, 42, 7, 180, 64, 5, 311, 12, 77, 128, 200, 9, 33, 1, 290, 45, 61]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|start|>{{ message['role'] }}<|message|>{{ message['content'] }}<|end|>"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
)


def gpt_oss_config(**over):
    cfg = dict(
        model_type="gpt_oss",
        hidden_size=128,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        num_local_experts=4,
        num_experts_per_tok=2,
        experts_per_token=2,
        vocab_size=384,
        rms_norm_eps=1e-5,
        sliding_window=4,
        rope_theta=150000.0,
        rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                      "original_max_position_embeddings": 4096, "truncate": False},
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=131072,
        initial_context_length=4096,
        swiglu_limit=7.0,
        attention_bias=True,
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    cfg.update(over)
    return cfg


def build_tokenizer(out: Path, n_base=300):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(O200K_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=n_base, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(TRAIN_TEXT * 4, trainer)
    tok.add_special_tokens(HARMONY_SPECIALS)
    tok.save(str(out / "tokenizer.json"))
    n = tok.get_vocab_size(with_added_tokens=True)
    ids = {t: tok.token_to_id(t) for t in HARMONY_SPECIALS}
    (out / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|return|>", "pad_token": "<|endoftext|>",
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072,
    }, indent=2))
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": ids["<|startoftext|>"],
        "eos_token_id": [ids["<|return|>"], ids["<|endoftext|>"], ids["<|call|>"]],
        "pad_token_id": ids["<|endoftext|>"],
    }, indent=2))
    return n


def randomize(model, seed):
    """Random values for every parameter, including norms, biases and sinks."""
    mx.random.seed(seed)
    params = []
    for name, p in tree_flatten(model.parameters()):
        key = name.split(".")[-1]
        if name.endswith("norm.weight") or "layernorm" in name:
            v = 1.0 + 0.1 * mx.random.normal(p.shape)
        elif key == "sinks":
            v = 0.5 * mx.random.normal(p.shape)
        elif key == "bias":
            v = 0.1 * mx.random.normal(p.shape)
        elif "embed_tokens" in name:
            v = mx.random.normal(p.shape)
        else:
            v = mx.random.uniform(-1, 1, p.shape) * (3.0 / p.shape[-1]) ** 0.5
        params.append((name, v.astype(p.dtype)))
    model.update(tree_unflatten(params))
    mx.eval(model.parameters())


def make_gpt_oss(out: Path, seed=0, dtype="bfloat16", quantize=None, config_over=None, global_scale=False):
    """quantize: None, or a dict(group_size=, bits=, mode=) or a callable predicate spec
    {"default": {...}, "router": {...}} (see quantize_gpt_oss)."""
    from mlx_lm.models import gpt_oss
    from mlx_lm.utils import save_config, save_model

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cfg = gpt_oss_config(**(config_over or {}))
    cfg["torch_dtype"] = dtype
    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(cfg))
    randomize(model, seed)
    model.set_dtype(getattr(mx, dtype))
    if quantize is not None:
        model, cfg = quantize_gpt_oss(model, cfg, quantize, global_scale)
    save_model(out, model, donate_model=False)
    save_config(cfg, out / "config.json")
    build_tokenizer(out)
    return out


def quantize_gpt_oss(model, cfg, spec, global_scale=False):
    """spec: {"default": dict(group_size, bits, mode), "router": {...}|None, "experts": {...}|None,
    "attn": {...}|None}; uses mlx-lm's quantize_model with a predicate returning per-module params."""
    from mlx_lm.utils import quantize_model

    default = spec["default"]

    def predicate(path, module):
        for key, sub in (("router", "mlp.router"), ("experts", "mlp.experts"), ("attn", "self_attn")):
            if sub in path and key in spec:
                return spec[key] if spec[key] is not None else False
        return True

    model, cfg = quantize_model(model, cfg, group_size=default["group_size"], bits=default["bits"],
                                mode=default.get("mode", "affine"), quant_predicate=predicate,
                                global_scale=global_scale)
    return model, cfg


def small_shards(weights, max_file_size_gb=None, limit=60_000):
    """A stand-in for mlx_lm.utils.make_shards that cuts shards of about `limit` bytes, so
    tiny fixtures are saved sharded the way mlx-lm shards large models."""
    shards, cur, size = [], {}, 0
    for k, v in weights.items():
        if cur and size + v.nbytes > limit:
            shards.append(cur)
            cur, size = {}, 0
        cur[k] = v
        size += v.nbytes
    return shards + [cur]


def reference_logits(model_dir: Path, tokens=TOKENS):
    """MLX's logits for `tokens`, computed in float32 from the checkpoint as mlx-lm loads it."""
    from mlx_lm.utils import load_model

    model, _ = load_model(Path(model_dir))
    model.set_dtype(mx.float32)
    logits = model(mx.array([tokens]))
    mx.eval(logits)
    return np.array(logits[0].astype(mx.float32))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["gpt-oss"])
    ap.add_argument("out")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    make_gpt_oss(Path(a.out), seed=a.seed, dtype=a.dtype)


TRAIN_DOCS = [
    "The quick brown fox jumps over the lazy dog.",
    "def convert(model_dir, outfile): return write_gguf(plan(model_dir), outfile)",
    "Numbers 12345 and 3.14159, dates 2026-11-27.",
    "MLX checkpoints become GGUF files that llama.cpp runs.",
]


def train_adapter(model_dir, out_dir, fine_tune_type="lora", keys=None, rank=4, scale=20.0, num_layers=-1,
                  iters=4, learning_rate=2e-2, seed=0):
    """Trains a real adapter with `mlx_lm lora` for a few iterations."""
    import subprocess
    import sys

    out_dir = Path(out_dir)
    data = out_dir.parent / (out_dir.name + "-data")
    data.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TRAIN_DOCS * 2))
    params = {"rank": rank, "scale": scale, "dropout": 0.0}
    if keys is not None:
        params["keys"] = keys
    cfg = {
        "model": str(model_dir), "train": True, "data": str(data), "fine_tune_type": fine_tune_type,
        "num_layers": num_layers, "batch_size": 2, "iters": iters, "val_batches": 1, "learning_rate": learning_rate,
        "steps_per_report": iters, "steps_per_eval": 1000, "save_every": 1000, "adapter_path": str(out_dir),
        "max_seq_length": 64, "seed": seed, "lora_parameters": params,
    }
    cfg_path = out_dir.parent / (out_dir.name + "-config.json")
    cfg_path.write_text(json.dumps(cfg))  # JSON is valid YAML
    p = subprocess.run([sys.executable, "-m", "mlx_lm", "lora", "-c", str(cfg_path)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"mlx_lm lora failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return out_dir


def reference_logits_with_adapter(model_dir, adapter_dir, tokens=TOKENS):
    """MLX's logits for the base model with the adapter applied unfused, in float32."""
    from mlx_lm.tuner.utils import load_adapters
    from mlx_lm.utils import load_model

    model, _ = load_model(Path(model_dir))
    model = load_adapters(model, str(adapter_dir))
    model.set_dtype(mx.float32)
    logits = model(mx.array([tokens]))
    mx.eval(logits)
    return np.array(logits[0].astype(mx.float32))


def make_gpt_oss_120b_layer(out: Path, vocab=1024, seed=0):
    """Layers at gpt-oss-120b's real shapes (hidden 2880, 64 heads, 8 KV heads, head_dim
    64, 128 experts of 2880), quantized as the seed model (mxfp4 experts, 8-bit affine
    attention, 8-bit g64 router). mlx-lm's model class and quantize_model lay out the
    tensors; the packed words and scales are then filled with random data directly, so
    the 3.2 G expert weights never exist in float."""
    from mlx_lm.models import gpt_oss
    from mlx_lm.utils import save_config, save_model

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # Two layers: mlx-lm's gpt-oss needs one of each attention kind.
    cfg = gpt_oss_config(hidden_size=2880, intermediate_size=2880, num_hidden_layers=2, num_attention_heads=64,
                         num_key_value_heads=8, head_dim=64, num_local_experts=128, num_experts_per_tok=4,
                         experts_per_token=4, vocab_size=vocab, sliding_window=128)
    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(cfg))
    model.set_dtype(mx.bfloat16)
    model, cfg = quantize_gpt_oss(model, cfg, {"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"},
                                                "router": {"group_size": 64, "bits": 8},
                                                "attn": {"group_size": 64, "bits": 8}})
    mx.random.seed(seed)
    params = []
    for name, p in tree_flatten(model.parameters()):
        if p.dtype == mx.uint32 and "experts" in name:
            p = mx.random.randint(0, 2**31, p.shape).astype(mx.uint32)
        elif p.dtype == mx.uint8:
            p = mx.random.randint(118, 127, p.shape).astype(mx.uint8)
        params.append((name, p))
    model.update(tree_unflatten(params))
    save_model(out, model, donate_model=True)
    save_config(cfg, out / "config.json")
    build_tokenizer(out)
    return out
