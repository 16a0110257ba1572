"""llama, mistral, mixtral, qwen2, qwen3 and qwen3_moe end to end: tiny mlx-lm checkpoints
(mixed MLX quantization modes, see arch_fixtures.SPECS) converted by mlx2gguf and run by
llama.cpp, against MLX running the same checkpoint (with and without a real mlx_lm.lora
adapter), llama.cpp's own quantizer, the HF tokenizer, and the expected GGUF metadata.

The fixtures are built once per session, lazily per architecture (`-k qwen2` builds only
qwen2); training the six adapters takes most of the time."""
import json
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from arch_fixtures import (ARCHS, CHATML_TEMPLATE, GGUF_ARCH, LLAMA3_TEMPLATE, SPECS, TOKENIZE_TEXTS, adapter_tokens, tolerance,
                           make_arch, meta_of, mlx_logits, tokenizer_pre, top2_margin, train_arch_adapter)
from conftest import LLAMA_FTYPE, llama_logits, llama_quantize, run
from test_bad_input import check_fails

MOE = {"mixtral", "qwen3_moe", "qwen2_moe"}
TIED = {a for a in ARCHS if SPECS[a]["config"]["tie_word_embeddings"]}


class ArchBuilds:
    """Checkpoints, adapters and conversions, each made once and cached."""

    def __init__(self, root: Path):
        self.root = root
        self.models, self.adapters, self.adapter_toks, self.ggufs = {}, {}, {}, {}

    def model(self, arch, dense=False):
        """The quantized checkpoint, or (dense) the same model unquantized in bf16."""
        key = (arch, dense)
        if key not in self.models:
            name = SPECS[arch].get("folder", arch)
            self.models[key] = make_arch(arch, self.root / (f"{name}-bf16" if dense else name), quantize=not dense)
        return self.models[key]

    def meta(self, arch, dense=False):
        return meta_of(self.model(arch, dense))

    def tokens(self, arch, dense=False):
        return self.meta(arch, dense)["tokens"]

    def adapter(self, arch):
        if arch not in self.adapters:
            self.adapters[arch] = train_arch_adapter(arch, self.model(arch), self.root / f"{arch}-adapter")
        return self.adapters[arch]

    def adapter_tokens(self, arch):
        if arch not in self.adapter_toks:
            self.adapter_toks[arch] = adapter_tokens(arch, self.model(arch), self.adapter(arch))
        return self.adapter_toks[arch]

    def gguf(self, exe, arch, outtype="f32", adapter=False, dense=False):
        key = (arch, outtype, adapter, dense)
        if key not in self.ggufs:
            out = self.root / f"{arch}{'-bf16' if dense else ''}-{outtype}{'-adapter' if adapter else ''}.gguf"
            extra = ["--adapter", self.adapter(arch)] if adapter else []
            run(exe, "convert", self.model(arch, dense), *extra, "--outtype", outtype, "--quiet", "-o", out)
            self.ggufs[key] = out
        return self.ggufs[key]


def kl(ref, got):
    """Mean KL divergence of llama.cpp's next-token distribution from MLX's."""
    def log_softmax(x):
        x = x.astype(np.float64) - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))
    p, q = log_softmax(ref), log_softmax(got)
    return float((np.exp(p) * (p - q)).sum(-1).mean())


def tensors_of(path):
    return {t.name: t for t in GGUFReader(str(path)).tensors}


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


# --------------------------------------------------------------------------------------------
# The fixtures themselves (these pass without mlx2gguf).


@pytest.mark.parametrize("arch", ARCHS)
def test_fixture_loads_in_mlx_lm(builds, arch):
    """mlx-lm's own loader takes the checkpoint (model and tokenizer); the module names are
    the ones mlx-lm writes; several quantization modes are mixed; the f32 reference logits
    are finite, varied, and without near-ties (top-1 agreement is then well defined)."""
    import mlx.core as mx
    from mlx_lm.utils import load
    from transformers import AutoTokenizer

    d = builds.model(arch)
    meta = builds.meta(arch)
    cfg = json.loads((d / "config.json").read_text())
    model, tok = load(str(d))
    out = model(mx.array([meta["tokens"]]))
    mx.eval(out)
    assert np.isfinite(np.array(out.astype(mx.float32))).all()

    q = cfg["quantization"]
    assert cfg["quantization_config"] == q
    kinds = {(v["mode"], v["bits"], v["group_size"]) for v in q.values() if isinstance(v, dict)}
    assert len(kinds) >= 3, kinds

    w = {}
    for f in d.glob("model*.safetensors"):
        # a multimodal wrapper (llama4) holds the language model under `language_model.`
        w.update({k.removeprefix("language_model."): v for k, v in mx.load(str(f)).items()})
    assert ("lm_head.weight" in w) == (arch not in TIED)
    assert w["model.embed_tokens.scales"].shape[0] == meta["rows"] == cfg.get("text_config", cfg)["vocab_size"]
    assert meta["rows"] >= meta["n_tokenizer"] and (meta["rows"] > meta["n_tokenizer"]) == (arch == "qwen2")
    L = "model.layers.1."
    if arch == "mixtral":
        assert w[L + "block_sparse_moe.gate.weight"].shape[0] == 4
        assert w[L + "block_sparse_moe.switch_mlp.down_proj.weight"].shape[:2] == (4, 256)
        assert w[L + "block_sparse_moe.switch_mlp.gate_proj.scales"].shape == (4, 512, 4)
    elif arch == "qwen3_moe":
        assert w[L + "mlp.gate.weight"].shape[0] == 4
        assert w[L + "mlp.switch_mlp.up_proj.scales"].dtype == mx.uint8  # mxfp4
        assert w[L + "mlp.switch_mlp.down_proj.biases"].shape == (4, 256, 4)  # affine 6-bit g64
    elif arch in ("qwen3_5", "qwen3_5_moe"):
        assert "model.layers.0.linear_attn.in_proj_z.weight" in w and "model.layers.1.self_attn.q_proj.weight" in w
        assert (L + "mlp.switch_mlp.gate_proj.weight" in w) == (arch == "qwen3_5_moe")
    elif arch == "qwen3_next":
        assert w["model.layers.0.linear_attn.conv1d.weight"].shape == (512, 4, 1)
        assert "model.layers.1.self_attn.q_proj.weight" in w and L + "mlp.shared_expert_gate.weight" in w
    elif arch == "llama4":
        assert w["model.layers.1.feed_forward.router.weight"].shape[0] == 4
        assert "model.layers.0.feed_forward.gate_proj.weight" in w and "model.layers.1.feed_forward.experts.gate_proj.scales" in w
    elif arch == "glm4_moe":
        assert w[L + "mlp.gate.e_score_correction_bias"].shape == (8,) and "model.layers.0.mlp.up_proj.weight" in w
    elif arch == "deepseek_v2":
        assert w[L + "self_attn.kv_b_proj.scales"].shape[0] == 4 * (64 + 64)
    elif arch == "kimi_k2":
        assert L + "self_attn.q_proj.weight" in w and L + "self_attn.q_a_proj.weight" not in w
    elif arch == "deepseek_v3":
        assert w[L + "mlp.gate.weight"].shape == (8, 256) and "model.layers.0.mlp.gate_proj.weight" in w
        assert w[L + "self_attn.embed_q.weight"].shape[0] == 4 and L + "self_attn.kv_b_proj.weight" not in w
    elif arch == "qwen2_moe":
        assert w[L + "mlp.shared_expert_gate.weight"].shape[0] == 1
        assert w[L + "mlp.switch_mlp.gate_proj.scales"].dtype == mx.uint8  # mxfp4
    elif arch == "phi3":
        assert L + "mlp.gate_up_proj.weight" in w and L + "self_attn.qkv_proj.weight" in w
    else:
        assert L + "mlp.gate_proj.weight" in w
    assert (L + "self_attn.q_proj.bias" in w) == (arch in ("qwen2", "qwen2_moe", "glm4_moe"))
    assert (L + "self_attn.q_norm.weight" in w) == (arch.startswith(("qwen3", "gemma4")) or arch in ("olmo2", "gemma3_text", "glm4_moe"))
    if arch.startswith("qwen3"):
        qn = np.array(w[L + "self_attn.q_norm.weight"].astype(mx.float32))
        assert np.abs(qn - 1).max() > 0.05
    if arch == "qwen2":
        kb = np.array(w[L + "self_attn.k_proj.bias"].astype(mx.float32))
        assert np.abs(kb).min() > 0 and np.abs(kb).max() > 0.1

    ref = mlx_logits(d, meta["tokens"])
    assert ref.shape == (len(meta["tokens"]), meta["rows"]) and np.isfinite(ref).all()
    assert ref.std() > 0.5 and len(set(ref.argmax(-1).tolist())) >= len(meta["tokens"]) // 3
    assert top2_margin(ref) > 1e-2, "near-tie in the reference: pick another seed"
    # The padded rows are never produced by the tokenizer, the real ones are.
    hf = AutoTokenizer.from_pretrained(str(d))
    assert len(hf) == meta["n_tokenizer"]


