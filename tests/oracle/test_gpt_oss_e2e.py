"""gpt-oss end to end, the seed user's case: mixed MLX quantization (mxfp4 experts, 8-bit
affine attention and embeddings, 8-bit g64 router), with and without an adapter, to F32,
Q8_0, Q5_0 and MXFP4 (passthrough). Quantized files are judged against llama.cpp's own
quantizer applied to our F32 output, since tiny random models are chaotic under quantization."""
import json
import shutil

import mlx.core as mx
import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

from conftest import LLAMA_FTYPE, llama_logits, llama_quantize, run
from fixtures import TOKENS, make_gpt_oss, reference_logits, reference_logits_with_adapter, train_adapter
from test_bad_input import check_fails

SEED_SPEC = {"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"}, "router": {"group_size": 64, "bits": 8},
             "attn": {"group_size": 64, "bits": 8}}
ADAPTER_KEYS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.router",
                "mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj"]


@pytest.fixture(scope="module")
def seed_model(tmp_path_factory):
    """Quantized like the seed: the embedding and lm_head follow the default (mxfp4 here
    would be unusual), so make them 8-bit affine as in the real model."""
    root = tmp_path_factory.mktemp("seed")
    spec = dict(SEED_SPEC)
    d = make_gpt_oss(root / "gpt-oss-tiny", seed=31, dtype="bfloat16", quantize=spec)
    return d


@pytest.fixture(scope="module")
def seed_adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed-ad")
    base = make_gpt_oss(root / "base", seed=32, dtype="float32", quantize=SEED_SPEC)
    return base, train_adapter(base, root / "adapter", keys=ADAPTER_KEYS, seed=4)


def tensors_of(path):
    return {t.name: t for t in GGUFReader(str(path)).tensors}


def test_f32_parity(mlx2gguf, seed_model, tmp_path):
    out = tmp_path / "f32.gguf"
    run(mlx2gguf, "convert", seed_model, "--outtype", "f32", "-o", out)
    ref, got = reference_logits(seed_model), llama_logits(out, TOKENS)
    assert np.abs(got - ref).max() <= 1e-3
    assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_f32_parity_with_adapter(mlx2gguf, seed_adapter, tmp_path):
    base, adapter = seed_adapter
    out = tmp_path / "f32.gguf"
    run(mlx2gguf, "convert", base, "--adapter", adapter, "--outtype", "f32", "-o", out)
    ref, got = reference_logits_with_adapter(base, adapter), llama_logits(out, TOKENS)
    assert np.abs(got - ref).max() <= 1e-2
    assert (got.argmax(-1) == ref.argmax(-1)).all()


@pytest.mark.parametrize("with_adapter", [False, True], ids=["base", "adapter"])
@pytest.mark.parametrize("outtype", ["q8_0", "q5_0", "mxfp4_moe"])
def test_quantized_output_matches_llama_quantize(mlx2gguf, seed_model, seed_adapter, tmp_path, outtype, with_adapter):
    model, extra = (seed_adapter[0], ["--adapter", seed_adapter[1]]) if with_adapter else (seed_model, [])
    f32, ours = tmp_path / "f32.gguf", tmp_path / f"{outtype}.gguf"
    run(mlx2gguf, "convert", model, *extra, "--outtype", "f32", "-o", f32)
    ref = llama_quantize(f32, tmp_path / "ref.gguf", LLAMA_FTYPE[outtype])
    run(mlx2gguf, "convert", model, *extra, "--outtype", outtype, "-o", ours)
    a, b = tensors_of(ours), tensors_of(ref)
    assert set(a) == set(b)
    for name in a:
        ta, tb = a[name], b[name]
        assert ta.tensor_type == tb.tensor_type, (name, ta.tensor_type.name, tb.tensor_type.name)
        assert list(ta.shape) == list(tb.shape), name
        if ta.tensor_type.name == "MXFP4":
            # Passthrough may keep MLX's -0 codes and all-zero-block exponents: compare values.
            np.testing.assert_array_equal(dequantize(ta.data, ta.tensor_type), dequantize(tb.data, tb.tensor_type), name)
        else:
            assert bytes(ta.data.tobytes()) == bytes(tb.data.tobytes()), f"{name}: blocks differ from llama.cpp's"
    assert GGUFReader(str(ours)).fields["general.file_type"].contents() == LLAMA_FTYPE[outtype]
    got, want = llama_logits(ours, TOKENS), llama_logits(ref, TOKENS)
    assert np.abs(got - want).max() <= 1e-3


