"""`mlx2gguf verify` against llama.cpp itself.

A tiny gpt-oss converted by mlx2gguf passes `verify` and runs in llama.cpp. Each broken
copy (rewritten with gguf-py) must be flagged by `verify` with the named rule AND be
refused or crashed on by llama.cpp, so every rule tested here is one llama.cpp really
enforces, not a guess.

CLI contract: `mlx2gguf verify FILE` prints one line per problem (`rule: message`) and
exits 1 if there are any, 0 if none.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import run
from fixtures import TOKENS, make_gpt_oss

# Loads the model and evaluates a few tokens in a separate process: a GGML_ASSERT aborts
# the whole process, which must not take pytest with it.
LLAMA_PROBE = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=64, n_batch=64, n_ubatch=64, logits_all=True,
            type_k=0, type_v=0, n_threads=2, verbose=False, seed=0)
llm.eval([int(t) for t in sys.argv[2:]])
row = llm.scores[0]
assert all(abs(float(x)) < 1e30 for x in row), "non-finite logits"
print("OK eos", llm.token_eos())
"""

EVAL_TOKENS = TOKENS[:6]


def llama_probe(path):
    # GGML_NO_BACKTRACE: on an abort ggml forks a debugger-waiting child per aborting thread,
    # synchronized by a pipe that the other thread's child also holds open; when both of the
    # probe's threads assert at once, neither child ever reads EOF and the probe hangs.
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    return subprocess.run([sys.executable, "-c", LLAMA_PROBE, str(path), *map(str, EVAL_TOKENS)],
                          capture_output=True, text=True, timeout=600, env=env)


def llama_ok(p):
    return p.returncode == 0 and "OK" in p.stdout


def llama_refused(p):
    """llama.cpp's own failure: the loader throws (llama-cpp-python raises "Failed to load
    model") or ggml aborts the process (GGML_ASSERT / GGML_ABORT, SIGABRT)."""
    return p.returncode < 0 or "Failed to load model" in p.stderr


def verify(exe, path):
    return run(exe, "verify", path, check=False)


@pytest.fixture(scope="module")
def good(mlx2gguf, tmp_path_factory):
    d = tmp_path_factory.mktemp("verify")
    model = make_gpt_oss(d / "tiny", seed=5, dtype="float32")
    out = d / "good.gguf"
    run(mlx2gguf, "convert", model, "--outtype", "f32", "-o", out)
    return out


