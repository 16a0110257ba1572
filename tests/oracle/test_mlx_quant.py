"""Reading MLX quantization exactly: every mode × bits × group size mlx accepts, in 2-D and
3-D (experts) tensors, with random scales, checked bit for bit against the exact f32
formula, against mx.dequantize, and end to end in llama.cpp."""
import hashlib
import json
import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from gguf import GGUFReader

from conftest import llama_logits, run
from fixtures import TOKENS, make_gpt_oss, reference_logits, small_shards, train_adapter
from mlx_ref import dequant_exact

# (MLX module, GGUF tensor) pairs that cover 2-D linears, the router, 3-D experts,
# the quantized embedding and lm_head.
MODULES = {
    "model.embed_tokens": "token_embd.weight",
    "model.layers.0.self_attn.q_proj": "blk.0.attn_q.weight",
    "model.layers.1.self_attn.o_proj": "blk.1.attn_output.weight",
    "model.layers.0.mlp.router": "blk.0.ffn_gate_inp.weight",
    "model.layers.0.mlp.experts.gate_proj": "blk.0.ffn_gate_exps.weight",
    "model.layers.1.mlp.experts.down_proj": "blk.1.ffn_down_exps.weight",
    "lm_head": "output.weight",
}

COMBOS = [("affine", b, g) for b in (1, 2, 3, 4, 5, 6, 8) for g in (32, 64, 128)] + [
    ("mxfp4", 4, 32), ("nvfp4", 4, 16), ("mxfp8", 8, 32), ("nvfp4-global", 4, 16)]


def load_all(model_dir):
    out = {}
    for f in sorted(Path(model_dir).glob("model*.safetensors")):
        out.update(mx.load(str(f)))
    return out


def randomize_scales(model_dir, mode, seed):
    """Replaces every scale (and affine bias) with random values of the same dtype and
    shape, so that negative, tiny and large scales are all exercised."""
    rng = np.random.default_rng(seed)
    path = Path(model_dir) / "model.safetensors"
    w = mx.load(str(path))
    for k, v in list(w.items()):
        if k.endswith(".scales") or k.endswith(".biases"):
            if v.dtype == mx.uint8:
                lo, hi = (110, 140) if mode.startswith("mx") else (0, 0x7E)
                r = rng.integers(lo, hi + 1, size=v.shape).astype(np.uint8)
                if mode.startswith("nvfp4"):
                    r |= (rng.random(v.shape) < 0.2).astype(np.uint8) << 7  # negative scales
                w[k] = mx.array(r)
            else:
                w[k] = mx.array(rng.standard_normal(v.shape).astype(np.float32) * 0.05).astype(v.dtype)
    mx.save_safetensors(str(path), w, metadata={"format": "mlx"})


def quant_fixture(root, mode, bits, gs, seed):
    spec_mode = "nvfp4" if mode == "nvfp4-global" else mode
    d = make_gpt_oss(root / f"{mode}-{bits}-{gs}", seed=seed, dtype="bfloat16",
                     quantize={"default": {"group_size": gs, "bits": bits, "mode": spec_mode}},
                     global_scale=(mode == "nvfp4-global"))
    return d


@pytest.mark.parametrize("mode,bits,gs", COMBOS, ids=[f"{m}-{b}-g{g}" for m, b, g in COMBOS])
def test_dequantization_is_exact(mlx2gguf, tmp_path, mode, bits, gs):
    d = quant_fixture(tmp_path, mode, bits, gs, seed=10 + bits + gs)
    randomize_scales(d, mode, seed=bits * 1000 + gs)
    cfg = json.loads((d / "config.json").read_text())["quantization"]
    out = tmp_path / "f32.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", out)
    ours = {t.name: np.array(t.data) for t in GGUFReader(str(out)).tensors}
    src = load_all(d)
    base_mode = "nvfp4" if mode == "nvfp4-global" else mode
    checked = 0
    for module, gguf_name in MODULES.items():
        if module + ".scales" not in src:
            continue  # mlx skips modules whose in-dim the group size does not divide
        entry = cfg.get(module, cfg)
        m, b, g = entry.get("mode", "affine"), entry["bits"], entry["group_size"] or 64
        wq = np.array(src[module + ".weight"])
        sc = src[module + ".scales"]
        sc_np = np.array(sc) if sc.dtype == mx.uint8 else np.array(sc.astype(mx.float32))
        bi = src.get(module + ".biases")
        bi_np = None if bi is None else np.array(bi.astype(mx.float32))
        gsc = src.get(module + ".global_scale")
        want = dequant_exact(m, b, g, wq, sc_np, bi_np, None if gsc is None else np.array(gsc))
        got = ours[gguf_name]
        assert got.shape == want.shape, gguf_name
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), want.astype(np.float32).view(np.uint32), err_msg=gguf_name)
        # mx.dequantize: exact for the fp modes, within its bf16 double rounding for affine.
        if gsc is not None:
            mxd = np.stack([np.array(mx.dequantize(src[module + ".weight"][e], sc[e], None, g, b, m,
                                                   global_scale=gsc[e:e + 1], dtype=mx.float32))
                            for e in range(wq.shape[0])])
        else:
            mxd = np.array(mx.dequantize(src[module + ".weight"], sc, bi, g, b, m, dtype=mx.float32))
        if m == "affine" and sc.dtype != mx.float32:
            qs = np.abs(want - np.repeat(bi_np, g, axis=-1))
            assert (np.abs(mxd - want) <= 2.0**-8 * (qs + np.abs(want)) + 1e-30).all(), gguf_name
        else:
            np.testing.assert_array_equal(mxd, want, err_msg=gguf_name)
        checked += 1
    assert checked >= 5 if base_mode != "affine" or gs < 128 else checked >= 3