@pytest.mark.parametrize("arch", ARCHS)
def test_adapter_fixture(builds, arch):
    """The adapter is a real mlx_lm.lora one on the intended modules (experts and routers
    included for the MoEs), and it changes the logits without near-ties."""
    import mlx.core as mx

    d, ad = builds.model(arch), builds.adapter(arch)
    cfg = json.loads((ad / "adapter_config.json").read_text())
    assert cfg["fine_tune_type"] == "lora"
    a = mx.load(str(ad / "adapters.safetensors"))
    mods = {k.rsplit(".", 1)[0].removeprefix("language_model.") for k in a}
    layers = {m.split(".")[2] for m in mods if m.startswith("model.layers.")}
    n = SPECS[arch]["config"]["num_hidden_layers"]
    assert layers == ({str(n - 1)} if SPECS[arch]["adapter"]["num_layers"] == 1 else {str(i) for i in range(n)})
    if arch == "mixtral":
        assert "model.layers.0.block_sparse_moe.gate" in mods
        assert a["model.layers.0.block_sparse_moe.switch_mlp.down_proj.lora_a"].shape == (4, 4, 512)
    if arch == "qwen3_moe":
        assert {"model.layers.1.mlp.gate", "model.layers.1.mlp.switch_mlp.gate_proj"} <= mods
    if arch == "mistral":
        assert "lm_head" in mods and "model.layers.1.mlp.down_proj" in mods
    if arch in ("llama", "qwen2", "qwen3"):
        assert "model.layers.0.mlp.down_proj" in mods and "model.layers.0.self_attn.v_proj" in mods
    toks = builds.adapter_tokens(arch)
    base, ref = mlx_logits(d, toks), mlx_logits(d, toks, ad)
    assert np.isfinite(ref).all() and ref.std() > 0.5
    assert np.abs(ref - base).max() > 0.1, "the trained adapter should change the logits"
    assert top2_margin(ref) > 2e-2


# --------------------------------------------------------------------------------------------
# Conversions.


@pytest.mark.parametrize("arch", ARCHS)
def test_f32_parity(mlx2gguf, builds, arch):
    """The quantized checkpoint to F32: llama.cpp's logits equal MLX's (f32) to 1e-3."""
    out = builds.gguf(mlx2gguf, arch, "f32")
    toks = builds.tokens(arch)
    ref, got = mlx_logits(builds.model(arch), toks), llama_logits(out, toks)
    assert got.shape == ref.shape
    dmax = np.abs(got - ref).max()
    assert dmax <= tolerance(arch)[0], f"{arch}: max |Δlogit| {dmax}"
    assert kl(ref, got) <= 1e-5, arch
    assert (got.argmax(-1) == ref.argmax(-1)).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_f32_parity_unquantized_bf16(mlx2gguf, builds, arch):
    """The same model unquantized (bf16 tensors, as `mlx_lm convert` without -q writes it)."""
    import mlx.core as mx

    d = builds.model(arch, dense=True)
    assert "quantization" not in json.loads((d / "config.json").read_text())
    w = mx.load(str(d / "model.safetensors"))
    assert w.get("model.embed_tokens.weight", w.get("language_model.model.embed_tokens.weight")).dtype == mx.bfloat16
    out = builds.gguf(mlx2gguf, arch, "f32", dense=True)
    toks = builds.tokens(arch, dense=True)
    ref, got = mlx_logits(d, toks), llama_logits(out, toks)
    dmax = np.abs(got - ref).max()
    assert dmax <= tolerance(arch)[0], f"{arch}: max |Δlogit| {dmax}"
    assert (got.argmax(-1) == ref.argmax(-1)).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_f32_parity_with_adapter(mlx2gguf, builds, arch):
    """Adapter fused by mlx2gguf vs MLX running it unfused: 1e-2 and the same top-1."""
    out = builds.gguf(mlx2gguf, arch, "f32", adapter=True)
    toks = builds.adapter_tokens(arch)
    ref = mlx_logits(builds.model(arch), toks, builds.adapter(arch))
    got = llama_logits(out, toks)
    dmax = np.abs(got - ref).max()
    assert dmax <= tolerance(arch)[1], f"{arch}: max |Δlogit| {dmax}"
    assert kl(ref, got) <= 1e-4, arch
    assert (got.argmax(-1) == ref.argmax(-1)).all()


@pytest.mark.parametrize("outtype", ["q8_0", "q4_k_m", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "iq4_nl", "iq4_xs"])
@pytest.mark.parametrize("arch", ARCHS)
def test_quantized_output_matches_llama_quantize(mlx2gguf, builds, tmp_path, arch, outtype):
    """Our Q8_0 / Q4_K_M file (adapter fused) = llama_model_quantize applied to our F32 file:
    same tensors, types (the Q4_K_M mixture: Q6_K output or tied token_embd, attn_v/ffn_down
    bumps), shapes and bytes, and the same logits."""
    f32 = builds.gguf(mlx2gguf, arch, "f32", adapter=True)
    ours = builds.gguf(mlx2gguf, arch, outtype, adapter=True)
    ref = llama_quantize(f32, tmp_path / "ref.gguf", LLAMA_FTYPE[outtype])
    a, b = tensors_of(ours), tensors_of(ref)
    assert set(a) == set(b)
    for name in sorted(a):
        ta, tb = a[name], b[name]
        assert ta.tensor_type == tb.tensor_type, f"{name}: ours {ta.tensor_type.name}, llama.cpp {tb.tensor_type.name}"
        assert list(ta.shape) == list(tb.shape), name
        assert bytes(ta.data.tobytes()) == bytes(tb.data.tobytes()), f"{name} ({ta.tensor_type.name}): blocks differ"
    assert field(GGUFReader(str(ours)), "general.file_type") == LLAMA_FTYPE[outtype]
    toks = builds.adapter_tokens(arch)
    got, want = llama_logits(ours, toks), llama_logits(ref, toks)
    assert np.abs(got - want).max() <= 1e-3