def rewrite(src, dst, kv=None, tensors=None):
    """Copies a GGUF with gguf-py. `kv(fields)` and `tensors(list)` edit, in place, a dict
    key -> (value, type, sub_type) and a list of [name, array, raw_dtype]."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    r = GGUFReader(str(src))
    fields = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        main = f.types[0]
        sub = f.types[-1] if main == GGUFValueType.ARRAY else None
        fields[name] = (f.contents(), main, sub)
    ts = [[t.name, np.array(t.data), t.tensor_type] for t in r.tensors]
    if kv:
        kv(fields)
    if tensors:
        tensors(ts)
    arch = fields.pop("general.architecture")[0]
    w = GGUFWriter(str(dst), arch)
    for name, (val, main, sub) in fields.items():
        w.add_key_value(name, val, main, sub)
    for name, data, _ in ts:
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


def set_kv(key, value, vtype_name, sub_name=None):
    def edit(fields):
        from gguf import GGUFValueType

        sub = GGUFValueType[sub_name] if sub_name else None
        fields[key] = (value, GGUFValueType[vtype_name], sub)
    return edit


def drop_kv(key):
    return lambda fields: fields.pop(key)


def retype(name, dtype):
    def edit(ts):
        t = next(t for t in ts if t[0] == name)
        t[1] = t[1].astype(dtype)
    return edit


def drop_tensor(name):
    def edit(ts):
        ts[:] = [t for t in ts if t[0] != name]
    return edit


def shrink_rows(name, n):
    """Removes the last `n` rows (ggml ne[1]) of a 2-D tensor."""
    def edit(ts):
        t = next(t for t in ts if t[0] == name)
        t[1] = np.ascontiguousarray(t[1][:-n])
    return edit


def add_tensor(name, shape):
    return lambda ts: ts.append([name, np.zeros(shape, dtype=np.float32), None])


def duplicate_token(fields):
    toks, main, sub = fields["tokenizer.ggml.tokens"]
    toks = list(toks)
    toks[5] = toks[4]
    fields["tokenizer.ggml.tokens"] = (toks, main, sub)


def fewer_tokens(n):
    def edit(fields):
        for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
            val, main, sub = fields[key]
            fields[key] = (list(val)[:-n], main, sub)
    return edit


# (id, rule verify must report, kv edit, tensor edit). Every one of these makes llama.cpp
# refuse the file or abort at the first evaluation (checked below, not assumed).
BROKEN = [
    ("f16_sinks", "f32-operand", None, retype("blk.0.attn_sinks.weight", np.float16)),
    ("f16_expert_bias", "f32-operand", None, retype("blk.1.ffn_up_exps.bias", np.float16)),
    ("f16_norm", "f32-operand", None, retype("output_norm.weight", np.float16)),
    # The fixture's head_dim is 64 while n_embd/n_head = 128/4 = 32.
    ("key_length_missing", "kv-missing", drop_kv("gpt-oss.attention.key_length"), None),
    ("block_count_u64", "kv-type", set_kv("gpt-oss.block_count", 2, "UINT64"), None),
    ("rms_eps_f64", "kv-type", set_kv("gpt-oss.attention.layer_norm_rms_epsilon", 1e-5, "FLOAT64"), None),
    ("sliding_window_missing", "kv-missing", drop_kv("gpt-oss.attention.sliding_window"), None),
    ("rope_scaling_unknown", "kv-value", set_kv("gpt-oss.rope.scaling.type", "ntk", "STRING"), None),
    ("experts_used_too_many", "kv-value", set_kv("gpt-oss.expert_used_count", 9, "UINT32"), None),
    ("ff_array_wrong_length", "kv-value",
     set_kv("gpt-oss.expert_feed_forward_length", [128, 128, 128], "ARRAY", "UINT32"), None),
    ("duplicate_token", "tokenizer", duplicate_token, None),
    ("token_type_u32", "tokenizer", set_kv("tokenizer.ggml.token_type", [1] * 400, "ARRAY", "UINT32"), None),
    ("merges_missing", "tokenizer", drop_kv("tokenizer.ggml.merges"), None),
    ("missing_tensor", "tensor-missing", None, drop_tensor("blk.1.ffn_down_exps.bias")),
    ("attn_q_wrong_shape", "tensor-shape", None, shrink_rows("blk.0.attn_q.weight", 64)),
    ("extra_tensor", "tensor-unexpected", None, add_tensor("blk.0.extra.weight", (4, 128))),
    ("fewer_tokens", "vocab-size", fewer_tokens(10), None),
]


RULES = ["container", "kv-missing", "kv-type", "kv-value", "tensor-missing", "tensor-shape", "tensor-unexpected",
         "tokenizer", "vocab-size", "f32-operand", "split"]


def test_good_file_passes_and_runs(mlx2gguf, good):
    p = verify(mlx2gguf, good)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not any(f"{r}:" in p.stdout for r in RULES), p.stdout
    probe = llama_probe(good)
    assert llama_ok(probe), probe.stderr[-3000:]


def test_gguf_py_copy_is_faithful(mlx2gguf, good, tmp_path):
    """The rewriting itself breaks nothing: an unedited copy passes and runs."""
    copy = rewrite(good, tmp_path / "copy.gguf")
    p = verify(mlx2gguf, copy)
    assert p.returncode == 0, p.stdout + p.stderr
    probe = llama_probe(copy)
    assert llama_ok(probe), probe.stderr[-3000:]


@pytest.mark.parametrize("case", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_variant_is_flagged_and_llama_cpp_fails(mlx2gguf, good, tmp_path, case):
    name, rule, kv, tensors = case
    bad = rewrite(good, tmp_path / f"{name}.gguf", kv=kv, tensors=tensors)
    p = verify(mlx2gguf, bad)
    out = p.stdout + p.stderr
    assert p.returncode == 1, f"verify passed {name}:\n{out}"
    assert f"{rule}:" in out, f"{name}: expected rule {rule!r}, got:\n{out}"
    probe = llama_probe(bad)
    assert not llama_ok(probe), f"llama.cpp loaded and ran {name}; verify must not call it fatal"
    assert llama_refused(probe), f"{name}: the probe failed for another reason:\n{probe.stderr[-3000:]}"


def test_truncated_file_is_a_container_problem(mlx2gguf, good, tmp_path):
    data = good.read_bytes()
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(data[: len(data) - 4096])
    p = verify(mlx2gguf, bad)
    assert p.returncode == 1 and "container:" in p.stdout + p.stderr, p.stdout + p.stderr
    assert llama_refused(llama_probe(bad))


def test_out_of_range_special_id_is_dropped_by_llama_cpp(mlx2gguf, good, tmp_path):
    """Not fatal: llama.cpp loads the file but ignores the id (with a warning), so the
    model loses its end-of-sequence token. verify warns (exit 0): the file loads and runs."""
    bad = rewrite(good, tmp_path / "eos.gguf", kv=set_kv("tokenizer.ggml.eos_token_id", 100000, "UINT32"))
    p = verify(mlx2gguf, bad)
    assert p.returncode == 0 and "warning: tokenizer:" in p.stdout + p.stderr, p.stdout + p.stderr
    probe = llama_probe(bad)
    assert llama_ok(probe), probe.stderr[-3000:]
    eos = int(probe.stdout.split("OK eos")[1].split()[0])
    assert eos != 100000
