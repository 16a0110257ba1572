"""The folders users have: Hugging Face cache snapshots and repo ids (laid out by
huggingface_hub's own functions), fine-tuned vocabularies (grown with the tokenizers
library), what fine-tuning leaves behind (added_tokens.json, chat templates in any file), and
multimodal folders (built by mlx-lm's wrapper class, with a vision part beside)."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from arch_fixtures import TOKENIZE_TEXTS, make_arch, meta_of, mlx_logits
from conftest import llama_logits, run
from test_archs import field, tokenization_mismatches
from test_bad_input import check_fails

REPO = "mlx-community/llama"
COMMIT = hashlib.sha1(b"main").hexdigest()
DEV_COMMIT = hashlib.sha1(b"dev").hexdigest()


def to_hf_cache(src, cache, repo_id, commit, branch="main"):
    """Lays `src`'s files out as huggingface_hub's cache does: each file a blob named by its
    hash, the snapshot a folder of relative symlinks made by huggingface_hub's own
    `_create_symlink`, and `refs/<branch>` written by its own revision cache."""
    from huggingface_hub.file_download import (_cache_commit_hash_for_specific_revision, _create_symlink,
                                               repo_folder_name)

    storage = Path(cache) / repo_folder_name(repo_id=repo_id, repo_type="model")
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    snap = storage / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(src).iterdir()):
        if f.is_file():
            blob = storage / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
            shutil.copyfile(f, blob)
            _create_symlink(str(blob), str(snap / f.name), new_blob=True)
    _cache_commit_hash_for_specific_revision(str(storage), branch, commit)
    return snap


def run_env(exe, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "XDG_"))}
    e.update(env or {})
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=e)


@pytest.fixture(scope="module")
def cached(builds, tmp_path_factory):
    """The quantized llama fixture as a plain folder named like the repo, and in a cache
    under two revisions (main, and a branch `dev`)."""
    root = tmp_path_factory.mktemp("hub")
    plain = root / "llama"
    shutil.copytree(builds.model("llama"), plain)
    cache = root / "home" / "hub"
    snap = to_hf_cache(plain, cache, REPO, COMMIT)
    to_hf_cache(plain, cache, REPO, DEV_COMMIT, branch="dev")
    return plain, cache, snap


def test_cache_snapshot_and_repo_id_give_the_plain_folders_bytes(mlx2gguf, cached, tmp_path):
    plain, cache, snap = cached
    assert all(p.is_symlink() and not os.path.isabs(os.readlink(p)) for p in snap.iterdir())
    want = tmp_path / "plain.gguf"
    run(mlx2gguf, "convert", plain, "-q", "-o", want)
    cases = [
        ([snap], {}),
        ([REPO], {"HF_HUB_CACHE": str(cache)}),
        ([REPO], {"HF_HOME": str(cache.parent)}),
        ([REPO], {"XDG_CACHE_HOME": str(tmp_path / "x"), "HF_HUB_CACHE": str(cache)}),
        ([f"{REPO}@{COMMIT}"], {"HF_HUB_CACHE": str(cache)}),
        ([f"{REPO}@dev"], {"HF_HUB_CACHE": str(cache)}),
    ]
    for i, (args, env) in enumerate(cases):
        out = tmp_path / f"{i}.gguf"
        p = run_env(mlx2gguf, "convert", *args, "-o", out, "-q", env=env)
        assert p.returncode == 0, (args, env, p.stderr)
        assert out.read_bytes() == want.read_bytes(), (args, env)
        used = next(line for line in p.stdout.splitlines() if line.startswith("model: "))
        assert Path(used.removeprefix("model: ")).resolve().name in (COMMIT, DEV_COMMIT)


def test_repo_ids_resolve_where_huggingface_hub_resolves_them(mlx2gguf, cached):
    from huggingface_hub import snapshot_download

    _, cache, _ = cached
    for rev in ("main", "dev", COMMIT):
        want = snapshot_download(REPO, revision=rev, cache_dir=str(cache), local_files_only=True)
        p = run_env(mlx2gguf, "inspect", f"{REPO}@{rev}", "--json", env={"HF_HUB_CACHE": str(cache)})
        assert p.returncode == 0, p.stderr
        assert Path(json.loads(p.stdout)["path"]) == Path(want), rev


def test_uncached_repo_id_says_how_to_download(mlx2gguf, cached, tmp_path):
    _, cache, _ = cached
    out = tmp_path / "o.gguf"
    for arg in ("org/not-downloaded", f"{REPO}@no-such-branch"):
        p = run_env(mlx2gguf, "convert", arg, "-o", out, env={"HF_HUB_CACHE": str(cache)})
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 3 and len(lines) == 1, p.stderr
        assert f"hf download {arg.split('@')[0]}" in lines[0]
    assert not any(tmp_path.iterdir())


def test_adapter_by_repo_id(mlx2gguf, builds, cached, tmp_path):
    """--adapter takes a repo id too (an adapter pushed to the Hub and downloaded)."""
    _, cache, _ = cached
    to_hf_cache(builds.adapter("llama"), cache, "someone/llama-lora", COMMIT)
    want = builds.gguf(mlx2gguf, "llama", "f32", adapter=True)
    out = tmp_path / "a.gguf"
    p = run_env(mlx2gguf, "convert", REPO, "--adapter", "someone/llama-lora", "--outtype", "f32", "-q", "-o", out,
                env={"HF_HUB_CACHE": str(cache)})
    assert p.returncode == 0, p.stderr
    assert "adapter: " in p.stdout
    # The same tensors as the plain folders' conversion (only general.name may differ).
    a, b = GGUFReader(str(out)), GGUFReader(str(want))
    assert [t.data.tobytes() for t in a.tensors] == [t.data.tobytes() for t in b.tensors]


# --------------------------------------------------------------------------------------------
# Fine-tuned vocabularies.

ADDED = [f"<custom_{i}>" for i in range(45)] + ["<|tool_a|>", "<|tool_b|>", "réponse", "Ωmega", "tok tok"]


def grow_tokenizer(model_dir, n_merges=8):
    """A fine-tune's vocabulary: `n_merges` new merges (of adjacent pieces of llama.cpp's
    check text, so its hash changes) whose tokens follow the base vocabulary (the added
    tokens move up, as transformers numbers them after the model's vocabulary), and 50 added
    tokens after the last id, written into tokenizer.json and checked with the tokenizers
    library. Returns texts that use the new tokens."""
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    tok = Tokenizer.from_file(str(path))
    j = json.loads(path.read_text(encoding="utf-8"))
    vocab, merges = j["model"]["vocab"], j["model"]["merges"]
    text = "I've been 'told he's there, 'RE you sure? 3333333 ......!!!!!! ------======= нещо на Български"
    new = []
    for piece, _ in tok.pre_tokenizer.pre_tokenize_str(text):
        parts = tok.model.tokenize(piece)
        if len(parts) >= 2 and len(new) < n_merges:
            a, b = parts[0].value, parts[1].value
            if a + b not in vocab and (a, b) not in new:
                new.append((a, b))
    assert len(new) >= 3, new
    base = 1 + max(vocab.values())
    for t in j["added_tokens"]:
        if t["id"] >= base:
            t["id"] += len(new)
    for i, (a, b) in enumerate(new):
        vocab[a + b] = base + i
        merges.append([a, b] if isinstance(merges[0], list) else f"{a} {b}")
    ids = {t["content"]: t["id"] for t in j["added_tokens"]}

    def renumber(node):  # the post-processor's template names its specials by id too
        if isinstance(node, dict):
            if isinstance(node.get("ids"), list) and isinstance(node.get("tokens"), list):
                node["ids"] = [ids.get(t, i) for t, i in zip(node["tokens"], node["ids"])]
            for v in node.values():
                renumber(v)
        elif isinstance(node, list):
            for v in node:
                renumber(v)

    renumber(j.get("post_processor"))
    n = 1 + max(ids.values())
    for i, t in enumerate(ADDED):
        j["added_tokens"].append({"id": n + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                                  "normalized": False, "special": t.startswith("<|")})
    path.write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    grown = Tokenizer.from_file(str(path))
    assert [grown.token_to_id(t) for t in ADDED] == list(range(n, n + len(ADDED)))
    assert [grown.token_to_id(a + b) for a, b in new] == list(range(base, base + len(new)))
    return [f"use {t} here" for t in ADDED[::7]] + ["<custom_3><custom_4> réponse Ωmega tok tok!", text]


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """The llama (Llama 3 style) fixture with 80 spare embedding rows, its vocabulary grown."""
    d = make_arch("llama", tmp_path_factory.mktemp("grown") / "llama-ft", extra_rows=80)
    texts = grow_tokenizer(d)
    return d, texts


def test_grown_vocabulary_is_recognised_and_tokenizes_like_hf(mlx2gguf, grown, tmp_path):
    d, texts = grown
    doc = json.loads(run(mlx2gguf, "inspect", d, "--json").stdout)
    assert doc["tokenizer_pre"] == "llama-bpe" and "structure" in doc["tokenizer_pre_source"]
    out = tmp_path / "ft.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-q", "-o", out)
    r = GGUFReader(str(out))
    assert field(r, "tokenizer.ggml.pre") == "llama-bpe"
    tokens, types = field(r, "tokenizer.ggml.tokens"), field(r, "tokenizer.ggml.token_type")
    rows = meta_of(d)["rows"]
    assert len(tokens) == rows and tokens[-1] == f"[PAD{rows - 1}]"
    assert types[tokens.index("<|tool_a|>")] == 3 and types[tokens.index("<custom_0>")] == 4
    bad, n_vocab = tokenization_mismatches(out, d, TOKENIZE_TEXTS + texts)
    assert not bad, f"{len(bad)} mismatches, first: {bad[0]}"
    assert n_vocab == rows


def test_added_tokens_json_is_read(mlx2gguf, grown, tmp_path):
    """Tokens in added_tokens.json but not in tokenizer.json (transformers adds them on load)
    are in the GGUF at their ids, and llama.cpp tokenizes with them as HF does."""
    src, _ = grown
    d = tmp_path / "m"
    shutil.copytree(src, d)
    n = json.loads(run(mlx2gguf, "inspect", d, "--json").stdout)
    tok = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    top = max(t["id"] for t in tok["added_tokens"])
    extra = {"<extra_file_tok>": top + 1, "<|file_special|>": top + 2}
    (d / "added_tokens.json").write_text(json.dumps(extra))
    out = tmp_path / "o.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-q", "-o", out)
    r = GGUFReader(str(out))
    tokens, types = field(r, "tokenizer.ggml.tokens"), field(r, "tokenizer.ggml.token_type")
    assert tokens[top + 1] == "<extra_file_tok>" and types[top + 1] == 4
    assert tokens[top + 2] == "<|file_special|>" and types[top + 2] == 3
    bad, _ = tokenization_mismatches(out, d, ["a <extra_file_tok> b", "x <|file_special|>y", "plain"])
    # A `<|…|>` token is CONTROL in the GGUF, as llama.cpp's converter makes it
    # (does_token_look_special), so with special tokens split as text llama.cpp spells it out
    # while HF, for which it is not special, keeps it whole.
    assert not [b for b in bad if b[2] or "<|file_special|>" not in b[0]], bad
    assert n["tokenizer_pre"] == "llama-bpe"


def gguf_py_template_fields(model_dir, tmp_path):
    """The chat-template keys gguf-py's SpecialVocab writes for a folder."""
    import gguf

    path = tmp_path / "gguf-py.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    gguf.SpecialVocab(Path(model_dir), load_merges=False).add_to_gguf(w, quiet=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    r = GGUFReader(str(path))
    return {k: field(r, k) for k in r.fields if k.startswith("tokenizer.chat_template")}


@pytest.mark.parametrize("where", ["chat_template.json", "tokenizer_config.json list"])
def test_chat_template_from_any_file(mlx2gguf, builds, tmp_path, where):
    d = tmp_path / "m"
    shutil.copytree(builds.model("qwen2"), d)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    template = cfg.pop("chat_template")
    if where == "chat_template.json":
        (d / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    else:
        cfg["chat_template"] = [{"name": "default", "template": template},
                                {"name": "tool_use", "template": template + "{# tools #}"}]
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", d, "-o", out)
    assert f"chat template: from {where.split()[0]}" in p.stdout
    r = GGUFReader(str(out))
    ours = {k: field(r, k) for k in r.fields if k.startswith("tokenizer.chat_template")}
    assert ours == gguf_py_template_fields(d, tmp_path)
    assert ours["tokenizer.chat_template"] == template
    doc = json.loads(run(mlx2gguf, "inspect", d, "--json").stdout)
    assert doc["chat_template_from"] == where.split()[0]


# --------------------------------------------------------------------------------------------
# Multimodal folders.


def add_vision_part(model_dir):
    """Vision tower and projector weights beside the language model, in its shards and
    index, as a multimodal MLX folder has them."""
    import mlx.core as mx

    d = Path(model_dir)
    shard = sorted(d.glob("model*.safetensors"))[0]
    w = mx.load(str(shard))
    vision = {"vision_tower.patch_conv.weight": mx.random.normal((16, 3, 4, 4)).astype(mx.bfloat16),
              "vision_tower.ln_pre.weight": mx.ones((16,), dtype=mx.bfloat16),
              "multi_modal_projector.linear_1.weight": mx.random.normal((256, 16)).astype(mx.bfloat16)}
    w.update(vision)
    mx.save_safetensors(str(shard), w, metadata={"format": "mlx"})
    idx = d / "model.safetensors.index.json"
    if idx.exists():
        j = json.loads(idx.read_text())
        j["weight_map"].update({k: shard.name for k in vision})
        idx.write_text(json.dumps(j, indent=4))
    return len(vision)


@pytest.fixture(scope="module")
def mistral3(tmp_path_factory):
    d = make_arch("mistral", tmp_path_factory.mktemp("mm") / "mistral3", wrapper="mistral3")
    return d, add_vision_part(d)


@pytest.fixture(scope="module")
def gemma3(tmp_path_factory):
    d = make_arch("gemma3_text", tmp_path_factory.mktemp("mm") / "gemma3", wrapper="gemma3")
    return d, add_vision_part(d)


@pytest.fixture(scope="module")
def gemma4(tmp_path_factory):
    d = make_arch("gemma4_moe", tmp_path_factory.mktemp("mm") / "gemma4", wrapper="gemma4")
    return d, add_vision_part(d)


@pytest.mark.parametrize("wrapper,arch,tol", [("mistral3", "llama", 1e-3), ("gemma3", "gemma3", 5e-3),
                                              ("gemma4", "gemma4", 5e-3)])
def test_multimodal_language_model_matches_mlx(mlx2gguf, request, tmp_path, wrapper, arch, tol):
    """mistral3, gemma3 and gemma4 (mlx-lm's wrappers over its llama, gemma3_text and
    gemma4_text classes): the
    language model converts, with llama.cpp's logits = mlx-lm's on the same folder; the
    summary says the vision part was left out."""
    d, n_vision = request.getfixturevalue(wrapper)
    cfg = json.loads((d / "config.json").read_text())
    assert any(k.startswith("language_model.") for k in cfg["quantization"])
    out = tmp_path / "mm.gguf"
    p = run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", out)
    assert f"vision part ({n_vision} tensors) is left out" in p.stdout
    r = GGUFReader(str(out))
    assert field(r, "general.architecture") == arch
    # mlx-lm's mistral3 unties by default; Gemma 3 here has no lm_head and Gemma 4 is tied.
    assert ("output.weight" in {t.name for t in r.tensors}) == (wrapper == "mistral3")
    toks = meta_of(d)["tokens"]
    want = mlx_logits(d, toks)
    got = llama_logits(out, toks)
    assert np.abs(got - want).max() <= tol
    assert (got.argmax(-1) == want.argmax(-1)).all()
    doc = json.loads(run(mlx2gguf, "inspect", d, "--json").stdout)
    assert wrapper in doc["multimodal"] and doc["architecture"] == arch


@pytest.mark.parametrize("wrapper,text", [("mllama", "mllama_text"), ("idefics3", "idefics3_text"),
                                          ("paligemma", "paligemma_text")])
def test_unsupported_language_model_is_named(mlx2gguf, mistral3, tmp_path, wrapper, text):
    d = tmp_path / "m"
    shutil.copytree(mistral3[0], d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = wrapper
    cfg["text_config"].pop("model_type")
    (d / "config.json").write_text(json.dumps(cfg))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "text_config.model_type", wrapper, text)
