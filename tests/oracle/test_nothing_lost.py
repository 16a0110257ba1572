"""No output ever replaces an input or another output: each slip of the keyboard is refused
before anything is written (exit 2, one line naming both paths), every input file stays
byte-identical and nothing new appears; two conversions racing to one output leave one
complete GGUF and no temporary files."""
import hashlib
import json
import os
import shutil
import subprocess
import threading

import pytest
from gguf import GGUFReader

from conftest import run
from test_real_folders import COMMIT, to_hf_cache


def digests(*dirs):
    """Every file below `dirs` (symlinks followed) → sha256, and every path that exists."""
    out = {}
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


@pytest.fixture
def folders(builds, tmp_path):
    m, a = tmp_path / "m", tmp_path / "a"
    shutil.copytree(builds.model("llama"), m)
    shutil.copytree(builds.adapter("llama"), a)
    return m, a


def refused(exe, tmp_path, args, *needles):
    before = digests(tmp_path)
    p = run(exe, "convert", *args, check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    assert digests(tmp_path) == before, "a file changed or appeared"


def test_output_over_a_shard(mlx2gguf, folders, tmp_path):
    m, _ = folders
    shard = next(m.glob("model*.safetensors"))
    refused(mlx2gguf, tmp_path, [m, "-o", shard], str(shard))
    refused(mlx2gguf, tmp_path, [m, "-o", m / "config.json"], "config.json")
    (tmp_path / "x").mkdir()
    refused(mlx2gguf, tmp_path, [m, "-o", tmp_path / "x" / ".." / "m" / "tokenizer.json"], "tokenizer.json")


def test_adapter_out_over_the_adapter(mlx2gguf, folders, tmp_path):
    m, a = folders
    refused(mlx2gguf, tmp_path, [m, "--adapter", a, "--adapter-out", a / "adapters.safetensors", "-o",
                                 tmp_path / "base.gguf"], "adapters.safetensors")
    refused(mlx2gguf, tmp_path, [m, "--adapter", a, "-o", a / "adapter_config.json"], "adapter_config.json")


def test_adapter_out_equal_to_output(mlx2gguf, folders, tmp_path):
    m, a = folders
    out = tmp_path / "out.gguf"
    refused(mlx2gguf, tmp_path, [m, "--adapter", a, "--adapter-out", out, "-o", out], "same file")
    link = tmp_path / "link.gguf"
    run(mlx2gguf, "convert", m, "-q", "-o", out)
    os.symlink(out, link)
    refused(mlx2gguf, tmp_path, [m, "--adapter", a, "--adapter-out", link, "-o", out], "same file")


def test_hard_and_symbolic_links_to_inputs(mlx2gguf, folders, tmp_path):
    m, _ = folders
    shard = next(m.glob("model*.safetensors"))
    hard = tmp_path / "hard.gguf"
    os.link(shard, hard)
    refused(mlx2gguf, tmp_path, [m, "-o", hard], "hard.gguf", shard.name)
    sym = tmp_path / "sym.gguf"
    os.symlink(m / "tokenizer.json", sym)
    refused(mlx2gguf, tmp_path, [m, "-o", sym], "sym.gguf", "tokenizer.json")


def test_output_equal_to_a_split_shard_or_a_cache_blob(mlx2gguf, folders, tmp_path):
    m, a = folders
    out = tmp_path / "out.gguf"
    split = ["--split-max-tensors", "10", "-o", out]
    plan = json.loads(run(mlx2gguf, "convert", m, *split, "--dry-run", "--json").stdout)
    second = plan["files"][1]["path"]
    # The second shard's name is also the adapter output.
    refused(mlx2gguf, tmp_path, [m, "--adapter", a, "--adapter-out", second, *split], os.path.basename(second))
    cache = tmp_path / "hub"
    snap = to_hf_cache(m, cache, "org/llama", COMMIT)
    blob = os.path.realpath(snap / "config.json")
    refused(mlx2gguf, tmp_path, [snap, "-o", blob], "config.json")


def test_summary_reports_what_each_committed_file_holds(mlx2gguf, folders, tmp_path):
    m, a = folders
    out, lora = tmp_path / "base.gguf", tmp_path / "lora.gguf"
    doc = json.loads(run(mlx2gguf, "convert", m, "--adapter", a, "--adapter-out", lora, "-o", out, "--json").stdout)
    files = {f["path"]: f for f in doc["files"]}
    for path, kind in ((out, "model"), (lora, "adapter")):
        f = files[str(path)]
        r = GGUFReader(str(path))
        assert f["kind"] == kind and f["tensors"] == len(r.tensors) and f["bytes"] == path.stat().st_size
    assert doc["tensors"] == files[str(out)]["tensors"]


def test_racing_conversions_leave_one_complete_file(mlx2gguf, builds, tmp_path):
    """Two conversions of different models to one path: the file there is always one whole
    GGUF (one of the two: whichever renamed last), and no temporary file is left."""
    out = tmp_path / "race.gguf"
    models = [builds.model("llama"), builds.model("qwen2")]
    singles = []
    for i, m in enumerate(models):
        singles.append(tmp_path / f"single{i}.gguf")
        run(mlx2gguf, "convert", m, "-q", "-o", singles[i])
    wanted = {s.read_bytes() for s in singles}
    for _ in range(3):
        procs = [subprocess.Popen([str(mlx2gguf), "convert", str(m), "-q", "-o", str(out)]) for m in models]
        seen = []

        def watch():
            while any(p.poll() is None for p in procs):
                if out.exists():
                    seen.append(out.read_bytes())

        t = threading.Thread(target=watch)
        t.start()
        assert [p.wait() for p in procs] == [0, 0]
        t.join()
        assert out.read_bytes() in wanted
        assert all(b in wanted for b in seen), "a reader saw a partial file"
        assert not [f for f in tmp_path.iterdir() if f.name.startswith(".race.gguf")], "temporary file left"
