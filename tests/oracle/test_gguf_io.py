"""Our GGUF reader reads what gguf-py writes, and gguf-py reads what we write."""
import json

import numpy as np
import zlib
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

from conftest import run


def test_reader_reads_gguf_py_files(mlx2gguf, tmp_path):
    path = tmp_path / "py.gguf"
    w = GGUFWriter(str(path), "llama")
    w.add_uint8("t.u8", 7)
    w.add_int8("t.i8", -7)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -32000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5)
    w.add_uint64("t.u64", 1 << 60)
    w.add_int64("t.i64", -(1 << 60))
    w.add_float64("t.f64", 0.1)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_str", ["a", "bc", ""])
    w.add_array("t.arr_f32", [0.5, 2.0])
    rng = np.random.default_rng(0)
    tensors = {
        "a": rng.standard_normal((3, 5)).astype(np.float32),
        "b": rng.standard_normal((64,)).astype(np.float16),
        "c": rng.standard_normal((2, 4, 8)).astype(np.float32),
    }
    for k, v in tensors.items():
        w.add_tensor(k, v)
    q = rng.integers(0, 255, size=(4, 34 * 2), dtype=np.uint8)
    w.add_tensor("q", q, raw_dtype=GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    doc = json.loads(run(mlx2gguf, "inspect", "--json", path).stdout)
    md = doc["metadata"]
    assert md["t.u8"] == {"type": "u8", "value": 7}
    assert md["t.i16"] == {"type": "i16", "value": -32000}
    assert md["t.u32"]["value"] == 4000000000 and md["t.u64"]["value"] == 1 << 60
    assert md["t.i64"]["value"] == -(1 << 60)
    assert md["t.f64"]["value"] == 0.1 and md["t.f32"]["value"] == 1.5
    assert md["t.bool"] == {"type": "bool", "value": True}
    assert md["t.str"]["value"] == "héllo"
    assert md["t.arr_i32"]["items"] == [1, -2, 3] and md["t.arr_i32"]["elem_type"] == "i32"
    assert md["t.arr_str"]["items"] == ["a", "bc", ""]
    assert md["general.architecture"]["value"] == "llama"
    r = GGUFReader(str(path))
    ours = {t["name"]: t for t in doc["tensors"]}
    assert set(ours) == {t.name for t in r.tensors}
    for t in r.tensors:
        o = ours[t.name]
        assert o["ne"] == [int(x) for x in t.shape]
        assert o["type"] == t.tensor_type.name.lower()
        assert o["nbytes"] == int(t.n_bytes)
        assert o["crc32"] == zlib.crc32(bytes(t.data.tobytes()))


def test_gguf_py_reads_our_files(mlx2gguf, tmp_path):
    from fixtures import make_gpt_oss
    from safetensors.numpy import load_file

    d = make_gpt_oss(tmp_path / "m", seed=3, dtype="float32")
    out = tmp_path / "o.gguf"
    run(mlx2gguf, "convert", d, "--outtype", "f32", "-o", out)
    r = GGUFReader(str(out))
    src = load_file(str(d / "model.safetensors"))
    got = {t.name: np.array(t.data) for t in r.tensors}
    np.testing.assert_array_equal(got["token_embd.weight"], src["model.embed_tokens.weight"])
    np.testing.assert_array_equal(got["blk.1.ffn_down_exps.weight"], src["model.layers.1.mlp.experts.down_proj.weight"])
    np.testing.assert_array_equal(got["blk.0.attn_sinks.weight"], src["model.layers.0.self_attn.sinks"])
    np.testing.assert_array_equal(got["blk.0.ffn_gate_exps.bias"], src["model.layers.0.mlp.experts.gate_proj.bias"])
    # Our own reader agrees with gguf-py on every tensor's bytes.
    doc = json.loads(run(mlx2gguf, "inspect", "--json", out).stdout)
    for t in r.tensors:
        assert next(x for x in doc["tensors"] if x["name"] == t.name)["crc32"] == zlib.crc32(t.data.tobytes())
