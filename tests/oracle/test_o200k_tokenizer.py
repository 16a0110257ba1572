"""The real o200k_harmony tokenizer (built from the o200k_base ranks tiktoken-rs ships, see
tests/tools/o200k_fixture.rs) in a gpt-oss fixture with the real vocab_size 201,088:
llama.cpp must tokenize exactly as tiktoken does."""
import json
import shutil
import subprocess
import unicodedata

import pytest
from gguf import GGUFReader

from conftest import ROOT, run
from fixtures import make_gpt_oss


@pytest.fixture(scope="module")
def o200k_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("o200k")
    tok = root / "tok"
    subprocess.run(["cargo", "run", "--release", "--quiet", "--example", "o200k_fixture", "--", str(tok)], cwd=ROOT,
                   check=True)
    d = make_gpt_oss(root / "gpt-oss-o200k", seed=41, dtype="bfloat16",
                     config_over=dict(hidden_size=64, intermediate_size=64, head_dim=32, num_attention_heads=2,
                                      num_key_value_heads=1, vocab_size=201088))
    shutil.copy(tok / "tokenizer.json", d / "tokenizer.json")
    return d, json.loads((tok / "expected.json").read_text())


def test_llama_cpp_tokenizes_like_tiktoken(mlx2gguf, o200k_model, tmp_path):
    from llama_cpp import Llama
    from tokenizers import Tokenizer

    model, expected = o200k_model
    out = tmp_path / "o200k.gguf"
    run(mlx2gguf, "convert", model, "-o", out)
    f = GGUFReader(str(out)).fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == 201088
    assert len(f["tokenizer.ggml.merges"].contents()) == 446189
    assert tokens[200006] == "<|start|>" and tokens[200019] == "[PAD200019]"
    assert tokens[f["tokenizer.ggml.eos_token_id"].contents()] == "<|return|>"
    hf = Tokenizer.from_file(str(model / "tokenizer.json"))
    llm = Llama(model_path=str(out), vocab_only=True, verbose=False)
    for case in expected:
        text, want = case["text"], case["ids"]
        assert hf.encode(text).ids == want, f"HF tokenizer differs from tiktoken on {text!r}"
        got = llm.tokenize(text.encode(), add_bos=False, special=True)
        if any(unicodedata.category(c).startswith("M") for c in text):
            # llama.cpp's built-in gpt-4o pre-tokenizer approximates o200k's letter classes
            # without \p{M}, so it splits words at combining marks (Devanagari, Thai, Hebrew
            # points). No GGUF key can change that; the text still round-trips.
            assert llm.detokenize(got).decode() == text
        else:
            assert got == want, f"llama.cpp differs from tiktoken on {text!r}"


def test_pre_tokenizer_hash_is_llama_cpps(mlx2gguf, o200k_model):
    """The pre-tokenizer hash, computed as llama.cpp's converter does (transformers' encode of
    its check text, sha256 of the printed id list), equals ours, and on the real o200k
    vocabulary it is the hash llama.cpp lists as gpt-4o."""
    import hashlib
    import re
    from transformers import PreTrainedTokenizerFast

    model, _ = o200k_model
    import ast
    from ggml_ref import llama_cpp_source

    base = (llama_cpp_source() / "conversion" / "base.py").read_text()
    chktxt = ast.literal_eval(re.search(r"chktxt = ('.*')\n", base).group(1))
    tok = PreTrainedTokenizerFast(tokenizer_file=str(model / "tokenizer.json"))
    want = hashlib.sha256(str(tok.encode(chktxt)).encode()).hexdigest()
    doc = json.loads(run(mlx2gguf, "inspect", model, "--json").stdout)
    assert doc["tokenizer_hash"] == want
    assert doc["tokenizer_pre"] == "gpt-4o"


def test_fine_tuned_o200k_is_recognised_as_gpt_4o(mlx2gguf, o200k_model, tmp_path):
    """The known base grown as a fine-tune grows it (new merges that change llama.cpp's
    check-text hash, 50 added tokens): still gpt-4o, now by its pre-tokenizer's structure,
    and llama.cpp tokenizes as the HF tokenizer (texts without combining marks, see above)."""
    from test_archs import tokenization_mismatches
    from test_real_folders import grow_tokenizer

    model, expected = o200k_model
    d = tmp_path / "ft"
    shutil.copytree(model, d)
    texts = grow_tokenizer(d)
    doc = json.loads(run(mlx2gguf, "inspect", d, "--json").stdout)
    base = json.loads(run(mlx2gguf, "inspect", model, "--json").stdout)
    assert doc["tokenizer_hash"] != base["tokenizer_hash"]
    assert doc["tokenizer_pre"] == "gpt-4o" and "structure" in doc["tokenizer_pre_source"]
    assert "hash" in base["tokenizer_pre_source"]
    out = tmp_path / "ft.gguf"
    run(mlx2gguf, "convert", d, "-q", "-o", out)
    plain = [c["text"] for c in expected if not any(unicodedata.category(ch).startswith("M") for ch in c["text"])]
    bad, _ = tokenization_mismatches(out, d, plain + texts)
    # Compared with special tokens parsed, as the test above compares the base with tiktoken.
    bad = [b for b in bad if b[2]]
    assert not bad, f"{len(bad)} mismatches, first: {bad[0]}"
