"""Every --outtype against llama.cpp's own quantizer: convert to F32 with mlx2gguf, quantize
that file with llama_model_quantize to the same file type, and require the same tensor
types, the same block bytes and the same logits as our direct conversion."""
import json
import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

from conftest import LLAMA_FTYPE, llama_logits, llama_quantize, run
from fixtures import TOKENS, make_gpt_oss

OUTTYPES = ["f32", "f16", "bf16", "q8_0", "q5_0", "q5_1", "q4_0", "q4_1", "mxfp4_moe",
            "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("outtypes")
    return {
        # Rows of 128: every 256-block type falls back (as gpt-oss's 2880 does).
        "narrow": make_gpt_oss(root / "narrow", seed=51, dtype="float32"),
        # Rows of 256 and 8 layers: K-quants apply and the layer-dependent mixture shows.
        "wide": make_gpt_oss(root / "wide", seed=52, dtype="float32", config_over=dict(
            hidden_size=256, intermediate_size=256, num_hidden_layers=8,
            layer_types=["sliding_attention", "full_attention"] * 4)),
    }


@pytest.mark.parametrize("model", ["narrow", "wide"])
@pytest.mark.parametrize("outtype", OUTTYPES)
def test_outtype_matches_llama_quantize(mlx2gguf, models, tmp_path, outtype, model):
    d = models[model]
    f32, ours = tmp_path / "f32.gguf", tmp_path / "ours.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", f32)
    ref = llama_quantize(f32, tmp_path / "ref.gguf", LLAMA_FTYPE[outtype])
    run(mlx2gguf, "convert", d, "--outtype", outtype, "-o", ours)
    a = {t.name: t for t in GGUFReader(str(ours)).tensors}
    b = {t.name: t for t in GGUFReader(str(ref)).tensors}
    assert set(a) == set(b)
    for name in sorted(a):
        ta, tb = a[name], b[name]
        assert ta.tensor_type == tb.tensor_type, f"{name}: ours {ta.tensor_type.name}, llama.cpp {tb.tensor_type.name}"
        assert bytes(ta.data.tobytes()) == bytes(tb.data.tobytes()), f"{name} ({ta.tensor_type.name}): blocks differ"
    assert GGUFReader(str(ours)).fields["general.file_type"].contents() == LLAMA_FTYPE[outtype]
    np.testing.assert_allclose(llama_logits(ours, TOKENS), llama_logits(ref, TOKENS), atol=1e-3, rtol=0)


def test_pure_and_tensor_type_overrides(mlx2gguf, models, tmp_path):
    d = models["wide"]
    out = tmp_path / "o.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "q4_k_m", "--pure", "--tensor-type", r"attn_v\.weight=q8_0",
        "--tensor-type", "ffn_down_exps=F16", "-o", out)
    t = {x.name: x.tensor_type.name for x in GGUFReader(str(out)).tensors}
    assert t["blk.3.attn_v.weight"] == "Q8_0"
    assert t["blk.0.ffn_down_exps.weight"] == "F16"
    assert t["blk.0.ffn_gate_exps.weight"] == "Q4_K"  # --pure: no mixture bump
    assert t["output.weight"] == "Q4_K"
    assert t["blk.0.ffn_gate_inp.weight"] == "F32" and t["blk.0.attn_norm.weight"] == "F32"


def test_unknown_outtype_lists_valid_ones(mlx2gguf, models, tmp_path):
    p = run(mlx2gguf, "convert", models["narrow"], "--outtype", "q3_x", "-o", tmp_path / "o.gguf", check=False)
    assert p.returncode == 2 and "q8_0" in p.stderr and "q4_k_m" in p.stderr and "auto" in p.stderr