def test_mxfp4_passthrough_is_exact(mlx2gguf, seed_model, tmp_path):
    out = tmp_path / "auto.gguf"
    run(mlx2gguf, "convert", seed_model, "-o", out)
    t = tensors_of(out)
    w = mx.load(str(seed_model / "model.safetensors"))
    for i in range(2):
        for mod, g in [("gate_proj", "ffn_gate_exps"), ("up_proj", "ffn_up_exps"), ("down_proj", "ffn_down_exps")]:
            m = f"model.layers.{i}.mlp.experts.{mod}"
            tt = t[f"blk.{i}.{g}.weight"]
            assert tt.tensor_type.name == "MXFP4"
            ours = dequantize(tt.data, tt.tensor_type).reshape(np.array(w[m + ".scales"]).shape[:-1] + (-1,))
            mlx = np.array(mx.dequantize(w[m + ".weight"], w[m + ".scales"], None, 32, 4, "mxfp4", dtype=mx.float32))
            np.testing.assert_array_equal(ours, mlx)
    assert t["blk.0.attn_q.weight"].tensor_type.name == "Q8_0"
    assert t["blk.0.ffn_gate_inp.weight"].tensor_type.name == "F32"
    assert GGUFReader(str(out)).fields["general.file_type"].contents() == 38
    # Experts exact, attention Q8_0: logits close to MLX (Q8_0 of tiny random attention).
    ref, got = reference_logits(seed_model), llama_logits(out, TOKENS)
    assert np.abs(got - ref).max() <= 0.1


def test_adapted_experts_are_not_passed_through(mlx2gguf, seed_adapter, tmp_path):
    base, adapter = seed_adapter
    out = tmp_path / "auto.gguf"
    run(mlx2gguf, "convert", base, "--adapter", adapter, "-o", out)
    t = tensors_of(out)
    assert t["blk.0.ffn_gate_exps.weight"].tensor_type.name == "Q8_0"


def edit_config(model, tmp_path, fn):
    d = tmp_path / "bad"
    shutil.copytree(model, d)
    c = json.loads((d / "config.json").read_text())
    fn(c)
    (d / "config.json").write_text(json.dumps(c))
    return d


def test_missing_layer_types(mlx2gguf, seed_model, tmp_path):
    d = edit_config(seed_model, tmp_path, lambda c: c.pop("layer_types"))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "config.json", "layer_types")


def test_expert_count_disagrees(mlx2gguf, seed_model, tmp_path):
    d = edit_config(seed_model, tmp_path, lambda c: c.update(num_local_experts=8))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "experts", "num_local_experts=8")


def edit_tokenizer(model, tmp_path, fn):
    d = tmp_path / "badtok"
    shutil.copytree(model, d)
    tok = json.loads((d / "tokenizer.json").read_text())
    fn(tok)
    (d / "tokenizer.json").write_text(json.dumps(tok))
    return d


def test_tokenizer_with_duplicate_tokens(mlx2gguf, seed_model, tmp_path):
    def dup(tok):
        tok["added_tokens"].append({"id": 330, "content": "<|start|>", "special": True})
    d = edit_tokenizer(seed_model, tmp_path, dup)
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "tokenizer.json", "<|start|>")


def test_tokenizer_larger_than_embedding(mlx2gguf, seed_model, tmp_path):
    def big(tok):
        tok["added_tokens"].append({"id": 500, "content": "<|extra|>", "special": True})
    d = edit_tokenizer(seed_model, tmp_path, big)
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "tokenizer.json", "500", "384 rows")


def test_real_120b_layer_shapes_convert_and_load(mlx2gguf, tmp_path):
    """gpt-oss-120b's per-layer shapes (2880 hidden, 64 heads, 8 KV heads, 128 experts):
    converted with the default output (MXFP4 experts passed through, Q8_0 attention),
    loaded and run by llama.cpp."""
    from fixtures import make_gpt_oss_120b_layer
    d = make_gpt_oss_120b_layer(tmp_path / "m")
    out = tmp_path / "auto.gguf"
    run(mlx2gguf, "convert", d, "-o", out)
    r = GGUFReader(str(out))
    t = {x.name: x for x in r.tensors}
    assert [int(x) for x in t["blk.0.ffn_gate_exps.weight"].shape] == [2880, 2880, 128]
    assert t["blk.0.ffn_gate_exps.weight"].tensor_type.name == "MXFP4"
    assert [int(x) for x in t["blk.0.attn_q.weight"].shape] == [2880, 4096]
    assert r.fields["gpt-oss.attention.key_length"].contents() == 64
    shutil.rmtree(d)
    logits = llama_logits(out, [1, 2, 3, 4, 5])
    assert logits.shape == (5, 1024) and np.isfinite(logits).all()


@pytest.mark.parametrize("outtype", ["q8_0", "q4_k_m", "auto"])
def test_output_is_identical_for_any_thread_count(mlx2gguf, seed_adapter, tmp_path, outtype):
    import hashlib
    base, adapter = seed_adapter
    digests = set()
    for i, threads in enumerate(["1", "2", "3", "2"]):
        out = tmp_path / f"o{i}.gguf"
        run(mlx2gguf, "convert", base, "--adapter", adapter, "--outtype", outtype, "--threads", threads, "-o", out)
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1
