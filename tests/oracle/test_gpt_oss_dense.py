"""Foundation oracle: an unquantized tiny gpt-oss converted to F32 runs in llama.cpp with
MLX's logits (sequence longer than the sliding window, yarn, sinks, biases)."""
import numpy as np
import pytest
from gguf import GGUFReader

from conftest import llama_logits, run
from fixtures import TOKENS, gpt_oss_config, make_gpt_oss, reference_logits


@pytest.fixture(scope="module")
def dense_bf16(tmp_path_factory):
    d = make_gpt_oss(tmp_path_factory.mktemp("m") / "tiny-gpt-oss", seed=1, dtype="bfloat16")
    return d, reference_logits(d)


def test_f32_logits_match_mlx(mlx2gguf, dense_bf16, tmp_path):
    model, ref = dense_bf16
    assert len(TOKENS) > gpt_oss_config()["sliding_window"] * 2
    out = tmp_path / "f32.gguf"
    run(mlx2gguf, "convert", model, "--outtype", "f32", "-o", out)
    got = llama_logits(out, TOKENS)
    assert got.shape == ref.shape
    assert 0.3 < np.abs(ref).mean() < 5, "fixture logits should be O(1)"
    dmax = np.abs(got - ref).max()
    assert dmax <= 1e-3, f"max |Δlogit| {dmax}"
    assert (got.argmax(-1) == ref.argmax(-1)).all()


@pytest.mark.parametrize("outtype,ggml", [("f16", "F16"), ("bf16", "BF16"), ("f32", "F32")])
def test_float_outtypes_keep_f32_operands(mlx2gguf, dense_bf16, tmp_path, outtype, ggml):
    model, ref = dense_bf16
    out = tmp_path / f"{outtype}.gguf"
    run(mlx2gguf, "convert", model, "--outtype", outtype, "-o", out)
    r = GGUFReader(str(out))
    types = {t.name: t.tensor_type.name for t in r.tensors}
    for name, ty in types.items():
        if name.endswith(("norm.weight", ".bias", "attn_sinks.weight", "ffn_gate_inp.weight")):
            assert ty == "F32", (name, ty)
        else:
            assert ty == ggml, (name, ty)
    if outtype == "bf16":
        assert_lossless_bf16(model, r)
    # llama.cpp rounds activations to the weight type in F16/BF16 matmuls, so only F32
    # output is held to the 1e-3 file-parity bound.
    got = llama_logits(out, TOKENS)
    tol = {"f32": 1e-3, "bf16": 5e-2, "f16": 5e-2}[outtype]
    assert np.abs(got - ref).max() <= tol
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= (1.0 if outtype == "f32" else 0.9)


def assert_lossless_bf16(model_dir, reader):
    """Every BF16 tensor holds exactly the checkpoint's bf16 bytes."""
    import json
    raw = (model_dir / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    names = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight",
             "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
             "blk.1.ffn_down_exps.weight": "model.layers.1.mlp.experts.down_proj.weight"}
    tensors = {t.name: t for t in reader.tensors}
    for ours, theirs in names.items():
        s, e = header[theirs]["data_offsets"]
        assert header[theirs]["dtype"] == "BF16"
        assert tensors[ours].tensor_type.name == "BF16"
        assert bytes(tensors[ours].data.tobytes()) == raw[8 + n + s : 8 + n + e], ours


def test_gpt_oss_metadata(mlx2gguf, dense_bf16, tmp_path):
    model, _ = dense_bf16
    out = tmp_path / "m.gguf"
    run(mlx2gguf, "convert", model, "--outtype", "bf16", "-o", out)
    r = GGUFReader(str(out))
    f = r.fields

    def val(k):
        field = f[k]
        return field.contents()

    cfg = gpt_oss_config()
    assert val("general.architecture") == "gpt-oss"
    assert val("gpt-oss.attention.key_length") == cfg["head_dim"]
    assert val("gpt-oss.attention.value_length") == cfg["head_dim"]
    assert val("gpt-oss.rope.scaling.type") == "yarn"
    assert val("gpt-oss.rope.scaling.original_context_length") == 4096
    assert val("gpt-oss.attention.sliding_window") == cfg["sliding_window"]
    assert val("tokenizer.ggml.pre") == "gpt-4o"
    tokens = val("tokenizer.ggml.tokens")
    assert len(tokens) == cfg["vocab_size"] and len(set(tokens)) == len(tokens)
    assert val("tokenizer.chat_template").startswith("{%- for message")
    eos = val("tokenizer.ggml.eos_token_id")
    assert tokens[eos] == "<|return|>"
    types = val("tokenizer.ggml.token_type")
    assert types[tokens.index("<|start|>")] == 3 and types[-1] == 5
    # Exact KV types, as llama.cpp's loader checks them.
    from gguf import GGUFValueType
    assert f["gpt-oss.block_count"].types == [GGUFValueType.UINT32]
    assert f["gpt-oss.rope.freq_base"].types == [GGUFValueType.FLOAT32]


def test_llama_cpp_loads_and_tokenizes(mlx2gguf, dense_bf16, tmp_path):
    from llama_cpp import Llama
    model, _ = dense_bf16
    out = tmp_path / "m.gguf"
    run(mlx2gguf, "convert", model, "--outtype", "bf16", "-o", out)
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(str(model / "tokenizer.json"))
    llm = Llama(model_path=str(out), n_ctx=64, verbose=False, vocab_only=True)
    for text in ["The quick brown fox", "def convert(x):\n    return 12345", "café  naïve\n\n  spaces"]:
        ours = llm.tokenize(text.encode(), add_bos=False, special=True)
        assert ours == hf.encode(text).ids, text


def test_committed_example_converts_with_mlx_logits(mlx2gguf, tmp_path):
    """The README's first command: the committed example, default output type."""
    from conftest import ROOT
    model = ROOT / "examples" / "tiny-gpt-oss"
    out = tmp_path / "tiny.gguf"
    run(mlx2gguf, "convert", model, "-o", out)
    assert_lossless_bf16(model, GGUFReader(str(out)))
    ref = reference_logits(model)
    got = llama_logits(out, TOKENS)
    assert np.abs(got - ref).max() <= 5e-2
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.9
