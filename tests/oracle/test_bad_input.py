"""Bad input: one-line errors naming the file/key, non-zero exit, nothing left behind."""
import json
import shutil

import pytest

from conftest import run
from fixtures import make_gpt_oss


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_gpt_oss(tmp_path_factory.mktemp("m") / "tiny", seed=2, dtype="bfloat16")


def broken_copy(model, tmp_path):
    d = tmp_path / "broken"
    shutil.copytree(model, d)
    return d


def check_fails(exe, model_dir, out, *needles):
    p = run(exe, "convert", model_dir, "-o", out, check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not out.exists()
    assert not [f for f in out.parent.iterdir() if f.name.startswith("." + out.name)], "temporary file left behind"


def test_missing_config(mlx2gguf, model, tmp_path):
    d = broken_copy(model, tmp_path)
    (d / "config.json").unlink()
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "config.json", "missing")


def test_unknown_model_type(mlx2gguf, model, tmp_path):
    d = broken_copy(model, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "not_a_model"
    (d / "config.json").write_text(json.dumps(cfg))
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model_type", "not_a_model")


def test_truncated_safetensors(mlx2gguf, model, tmp_path):
    d = broken_copy(model, tmp_path)
    f = d / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.safetensors")


def test_lying_header(mlx2gguf, model, tmp_path):
    d = broken_copy(model, tmp_path)
    f = d / "model.safetensors"
    data = bytearray(f.read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name]["data_offsets"][1] += 1 << 40
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    f.write_bytes(len(h).to_bytes(8, "little") + h + data[8 + n :])
    check_fails(mlx2gguf, d, tmp_path / "o.gguf", "model.safetensors")


def test_unwritable_output(mlx2gguf, model, tmp_path):
    out = tmp_path / "no_such_dir" / "o.gguf"
    p = run(mlx2gguf, "convert", model, "-o", out, check=False)
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) == 1 and "no_such_dir" in p.stderr
    assert not out.exists()


def test_existing_output_is_kept_on_failure(mlx2gguf, model, tmp_path):
    d = broken_copy(model, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    del cfg["head_dim"]
    (d / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "o.gguf"
    out.write_bytes(b"previous")
    p = run(mlx2gguf, "convert", d, "-o", out, check=False)
    assert p.returncode != 0 and "head_dim" in p.stderr
    assert out.read_bytes() == b"previous"