@pytest.mark.parametrize("arch", ARCHS)
def test_dry_run_tensors_are_what_convert_writes(mlx2gguf, builds, arch):
    """`convert --dry-run --json` lists every tensor (name, type, ggml shape, how) exactly as
    the written file holds it, for auto, q8_0 and q4_k_m, with and without the adapter; a
    copied tensor is one whose type holds the MLX blocks, a fused one is adapted."""
    for outtype, adapter in [("auto", False), ("f32", True), ("q8_0", True), ("q4_k_m", True)]:
        out = builds.gguf(mlx2gguf, arch, outtype, adapter=adapter)
        extra = ["--adapter", builds.adapter(arch)] if adapter else []
        plan = json.loads(run(mlx2gguf, "convert", builds.model(arch), *extra, "--outtype", outtype, "-o", out,
                              "--dry-run", "--json").stdout)
        written = json.loads(run(mlx2gguf, "inspect", out, "--json").stdout)["tensors"]
        assert [(t["name"], t["type"], t["shape"]) for t in plan["tensors"]] == \
            [(t["name"], t["type"], t["ne"]) for t in written], (outtype, adapter)
        for t in plan["tensors"]:
            if t["how"] == "copy":
                assert t["type"].upper() in ("MXFP4", "NVFP4", "Q4_1", "Q5_1") and not adapter, t
        assert any(t["how"] == "fuse" for t in plan["tensors"]) == adapter
        if outtype == "auto":  # every fixture has affine 4/5-bit, mxfp4 or nvfp4 modules
            assert any(t["how"] == "copy" for t in plan["tensors"]), arch


def tokenization_mismatches(gguf_path, model_dir, texts):
    """Where llama.cpp's tokenizer on the GGUF differs from the checkpoint's HF tokenizer,
    with and without BOS, with special tokens parsed (HF's default) and split as text."""
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(model_dir))
    llm = Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        bad = []
        for text in texts:
            for add_bos in (True, False):
                for special in (True, False):
                    want = hf(text, add_special_tokens=add_bos, split_special_tokens=not special)["input_ids"]
                    got = llm.tokenize(text.encode(), add_bos=add_bos, special=special)
                    if list(got) != list(want):
                        bad.append((text, add_bos, special, list(got), want))
        return bad, llm.n_vocab()
    finally:
        del llm


@pytest.mark.parametrize("arch", ARCHS)
def test_tokenization_matches_hf(mlx2gguf, builds, arch):
    """llama.cpp's tokenizer on the GGUF (pre-tokenizer recognised by its structure: these
    trained tokenizers have hashes llama.cpp does not list) = the HF tokenizer."""
    bad, n_vocab = tokenization_mismatches(builds.gguf(mlx2gguf, arch, "f32"), builds.model(arch), TOKENIZE_TEXTS)
    assert not bad, f"{len(bad)} mismatches, first: {bad[0]}"
    assert n_vocab == builds.meta(arch)["rows"]


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_pretokenizer_recognised_by_structure(mlx2gguf, builds, arch):
    """These tokenizers' check-text hashes are unknown to llama.cpp: their pre_tokenizer's
    splitting decides (llama-bpe: Llama 3's regex with ignore_merges; qwen2: per-digit), and
    inspect says so."""
    doc = json.loads(run(mlx2gguf, "inspect", builds.model(arch), "--json").stdout)
    assert doc["tokenizer_pre"] == tokenizer_pre(arch)
    assert "structure" in doc["tokenizer_pre_source"]


