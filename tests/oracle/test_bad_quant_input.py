"""Bad quantized and sharded input: a one-line error naming the file and the tensor,
non-zero exit, nothing written."""
import json
import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from conftest import run
from test_bad_input import check_fails
from fixtures import make_gpt_oss, small_shards

SPEC = {"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"}, "router": {"group_size": 64, "bits": 8},
        "attn": {"group_size": 64, "bits": 8}}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    import mlx_lm.utils as mu
    orig = mu.make_shards
    mu.make_shards = small_shards
    try:
        return make_gpt_oss(tmp_path_factory.mktemp("s") / "m", seed=11, quantize=SPEC)
    finally:
        mu.make_shards = orig


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return make_gpt_oss(tmp_path_factory.mktemp("q") / "m", seed=12, quantize=SPEC)


def copy(src, tmp_path):
    d = tmp_path / "bad"
    shutil.copytree(src, d)
    return d


def edit_tensors(model_dir, fn, name="model.safetensors"):
    path = Path(model_dir) / name
    w = mx.load(str(path))
    fn(w)
    mx.save_safetensors(str(path), w, metadata={"format": "mlx"})
    idx_path = Path(model_dir) / "model.safetensors.index.json"
    idx = json.loads(idx_path.read_text())
    idx["weight_map"] = {k: name for k in w}
    idx_path.write_text(json.dumps(idx))


def test_truncated_shard(mlx2gguf, sharded, tmp_path):
    d = copy(sharded, tmp_path)
    f = sorted(d.glob("model-*.safetensors"))[1]
    f.write_bytes(f.read_bytes()[:-100])
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", f.name)


def test_index_names_missing_file(mlx2gguf, sharded, tmp_path):
    d = copy(sharded, tmp_path)
    f = sorted(d.glob("model-*.safetensors"))[-1]
    f.unlink()
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.safetensors.index.json", f.name)


@pytest.mark.parametrize("name", ["../outside.safetensors", "/tmp/outside.safetensors", "sub/outside.safetensors",
                                  "..\\outside.safetensors"])
def test_index_escaping_the_folder(mlx2gguf, sharded, tmp_path, name):
    """Names read from the index must be plain file names (the folder's own symlinks, as in
    a Hugging Face cache snapshot, are followed: test_real_folders.py)."""
    d = copy(sharded, tmp_path)
    idx = json.loads((d / "model.safetensors.index.json").read_text())
    k = next(iter(idx["weight_map"]))
    idx["weight_map"][k] = name
    (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "outside.safetensors", "plain file name")


def test_tensor_listed_twice(mlx2gguf, sharded, tmp_path):
    d = copy(sharded, tmp_path)
    files = sorted(d.glob("model-*.safetensors"))
    a = mx.load(str(files[0]))
    b = mx.load(str(files[1]))
    dup = next(iter(a))
    b[dup] = a[dup]
    mx.save_safetensors(str(files[1]), b, metadata={"format": "mlx"})
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", dup, "twice")


def rewrite_header(path, fn):
    data = bytearray(Path(path).read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    fn(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(len(h).to_bytes(8, "little") + h + data[8 + n:])


def test_offsets_beyond_file(mlx2gguf, single, tmp_path):
    d = copy(single, tmp_path)

    def fn(h):
        last = max((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][1])
        h[last]["data_offsets"][1] += 4096
    rewrite_header(d / "model.safetensors", fn)
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.safetensors")


def test_overlapping_offsets(mlx2gguf, single, tmp_path):
    d = copy(single, tmp_path)

    def fn(h):
        ks = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
        h[ks[1]]["data_offsets"][0] -= 2
    rewrite_header(d / "model.safetensors", fn)
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.safetensors")


def test_u32_weight_without_scales(mlx2gguf, single, tmp_path):
    d = copy(single, tmp_path)
    edit_tensors(d, lambda w: w.pop("model.layers.0.self_attn.k_proj.scales"))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.layers.0.self_attn.k_proj.weight", "without")


def test_scales_of_wrong_shape(mlx2gguf, single, tmp_path):
    d = copy(single, tmp_path)
    k = "model.layers.1.mlp.experts.up_proj.scales"
    edit_tensors(d, lambda w: w.__setitem__(k, w[k][:, :, :2]))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.layers.1.mlp.experts.up_proj", "model.safetensors")


def test_scales_of_wrong_dtype(mlx2gguf, single, tmp_path):
    d = copy(single, tmp_path)
    k = "model.layers.0.self_attn.q_proj.scales"
    edit_tensors(d, lambda w: w.__setitem__(k, w[k].astype(mx.uint8)))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.layers.0.self_attn.q_proj")


def test_biases_missing(mlx2gguf, single, tmp_path):
    d = copy(single, tmp_path)
    edit_tensors(d, lambda w: w.pop("model.layers.0.mlp.router.biases"))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.layers.0.mlp.router", "biases")


@pytest.mark.parametrize("entry,needle", [
    ({"group_size": 64, "bits": 7}, "bits 7"),
    ({"group_size": 16, "bits": 4}, "group_size 16"),
    ({"group_size": 64, "bits": 4, "mode": "mxfp4"}, "mxfp4"),
])
def test_bits_or_group_size_mlx_does_not_allow(mlx2gguf, single, tmp_path, entry, needle):
    d = copy(single, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["quantization"]["model.layers.0.self_attn.q_proj"] = entry
    (d / "config.json").write_text(json.dumps(cfg))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "config.json", "model.layers.0.self_attn.q_proj", needle)


def test_config_disagrees_with_shapes(mlx2gguf, single, tmp_path):
    d = copy(single, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["quantization"]["model.layers.0.self_attn.q_proj"] = {"group_size": 64, "bits": 4}
    (d / "config.json").write_text(json.dumps(cfg))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.layers.0.self_attn.q_proj", "affine 4-bit g64", "[256, 32] holds rows of 256")
