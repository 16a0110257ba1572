"""Tiny MLX checkpoints of the llama, mistral, mixtral, qwen2, qwen3 and qwen3_moe families,
built by the real mlx-lm (model class, `quantize_model`, `save_model`, `save_config`), with
byte-level BPE tokenizers whose pre-tokenizer regexes are Llama 3's and Qwen2's.

Shapes are tiny but keep what matters: hidden 256 (one K-quant super-block per row), 2 layers,
4 heads / 2 KV heads (GQA), intermediate 512, MoE 4 experts top-2. Every parameter is random
(norms, q/k norms and q/k/v biases too), and every checkpoint mixes several MLX quantization
modes (per-module entries in config.json), as mlx-lm writes them.

CLI:  python arch_fixtures.py ARCH OUT_DIR [--adapter]      (ARCH in ARCHS, or "all")
"""
import argparse
import json
import math
import re
import shutil
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from fixtures import TRAIN_TEXT, train_adapter

ARCHS = ["llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "olmo2", "granite", "gemma2", "gemma3_text",
         "smollm3", "ernie4_5", "phi3", "gemma4_text", "gemma4_moe", "qwen2_moe", "deepseek_v3", "kimi_k2", "glm4_moe", "llama4", "qwen3_next", "qwen3_5", "qwen3_5_moe", "deepseek_v2"]

# llama.cpp's CPU GELU goes through an F16 table, so Gemma (GELU-tanh MLPs) matches MLX
# less closely than SwiGLU models; llama.cpp's own converter lands at the same distance.
# (no adapter, with adapter) bounds on max |Δlogit|; every other architecture: 1e-3, 1e-2.
TOLERANCE = {"gemma2": (5e-3, 3e-2), "gemma3_text": (5e-3, 3e-2), "gemma4_text": (5e-3, 3e-2),
             "gemma4_moe": (5e-3, 3e-2)}


def tolerance(arch):
    return TOLERANCE.get(arch, (1e-3, 1e-2))

# The pre-tokenizer regexes as they appear in the real tokenizer.json files (llama.cpp's
# llama-vocab.cpp quotes them as the "original regex" for LLAMA3 and QWEN2). The only
# difference: Llama 3 groups digits by up to three, Qwen2 splits every digit.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Llama 3's first special tokens, in their real order (real ids 128000..).
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                   "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
                   "<|reserved_special_token_3|>"]
# Qwen2/3 added tokens in their real order (real ids 151643..); the last ones are added
# tokens with "special": false in the real tokenizer.json (USER_DEFINED in GGUF).
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
QWEN_NON_SPECIAL = ["<tool_call>", "</tool_call>", "<think>", "</think>"]

LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# A training corpus with some of everything the tokenization test throws at the tokenizer,
# so that merges exist for words, digits, whitespace runs, code, accents and CJK.
BPE_CORPUS = TRAIN_TEXT + [
    "I'm sure you'll see they've done it; we'd go if it's there. YOU'RE RIGHT, he'S THERE, I'LL GO.",
    "In 1969, 384400 km away; 3.14159265, 1,000,000 and 0x1F; 12 + 34 = 46; 2026-05-17T12:00:00Z.",
    "for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];\n}\nreturn sum;\n",
    "import numpy as np\n\nclass Model:\n    def __init__(self, dim=256):\n        self.dim = dim\n",
    "Héllo wörld, déjà vu, naïve café, São Paulo, Zürich, Ångström, smörgåsbord, crème brûlée.",
    "日本語のテキストと中文文本，还有한국어 텍스트。 東京 北京 서울",
    "Emoji: 🚀🦙 ✅ 😀 👍🏽 and symbols → ≤ ≥ ∑ π ∞ © ® ™ … «quotes» “curly” ‘single’",
    "Tabs\tand  double  spaces,   triple,    quad\n\n\nand blank lines\r\nwindows endings\r\n",
    "The the THE tHe; over and over and over; converting models to GGUF for llama.cpp and MLX.",
]

TOKENIZE_TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space and trailing space ",
    "Numbers: 1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 0.001",
    "I'm, you're, he's, we've, they'll, I'd, don't, CAN'T, He'S, 'tis",
    "   multiple   spaces\tand\ttabs\n\nnew\nlines\r\n  indented\n\n\n",
    "日本語のテキスト、中文文本和한국어 텍스트。",
    "Emoji 🚀🦙✅😀 👍🏽 and 🏳️‍🌈 joined",
    "Accents: café naïve résumé Zürich São Paulo Ångström crème brûlée",
    "def f(x):\n    return [i ** 2 for i in range(x) if i % 3 == 0]  # squares\n",
    "if (a != b && c <= d) { x->y = z[0]; } // C code; 0xDEADBEEF",
    "<|begin_of_text|>specials in text <|eot_id|> and <|im_start|>user\nhi<|im_end|>",
    "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> <think>hmm</think>",
    "<bos><|turn>user\nhi<turn|> <|channel>thought<channel|> <|tool_call>x<tool_call|><eos>",
    "''''''```````\"\"\"\"......!!!!!!?????? ------======= нещо на Български",
    "",
    " ",
    "\n",
    "a",
]


def _q(bits, group_size, mode="affine"):
    return {"group_size": group_size, "bits": bits, "mode": mode}