@pytest.mark.parametrize("bits,gs", [(4, 32), (4, 64), (4, 128), (5, 32), (5, 64)])
def test_affine_passthrough_is_exact(mlx2gguf, tmp_path, bits, gs):
    """auto: affine 4-bit → Q4_1 and 5-bit → Q5_1, copied block by block (no requantization):
    gguf-py's dequantization of our blocks equals MLX's exact f32 values."""
    import mlx.core as mx
    from mlx_ref import dequant_exact

    d = make_gpt_oss(tmp_path / "m", seed=60 + bits, quantize={"default": {"group_size": gs, "bits": bits}})
    out = tmp_path / "auto.gguf"
    p = run(mlx2gguf, "convert", d, "-o", out)
    assert "requantized" not in p.stderr
    tensors = {t.name: t for t in GGUFReader(str(out)).tensors}
    w = mx.load(str(d / "model.safetensors"))
    want_type = "Q4_1" if bits == 4 else "Q5_1"
    for module, name in [("model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight"),
                         ("model.layers.1.mlp.experts.down_proj", "blk.1.ffn_down_exps.weight"),
                         ("model.embed_tokens", "token_embd.weight")]:
        t = tensors[name]
        assert t.tensor_type.name == want_type, name
        want = dequant_exact("affine", bits, gs, np.array(w[module + ".weight"]),
                             np.array(w[module + ".scales"].astype(mx.float32)),
                             np.array(w[module + ".biases"].astype(mx.float32)))
        got = dequantize(t.data, t.tensor_type).reshape(want.shape)
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert tensors["blk.0.ffn_gate_inp.weight"].tensor_type.name == "F32"


def test_affine_passthrough_falls_back_when_scales_do_not_fit_f16(mlx2gguf, tmp_path):
    import mlx.core as mx

    d = make_gpt_oss(tmp_path / "m", seed=70, quantize={"default": {"group_size": 64, "bits": 4}})
    path = d / "model.safetensors"
    w = mx.load(str(path))
    k = "model.layers.0.self_attn.q_proj.scales"
    s = np.array(w[k].astype(mx.float32))
    s[0, 0] = 1e-30  # a bf16 value far below f16's range
    w[k] = mx.array(s).astype(mx.bfloat16)
    mx.save_safetensors(str(path), w, metadata={"format": "mlx"})
    out = tmp_path / "auto.gguf"
    plan = json.loads(run(mlx2gguf, "convert", d, "-o", out, "--dry-run", "--json").stdout)
    how = {t["name"]: t["how"] for t in plan["tensors"]}
    # The plan reads the scales: this tensor is encoded whole, the others still copied.
    assert how["blk.0.attn_q.weight"] == "encode" and how["blk.0.attn_k.weight"] == "copy"
    assert [n["tensor"] for n in plan["not_copied"]] == ["blk.0.attn_q.weight"]
    p = run(mlx2gguf, "convert", d, "-o", out)
    assert "blk.0.attn_q.weight" in p.stderr and "requantized" in p.stderr
    t = {x.name: x for x in GGUFReader(str(out)).tensors}["blk.0.attn_q.weight"]
    assert t.tensor_type.name == "Q4_1"


def test_nvfp4_passthrough_is_exact(mlx2gguf, tmp_path):
    """auto: MLX nvfp4 (no global scale) → NVFP4, copied block by block."""
    import mlx.core as mx
    from fixtures import reference_logits
    from mlx_ref import dequant_exact

    d = make_gpt_oss(tmp_path / "m", seed=90, quantize={"default": {"group_size": 16, "bits": 4, "mode": "nvfp4"}})
    out = tmp_path / "auto.gguf"
    run(mlx2gguf, "convert", d, "-o", out)
    tensors = {t.name: t for t in GGUFReader(str(out)).tensors}
    w = mx.load(str(d / "model.safetensors"))
    for module, name in [("model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight"),
                         ("model.layers.1.mlp.experts.up_proj", "blk.1.ffn_up_exps.weight")]:
        t = tensors[name]
        assert t.tensor_type.name == "NVFP4", name
        want = dequant_exact("nvfp4", 4, 16, np.array(w[module + ".weight"]), np.array(w[module + ".scales"]))
        np.testing.assert_array_equal(dequantize(t.data, t.tensor_type).reshape(want.shape), want, err_msg=name)
    got, ref = llama_logits(out, TOKENS), reference_logits(d)
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.9
