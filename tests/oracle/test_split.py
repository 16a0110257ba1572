"""Split output as llama.cpp's gguf-split writes it, loadable from the first shard."""
import numpy as np
from gguf import GGUFReader, GGUFValueType

from conftest import ROOT, llama_logits, run
from fixtures import TOKENS

EXAMPLE = ROOT / "examples" / "tiny-gpt-oss"


def test_split_by_tensors_loads_in_llama_cpp(mlx2gguf, tmp_path):
    whole, out = tmp_path / "whole.gguf", tmp_path / "out.gguf"
    run(mlx2gguf, "convert", EXAMPLE, "--outtype", "f32", "-o", whole)
    p = run(mlx2gguf, "convert", EXAMPLE, "--outtype", "f32", "-o", out, "--split-max-tensors", "15")
    shards = sorted(tmp_path.glob("out-*.gguf"))
    assert [s.name for s in shards] == ["out-00001-of-00003.gguf", "out-00002-of-00003.gguf", "out-00003-of-00003.gguf"]
    assert not out.exists() and "out-00001-of-00003.gguf" in p.stdout
    total = 0
    for i, s in enumerate(shards):
        r = GGUFReader(str(s))
        f = r.fields
        assert f["split.no"].contents() == i and f["split.no"].types == [GGUFValueType.UINT16]
        assert f["split.count"].contents() == 3 and f["split.count"].types == [GGUFValueType.UINT16]
        assert f["split.tensors.count"].contents() == 41 and f["split.tensors.count"].types == [GGUFValueType.INT32]
        assert ("general.architecture" in f) == (i == 0)
        total += len(r.tensors)
    assert total == 41
    np.testing.assert_array_equal(llama_logits(shards[0], TOKENS), llama_logits(whole, TOKENS))


def test_split_by_size_and_dry_run(mlx2gguf, tmp_path):
    import json
    out = tmp_path / "m.gguf"
    plan = json.loads(run(mlx2gguf, "convert", EXAMPLE, "--outtype", "f32", "-o", out, "--split-max-size", "1M",
                          "--dry-run", "--json").stdout)
    assert len(plan["files"]) >= 3 and all(f["data_bytes"] <= 1_000_000 for f in plan["files"])
    assert not list(tmp_path.iterdir()), "--dry-run must not write"
    run(mlx2gguf, "convert", EXAMPLE, "--outtype", "f32", "-o", out, "--split-max-size", "1M")
    shards = sorted(tmp_path.glob("m-*.gguf"))
    assert [s.name for s in shards] == [f["path"].split("/")[-1] for f in plan["files"]]
    assert sum(len(GGUFReader(str(s)).tensors) for s in shards) == 41
    assert llama_logits(shards[0], TOKENS).shape == (len(TOKENS), 384)