# Per architecture: the HF-style config, which MLX quantization each module gets (first
# matching substring of the module path wins; "*" is the rest), the tokenizer family,
# how many embedding rows to pad to, and the adapter to train.
SPECS = {
    # Llama 3.2-style: tied embeddings, llama3 rope scaling (→ rope_freqs), 3 quant modes.
    "llama": dict(
        config=dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=131072,
                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                    tie_word_embeddings=True, attention_bias=False, mlp_bias=False, hidden_act="silu",
                    initializer_range=0.02, pretraining_tp=1, use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("mlp", _q(8, 64)), ("embed_tokens", _q(6, 64))],
        family="llama3", pad_to=None, seed=101,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Mistral 7B v0.3-style (model_type "mistral" runs mlx-lm's llama class): untied.
    "mistral": dict(
        config=dict(architectures=["MistralForCausalLM"], model_type="mistral", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, rms_norm_eps=1e-5, rope_theta=1000000.0, max_position_embeddings=32768,
                    sliding_window=None, tie_word_embeddings=False, hidden_act="silu", initializer_range=0.02,
                    use_cache=True),
        quant=[("self_attn", _q(4, 32)), ("mlp", _q(4, 32, "mxfp4")), ("embed_tokens", _q(8, 64)),
               ("lm_head", _q(6, 128))],
        family="llama3", pad_to=None, seed=102,
        adapter=dict(keys=["self_attn.q_proj", "self_attn.v_proj", "mlp.up_proj", "mlp.down_proj", "lm_head"],
                     rank=4, num_layers=1),
    ),
    # Mixtral-style MoE (block_sparse_moe.gate + switch_mlp after mlx-lm's sanitize).
    "mixtral": dict(
        config=dict(architectures=["MixtralForCausalLM"], model_type="mixtral", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, num_local_experts=4, num_experts_per_tok=2, rms_norm_eps=1e-5,
                    rope_theta=1000000.0, max_position_embeddings=32768, sliding_window=None,
                    tie_word_embeddings=False, hidden_act="silu", router_aux_loss_coef=0.02,
                    output_router_logits=False, use_cache=True),
        quant=[("block_sparse_moe.gate", _q(8, 64)), ("switch_mlp", _q(4, 64)), ("self_attn", _q(8, 64)),
               ("embed_tokens", _q(4, 128)), ("lm_head", _q(8, 32, "mxfp8"))],
        family="llama3", pad_to=None, seed=103,
        adapter=dict(keys=["self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj", "block_sparse_moe.gate",
                           "block_sparse_moe.switch_mlp.gate_proj", "block_sparse_moe.switch_mlp.up_proj",
                           "block_sparse_moe.switch_mlp.down_proj"], rank=4, num_layers=-1),
    ),
    # Qwen2.5-style: q/k/v biases, tied embeddings, embedding rows padded past the tokenizer
    # (as Qwen's 151936 rows for 151665 tokens), odd bit widths (5 and 3).
    "qwen2": dict(
        config=dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=32768,
                    tie_word_embeddings=True, use_sliding_window=False, sliding_window=32768,
                    max_window_layers=2, hidden_act="silu", attention_dropout=0.0, use_cache=True),
        quant=[("self_attn", _q(5, 32)), ("mlp", _q(3, 64)), ("embed_tokens", _q(8, 32))],
        family="qwen", pad_to=64, seed=104,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Qwen3-style: q_norm/k_norm, head_dim 128 ≠ hidden/heads (as every real Qwen3), tied.
    "qwen3": dict(
        config=dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=128, rms_norm_eps=1e-6, rope_theta=1000000.0, rope_scaling=None,
                    max_position_embeddings=40960, tie_word_embeddings=True, attention_bias=False,
                    attention_dropout=0.0, use_sliding_window=False, sliding_window=None, max_window_layers=2,
                    hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 16, "nvfp4")), ("mlp", _q(4, 64)), ("embed_tokens", _q(8, 64))],
        family="qwen", pad_to=None, seed=105,
        adapter=dict(keys=["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"], rank=8, num_layers=-1),
    ),
    # Qwen3-30B-A3B-style MoE (mlp.gate + mlp.switch_mlp), softmax → top-k → renormalized;
    # experts mix modes within a layer: gate/up mxfp4, down affine 6-bit (as mixed recipes do).
    "qwen3_moe": dict(
        config=dict(architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", hidden_size=256,
                    intermediate_size=512, moe_intermediate_size=256, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, num_experts=4,
                    num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                    rms_norm_eps=1e-6, rope_theta=1000000.0, rope_scaling=None, max_position_embeddings=40960,
                    tie_word_embeddings=False, attention_bias=False, output_router_logits=False,
                    router_aux_loss_coef=0.001, use_sliding_window=False, sliding_window=None,
                    max_window_layers=2, hidden_act="silu", use_cache=True),
        quant=[("mlp.gate", _q(8, 64)), ("switch_mlp.down_proj", _q(6, 64)), ("switch_mlp", _q(4, 32, "mxfp4")),
               ("self_attn", _q(4, 64)),
               ("embed_tokens", _q(8, 64)), ("lm_head", _q(6, 64))],
        family="qwen", pad_to=None, seed=106,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # OLMo 2-style: q/k RMSNorm over the whole projections, post-norms, untied.
    "olmo2": dict(
        config=dict(architectures=["Olmo2ForCausalLM"], model_type="olmo2", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    rms_norm_eps=1e-6, rope_theta=500000.0, max_position_embeddings=4096, rope_scaling=None,
                    tie_word_embeddings=False, attention_bias=False, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("mlp", _q(4, 32, "mxfp4")), ("embed_tokens", _q(8, 64)),
               ("lm_head", _q(6, 64))],
        family="llama3", pad_to=None, seed=107,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Granite 3-style: embedding/attention/residual multipliers and a logits divisor far
    # from 1, so that a missing one shows in the logits; tied embeddings.
    "granite": dict(
        config=dict(architectures=["GraniteForCausalLM"], model_type="granite", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=4096, rope_scaling=None,
                    tie_word_embeddings=True, attention_bias=False, mlp_bias=False, hidden_act="silu",
                    logits_scaling=4.0, attention_multiplier=0.03, embedding_multiplier=6.0,
                    residual_multiplier=0.3, use_cache=True),
        quant=[("self_attn", _q(5, 32)), ("mlp", _q(4, 64)), ("embed_tokens", _q(8, 64))],
        family="llama3", pad_to=None, seed=108,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Gemma 2-style: norms stored as offsets from 1 (random around 0 here), post-norms,
    # attention and final soft-capping (not llama.cpp's defaults 50 and 30, so that a
    # missing key shows), always tied.
    "gemma2": dict(
        config=dict(architectures=["Gemma2ForCausalLM"], model_type="gemma2", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, query_pre_attn_scalar=64, attn_logit_softcapping=2.0,
                    final_logit_softcapping=10.0, rms_norm_eps=1e-6, rope_theta=10000.0,
                    max_position_embeddings=8192, sliding_window=4096, tie_word_embeddings=True,
                    hidden_activation="gelu_pytorch_tanh", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("mlp", _q(8, 64)), ("embed_tokens", _q(6, 64))],
        family="llama3", pad_to=None, seed=109, norm_center=0.0,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Gemma 3-style: q/k norms, a global layer every 2nd (the pattern key) with linear rope
    # scaling, sliding layers (window 4, shorter than the test sequence) with their own
    # rope base; tied by the absence of lm_head, as real Gemma 3 checkpoints are.
    "gemma3_text": dict(
        config=dict(architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, query_pre_attn_scalar=64, rms_norm_eps=1e-6, rope_theta=1000000.0,
                    rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 8.0},
                    sliding_window=4, sliding_window_pattern=2, max_position_embeddings=32768,
                    tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh", use_cache=True),
        quant=[("self_attn", _q(4, 32)), ("mlp", _q(4, 32, "mxfp4")), ("embed_tokens", _q(8, 64))],
        family="llama3", pad_to=None, seed=110, norm_center=0.0, drop_lm_head=True,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # SmolLM3-style: 4 layers, so that layer 3 runs without rope (llama.cpp's fixed step).
    "smollm3": dict(
        config=dict(architectures=["SmolLM3ForCausalLM"], model_type="smollm3", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                    rms_norm_eps=1e-6, rope_theta=5000000.0, max_position_embeddings=65536, rope_scaling=None,
                    no_rope_layer_interval=4, no_rope_layers=[1, 1, 1, 0], tie_word_embeddings=True,
                    attention_bias=False, mlp_bias=False, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(6, 64)), ("mlp", _q(4, 32)), ("embed_tokens", _q(8, 64))],
        family="llama3", pad_to=None, seed=111,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # ERNIE 4.5 0.3B-style: head_dim given, untied, rope on adjacent pairs in mlx-lm's class.
    "ernie4_5": dict(
        config=dict(architectures=["Ernie4_5ForCausalLM"], model_type="ernie4_5", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=131072,
                    use_bias=False, tie_word_embeddings=False, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("mlp", _q(5, 64)), ("embed_tokens", _q(8, 32)), ("lm_head", _q(8, 64))],
        family="llama3", pad_to=None, seed=112,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Phi-4-mini-style: fused qkv_proj and gate_up_proj, rope on 3/4 of each head, LongRoPE
    # with long = short factors (mlx-lm applies the long ones at every length, llama.cpp the
    # short ones below the original context), tied.
    "phi3": dict(
        config=dict(architectures=["Phi3ForCausalLM"], model_type="phi3", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    partial_rotary_factor=0.75, rms_norm_eps=1e-5, rope_theta=10000.0,
                    max_position_embeddings=131072, original_max_position_embeddings=4096,
                    rope_scaling={"type": "longrope", "long_factor": [1.0 + 0.25 * i for i in range(24)],
                                  "short_factor": [1.0 + 0.25 * i for i in range(24)]},
                    sliding_window=262144, tie_word_embeddings=True, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("mlp", _q(8, 64)), ("embed_tokens", _q(6, 64))],
        family="llama3", pad_to=None, seed=113,
        # llama.cpp requires Phi-3's special tokens of any model named like "phi3"
        # (test_archs.py::test_verify_flags_the_phi3_name_rule); this vocabulary has none.
        folder="tiny-phi-mini",
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
}

# Gemma 4's rope settings per layer type, as its config.json states them (mlx-lm's defaults).
GEMMA4_ROPE = {"full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
               "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}}

SPECS.update({
    # Gemma 4 E2B-style: plain norm scales, 4 layers (every 2nd full attention with a head
    # twice the sliding one and proportional rope on a quarter of it), the last 2 layers
    # reusing layers 0 and 1's KV caches with double-wide MLPs, per-layer input embeddings
    # (64 per layer), final soft-capping 10 (not llama.cpp's default 30), the `gemma4`
    # tokenizer (SentencePiece-style BPE in tokenizer.json).
    "gemma4_text": dict(
        config=dict(architectures=["Gemma4ForCausalLM"], model_type="gemma4_text", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, global_head_dim=128, rms_norm_eps=1e-6, sliding_window=4,
                    sliding_window_pattern=2, num_kv_shared_layers=2, hidden_size_per_layer_input=64,
                    vocab_size_per_layer_input=0, use_double_wide_mlp=True, rope_parameters=GEMMA4_ROPE,
                    final_logit_softcapping=10.0, max_position_embeddings=131072, tie_word_embeddings=True,
                    attention_k_eq_v=False, enable_moe_block=False, hidden_activation="gelu_pytorch_tanh"),
        quant=[("self_attn", _q(4, 64)), ("mlp", _q(8, 64)), ("embed_tokens_per_layer", _q(5, 64)),
               ("per_layer_input_gate", _q(4, 32, "mxfp4")), ("embed_tokens", _q(6, 64))],
        family="gemma4", pad_to=None, seed=114,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Gemma 4 26B-A4B-style: experts beside the MLP (router with its own scale, per-expert
    # output scales), full-attention layers whose keys are their values with one KV head of
    # twice the size, no per-layer inputs and no KV sharing.
    "gemma4_moe": dict(
        config=dict(architectures=["Gemma4ForCausalLM"], model_type="gemma4_text", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    num_global_key_value_heads=1, head_dim=64, global_head_dim=128, rms_norm_eps=1e-6,
                    sliding_window=4, sliding_window_pattern=2, num_kv_shared_layers=0,
                    hidden_size_per_layer_input=0, use_double_wide_mlp=False, rope_parameters=GEMMA4_ROPE,
                    final_logit_softcapping=10.0, max_position_embeddings=262144, tie_word_embeddings=True,
                    attention_k_eq_v=True, enable_moe_block=True, num_experts=4, top_k_experts=2,
                    moe_intermediate_size=256, hidden_activation="gelu_pytorch_tanh"),
        quant=[("self_attn", _q(8, 64)), ("router.proj", _q(8, 64)), ("experts", _q(4, 32, "mxfp4")),
               ("mlp", _q(4, 64)), ("embed_tokens", _q(6, 64))],
        family="gemma4", pad_to=None, seed=115,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Qwen1.5-MoE-style: Qwen2 attention (q/k/v biases), 4 experts top-2 (softmax, not
    # renormalised) and a shared expert behind a sigmoid gate; untied.
    "qwen2_moe": dict(
        config=dict(architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    num_experts=4, num_experts_per_tok=2, moe_intermediate_size=256,
                    shared_expert_intermediate_size=512, norm_topk_prob=False, rms_norm_eps=1e-6,
                    rope_theta=1000000.0, max_position_embeddings=32768, tie_word_embeddings=False,
                    hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("switch_mlp", _q(4, 32, "mxfp4")), ("shared_expert", _q(8, 64)),
               ("mlp.gate", _q(8, 64)), ("embed_tokens", _q(6, 64)), ("lm_head", _q(8, 64))],
        family="qwen", pad_to=None, seed=116,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # DeepSeek V3-style (tiny): multi-head latent attention (q low-rank pair, kv_lora_rank
    # 128, 32 rope + 64 no-rope dims per head, v_head 64), layer 0 dense, then 8 routed
    # experts in 2 groups (1 used) with a sigmoid router and correction bias, top-2,
    # renormalised and scaled by 2.5, one shared expert; yarn ×40 with mscale as the real one.
    "deepseek_v3": dict(
        config=dict(architectures=["DeepseekV3ForCausalLM"], model_type="deepseek_v3", hidden_size=256,
                    intermediate_size=512, moe_intermediate_size=128, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=8,
                    routed_scaling_factor=2.5, kv_lora_rank=128, q_lora_rank=128, qk_rope_head_dim=32,
                    v_head_dim=64, qk_nope_head_dim=64, topk_method="noaux_tc", scoring_func="sigmoid",
                    norm_topk_prob=True, n_group=2, topk_group=1, num_experts_per_tok=2, moe_layer_freq=1,
                    first_k_dense_replace=1, max_position_embeddings=163840, rms_norm_eps=1e-6,
                    rope_theta=10000.0, rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 40,
                                                      "mscale": 1.0, "mscale_all_dim": 1.0,
                                                      "original_max_position_embeddings": 4096, "type": "yarn"},
                    attention_bias=False, tie_word_embeddings=False, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("switch_mlp", _q(4, 32, "mxfp4")), ("shared_experts", _q(8, 64)),
               ("mlp", _q(6, 64)), ("embed_tokens", _q(6, 64)), ("lm_head", _q(8, 64))],
        family="llama3", pad_to=None, seed=117,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Kimi K2 / Moonlight-style (mlx-lm runs `kimi_k2` with its DeepSeek V3 class): queries
    # by one `q_proj` (no q_lora_rank), experts from layer 0, two shared experts, no rope
    # scaling, one expert group, router defaults (renormalised, scale 1).
    "kimi_k2": dict(
        config=dict(architectures=["DeepseekV3ForCausalLM"], model_type="kimi_k2", hidden_size=256,
                    intermediate_size=512, moe_intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, n_shared_experts=2, n_routed_experts=4,
                    kv_lora_rank=128, q_lora_rank=None, qk_rope_head_dim=32, v_head_dim=64,
                    qk_nope_head_dim=64, num_experts_per_tok=2, first_k_dense_replace=0,
                    max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=50000.0,
                    tie_word_embeddings=False, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(8, 64)), ("switch_mlp", _q(4, 64)), ("shared_experts", _q(5, 64)),
               ("embed_tokens", _q(6, 64)), ("lm_head", _q(6, 64))],
        family="llama3", pad_to=None, seed=118,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # GLM-4.5-style: GQA with q/k/v biases and q/k norms, rope on half of each head, layer 0
    # dense, then 8 sigmoid-routed experts (top-2, renormalised, scaled 2.5) and a shared one;
    # the next-token-prediction layer is in config.json only (mlx-lm drops its weights).
    "glm4_moe": dict(
        config=dict(architectures=["Glm4MoeForCausalLM"], model_type="glm4_moe", hidden_size=256,
                    intermediate_size=512, moe_intermediate_size=128, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, partial_rotary_factor=0.5,
                    n_group=1, topk_group=1, n_shared_experts=1, n_routed_experts=8, routed_scaling_factor=2.5,
                    num_experts_per_tok=2, first_k_dense_replace=1, norm_topk_prob=True, use_qk_norm=True,
                    attention_bias=True, num_nextn_predict_layers=1, max_position_embeddings=131072,
                    rms_norm_eps=1e-5, rope_theta=1000000.0, rope_scaling=None, tie_word_embeddings=False,
                    hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("switch_mlp", _q(4, 32, "mxfp4")), ("shared_experts", _q(8, 64)),
               ("mlp", _q(5, 64)), ("embed_tokens", _q(6, 64)), ("lm_head", _q(8, 64))],
        family="llama3", pad_to=None, seed=119,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Llama 4 Scout-style, in mlx-lm's `llama4` wrapper (its only class): NORM rope with
    # Llama 3 factors, layer 3 without rope, weightless q/k norms, experts (top-1) in layers 1
    # and 3 beside a shared expert, dense MLPs of intermediate_size_mlp in layers 0 and 2.
    "llama4": dict(
        config=dict(architectures=["Llama4ForCausalLM"], model_type="llama4_text", hidden_size=256,
                    intermediate_size=256, intermediate_size_mlp=512, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, num_local_experts=4,
                    num_experts_per_tok=1, interleave_moe_layer_step=2, use_qk_norm=True, attention_bias=False,
                    attention_chunk_size=8192, rms_norm_eps=1e-5, rope_theta=500000.0,
                    rope_scaling={"rope_type": "llama3", "factor": 16.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 1.0, "original_max_position_embeddings": 8192},
                    max_position_embeddings=262144, tie_word_embeddings=False, hidden_act="silu"),
        quant=[("self_attn", _q(4, 64)), ("experts", _q(4, 32, "mxfp4")), ("shared_expert", _q(8, 64)),
               ("router", _q(8, 64)), ("feed_forward", _q(6, 64)), ("embed_tokens", _q(6, 64)),
               ("lm_head", _q(8, 64))],
        family="llama3", pad_to=None, seed=120, wrapper="llama4",
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Qwen3-Next-style: Gated DeltaNet layers 0 and 2 (2 key heads, 4 value heads, conv 4),
    # full attention in layers 1 and 3 (gated queries, q/k norms, rope on a quarter of each
    # head), 4 experts top-2 (renormalised) with a sigmoid-gated shared expert everywhere.
    "qwen3_next": dict(
        config=dict(architectures=["Qwen3NextForCausalLM"], model_type="qwen3_next", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, partial_rotary_factor=0.25, full_attention_interval=2,
                    linear_num_value_heads=4, linear_num_key_heads=2, linear_key_head_dim=64,
                    linear_value_head_dim=64, linear_conv_kernel_dim=4, num_experts=4, num_experts_per_tok=2,
                    decoder_sparse_step=1, shared_expert_intermediate_size=256, mlp_only_layers=[],
                    moe_intermediate_size=128, norm_topk_prob=True, rms_norm_eps=1e-6, rope_theta=10000000.0,
                    max_position_embeddings=262144, tie_word_embeddings=False, attention_bias=False,
                    hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("linear_attn", _q(8, 64)), ("switch_mlp", _q(4, 32, "mxfp4")),
               ("shared_expert_gate", _q(8, 64)), ("mlp.gate", _q(8, 64)), ("shared_expert", _q(6, 64)),
               ("embed_tokens", _q(6, 64)), ("lm_head", _q(8, 64))],
        family="qwen", pad_to=None, seed=121,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Qwen3.5-style (mlx-lm's qwen3_5 wrapper): Qwen3-Next's layers with separate qkv/z/b/a
    # projections, twice as many value as key heads (reordered for llama.cpp), a dense MLP,
    # M-RoPE sections, tied embeddings.
    "qwen3_5": dict(
        config=dict(architectures=["Qwen3_5ForCausalLM"], model_type="qwen3_5_text", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, full_attention_interval=2, linear_num_value_heads=4, linear_num_key_heads=2,
                    linear_key_head_dim=64, linear_value_head_dim=64, linear_conv_kernel_dim=4,
                    rope_parameters={"rope_type": "default", "mrope_section": [3, 3, 2], "rope_theta": 10000000.0,
                                     "partial_rotary_factor": 0.25, "mrope_interleaved": True},
                    rms_norm_eps=1e-6, max_position_embeddings=262144, tie_word_embeddings=True,
                    attention_bias=False, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(4, 64)), ("linear_attn", _q(8, 64)), ("mlp", _q(4, 32, "mxfp4")),
               ("embed_tokens", _q(6, 64))],
        family="qwen", pad_to=None, seed=122, wrapper="qwen3_5",
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # Qwen3.5-MoE-style (mlx-lm's qwen3_5_moe wrapper): as above with 4 experts top-2 and a
    # gated shared expert, 8 value heads over 2 key heads, untied.
    "qwen3_5_moe": dict(
        config=dict(architectures=["Qwen3_5MoeForCausalLM"], model_type="qwen3_5_moe_text", hidden_size=256,
                    intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, full_attention_interval=2, linear_num_value_heads=8, linear_num_key_heads=2,
                    linear_key_head_dim=32, linear_value_head_dim=32, linear_conv_kernel_dim=4,
                    num_experts=4, num_experts_per_tok=2, moe_intermediate_size=128,
                    shared_expert_intermediate_size=256, norm_topk_prob=True,
                    rope_parameters={"rope_type": "default", "mrope_section": [3, 3, 2], "rope_theta": 10000000.0,
                                     "partial_rotary_factor": 0.25},
                    rms_norm_eps=1e-6, max_position_embeddings=262144, tie_word_embeddings=False,
                    attention_bias=False, hidden_act="silu", use_cache=True),
        quant=[("self_attn", _q(8, 64)), ("in_proj_qkv", _q(4, 32, "mxfp4")), ("linear_attn", _q(6, 64)),
               ("switch_mlp", _q(4, 32, "mxfp4")), ("shared_expert_gate", _q(8, 64)), ("mlp.gate", _q(8, 64)),
               ("shared_expert", _q(5, 64)), ("embed_tokens", _q(6, 64)), ("lm_head", _q(8, 64))],
        family="qwen", pad_to=None, seed=123, wrapper="qwen3_5_moe",
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
    # DeepSeek V2-style: MLA with kv_b_proj whole (quantized 4-bit and adapted), q low-rank
    # pair, layer 0 dense, 8 experts top-2 with a softmax router (greedy, scaled by 2), two
    # shared experts, yarn ×40 with mscale 0.707 as V2-Lite.
    "deepseek_v2": dict(
        config=dict(architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2", hidden_size=256,
                    intermediate_size=512, moe_intermediate_size=128, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=4, n_shared_experts=2, n_routed_experts=8,
                    routed_scaling_factor=2.0, kv_lora_rank=128, q_lora_rank=128, qk_rope_head_dim=32,
                    v_head_dim=64, qk_nope_head_dim=64, topk_method="greedy", n_group=1, topk_group=1,
                    num_experts_per_tok=2, moe_layer_freq=1, first_k_dense_replace=1,
                    max_position_embeddings=163840, rms_norm_eps=1e-6, rope_theta=10000.0,
                    rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                                  "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096,
                                  "type": "yarn"},
                    attention_bias=False, tie_word_embeddings=False, hidden_act="silu", use_cache=True),
        quant=[("kv_b_proj", _q(4, 64)), ("self_attn", _q(8, 64)), ("switch_mlp", _q(4, 32, "mxfp4")),
               ("shared_experts", _q(6, 64)), ("mlp", _q(5, 64)), ("embed_tokens", _q(6, 64)),
               ("lm_head", _q(8, 64))],
        family="llama3", pad_to=None, seed=124,
        adapter=dict(keys=None, rank=4, num_layers=-1),
    ),
})

GGUF_ARCH = {"llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
             "qwen3_moe": "qwen3moe", "olmo2": "olmo2", "granite": "granite", "gemma2": "gemma2",
             "gemma3_text": "gemma3", "smollm3": "smollm3", "ernie4_5": "ernie4_5",
             "phi3": "phi3", "gemma4_text": "gemma4", "gemma4_moe": "gemma4", "qwen2_moe": "qwen2moe", "deepseek_v3": "deepseek2", "kimi_k2": "deepseek2", "glm4_moe": "glm4moe", "llama4": "llama4", "qwen3_next": "qwen3next", "qwen3_5": "qwen35", "qwen3_5_moe": "qwen35moe", "deepseek_v2": "deepseek2"}
TOKENIZER_PRE = {"llama3": "llama-bpe", "qwen": "qwen2", "gemma4": "gemma4"}


def tokenizer_pre(arch):
    return TOKENIZER_PRE[SPECS[arch]["family"]]


# ------------------------------------------------------------------------------------------
# Tokenizers


def build_bpe_tokenizer(out: Path, family: str, n_base: int):
    """A byte-level BPE tokenizer.json like the real Llama 3 / Qwen2 ones: Split(regex,
    isolated) + ByteLevel(use_regex=False), ByteLevel decoder; Llama 3: ignore_merges and a
    post-processor that adds <|begin_of_text|>; Qwen: NFC normalizer, no BOS. Returns the
    tokenizer size (ids 0..n-1) and the special-token ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    pattern = LLAMA3_PATTERN if family == "llama3" else QWEN2_PATTERN
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    if family == "qwen":
        tok.normalizer = normalizers.NFC()
    trainer = trainers.BpeTrainer(vocab_size=n_base, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(BPE_CORPUS * 4, trainer)
    if family == "llama3":
        specials, plain = LLAMA3_SPECIALS, []
    else:
        specials, plain = QWEN_SPECIALS, QWEN_NON_SPECIAL
    tok.add_special_tokens(specials)
    if plain:
        from tokenizers import AddedToken
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    ids = {t: tok.token_to_id(t) for t in specials + plain}
    if family == "llama3":
        bos = ids["<|begin_of_text|>"]
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                          pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                          special_tokens=[("<|begin_of_text|>", bos)]),
        ])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    path = out / "tokenizer.json"
    tok.save(str(path))
    if family == "llama3":
        # Real Llama 3 tokenizer.json files set ignore_merges (llama.cpp's llama-bpe does too).
        j = json.loads(path.read_text(encoding="utf-8"))
        j["model"]["ignore_merges"] = True
        path.write_text(json.dumps(j, ensure_ascii=False, indent=2), encoding="utf-8")
    n = Tokenizer.from_file(str(path)).get_vocab_size(with_added_tokens=True)
    assert n == max(ids.values()) + 1
    return n, ids


# Gemma 4's first tokens in their real order (ids 0..), then its chat-format markers; the
# markers llama.cpp's converter keeps visible are plain added tokens here (USER_DEFINED in
# GGUF: matched in text whether specials are parsed or not, as HF does for non-special ones).
GEMMA4_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>"]
GEMMA4_VISIBLE = ["<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|\"|>"]


def build_gemma4_tokenizer(out: Path, n_base: int):
    """A tokenizer.json shaped like Gemma's: spaces normalized to ▁, BPE without a
    pre-tokenizer (merges trained within lines, so none joins a newline to text), byte
    fallback over <0x00>..<0xFF>, BOS added by the post-processor."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer_tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[^\n]+|\n+"), behavior="isolated")
    trainer = trainers.BpeTrainer(vocab_size=n_base, show_progress=False, special_tokens=[])
    trainer_tok.train_from_iterator(BPE_CORPUS * 4, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    vocab = {t: i for i, t in enumerate(GEMMA4_SPECIALS + bytes_)}
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(t, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(GEMMA4_SPECIALS)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in GEMMA4_VISIBLE])
    ids = {t: tok.token_to_id(t) for t in GEMMA4_SPECIALS + GEMMA4_VISIBLE}
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", ids["<bos>"])])
    tok.save(str(out / "tokenizer.json"))
    n = Tokenizer.from_file(str(out / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    return n, ids


GEMMA4_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|turn>' + message['role'] + '\\n' + message['content'] + '<turn|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|turn>model\\n' }}{%- endif %}"
)


def write_tokenizer_files(out: Path, family: str, ids: dict):
    if family == "gemma4":
        tcfg = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
                "chat_template": GEMMA4_TEMPLATE, "clean_up_tokenization_spaces": False,
                "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
        gen = {"bos_token_id": ids["<bos>"], "eos_token_id": [ids["<eos>"], ids["<turn|>"]],
               "pad_token_id": ids["<pad>"]}
        (out / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, ensure_ascii=False))
        (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
        return tcfg
    if family == "llama3":
        tcfg = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE,
                "clean_up_tokenization_spaces": True, "model_input_names": ["input_ids", "attention_mask"],
                "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
        gen = {"bos_token_id": ids["<|begin_of_text|>"],
               "eos_token_id": [ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]],
               "do_sample": True, "temperature": 0.6, "top_p": 0.9}
    else:
        tcfg = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
                "chat_template": CHATML_TEMPLATE, "add_prefix_space": False, "clean_up_tokenization_spaces": False,
                "errors": "replace", "model_max_length": 131072, "split_special_tokens": False,
                "tokenizer_class": "Qwen2Tokenizer"}
        gen = {"bos_token_id": ids["<|endoftext|>"], "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
               "pad_token_id": ids["<|endoftext|>"], "do_sample": True, "temperature": 0.7}
    (out / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, ensure_ascii=False))
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
    return tcfg


# ------------------------------------------------------------------------------------------
# Models


def randomize(model, seed, embed_std, norm_center=1.0):
    """Random values for every parameter: norms (q/k norms too) around their neutral value
    (1, or 0 for Gemma's offsets), biases ±, linear weights with unit output variance. The
    embedding's spread sets the tied logits' scale."""
    mx.random.seed(seed)
    params = []
    for name, p in tree_flatten(model.parameters()):
        key = name.split(".")[-1]
        if name.endswith("norm.weight") or re.search(r"norm_\d\.weight$", name):
            v = norm_center + 0.2 * mx.random.normal(p.shape)
        elif key in ("layer_scalar", "per_expert_scale"):  # Gemma 4's output scales
            v = 1.0 + 0.2 * mx.random.normal(p.shape)
        elif key == "e_score_correction_bias":  # DeepSeek's routing bias: small shifts
            v = 0.1 * mx.random.normal(p.shape)
        elif key == "bias":
            v = 0.5 * mx.random.normal(p.shape)
        elif "embed_tokens" in name:
            v = embed_std * mx.random.normal(p.shape)
        else:
            v = mx.random.uniform(-1, 1, p.shape) * (3.0 / p.shape[-1]) ** 0.5
        params.append((name, v.astype(p.dtype)))
    model.update(tree_unflatten(params))
    mx.eval(model.parameters())


def _matches(path, pattern):
    """Whether the dotted `pattern` is a run of whole components of `path` ("mlp.gate"
    matches "model.layers.0.mlp.gate", not "...switch_mlp.gate_proj")."""
    return f".{pattern}." in f".{path}."


def quant_predicate(rules):
    def predicate(path, module):
        for pattern, params in rules:
            if _matches(path, pattern):
                return dict(params) if params else False
        return True
    return predicate


def make_arch(arch, out, dtype="bfloat16", quantize=True, seed=None, extra_rows=0, wrapper=None):
    """Builds the tiny `arch` checkpoint in `out` exactly as mlx-lm saves it; returns `out`.
    `extra_rows` more embedding rows than the tokenizer has (room for a fine-tune's tokens);
    `wrapper` a multimodal model_type whose mlx-lm class holds the model as its language
    model (config under text_config, weights under `language_model.`)."""
    from mlx_lm.utils import _get_classes, quantize_model, save_config, save_model

    spec = SPECS[arch]
    wrapper = wrapper or spec.get("wrapper")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    family = spec["family"]
    if family == "gemma4":
        n_tok, ids = build_gemma4_tokenizer(out, n_base=560)
    else:
        n_tok, ids = build_bpe_tokenizer(out, family, n_base=560 if family == "llama3" else 540)
    tcfg = write_tokenizer_files(out, family, ids)
    rows = n_tok if not spec["pad_to"] else spec["pad_to"] * math.ceil((n_tok + 1) / spec["pad_to"])
    rows += extra_rows
    cfg = dict(spec["config"], vocab_size=rows, torch_dtype=dtype)
    if "vocab_size_per_layer_input" in cfg:  # both embeddings index the same vocabulary
        cfg["vocab_size_per_layer_input"] = rows
    if family == "llama3":
        cfg.update(bos_token_id=ids["<|begin_of_text|>"], eos_token_id=ids[tcfg["eos_token"]])
    elif family == "gemma4":
        cfg.update(bos_token_id=ids["<bos>"], eos_token_id=ids["<eos>"], pad_token_id=ids["<pad>"])
    else:
        cfg.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids[tcfg["eos_token"]])
    tied = cfg["tie_word_embeddings"]
    if wrapper:
        vision = {"mistral3": ("Mistral3ForConditionalGeneration", "pixtral"),
                  "gemma3": ("Gemma3ForConditionalGeneration", "siglip_vision_model"),
                  "gemma4": ("Gemma4ForConditionalGeneration", "gemma4_vision"),
                  "llama4": ("Llama4ForConditionalGeneration", "llama4_vision_model"),
                  "qwen3_5": ("Qwen3_5ForConditionalGeneration", "qwen3_5"),
                  "qwen3_5_moe": ("Qwen3_5MoeForConditionalGeneration", "qwen3_5_moe")}[wrapper]
        cfg = {"model_type": wrapper, "architectures": [vision[0]], "text_config": cfg,
               "vision_config": {"model_type": vision[1], "hidden_size": 16}, "image_token_index": 10,
               "eos_token_id": cfg["eos_token_id"], "bos_token_id": cfg["bos_token_id"]}
        if wrapper in ("gemma3", "gemma4"):  # their classes take the vocabulary size from the top level
            cfg["vocab_size"] = rows
    model_cls, args_cls = _get_classes(cfg)
    model = model_cls(args_cls.from_dict(cfg))
    randomize(model, spec["seed"] if seed is None else seed, embed_std=0.25 if tied else 1.0,
              norm_center=spec.get("norm_center", 1.0))
    model.set_dtype(getattr(mx, dtype))
    if quantize:
        default = dict(_q(4, 64))
        model, cfg = quantize_model(model, cfg, group_size=default["group_size"], bits=default["bits"],
                                    mode=default["mode"], quant_predicate=quant_predicate(spec["quant"]))
    save_model(out, model, donate_model=False)
    if spec.get("drop_lm_head"):
        cfg = drop_lm_head(out, cfg, "language_model." if wrapper else "")
    save_config(cfg, out / "config.json")
    meta = {"arch": arch, "n_tokenizer": n_tok, "rows": rows, "special_ids": ids,
            "tokens": logit_tokens(arch, out, n_tok, ids)}
    (out.parent / (out.name + "-meta.json")).write_text(json.dumps(meta, indent=2))
    return out


def drop_lm_head(out, cfg, prefix=""):
    """The checkpoint without `lm_head` (mlx-lm's Gemma 3 class always has one; real Gemma 3
    checkpoints tie it to the embedding, which mlx-lm's sanitize infers from its absence)."""
    for f in sorted(Path(out).glob("model*.safetensors")):
        w = {k: v for k, v in mx.load(str(f)).items() if not k.startswith(prefix + "lm_head.")}
        mx.save_safetensors(str(f), w, metadata={"format": "mlx"})
    idx = Path(out) / "model.safetensors.index.json"
    if idx.exists():
        j = json.loads(idx.read_text())
        j["weight_map"] = {k: v for k, v in j["weight_map"].items() if not k.startswith(prefix + "lm_head.")}
        idx.write_text(json.dumps(j, indent=4))
    for key in ("quantization", "quantization_config"):
        if isinstance(cfg.get(key), dict):
            cfg[key] = {k: v for k, v in cfg[key].items() if k != prefix + "lm_head"}
    return cfg


def top2_margin(logits):
    s = np.sort(logits, axis=-1)
    return float((s[:, -1] - s[:, -2]).min())


def logit_tokens(arch, model_dir, n_tok, ids, adapter_dir=None, n=18, min_margin=1e-2):
    """The token sequence the logits are compared on: random ids of the tokenizer (special
    and non-special), starting with BOS for the Llama 3 family; the first draw whose MLX
    logits (with the adapter if given) have no near-tie between the top two, so that top-1
    agreement within the logit tolerance is well defined. Deterministic."""
    for attempt in range(50):
        rng = np.random.default_rng([SPECS[arch]["seed"], attempt, adapter_dir is not None])
        toks = [int(t) for t in rng.integers(0, n_tok, n)]
        if SPECS[arch]["family"] == "llama3":
            toks[0] = ids["<|begin_of_text|>"]
        elif SPECS[arch]["family"] == "gemma4":
            toks[0] = ids["<bos>"]
        if top2_margin(mlx_logits(model_dir, toks, adapter_dir)) > min_margin:
            return toks
    raise RuntimeError(f"{arch}: no token sequence without near-ties")


def adapter_tokens(arch, model_dir, adapter_dir):
    """The token sequence for the adapter comparisons (tolerance 1e-2: margin > 2.5e-2)."""
    meta = meta_of(model_dir)
    return logit_tokens(arch, model_dir, meta["n_tokenizer"], meta["special_ids"], adapter_dir, min_margin=2.5e-2)


def meta_of(model_dir):
    model_dir = Path(model_dir)
    return json.loads((model_dir.parent / (model_dir.name + "-meta.json")).read_text())


def train_arch_adapter(arch, model_dir, out_dir, iters=3, seed=7):
    """A real `mlx_lm lora` adapter for the checkpoint, with the arch's keys / layer count
    (a few Adam steps at a moderate rate: the logits move by O(1), not O(100))."""
    a = SPECS[arch]["adapter"]
    return train_adapter(model_dir, out_dir, keys=a["keys"], rank=a["rank"], num_layers=a["num_layers"],
                         iters=iters, learning_rate=5e-3, seed=seed)


def mlx_logits(model_dir, tokens, adapter_dir=None):
    """MLX's float32 logits for `tokens` (fixtures.reference_logits[_with_adapter])."""
    from fixtures import reference_logits, reference_logits_with_adapter

    if adapter_dir is None:
        return reference_logits(model_dir, tokens)
    return reference_logits_with_adapter(model_dir, adapter_dir, tokens)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", choices=ARCHS + ["all"])
    ap.add_argument("out")
    ap.add_argument("--adapter", action="store_true")
    a = ap.parse_args()
    for arch in ARCHS if a.arch == "all" else [a.arch]:
        t = time.time()
        d = make_arch(arch, Path(a.out) / arch)
        meta = meta_of(d)
        logits = mlx_logits(d, meta["tokens"])
        msg = (f"{arch}: {time.time() - t:.1f}s rows={meta['rows']} tok={meta['n_tokenizer']} "
               f"logit std={logits.std():.2f} argmax={logits.argmax(-1).tolist()}")
        if a.adapter:
            t = time.time()
            ad = train_arch_adapter(arch, d, Path(a.out) / f"{arch}-adapter")
            la = mlx_logits(d, meta["tokens"], ad)
            msg += f"\n  adapter {time.time() - t:.1f}s max|Δ|={np.abs(la - logits).max():.3f}"
        print(msg, flush=True)
