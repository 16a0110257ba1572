"""Fusing real mlx-lm adapters (trained here with `mlx_lm lora`) exactly: tensors against
`mlx_lm fuse --dequantize`, logits in llama.cpp against MLX running the adapter unfused."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from gguf import GGUFReader

from conftest import llama_logits, run
from fixtures import TOKENS, make_gpt_oss, reference_logits, reference_logits_with_adapter, train_adapter
from test_bad_input import check_fails

# GGUF name for each MLX module weight.
GGUF = {"model.embed_tokens": "token_embd.weight", "lm_head": "output.weight"}
for i in range(2):
    for mod, g in [("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
                   ("self_attn.o_proj", "attn_output"), ("mlp.router", "ffn_gate_inp"),
                   ("mlp.experts.gate_proj", "ffn_gate_exps"), ("mlp.experts.up_proj", "ffn_up_exps"),
                   ("mlp.experts.down_proj", "ffn_down_exps")]:
        GGUF[f"model.layers.{i}.{mod}"] = f"blk.{i}.{g}.weight"

QSPEC = {"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"}, "router": {"group_size": 64, "bits": 8},
         "attn": {"group_size": 64, "bits": 8}}

CASES = {
    "lora-default": dict(base="dense"),
    "lora-keys": dict(base="dense", keys=["self_attn.q_proj", "self_attn.o_proj", "mlp.router",
                                          "mlp.experts.gate_proj", "mlp.experts.down_proj"]),
    "dora-attn": dict(base="dense", fine_tune_type="dora",
                      keys=["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]),
    "lora-embedding": dict(base="dense", keys=["model.embed_tokens", "self_attn.v_proj"]),
    "qlora": dict(base="quantized"),
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("bases")
    return {"dense": make_gpt_oss(root / "dense", seed=21, dtype="float32"),
            "quantized": make_gpt_oss(root / "quantized", seed=22, dtype="float32", quantize=QSPEC)}


@pytest.fixture(scope="module")
def adapters(bases, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    out = {}
    for name, c in CASES.items():
        out[name] = train_adapter(bases[c["base"]], root / name, fine_tune_type=c.get("fine_tune_type", "lora"),
                                  keys=c.get("keys"), seed=1)
    return out


def mlx_fuse(model, adapter, dst):
    subprocess.run([sys.executable, "-m", "mlx_lm", "fuse", "--model", str(model), "--adapter-path", str(adapter),
                    "--save-path", str(dst), "--dequantize"], check=True, capture_output=True)
    w = {}
    for f in sorted(Path(dst).glob("model*.safetensors")):
        w.update(mx.load(str(f)))
    return w


def exact_fused(base, adapter, module):
    """W (exact f32 dequantization) + scale · B·A, for a LoRA SwitchLinear/Linear in f32."""
    w = mx.load(str(base / "model.safetensors"))
    a = mx.load(str(adapter / "adapters.safetensors"))
    scale = json.loads((adapter / "adapter_config.json").read_text())["lora_parameters"]["scale"]
    cfg = json.loads((base / "config.json").read_text())["quantization"]
    q = cfg.get(module, cfg)
    dense = np.array(mx.dequantize(w[module + ".weight"], w[module + ".scales"], w.get(module + ".biases"),
                                   q["group_size"], q["bits"], q.get("mode", "affine"), dtype=mx.float32))
    la, lb = np.array(a[module + ".lora_a"]), np.array(a[module + ".lora_b"])
    delta = (scale * lb) @ la if la.ndim == 3 else (scale * lb.T) @ la.T
    return dense + delta.astype(np.float32)


@pytest.mark.parametrize("case", list(CASES))
def test_fusion_matches_mlx_lm(mlx2gguf, bases, adapters, tmp_path, case):
    base, adapter = bases[CASES[case]["base"]], adapters[case]
    fused = mlx_fuse(base, adapter, tmp_path / "fused")
    out = tmp_path / "ours.gguf"
    p = run(mlx2gguf, "convert", base, "--adapter", adapter, "--outtype", "f32", "-o", out)
    ours = {t.name: np.array(t.data) for t in GGUFReader(str(out)).tensors}
    adapted = {k.rsplit(".", 1)[0] for k in mx.load(str(adapter / "adapters.safetensors"))}
    assert adapted, "the adapter is empty"
    for module in adapted:
        theirs = fused[module + ".weight"]
        got = ours[GGUF[module]]
        if theirs.dtype == mx.bfloat16:
            # mlx-lm dequantizes mxfp4 to bf16 and adds the delta in bf16: check it within
            # bf16 rounding, and check ours exactly against the f32 formula.
            rel = np.linalg.norm(got - np.array(theirs.astype(mx.float32))) / np.linalg.norm(got)
            assert rel <= 2.0**-8, f"{case}: {module} relative error {rel} against mlx_lm fuse"
            theirs = exact_fused(base, adapter, module)
        else:
            theirs = np.array(theirs.astype(mx.float32))
        rel = np.linalg.norm(got - theirs) / np.linalg.norm(theirs)
        assert rel <= 1e-5, f"{case}: {module} relative error {rel}"
    assert "adapter survival" in p.stdout
    ref = reference_logits_with_adapter(base, adapter)
    base_ref = reference_logits(base)
    assert np.abs(ref - base_ref).max() > 1e-2, "the trained adapter should change the logits"
    got = llama_logits(out, TOKENS)
    dmax = np.abs(got - ref).max()
    assert dmax <= 1e-2, f"{case}: max |Δlogit| {dmax}"
    assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_small_delta_survives_default_output(mlx2gguf, bases, tmp_path):
    """A delta far below the 4-bit step: mlx-lm's fuse re-quantizes it away, our default
    output (Q8_0 for adapted quantized tensors) keeps it, and the report says how much."""
    base = bases["quantized"]
    adapter = train_adapter(base, tmp_path / "small", keys=["mlp.experts.gate_proj", "mlp.experts.up_proj"],
                            scale=0.5, seed=2)
    w = mx.load(str(base / "model.safetensors"))
    a = mx.load(str(adapter / "adapters.safetensors"))
    m = "model.layers.0.mlp.experts.gate_proj"
    delta = 0.5 * (np.array(a[m + ".lora_b"]) @ np.array(a[m + ".lora_a"]))
    dense = np.array(mx.dequantize(w[m + ".weight"], w[m + ".scales"], None, 32, 4, "mxfp4", dtype=mx.float32))
    step = np.abs(dense).max(-1, keepdims=True) / 6
    # Rescale the trained adapter so its largest change is a quarter of the smallest 4-bit step.
    scale = 0.5 * 0.25 * step.min() / np.abs(delta).max()
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["lora_parameters"]["scale"] = float(scale)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    delta *= scale / 0.5
    assert np.abs(delta).max() < 0.5 * step.min()
    # mlx-lm's own fuse re-quantizes at 4 bits: the delta is gone.
    subprocess.run([sys.executable, "-m", "mlx_lm", "fuse", "--model", str(base), "--adapter-path", str(adapter),
                    "--save-path", str(tmp_path / "requant")], check=True, capture_output=True)
    rq = mx.load(str(next((tmp_path / "requant").glob("model*.safetensors"))))
    erased = np.array_equal(np.array(rq[m + ".weight"]), np.array(w[m + ".weight"]))
    out, base_out = tmp_path / "ours.gguf", tmp_path / "base.gguf"
    p = run(mlx2gguf, "convert", base, "--adapter", adapter, "-o", out)
    run(mlx2gguf, "convert", base, "-o", base_out)
    r = {t.name: t for t in GGUFReader(str(out)).tensors}
    assert r["blk.0.ffn_gate_exps.weight"].tensor_type.name == "Q8_0"
    got, got_base = llama_logits(out, TOKENS), llama_logits(base_out, TOKENS)
    assert np.abs(got - got_base).max() > 1e-4, "the adapter's effect must survive"
    report = p.stdout.split("adapter survival")[1]
    line = next(l for l in report.splitlines() if "ffn_gate_exps.weight" in l)
    kept, noise = (float(x.rstrip("%")) for x in line.split()[-2:])
    assert kept > 50 and noise < kept, line
    assert erased, "mlx-lm's 4-bit re-quantization erases this delta (the bug this guards against)"


@pytest.fixture(scope="module")
def plain_lora(bases, tmp_path_factory):
    return train_adapter(bases["dense"], tmp_path_factory.mktemp("pl") / "a",
                         keys=["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                               "mlp.router", "mlp.experts.gate_proj", "mlp.experts.down_proj",
                               "model.embed_tokens", "lm_head"], seed=3)


def test_adapter_out_gives_fused_logits(mlx2gguf, bases, plain_lora, tmp_path):
    """llama.cpp applies LoRA at run time to attention, router, embeddings, output and
    (through MUL_MAT_ID) the stacked experts: base + adapter GGUF = fused GGUF."""
    from llama_cpp import Llama
    base = bases["dense"]
    fused, base_out, lora_out = tmp_path / "fused.gguf", tmp_path / "base.gguf", tmp_path / "lora.gguf"
    run(mlx2gguf, "convert", base, "--adapter", plain_lora, "--outtype", "f32", "-o", fused)
    run(mlx2gguf, "convert", base, "--adapter", plain_lora, "--adapter-out", lora_out, "--outtype", "f32", "-o", base_out)
    r = GGUFReader(str(lora_out))
    assert r.fields["general.type"].contents() == "adapter"
    assert r.fields["adapter.type"].contents() == "lora"
    assert abs(r.fields["adapter.lora.alpha"].contents() - 20.0 * 4) < 1e-6
    want = llama_logits(fused, TOKENS)
    llm = Llama(model_path=str(base_out), lora_path=str(lora_out), n_ctx=64, n_batch=64, n_ubatch=64,
                logits_all=True, type_k=0, type_v=0, n_threads=2, verbose=False)
    llm.eval(TOKENS)
    got = np.array(llm.scores[: len(TOKENS)])
    assert np.abs(got - want).max() <= 1e-2
    assert (got.argmax(-1) == want.argmax(-1)).all()
    # And the base file alone is the unadapted model.
    assert np.abs(llama_logits(base_out, TOKENS) - reference_logits(base)).max() <= 1e-3


def test_adapter_out_refuses_dora(mlx2gguf, bases, adapters, tmp_path):
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", bases["dense"], "--adapter", adapters["dora-attn"], "--adapter-out",
            tmp_path / "a.gguf", "-o", out, check=False)
    assert p.returncode != 0 and "DoRA" in p.stderr and "fuse" in p.stderr
    assert not out.exists() and not (tmp_path / "a.gguf").exists()


def broken_adapter(adapter, tmp_path, fn=None, cfg_fn=None):
    d = tmp_path / "bad-adapter"
    shutil.copytree(adapter, d)
    if fn:
        w = mx.load(str(d / "adapters.safetensors"))
        fn(w)
        mx.save_safetensors(str(d / "adapters.safetensors"), w)
    if cfg_fn:
        c = json.loads((d / "adapter_config.json").read_text())
        cfg_fn(c)
        (d / "adapter_config.json").write_text(json.dumps(c))
    return d


def check_adapter_fails(exe, base, adapter, tmp_path, *needles):
    out = tmp_path / "o.gguf"
    p = run(exe, "convert", base, "--adapter", adapter, "-o", out, check=False)
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    for n in needles:
        assert n in p.stderr, (n, p.stderr)
    assert not out.exists()


Q = "model.layers.1.self_attn.q_proj"


def test_adapter_for_another_model(mlx2gguf, bases, plain_lora, tmp_path):
    d = broken_adapter(plain_lora, tmp_path, fn=lambda w: w.__setitem__(Q + ".lora_a", mx.zeros((64, 4))))
    check_adapter_fails(mlx2gguf, bases["dense"], d, tmp_path, Q + ".lora_a", "another model")


def test_missing_lora_b(mlx2gguf, bases, plain_lora, tmp_path):
    d = broken_adapter(plain_lora, tmp_path, fn=lambda w: w.pop(Q + ".lora_b"))
    check_adapter_fails(mlx2gguf, bases["dense"], d, tmp_path, Q, "lora_b")


def test_rank_mismatch(mlx2gguf, bases, plain_lora, tmp_path):
    d = broken_adapter(plain_lora, tmp_path, fn=lambda w: w.__setitem__(Q + ".lora_b", w[Q + ".lora_b"][:2]))
    check_adapter_fails(mlx2gguf, bases["dense"], d, tmp_path, Q + ".lora_b", "rank")


def test_keys_matching_no_module(mlx2gguf, bases, plain_lora, tmp_path):
    d = broken_adapter(plain_lora, tmp_path, cfg_fn=lambda c: c["lora_parameters"].update(keys=["mlp.shared_expert"]))
    check_adapter_fails(mlx2gguf, bases["dense"], d, tmp_path, "adapter_config.json", "mlp.shared_expert")


def test_tensor_matching_no_module(mlx2gguf, bases, plain_lora, tmp_path):
    d = broken_adapter(plain_lora, tmp_path, fn=lambda w: w.update({"model.layers.0.mlp.gate.lora_a": mx.zeros((128, 4)),
                                                                     "model.layers.0.mlp.gate.lora_b": mx.zeros((4, 8))}))
    check_adapter_fails(mlx2gguf, bases["dense"], d, tmp_path, "model.layers.0.mlp.gate")


def test_unknown_fine_tune_type(mlx2gguf, bases, plain_lora, tmp_path):
    d = broken_adapter(plain_lora, tmp_path, cfg_fn=lambda c: c.update(fine_tune_type="qlora"))
    check_adapter_fails(mlx2gguf, bases["dense"], d, tmp_path, "adapter_config.json", "fine_tune_type", "qlora")
