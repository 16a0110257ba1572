"""Faults: a full disk, a file size limit, Ctrl-C/SIGTERM and an input truncated mid-run
each end with a clear message, no file under the target name, no temporary file left,
and any previous file at the target intact."""
import resource
import signal
import subprocess
import time

import pytest

from conftest import ROOT, run
from fixtures import make_gpt_oss

EXAMPLE = ROOT / "examples" / "tiny-gpt-oss"


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """Large enough (~0.5 GB of bf16) that converting it to F32 takes seconds."""
    return make_gpt_oss(tmp_path_factory.mktemp("slow") / "m", seed=80, dtype="bfloat16", config_over=dict(
        hidden_size=2048, intermediate_size=2048, num_local_experts=8, num_experts_per_tok=2, experts_per_token=2))


def leftovers(d, name):
    return [p.name for p in d.iterdir() if p.name.startswith("." + name)]


@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=True)


def test_full_disk_is_refused_before_reading(mlx2gguf, small_fs):
    out = small_fs / "o.gguf"
    out.write_bytes(b"previous")
    p = run(mlx2gguf, "convert", EXAMPLE, "--outtype", "f32", "-o", out, check=False)
    assert p.returncode == 4 and "not enough space" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"previous" and not leftovers(small_fs, "o.gguf")


def test_file_size_limit_mid_write(mlx2gguf, tmp_path):
    """The space check passes, then writing fails (EFBIG under RLIMIT_FSIZE)."""
    out = tmp_path / "o.gguf"
    out.write_bytes(b"previous")
    lim = 512 * 1024
    p = subprocess.run([str(mlx2gguf), "convert", str(EXAMPLE), "--outtype", "f32", "-o", str(out)], capture_output=True,
                       text=True, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim)))
    assert p.returncode == 4, p.stderr
    assert "too large" in p.stderr.lower() and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert out.read_bytes() == b"previous" and not leftovers(tmp_path, "o.gguf")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run(mlx2gguf, slow_model, tmp_path, sig):
    out = tmp_path / "o.gguf"
    out.write_bytes(b"previous")
    proc = subprocess.Popen([str(mlx2gguf), "convert", str(slow_model), "--outtype", "f32", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not leftovers(tmp_path, "o.gguf") and time.time() < deadline:
        time.sleep(0.02)
    assert leftovers(tmp_path, "o.gguf"), "the conversion should have started writing"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err
    assert out.read_bytes() == b"previous" and not leftovers(tmp_path, "o.gguf")


def test_input_truncated_mid_run(mlx2gguf, slow_model, tmp_path):
    import shutil
    model = tmp_path / "m"
    shutil.copytree(slow_model, model)
    out = tmp_path / "o.gguf"
    proc = subprocess.Popen([str(mlx2gguf), "convert", str(model), "--outtype", "f32", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not leftovers(tmp_path, "o.gguf") and time.time() < deadline:
        time.sleep(0.02)
    with open(model / "model.safetensors", "r+b") as f:
        f.truncate(1 << 20)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "truncated" in err or "changed" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not leftovers(tmp_path, "o.gguf")