MLX_CONVERT = {
    "q4": ["-q"],
    "q3-g32": ["-q", "--q-bits", "3", "--q-group-size", "32"],
    "q2-g128": ["-q", "--q-bits", "2", "--q-group-size", "128"],
    "q5": ["-q", "--q-bits", "5"],
    "q6-g32": ["-q", "--q-bits", "6", "--q-group-size", "32"],
    "q8": ["-q", "--q-bits", "8"],
    "mxfp4": ["-q", "--q-mode", "mxfp4"],
    "nvfp4": ["-q", "--q-mode", "nvfp4"],
    "mxfp8": ["-q", "--q-mode", "mxfp8"],
    "mixed_3_6": ["-q", "--quant-predicate", "mixed_3_6"],
}


@pytest.fixture(scope="module")
def dense_source(tmp_path_factory):
    return make_gpt_oss(tmp_path_factory.mktemp("src") / "tiny", seed=5, dtype="bfloat16")


def mlx_lm_convert(src, dst, args):
    import subprocess
    import sys
    subprocess.run([sys.executable, "-m", "mlx_lm", "convert", "--hf-path", str(src), "--mlx-path", str(dst), *args],
                   check=True, capture_output=True)
    return dst


@pytest.mark.parametrize("name", list(MLX_CONVERT))
def test_mlx_lm_convert_outputs_run_with_mlx_logits(mlx2gguf, dense_source, tmp_path, name):
    d = mlx_lm_convert(dense_source, tmp_path / name, MLX_CONVERT[name])
    assert "quantization" in json.loads((d / "config.json").read_text())
    out = tmp_path / "f32.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", out)
    ref = reference_logits(d)
    got = llama_logits(out, TOKENS)
    dmax = np.abs(got - ref).max()
    assert dmax <= 1e-3, f"{name}: max |Δlogit| {dmax}"
    assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_sharded_checkpoint_gives_same_bytes(mlx2gguf, tmp_path, monkeypatch):
    import mlx_lm.utils as mu

    spec = {"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"}, "router": {"group_size": 64, "bits": 8},
            "attn": {"group_size": 64, "bits": 8}}
    one = make_gpt_oss(tmp_path / "a" / "m", seed=7, quantize=spec)
    monkeypatch.setattr(mu, "make_shards", small_shards)
    many = make_gpt_oss(tmp_path / "b" / "m", seed=7, quantize=spec)
    shards = sorted(p.name for p in many.glob("model-*.safetensors"))
    assert len(shards) >= 3, shards
    outs = []
    for d in (one, many):
        out = d.parent / "o.gguf"
        run(mlx2gguf, "convert", d, "--outtype", "q8_0", "-o", out)
        outs.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert outs[0] == outs[1]


def set_scale_byte(model_dir, tensor, value, count):
    path = Path(model_dir) / "model.safetensors"
    w = mx.load(str(path))
    s = np.array(w[tensor])
    s.reshape(-1)[:count] = value
    w[tensor] = mx.array(s)
    mx.save_safetensors(str(path), w, metadata={"format": "mlx"})


def test_nan_policy(mlx2gguf, tmp_path):
    d = make_gpt_oss(tmp_path / "m", seed=8, quantize={"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"}})
    set_scale_byte(d, "model.layers.0.mlp.experts.up_proj.scales", 255, 3)
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", out, check=False)
    assert p.returncode != 0 and not out.exists()
    assert "model.layers.0.mlp.experts.up_proj.weight" in p.stderr and "96 inf/NaN" in p.stderr, p.stderr
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", out, "--nan-policy", "zero")
    t = {t.name: np.array(t.data) for t in GGUFReader(str(out)).tensors}["blk.0.ffn_up_exps.weight"]
    assert np.isfinite(t).all() and (t.reshape(-1)[:96] == 0).all()
    p = run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", out, "--nan-policy", "keep")
    t = {t.name: np.array(t.data) for t in GGUFReader(str(out)).tensors}["blk.0.ffn_up_exps.weight"]
    assert (~np.isfinite(t)).sum() == 96
    assert "96 inf/NaN" in p.stderr


def test_nan_policy_with_adapter(mlx2gguf, tmp_path):
    """The same NaN groups in an adapted tensor (counted after the LoRA product is added):
    reported, refused, zeroed or kept as without an adapter."""
    d = make_gpt_oss(tmp_path / "m", seed=8, quantize={"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"}})
    adapter = train_adapter(d, tmp_path / "a", keys=["mlp.experts.up_proj"], iters=1)
    set_scale_byte(d, "model.layers.0.mlp.experts.up_proj.scales", 255, 3)
    out = tmp_path / "o.gguf"
    args = ["convert", d, "--adapter", adapter, "--outtype", "f32", "-o", out]
    p = run(mlx2gguf, *args, check=False)
    assert p.returncode != 0 and not out.exists()
    assert "model.layers.0.mlp.experts.up_proj.weight" in p.stderr and "96 inf/NaN" in p.stderr, p.stderr
    for policy, bad in (("zero", 0), ("keep", 96)):
        run(mlx2gguf, *args, "--nan-policy", policy)
        t = {t.name: np.array(t.data) for t in GGUFReader(str(out)).tensors}["blk.0.ffn_up_exps.weight"]
        assert (~np.isfinite(t)).sum() == bad, policy
