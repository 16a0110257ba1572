"""The installed wheel: the `mlx2gguf` command and the `mlx2gguf` module convert the
bundled example, report errors with their kind, and leave nothing behind when cancelled."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlx2gguf

COMMAND = str(Path(sys.executable).parent / "mlx2gguf")
# A slow output type on one thread (and the reference kernels, conftest.py): the deep model
# then takes seconds to convert.
SLOW = {"outtype": "iq4_xs", "threads": 1}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=120)


def test_command_converts_and_verifies(example, tmp_path):
    out = tmp_path / "tiny.gguf"
    r = run("convert", str(example), "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["tensors"] == 41 and summary["outfiles"] == [str(out)]
    r = run("verify", str(out))
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr
    assert json.loads(run("verify", str(out), "--json").stdout)["ok"] is True


def test_command_is_the_binarys_cli(tmp_path):
    assert run("--version").stdout.strip() == "mlx2gguf 0.1.0"
    r = run("convert", str(tmp_path / "missing"))
    assert r.returncode == 3 and "no such folder" in r.stderr
    r = run("convert", "--no-such-flag")
    assert r.returncode == 2 and "--no-such-flag" in r.stderr
    assert run("-m").returncode == 2
    assert subprocess.run([sys.executable, "-m", "mlx2gguf", "--help"], capture_output=True).returncode == 0


def test_module_converts_inspects_verifies(example, tmp_path):
    out = tmp_path / "tiny-q8_0.gguf"
    seen = []
    summary = mlx2gguf.convert(example, out, outtype="q8_0", progress=lambda done, total: seen.append((done, total)))
    assert summary["outfiles"] == [str(out)] and summary["tensors"] == 41
    assert [f["kind"] for f in summary["files"]] == ["model"]
    assert seen and seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    info = mlx2gguf.inspect(out)
    assert info["metadata"]["general.architecture"]["value"] == "gpt-oss"
    assert len(info["tensors"]) == 41
    assert {t["type"] for t in info["tensors"]} >= {"q8_0", "f32"}
    assert mlx2gguf.verify(out) == {"path": str(out), "ok": True, "problems": []}
    assert mlx2gguf.inspect(example)["architecture"] == "gpt-oss"


def test_dry_run_writes_nothing(example, tmp_path):
    plan = mlx2gguf.convert(example, tmp_path / "tiny.gguf", dry_run=True, outtype="q4_0")
    assert plan["tensor_count"] == 41 and plan["outtype"] == "q4_0"
    assert list(tmp_path.iterdir()) == []


def test_errors_carry_kind_and_message(example, tmp_path):
    with pytest.raises(mlx2gguf.InputError) as e:
        mlx2gguf.convert(tmp_path / "missing")
    assert e.value.kind == "input" and "missing: no such folder" in str(e.value)
    assert isinstance(e.value, mlx2gguf.Error) and isinstance(e.value, ValueError)
    with pytest.raises(mlx2gguf.UsageError, match="unknown output type 'q9'") as e:
        mlx2gguf.convert(example, tmp_path / "x.gguf", outtype="q9")
    assert e.value.kind == "usage" and e.value.message == str(e.value)
    with pytest.raises(mlx2gguf.UsageError, match="nan_policy 'maybe'"):
        mlx2gguf.convert(example, tmp_path / "x.gguf", nan_policy="maybe")
    with pytest.raises(TypeError, match="unexpected keyword argument 'out_type'"):
        mlx2gguf.convert(example, out_type="q8_0")
    with pytest.raises(mlx2gguf.IoError) as e:
        mlx2gguf.verify(tmp_path / "missing.gguf")
    assert e.value.kind == "io" and isinstance(e.value, OSError)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(20))
    report = mlx2gguf.verify(broken)
    assert report["ok"] is False and report["problems"][0]["rule"] == "container"
    assert list(tmp_path.iterdir()) == [broken]


def test_options_reach_the_conversion(example, tmp_path):
    summary = mlx2gguf.convert(
        example, tmp_path / "split.gguf", outtype="q8_0", split_max_tensors=20, tensor_type=["attn_v=f16"], pure=True
    )
    assert len(summary["outfiles"]) == 3
    types = {t["name"]: t["type"] for t in mlx2gguf.inspect(summary["outfiles"][0])["tensors"]}
    assert types["blk.0.attn_v.weight"] == "f16"


@pytest.mark.parametrize("exception", [KeyboardInterrupt, ValueError])
def test_progress_exception_cancels(deep_model, tmp_path, exception):
    def stop(done, total):
        raise exception("stop")

    with pytest.raises(exception, match="stop"):
        mlx2gguf.convert(deep_model, tmp_path / "deep.gguf", progress=stop, **SLOW)
    assert list(tmp_path.iterdir()) == []


# A shell that starts jobs in the background (CI's may) makes them ignore SIGINT, and Python
# then keeps ignoring it; the child restores what an interactive Python has.
CHILD = """
import signal, sys, mlx2gguf
signal.signal(signal.SIGINT, signal.default_int_handler)
def started(done, total):
    if done < total:  # mid-conversion, not the closing call
        print("started", flush=True)
try:
    mlx2gguf.convert(sys.argv[1], sys.argv[2], outtype="iq4_xs", threads=1, progress=started)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_cancels_a_module_conversion(deep_model, tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(deep_model), str(tmp_path / "deep.gguf")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGINT)
    rest, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and rest.split()[-1:] == ["interrupted"], (child.returncode, rest)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_cancels_the_command(deep_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = ["convert", str(deep_model), "-o", str(out / "deep.gguf"), "--outtype", "iq4_xs", "--threads", "1"]
    child = subprocess.Popen([COMMAND, *args], stderr=subprocess.PIPE, text=True)
    # The temporary output appears once the plan is made and writing starts.
    deadline = time.monotonic() + 60
    while not any(out.iterdir()) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted" in err
    assert list(out.iterdir()) == []