def test_unrecognised_pretokenizer_needs_flag(mlx2gguf, builds, tmp_path):
    """A splitting no llama.cpp type implements: refused with one line naming the flag, no
    output; with --tokenizer-pre the flag's name is written."""
    import shutil

    d = tmp_path / "m"
    shutil.copytree(builds.model("qwen3"), d)
    tok = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    tok["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\w+|[^\w\s]+"
    (d / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "--tokenizer-pre")
    out = tmp_path / "flag.gguf"
    run(mlx2gguf, "convert", d, "--tokenizer-pre", "qwen2", "-q", "-o", out)
    assert field(GGUFReader(str(out)), "tokenizer.ggml.pre") == "qwen2"


def test_unknown_tokenizer_pre_name_is_refused(mlx2gguf, builds, tmp_path):
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", builds.model("qwen2"), "--tokenizer-pre", "no-such-pre", "-o", out, check=False)
    assert p.returncode != 0 and "no-such-pre" in p.stderr
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Metadata.


def expected_tensors(arch):
    c = SPECS[arch]["config"]
    names = {"token_embd.weight", "output_norm.weight"}
    if not c["tie_word_embeddings"]:
        names.add("output.weight")
    if arch == "llama":
        names.add("rope_freqs.weight")
    if arch == "phi3":
        names |= {"rope_factors_long.weight", "rope_factors_short.weight"}
    for i in range(c["num_hidden_layers"]):
        b = f"blk.{i}."
        if arch.startswith("gemma"):  # pre- and post-norms around attention and MLP
            names |= {b + n + ".weight" for n in ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                                  "post_attention_norm", "ffn_norm", "ffn_gate", "ffn_up",
                                                  "ffn_down", "post_ffw_norm"]}
            if arch == "gemma3_text":
                names |= {b + "attn_q_norm.weight", b + "attn_k_norm.weight"}
            continue
        if arch == "phi3":  # fused Q/K/V and gate/up
            names |= {b + n + ".weight" for n in ["attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up",
                                                  "ffn_down"]}
            continue
        if arch == "olmo2":  # norms after attention and MLP; q/k norms over the projections
            names |= {b + n + ".weight" for n in ["attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm",
                                                  "attn_k_norm", "post_attention_norm", "ffn_gate", "ffn_up",
                                                  "ffn_down", "post_ffw_norm"]}
            continue
        names |= {b + n + ".weight" for n in ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm"]}
        if arch in MOE:
            names |= {b + n + ".weight" for n in ["ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]}
        else:
            names |= {b + n + ".weight" for n in ["ffn_gate", "ffn_up", "ffn_down"]}
        if arch in ("qwen2", "qwen2_moe"):
            names |= {b + n + ".bias" for n in ["attn_q", "attn_k", "attn_v"]}
        if arch == "qwen2_moe":
            names |= {b + n + ".weight" for n in ["ffn_gate_inp_shexp", "ffn_gate_shexp", "ffn_up_shexp",
                                                  "ffn_down_shexp"]}
        if arch.startswith("qwen3"):
            names |= {b + "attn_q_norm.weight", b + "attn_k_norm.weight"}
    return names


GEMMA4 = ["gemma4_text", "gemma4_moe"]
MLA = ["deepseek_v3", "kimi_k2", "deepseek_v2"]


@pytest.mark.parametrize("arch", [a for a in ARCHS if a not in GEMMA4 + MLA + ["glm4_moe", "llama4", "qwen3_next", "qwen3_5", "qwen3_5_moe"]])
def test_metadata(mlx2gguf, builds, arch):
    out = builds.gguf(mlx2gguf, arch, "f32")
    r = GGUFReader(str(out))
    t = {x.name: x for x in r.tensors}
    c = SPECS[arch]["config"]
    meta = builds.meta(arch)
    g = GGUF_ARCH[arch]
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]

    assert field(r, "general.architecture") == g
    assert field(r, f"{g}.block_count") == c["num_hidden_layers"]
    assert field(r, f"{g}.context_length") == c["max_position_embeddings"]
    assert field(r, f"{g}.embedding_length") == 256
    assert field(r, f"{g}.attention.head_count") == 4
    assert field(r, f"{g}.attention.head_count_kv") == 2
    assert field(r, f"{g}.rope.freq_base") == pytest.approx(c["rope_theta"])
    assert field(r, f"{g}.attention.layer_norm_rms_epsilon") == pytest.approx(c["rms_norm_eps"])
    # llama.cpp defaults key/value_length to n_embd / n_head and rope.dimension_count to
    # key_length: when head_dim differs (qwen3 here), the lengths must be written.
    for key in (f"{g}.attention.key_length", f"{g}.attention.value_length"):
        v = field(r, key)
        assert v == head_dim or (v is None and head_dim == 256 // 4), (key, v)
    rot = int(head_dim * c.get("partial_rotary_factor", 1.0))
    assert field(r, f"{g}.rope.dimension_count") in (None, rot)
    if arch in MOE:
        assert field(r, f"{g}.expert_count") == 4
        assert field(r, f"{g}.expert_used_count") == 2
        ff = c["moe_intermediate_size"] if arch in ("qwen3_moe", "qwen2_moe") else c["intermediate_size"]
        assert list(t["blk.0.ffn_gate_exps.weight"].shape) == [256, ff, 4]
        assert list(t["blk.0.ffn_down_exps.weight"].shape) == [ff, 256, 4]
        assert list(t["blk.0.ffn_gate_inp.weight"].shape) == [256, 4]
        if arch == "qwen3_moe":
            assert field(r, "qwen3moe.expert_feed_forward_length") == 256
        if arch == "qwen2_moe":
            assert field(r, "qwen2moe.expert_feed_forward_length") == 256
            assert field(r, "qwen2moe.expert_shared_feed_forward_length") == 512
            assert list(t["blk.0.ffn_gate_inp_shexp.weight"].shape) == [256]
            assert t["blk.0.ffn_gate_inp_shexp.weight"].tensor_type.name == "F32"
            assert list(t["blk.0.ffn_down_shexp.weight"].shape) == [512, 256]
    else:
        assert field(r, f"{g}.feed_forward_length") == 512
        assert g + ".expert_count" not in r.fields or field(r, g + ".expert_count") == 0
    if arch == "phi3":
        assert list(t["blk.0.attn_qkv.weight"].shape) == [256, (4 + 2 * 2) * head_dim]
        assert list(t["blk.0.ffn_up.weight"].shape) == [256, 2 * c["intermediate_size"]]
        assert list(t["rope_factors_long.weight"].shape) == [rot // 2]
    else:
        assert list(t["blk.0.attn_q.weight"].shape) == [256, 4 * head_dim]
        assert list(t["blk.0.attn_k.weight"].shape) == [256, 2 * head_dim]

    # Tensors: exactly llama.cpp's set; tied models have no output.weight; norms and biases F32.
    assert set(t) == expected_tensors(arch)
    for name, x in t.items():
        if name.endswith("norm.weight") or name.endswith(".bias") or name == "rope_freqs.weight":
            assert x.tensor_type.name == "F32", name
    assert list(t["token_embd.weight"].shape) == [256, meta["rows"]]

    if arch == "llama":
        # rope_freqs holds the llama3 factors: MLX's scaled frequencies over the plain ones.
        from mlx_lm.models.rope_utils import initialize_rope
        rope = initialize_rope(head_dim, c["rope_theta"], False, c["rope_scaling"], c["max_position_embeddings"])
        plain = c["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
        want = np.array(rope._freqs, dtype=np.float64) / plain
        rf = t["rope_freqs.weight"]
        assert list(rf.shape) == [head_dim // 2]
        np.testing.assert_allclose(np.array(rf.data, dtype=np.float64), want, rtol=1e-5)
        assert want.max() == pytest.approx(8.0) and want.min() == pytest.approx(1.0)

    # Tokenizer.
    family = SPECS[arch]["family"]
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    assert field(r, "tokenizer.ggml.pre") == tokenizer_pre(arch)
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    assert len(tokens) == meta["rows"] and len(types) >= meta["rows"]
    assert tokens[meta["n_tokenizer"]:] == [f"[PAD{i}]" for i in range(meta["n_tokenizer"], meta["rows"])]
    assert all(ty == 5 for ty in types[meta["n_tokenizer"]:meta["rows"]])  # UNUSED
    ids = meta["special_ids"]
    tcfg = json.loads((builds.model(arch) / "tokenizer_config.json").read_text())
    assert field(r, "tokenizer.ggml.eos_token_id") == ids[tcfg["eos_token"]]
    assert field(r, "tokenizer.chat_template") == (LLAMA3_TEMPLATE if family == "llama3" else CHATML_TEMPLATE)
    if family == "llama3":
        assert field(r, "tokenizer.ggml.bos_token_id") == ids["<|begin_of_text|>"]
        # Llama 3 says it only in tokenizer.json's TemplateProcessing (as gguf-py reads it).
        assert field(r, "tokenizer.ggml.add_bos_token") is True
        assert types[ids["<|eot_id|>"]] == 3  # CONTROL
    else:
        assert field(r, "tokenizer.ggml.add_bos_token") in (None, False)
        assert types[ids["<|im_start|>"]] == 3
        assert types[ids["<tool_call>"]] == 4  # USER_DEFINED: an added token with special=false


# --------------------------------------------------------------------------------------------
# Configurations llama.cpp cannot run are refused, naming the key.


def _with_config(src, dst, **changes):
    import shutil

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    text = cfg.get("text_config", cfg)  # a multimodal wrapper's language model settings
    for k, v in changes.items():
        if v is None:
            text.pop(k, None)
        else:
            text[k] = v
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("arch,changes,needles", [
    ("qwen3_moe", dict(norm_topk_prob=False), ["norm_topk_prob"]),
    ("qwen3_moe", dict(mlp_only_layers=[1]), ["mlp_only_layers"]),
    ("qwen3_moe", dict(decoder_sparse_step=2), ["mlp_only_layers"]),
    ("llama", dict(layer_types=["sliding_attention", "full_attention"]), ["layer_types"]),
    ("llama", dict(tie_word_embeddings=False), ["lm_head.weight", "tie_word_embeddings"]),
    ("llama", dict(rope_scaling={"rope_type": "longrope", "factor": 2.0}), ["rope_scaling.rope_type", "longrope"]),
    ("qwen2", dict(rope_traditional=True), ["rope_traditional"]),
    ("mixtral", dict(num_experts_per_tok=9), ["num_experts_per_tok"]),
    ("smollm3", dict(no_rope_layers=[1, 1, 1, 1]), ["no_rope_layers"]),
    ("smollm3", dict(no_rope_layers=None, no_rope_layer_interval=2), ["no_rope_layer_interval"]),
    ("gemma3_text", dict(query_pre_attn_scalar=100), ["query_pre_attn_scalar"]),
    ("gemma3_text", dict(attn_logit_softcapping=50.0), ["attn_logit_softcapping"]),
    ("gemma2", dict(rope_scaling={"rope_type": "linear", "factor": 2.0}), ["rope_scaling.rope_type"]),
    ("gemma4_text", dict(num_kv_shared_layers=3), ["num_kv_shared_layers"]),
    ("gemma4_text", dict(rope_parameters={"full_attention": {"rope_type": "yarn", "factor": 2.0}}),
     ["rope_parameters.full_attention.rope_type", "yarn"]),
    ("gemma4_text", dict(vocab_size_per_layer_input=100), ["vocab_size_per_layer_input"]),
    ("deepseek_v2", dict(topk_method="group_limited_greedy", n_group=4, topk_group=2), ["topk_method"]),
    ("deepseek_v3", dict(n_shared_experts=None), ["n_shared_experts"]),
    ("llama4", dict(attention_chunk_size=4096), ["attention_chunk_size"]),
    ("qwen3_next", dict(norm_topk_prob=False), ["norm_topk_prob"]),
])
def test_configs_llama_cpp_cannot_run_are_refused(mlx2gguf, builds, tmp_path, arch, changes, needles):
    d = _with_config(builds.model(arch), tmp_path / "m", **changes)
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", d, "-o", out, check=False)
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and all(n in lines[0] for n in needles), p.stderr
    assert not out.exists()


@pytest.mark.parametrize("arch", ["llama", "mixtral", "qwen3_moe"])
def test_adapter_out_gives_fused_logits(mlx2gguf, builds, tmp_path, arch):
    """--adapter-out: llama.cpp applying the LoRA GGUF at run time to the unfused base gives
    the fused file's logits, including on Q/K rows permuted for NORM rope (lora_b is
    permuted the same way) and on stacked experts."""
    from llama_cpp import Llama

    base_out, lora_out = tmp_path / "base.gguf", tmp_path / "lora.gguf"
    run(mlx2gguf, "convert", builds.model(arch), "--adapter", builds.adapter(arch), "--adapter-out", lora_out,
        "--outtype", "f32", "--quiet", "-o", base_out)
    names = {t.name for t in GGUFReader(str(lora_out)).tensors}
    assert "blk.0.attn_q.weight.lora_b" in names or arch == "qwen3_moe"
    tokens = builds.adapter_tokens(arch)
    want = llama_logits(builds.gguf(mlx2gguf, arch, "f32", adapter=True), tokens)
    llm = Llama(model_path=str(base_out), lora_path=str(lora_out), n_ctx=64, n_batch=64, n_ubatch=64,
                logits_all=True, type_k=0, type_v=0, n_threads=2, verbose=False)
    llm.eval(tokens)
    got = np.array(llm.scores[: len(tokens)])
    del llm
    assert np.abs(got - want).max() <= 1e-3
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_every_llama_quantize_type_is_read(mlx2gguf, builds, tmp_path):
    """Files llama.cpp's quantizer writes in the low-bit types (IQ4_XS, IQ4_NL, Q3_K, Q2_K):
    inspect reads them and verify passes them."""
    f32 = builds.gguf(mlx2gguf, "llama", "f32")
    for name, ftype, ggml in [("iq4_xs", 30, "iq4_xs"), ("iq4_nl", 25, "iq4_nl"), ("q3_k_m", 12, "q3_K"),
                              ("q2_k", 10, "q2_K")]:
        out = llama_quantize(f32, tmp_path / f"{name}.gguf", ftype)
        doc = json.loads(run(mlx2gguf, "inspect", out, "--json").stdout)
        assert ggml in {t["type"] for t in doc["tensors"]}, (name, {t["type"] for t in doc["tensors"]})
        p = run(mlx2gguf, "verify", out, check=False)
        assert p.returncode == 0, p.stdout


# The tensor of each architecture whose absence llama.cpp refuses (and verify must flag).
REQUIRED_TENSOR = {"llama": "blk.1.ffn_norm.weight", "mistral": "blk.1.attn_v.weight",
                   "mixtral": "blk.1.ffn_gate_inp.weight", "qwen2": "blk.1.ffn_up.weight",
                   "qwen3": "blk.1.attn_k_norm.weight", "qwen3_moe": "blk.0.ffn_down_exps.weight",
                   "olmo2": "blk.0.post_ffw_norm.weight", "granite": "blk.1.ffn_gate.weight",
                   "gemma2": "blk.1.post_attention_norm.weight", "gemma3_text": "blk.0.attn_q_norm.weight",
                   "smollm3": "blk.3.attn_q.weight", "ernie4_5": "blk.1.ffn_down.weight",
                   "phi3": "blk.0.attn_output.weight", "gemma4_text": "blk.1.attn_k_norm.weight",
                   "gemma4_moe": "blk.1.post_attention_norm.weight", "qwen2_moe": "blk.1.ffn_gate_inp_shexp.weight",
                   "deepseek_v3": "blk.2.attn_kv_a_norm.weight", "kimi_k2": "blk.0.attn_k_b.weight", "deepseek_v2": "blk.1.attn_v_b.weight",
                   "glm4_moe": "blk.1.post_attention_norm.weight", "llama4": "blk.1.ffn_up_shexp.weight",
                   "qwen3_next": "blk.2.ssm_a", "qwen3_5": "blk.0.attn_gate.weight",
                   "qwen3_5_moe": "blk.2.ssm_beta.weight"}


@pytest.mark.parametrize("arch", ARCHS)
def test_verify_checks_every_architecture(mlx2gguf, builds, tmp_path, arch):
    """verify knows each architecture from its spec: our files (and llama.cpp's own Q4_K_M
    of them) pass; a copy without a tensor llama.cpp requires, or without its RMS epsilon,
    is flagged, and llama.cpp refuses to load it too."""
    from test_verify import drop_kv, drop_tensor, llama_ok, llama_probe, llama_refused, rewrite

    good = builds.gguf(mlx2gguf, arch, "f32")
    ours = run(mlx2gguf, "verify", good, check=False)
    assert ours.returncode == 0, ours.stdout
    ref = llama_quantize(good, tmp_path / "ref.gguf", LLAMA_FTYPE["q4_k_m"])
    assert run(mlx2gguf, "verify", ref, check=False).returncode == 0
    assert llama_ok(llama_probe(good))
    g = GGUF_ARCH[arch]
    for name, edit, rule in [("tensor", dict(tensors=drop_tensor(REQUIRED_TENSOR[arch])), "tensor-missing"),
                             ("key", dict(kv=drop_kv(f"{g}.attention.layer_norm_rms_epsilon")), "kv-missing")]:
        bad = rewrite(good, tmp_path / f"{name}.gguf", **edit)
        p = run(mlx2gguf, "verify", bad, check=False)
        assert p.returncode == 1 and rule in p.stdout, (name, p.stdout)
        assert llama_refused(llama_probe(bad)), name


@pytest.mark.parametrize("arch", ARCHS + ["example"])
def test_inspect_states_what_convert_does(mlx2gguf, builds, tmp_path, arch):
    """Every line of `inspect` on an MLX folder is what `convert` (auto) then does: the
    architecture, the classes with their output types and sizes, the pre-tokenizer, the
    chat template's file, the folder read, the parameter count."""
    from conftest import ROOT

    d = ROOT / "examples" / "tiny-gpt-oss" if arch == "example" else builds.model(arch)
    doc = json.loads(run(mlx2gguf, "inspect", d, "--json").stdout)
    out = tmp_path / "auto.gguf"
    summary = json.loads(run(mlx2gguf, "convert", d, "-o", out, "--json").stdout)
    r = GGUFReader(str(out))
    assert doc["architecture"] == field(r, "general.architecture")
    assert doc["classes"] == summary["classes"]
    assert doc["tokenizer_pre"] == field(r, "tokenizer.ggml.pre")
    assert doc["chat_template_from"] == summary["chat_template_from"]
    assert doc["chat_template_from"] is None or "tokenizer.chat_template" in r.fields
    assert doc["path"] == summary["model_dir"]
    assert doc["parameters"] == sum(int(np.prod(t.shape)) for t in r.tensors)


@pytest.mark.parametrize("arch,edit", [
    ("granite", "drop:granite.residual_scale"),
    ("granite", "drop:granite.embedding_scale"),
    ("granite", "drop:granite.attention.scale"),
    ("olmo2", "ones:blk.0.post_ffw_norm.weight"),
    ("olmo2", "ones:blk.1.attn_q_norm.weight"),
    ("gemma2", "drop:gemma2.final_logit_softcapping"),
    ("gemma2", "drop:gemma2.attn_logit_softcapping"),
    ("gemma2", "minus1:blk.0.ffn_norm.weight"),
    ("gemma3_text", "minus1:blk.1.attn_q_norm.weight"),
    ("gemma3_text", "minus1:output_norm.weight"),
    ("gemma3_text", "drop:gemma3.attention.sliding_window_pattern"),
    ("gemma3_text", "drop:gemma3.rope.scaling.factor"),
    ("ernie4_5", "permute:blk.0.attn_q.weight"),
    ("phi3", "drop:phi3.rope.dimension_count"),
    ("phi3", "drop:phi3.rope.scaling.attn_factor"),
    ("phi3", "ones:rope_factors_short.weight"),
    ("gemma4_text", "plus1:blk.0.ffn_norm.weight"),
    ("gemma4_text", "ones:rope_freqs.weight"),
    ("gemma4_text", "drop:gemma4.final_logit_softcapping"),
    ("gemma4_text", "drop:gemma4.attention.shared_kv_layers"),
    ("gemma4_text", "ones:blk.1.layer_output_scale.weight"),
    ("gemma4_moe", "ones:blk.0.ffn_down_exps.scale"),
    ("gemma4_moe", "ones:blk.1.ffn_gate_inp.scale"),
    ("qwen3_5", "grouped:blk.0.attn_gate.weight"),
    ("qwen3_5_moe", "grouped:blk.2.ssm_alpha.weight"),
])
def test_each_quirk_is_caught_by_parity(mlx2gguf, builds, tmp_path, arch, edit):
    """The parity tests would catch a converter that missed a quirk: the same file with a
    Granite multiplier left out, an OLMo 2 post-norm or q-norm left at 1, a Gemma norm
    without its +1, a Gemma 2 soft-capping, or Gemma 3's layer pattern or global rope scaling
    left out, or ERNIE's Q rows permuted as for other NORM-rope models, moves llama.cpp's
    logits far from MLX's (beyond the Gemma tolerance too)."""
    from test_verify import drop_kv, rewrite

    good = builds.gguf(mlx2gguf, arch, "f32")
    toks = builds.tokens(arch)
    want = mlx_logits(builds.model(arch), toks)
    assert np.abs(llama_logits(good, toks) - want).max() <= tolerance(arch)[0]
    what, name = edit.split(":")

    def values(ts):
        t = next(t for t in ts if t[0] == name)
        if what == "permute":  # rows within each head from rotate-half to adjacent pairs
            rows, hd = t[1].shape[0], 64
            t[1] = t[1].reshape(rows // hd, 2, hd // 2, -1).swapaxes(1, 2).reshape(t[1].shape)
        elif what == "plus1":  # Gemma 2/3's norm convention, wrong for Gemma 4's plain scales
            t[1] = t[1] + 1
        elif what == "grouped":  # Qwen3.5's value heads left grouped by key head (mlx-lm's order)
            c = SPECS[arch]["config"]
            nk, nv = c["linear_num_key_heads"], c["linear_num_value_heads"]
            head = t[1].shape[0] // nv
            rows = t[1].reshape(nv // nk, nk, head, -1)  # tiled: [j][k]
            t[1] = rows.swapaxes(0, 1).reshape(t[1].shape)  # grouped: [k][j]
        else:
            t[1] = np.ones_like(t[1]) if what == "ones" else t[1] - 1

    bad = rewrite(good, tmp_path / "bad.gguf", **(dict(kv=drop_kv(name)) if what == "drop" else dict(tensors=values)))
    try:
        assert np.abs(llama_logits(bad, toks) - want).max() > 0.1, edit
    except ValueError:  # llama.cpp refuses the file outright: caught as well
        pass


def test_verify_flags_the_phi3_name_rule(mlx2gguf, builds, tmp_path):
    """llama.cpp looks up `</s>`, `<unk>`, `<s>` and `<|endoftext|>` in any model whose
    general.name contains "phi3" or "phi-3" and fails to load one whose vocabulary lacks
    them (unordered_map::at): verify says so."""
    import shutil

    from test_verify import llama_probe, llama_refused

    d = tmp_path / "my-phi3-finetune"
    shutil.copytree(builds.model("phi3"), d)
    out = tmp_path / "o.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-q", "-o", out)
    p = run(mlx2gguf, "verify", out, check=False)
    assert p.returncode == 1 and "</s>" in p.stdout and "general.name" in p.stdout, p.stdout
    assert llama_refused(llama_probe(out))
    assert run(mlx2gguf, "verify", builds.gguf(mlx2gguf, "phi3", "f32"), check=False).returncode == 0


def test_a_tensor_llama_cpp_has_no_place_for_is_refused(mlx2gguf, builds, tmp_path):
    """An o_proj bias in an OLMo 2 checkpoint (llama.cpp's olmo2 loads none): converting
    without it would change the model, so the conversion is refused naming the tensor."""
    import shutil

    import mlx.core as mx

    d = tmp_path / "m"
    shutil.copytree(builds.model("olmo2"), d)
    shard = sorted(d.glob("model*.safetensors"))[0]
    w = mx.load(str(shard))
    w["model.layers.0.self_attn.o_proj.bias"] = mx.ones((256,), dtype=mx.bfloat16)
    mx.save_safetensors(str(shard), w, metadata={"format": "mlx"})
    idx = d / "model.safetensors.index.json"
    if idx.exists():
        j = json.loads(idx.read_text())
        j["weight_map"]["model.layers.0.self_attn.o_proj.bias"] = shard.name
        idx.write_text(json.dumps(j))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.layers.0.self_attn.o_proj.bias", "olmo2")


def test_gemma4_metadata(mlx2gguf, builds):
    """Gemma 4's per-layer shapes and keys as llama.cpp's gemma4 loads them: KV-sharing
    layers without K/V (and double-wide MLPs), full-attention layers with their own head
    size, keys-as-values layers without V and their own KV head count, the proportional
    rope's factors (= mlx-lm's frequencies over the plain ones), experts beside the MLP,
    and the `gemma4` vocabulary (scores -1000, byte pieces BYTE, visible markers
    USER_DEFINED, BOS always)."""
    from mlx_lm.models.rope_utils import initialize_rope

    for arch in GEMMA4:
        c = SPECS[arch]["config"]
        r = GGUFReader(str(builds.gguf(mlx2gguf, arch, "f32")))
        t = {x.name: x for x in r.tensors}
        n, shared = c["num_hidden_layers"], c["num_kv_shared_layers"]
        swa = [(i + 1) % c["sliding_window_pattern"] != 0 for i in range(n)]
        assert field(r, "gemma4.attention.sliding_window_pattern") == swa
        assert field(r, "gemma4.attention.key_length") == c["global_head_dim"] == field(r, "gemma4.rope.dimension_count")
        assert field(r, "gemma4.attention.key_length_swa") == c["head_dim"] == field(r, "gemma4.rope.dimension_count_swa")
        assert field(r, "gemma4.rope.freq_base") == 1e6 and field(r, "gemma4.rope.freq_base_swa") == 1e4
        assert field(r, "gemma4.attention.shared_kv_layers") == shared
        assert field(r, "gemma4.embedding_length_per_layer_input") == c["hidden_size_per_layer_input"]
        assert field(r, "gemma4.final_logit_softcapping") == 10.0
        ff = [c["intermediate_size"] * (2 if c["use_double_wide_mlp"] and i >= n - shared else 1) for i in range(n)]
        assert field(r, "gemma4.feed_forward_length") in (ff, ff[0])
        kv = [c["num_global_key_value_heads"] if c["attention_k_eq_v"] and not s else c["num_key_value_heads"]
              for s in swa] if c.get("num_global_key_value_heads") else [c["num_key_value_heads"]] * n
        assert field(r, "gemma4.attention.head_count_kv") in (kv, kv[0])
        for i in range(n):
            b, hd = f"blk.{i}.", c["head_dim"] if swa[i] else c["global_head_dim"]
            assert list(t[b + "attn_q.weight"].shape) == [256, 4 * hd]
            assert list(t[b + "ffn_up.weight"].shape) == [256, ff[i]]
            has_kv, has_v = i < n - shared, i < n - shared and not (c["attention_k_eq_v"] and not swa[i])
            assert (b + "attn_k.weight" in t) == has_kv and (b + "attn_k_norm.weight" in t) == has_kv
            assert (b + "attn_v.weight" in t) == has_v
            if has_kv:
                assert list(t[b + "attn_k.weight"].shape) == [256, kv[i] * hd]
            assert (b + "inp_gate.weight" in t) == (c["hidden_size_per_layer_input"] > 0)
            assert (b + "ffn_gate_exps.weight" in t) == c["enable_moe_block"]
            assert t[b + "layer_output_scale.weight"].tensor_type.name == "F32"
        if c["enable_moe_block"]:
            assert field(r, "gemma4.expert_count") == 4 and field(r, "gemma4.expert_used_count") == 2
            assert field(r, "gemma4.expert_feed_forward_length") == 256
            assert list(t["blk.0.ffn_gate_exps.weight"].shape) == [256, 256, 4]
            assert list(t["blk.0.ffn_down_exps.scale"].shape) == [4] and list(t["blk.0.ffn_gate_inp.scale"].shape) == [256]
        else:
            assert field(r, "gemma4.expert_count") is None
            assert list(t["per_layer_token_embd.weight"].shape) == [64 * n, builds.meta(arch)["rows"]]
        # Proportional rope: llama.cpp divides each frequency by its factor; mlx-lm's
        # frequencies over the plain ones are those factors (inf: not turning at all).
        hd = c["global_head_dim"]
        rope = initialize_rope(hd, 1e6, False, c["rope_parameters"]["full_attention"], c["max_position_embeddings"])
        want = np.array(rope._freqs, dtype=np.float64) / 1e6 ** (np.arange(0, hd, 2) / hd)
        got = np.array(t["rope_freqs.weight"].data, dtype=np.float64)
        rotated = np.isfinite(want)
        assert rotated.sum() == 16 and np.allclose(got[rotated], want[rotated]) and (got[~rotated] >= 1e30).all()
        # Vocabulary.
        ids = builds.meta(arch)["special_ids"]
        assert field(r, "tokenizer.ggml.model") == "gemma4"
        tokens, types = field(r, "tokenizer.ggml.tokens"), field(r, "tokenizer.ggml.token_type")
        assert set(field(r, "tokenizer.ggml.scores")) == {-1000.0}
        assert types[tokens.index("<0x0A>")] == 6 and types[ids["<eos>"]] == 3 and types[ids["<|channel>"]] == 4
        assert field(r, "tokenizer.ggml.add_bos_token") is True and field(r, "tokenizer.ggml.add_space_prefix") is False
        assert field(r, "tokenizer.ggml.bos_token_id") == ids["<bos>"]


def test_gemma4_gap_is_llama_cpps_gelu(mlx2gguf, tmp_path):
    """Gemma 4's ≤ 5e-3 tolerance is llama.cpp's F16 GELU table, nothing of ours: the same
    model with the two GELU paths' outputs zeroed (MLP down projections, per-layer input
    projections) matches MLX to 1e-4, as the SwiGLU architectures do."""
    import mlx.core as mx

    d = make_arch("gemma4_text", tmp_path / "g4", quantize=False)
    shard = d / "model.safetensors"
    w = mx.load(str(shard))
    zeroed = {k: mx.zeros_like(v) if ("mlp.down_proj" in k or "per_layer_projection" in k) else v for k, v in w.items()}
    assert sum("down_proj" in k for k in w) == SPECS["gemma4_text"]["config"]["num_hidden_layers"]
    mx.save_safetensors(str(shard), zeroed, metadata={"format": "mlx"})
    out = tmp_path / "g4.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "--quiet", "-o", out)
    toks = meta_of(d)["tokens"]
    ref, got = mlx_logits(d, toks), llama_logits(out, toks)
    assert ref.std() > 0.5
    assert np.abs(got - ref).max() <= 1e-4


def test_deepseek_metadata(mlx2gguf, builds):
    """DeepSeek V3 / Kimi K2 as llama.cpp's deepseek2 loads them: MLA ranks and head sizes
    (the latent as one KV head), the split per-head K/V up-projections, leading dense
    layers, the router's settings (sigmoid, groups, correction bias, renormalisation,
    scale), shared experts, and yarn's mscale as llama.cpp's converter writes it."""
    for arch in MLA:
        c = SPECS[arch]["config"]
        r = GGUFReader(str(builds.gguf(mlx2gguf, arch, "f32")))
        t = {x.name: x for x in r.tensors}
        g = "deepseek2."
        rope, nope, v, kv = c["qk_rope_head_dim"], c["qk_nope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
        want = {"attention.head_count_kv": 1, "attention.kv_lora_rank": kv, "attention.key_length": kv + rope,
                "attention.value_length": kv, "attention.key_length_mla": nope + rope,
                "attention.value_length_mla": v, "rope.dimension_count": rope,
                "leading_dense_block_count": c["first_k_dense_replace"], "expert_count": c["n_routed_experts"],
                "expert_shared_count": c["n_shared_experts"], "expert_feed_forward_length": 128,
                "vocab_size": builds.meta(arch)["rows"]}
        v2 = arch == "deepseek_v2"  # softmax router, no correction bias, no renormalisation
        want.update({"expert_gating_func": 1 if v2 else 2, "expert_weights_norm": None if v2 else True})
        for k, val in want.items():
            assert field(r, g + k) == val, (arch, k, field(r, g + k))
        assert field(r, g + "expert_weights_scale") == pytest.approx(c.get("routed_scaling_factor", 1.0))
        assert field(r, g + "attention.q_lora_rank") == (c["q_lora_rank"] or 0)
        assert ("blk.0.attn_q.weight" in t) == (c["q_lora_rank"] is None) != ("blk.0.attn_q_a.weight" in t)
        assert list(t["blk.0.attn_k_b.weight"].shape) == [nope, kv, 4]
        assert list(t["blk.0.attn_v_b.weight"].shape) == [kv, v, 4]
        dense = c["first_k_dense_replace"]
        for i in range(c["num_hidden_layers"]):
            assert (f"blk.{i}.ffn_gate.weight" in t) == (i < dense) != (f"blk.{i}.ffn_gate_exps.weight" in t)
        moe = f"blk.{dense}."
        assert v2 == (moe + "exp_probs_b.bias" not in t)
        if not v2:
            assert list(t[moe + "exp_probs_b.bias"].shape) == [c["n_routed_experts"]]
        assert list(t[moe + "ffn_up_shexp.weight"].shape) == [256, 128 * c["n_shared_experts"]]
        if c.get("rope_scaling"):
            assert field(r, g + "rope.scaling.type") == "yarn"
            mscale_all_dim = c["rope_scaling"]["mscale_all_dim"]
            assert field(r, g + "rope.scaling.yarn_log_multiplier") == pytest.approx(0.1 * mscale_all_dim)
        if arch == "deepseek_v3":
            assert field(r, g + "expert_group_count") == 2 and field(r, g + "expert_group_used_count") == 1


def test_glm4_moe_metadata(mlx2gguf, builds):
    """GLM-4.5 as llama.cpp's glm4moe loads it: rope on half of each head, biases and q/k
    norms, the pre-MLP norm as post_attention_norm, a dense first layer, the router's
    settings, no next-token-prediction layer (mlx-lm dropped it)."""
    c = SPECS["glm4_moe"]["config"]
    r = GGUFReader(str(builds.gguf(mlx2gguf, "glm4_moe", "f32")))
    t = {x.name: x for x in r.tensors}
    g = "glm4moe."
    want = {"block_count": 3, "rope.dimension_count": 32, "attention.key_length": 64, "attention.head_count_kv": 2,
            "leading_dense_block_count": 1, "expert_count": 8, "expert_used_count": 2, "expert_shared_count": 1,
            "expert_feed_forward_length": 128, "expert_gating_func": 2, "expert_weights_norm": True}
    for k, v in want.items():
        assert field(r, g + k) == v, (k, field(r, g + k))
    assert field(r, g + "expert_weights_scale") == pytest.approx(2.5)
    assert field(r, g + "nextn_predict_layers") is None and not any(n.startswith("blk.3.") for n in t)
    assert "blk.0.ffn_up.weight" in t and "blk.0.ffn_up_exps.weight" not in t
    assert "blk.1.ffn_up_exps.weight" in t and "blk.1.exp_probs_b.bias" in t and "blk.1.ffn_norm.weight" not in t
    assert {"blk.1.attn_q.bias", "blk.1.attn_k_norm.weight", "blk.1.post_attention_norm.weight"} <= set(t)


def test_qwen3_next_metadata(mlx2gguf, builds):
    """Qwen3-Next as llama.cpp's qwen3next loads it: the SSM keys of its Gated DeltaNet
    layers, which layers are linear, the projections as mlx-lm holds them (`ssm_in` grouped
    per key head), the conv1d without its unit dimension, the decay `-exp(A_log)`."""
    import mlx.core as mx

    c = SPECS["qwen3_next"]["config"]
    out = builds.gguf(mlx2gguf, "qwen3_next", "f32")
    r = GGUFReader(str(out))
    t = {x.name: x for x in r.tensors}
    g = "qwen3next."
    want = {"ssm.conv_kernel": 4, "ssm.state_size": 64, "ssm.group_count": 2, "ssm.time_step_rank": 4,
            "ssm.inner_size": 256, "full_attention_interval": 2, "rope.dimension_count": 16,
            "expert_shared_feed_forward_length": 256, "attention.key_length": 64}
    for k, v in want.items():
        assert field(r, g + k) == v, (k, field(r, g + k))
    for i in range(c["num_hidden_layers"]):
        linear = (i + 1) % c["full_attention_interval"] != 0
        assert (f"blk.{i}.ssm_in.weight" in t) == linear != (f"blk.{i}.attn_q.weight" in t)
    assert list(t["blk.0.ssm_in.weight"].shape) == [256, 2 * 128 + 2 * 256]
    assert list(t["blk.0.ssm_conv1d.weight"].shape) == [4, 512]
    assert list(t["blk.1.attn_q.weight"].shape) == [256, 2 * 4 * 64]
    w = {}
    for f in builds.model("qwen3_next").glob("model*.safetensors"):
        w.update(mx.load(str(f)))
    a_log = np.array(w["model.layers.0.linear_attn.A_log"].astype(mx.float32))
    np.testing.assert_allclose(np.array(t["blk.0.ssm_a"].data), -np.exp(a_log), rtol=1e-6)


def test_qwen3_5_metadata(mlx2gguf, builds):
    """Qwen3.5 as llama.cpp's qwen35 / qwen35moe loads it: separate delta-net projections
    (attn_qkv, attn_gate, ssm_beta, ssm_alpha), M-RoPE sections padded to four, the SSM keys,
    and the value heads tiled: A_log's decays are mlx-lm's, reordered from grouped by key
    head to tiled."""
    import mlx.core as mx

    for arch, g in [("qwen3_5", "qwen35."), ("qwen3_5_moe", "qwen35moe.")]:
        c = SPECS[arch]["config"]
        r = GGUFReader(str(builds.gguf(mlx2gguf, arch, "f32")))
        t = {x.name: x for x in r.tensors}
        nk, nv, hv = c["linear_num_key_heads"], c["linear_num_value_heads"], c["linear_value_head_dim"]
        assert field(r, g + "rope.dimension_sections") == [3, 3, 2, 0]
        assert field(r, g + "rope.dimension_count") == 16
        assert field(r, g + "ssm.group_count") == nk and field(r, g + "ssm.time_step_rank") == nv
        assert field(r, g + "ssm.inner_size") == nv * hv
        assert {"blk.0.attn_qkv.weight", "blk.0.attn_gate.weight", "blk.0.ssm_beta.weight", "blk.0.ssm_alpha.weight",
                "blk.1.attn_q.weight"} <= set(t)
        assert ("blk.0.ffn_up_exps.weight" in t) == (arch == "qwen3_5_moe") != ("blk.0.ffn_up.weight" in t)
        w = {}
        for f in builds.model(arch).glob("model*.safetensors"):
            w.update(mx.load(str(f)))
        a_log = np.array(w["language_model.model.layers.0.linear_attn.A_log"].astype(mx.float32))
        tiled = a_log.reshape(nk, nv // nk).T.reshape(-1)
        np.testing.assert_allclose(np.array(t["blk.0.ssm_a"].data), -np.exp(tiled), rtol=1e-6)


def test_reordered_rows_are_copied_exactly(mlx2gguf, builds, tmp_path):
    """Qwen3.5-MoE's mxfp4 qkv projection, its value heads reordered, is copied block for
    block (auto): dequantized by gguf-py it equals the F32 conversion exactly."""
    from gguf.quants import dequantize

    out = tmp_path / "auto.gguf"
    plan = json.loads(run(mlx2gguf, "convert", builds.model("qwen3_5_moe"), "-o", out, "--dry-run", "--json").stdout)
    how = {t["name"]: t["how"] for t in plan["tensors"]}
    assert how["blk.0.attn_qkv.weight"] == "copy"
    run(mlx2gguf, "convert", builds.model("qwen3_5_moe"), "--quiet", "-o", out)
    got = tensors_of(out)["blk.0.attn_qkv.weight"]
    want = tensors_of(builds.gguf(mlx2gguf, "qwen3_5_moe", "f32"))["blk.0.attn_qkv.weight"]
    assert got.tensor_type.name == "MXFP4"
    deq = dequantize(got.data, got.tensor_type).reshape(np.array(want.data).shape)
    np.testing.assert_array_equal(deq, np.array(want.data))


def test_adapter_out_refuses_a_split_module(mlx2gguf, builds, tmp_path):
    """A LoRA on DeepSeek V2's kv_b_proj becomes a part of two transposed/split tensors,
    which llama.cpp's run-time LoRA cannot express: --adapter-out says so (fusing works)."""
    out, lora = tmp_path / "base.gguf", tmp_path / "lora.gguf"
    p = run(mlx2gguf, "convert", builds.model("deepseek_v2"), "--adapter", builds.adapter("deepseek_v2"),
            "--adapter-out", lora, "-o", out, check=False)
    assert p.returncode != 0 and "attn_k_b" in p.stderr and "fuse" in p.stderr, p.stderr
    assert not out.exists() and not lora.exists()
