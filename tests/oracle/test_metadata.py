"""Model-card keys and the default file name, against gguf-py itself: for folders with
varied model cards (README.md front matter), config.json and folder names, every
`general.*` key we write (but architecture, type, file_type, quantization_version,
alignment) equals what `gguf.metadata.Metadata.load` derives, with what
convert_hf_to_gguf.py's `prepare_metadata` adds around it (the name fallback, the size
label from the parameter counts, computed here from the MLX weights as the converter counts
its tensors), written by gguf-py's own `Metadata.set_gguf_meta_model`; the default output
name equals `gguf.naming_convention(...)`; `--metadata FILE` equals `Metadata.load` with that
override file."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGUFReader, GGUFValueType
from gguf.metadata import Metadata

from conftest import run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tiny-gpt-oss"
SKIPPED = {"general.architecture", "general.type", "general.file_type", "general.quantization_version",
           "general.alignment"}
COMMIT = "0123456789abcdef0123456789abcdef01234567"

MLX_CARD = """---
license: apache-2.0
license_link: https://huggingface.co/Qwen/Qwen3-4B-Instruct-2507/blob/main/LICENSE
pipeline_tag: text-generation
library_name: mlx
tags:
- mlx
base_model: Qwen/Qwen3-4B-Instruct-2507
---

# mlx-community/Qwen3-4B-Instruct-2507-4bit
"""

RICH_CARD = """---
language:
- en
- fr
- no
license: other
license_name: mrl
license_link: https://mistral.ai/licenses/MRL-0.1.md
base_model:
- mistralai/Mistral-7B-v0.3
- https://huggingface.co/someone/Other-Model-v2
datasets:
- org/chat-data-v1
- name: Hand Made
  organization: Me
tags: [text-generation, mlx]
model_creator: Mistral AI
---
Body text.
"""


def load_mlx_counts(folder):
    """(total, shared, expert, expert_count) as gguf-py's get_total_parameter_count gives them
    for the converter's tensors: every weight at its logical (dequantized) shape, stacked
    experts counted once per expert."""
    from safetensors import safe_open

    cfg = json.loads((folder / "config.json").read_text())
    quant = cfg.get("quantization") or {}
    shapes = {}
    for f in sorted(folder.glob("model*.safetensors")):
        with safe_open(str(f), "np") as s:
            shapes.update({k: s.get_slice(k).get_shape() for k in s.keys()})
    total = shared = expert = expert_sum = n_expert_tensors = 0
    for name, shape in shapes.items():
        module = name.rsplit(".", 1)[0]
        if name.endswith((".scales", ".biases")) and module + ".scales" in shapes:
            continue
        if name.endswith(".weight") and module + ".scales" in shapes:
            bits = (quant.get(module) or quant)["bits"]
            shape = [*shape[:-1], shape[-1] * 32 // bits]
        size = int(np.prod(shape))
        total += size
        if ".experts." in name and len(shape) >= 3:
            expert += size // shape[0]
            expert_sum += shape[0]
            n_expert_tensors += 1
        else:
            shared += size
    return total, shared, expert, (expert_sum // n_expert_tensors) if n_expert_tensors else 0


def gguf_counts(path):
    """gguf-py's own count over a file's tensors (ggml dims reversed to its row-major shape)."""
    w = gguf.GGUFWriter(None, "x")
    for t in GGUFReader(str(path)).tensors:
        shape = [int(d) for d in reversed(t.shape)]
        w.add_tensor_info(t.name, shape, np.dtype(np.float32), int(np.prod(shape)) * 4)
    return w.get_total_parameter_count()


def gguf_py_penalty_fallback(md, folder, override):
    """llama.cpp's gguf-py (the converter's, newer than the venv's PyPI 0.19) also reads
    transformers' `repetition_penalty`; a no-op once the venv's gguf-py does."""
    gen = folder / "generation_config.json"
    g = json.loads(gen.read_text()) if gen.is_file() else {}
    o = json.loads(Path(override).read_text()) if override else {}
    if md.sampling_penalty_repeat is None and "repetition_penalty" in g and "penalty_repeat" not in g \
            and "general.sampling.penalty_repeat" not in o:
        md.sampling_penalty_repeat = g["repetition_penalty"]


def expected_metadata(folder, counts, override=None, name_folder=None):
    """Metadata.load plus what convert_hf_to_gguf.py's prepare_metadata does around it.
    `name_folder`: the folder whose name the heuristics read (a cache snapshot's repo name)."""
    named = Path(name_folder or folder)
    if name_folder is not None:
        # Metadata.load reads the name from the folder it reads the files from.
        shutil.copytree(folder, named, symlinks=False, dirs_exist_ok=True)
    md = Metadata.load(Path(override) if override else None, named, None, counts[0])
    gguf_py_penalty_fallback(md, named, override)
    if md.name is None:
        md.name = named.name
    if md.size_label is None and counts[0] > 0:
        md.size_label = gguf.size_label(*counts)
    return md


def written_keys(md):
    """(key, type, value) as gguf-py's writer writes the model-card keys."""
    w = gguf.GGUFWriter(None, "x")
    md.set_gguf_meta_model(w)
    return [(k, v.type, normalized(v.type, v.value)) for k, v in w.kv_data[0].items() if k not in SKIPPED]


def normalized(vtype, value):
    return float(np.float32(value)) if vtype == GGUFValueType.FLOAT32 else value


def our_keys(path):
    r = GGUFReader(str(path))
    out = []
    for k, f in r.fields.items():
        if k.startswith("general.") and k not in SKIPPED:
            out.append((k, f.types[0], normalized(f.types[0], f.contents())))
    return out


def make_folder(root, name, readme=None, src=EXAMPLE, config=None, generation=None):
    d = Path(root) / name
    shutil.copytree(src, d)
    if readme is not None:
        (d / "README.md").write_text(readme, encoding="utf-8")
    if config:
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(config)
        (d / "config.json").write_text(json.dumps(cfg))
    if generation:
        g = json.loads((d / "generation_config.json").read_text())
        g.update(generation)
        (d / "generation_config.json").write_text(json.dumps(g))
    return d


def convert(exe, folder, out, *extra):
    run(exe, "convert", folder, "--outtype", "f32", "-q", "-o", out, *extra)
    return out


@pytest.fixture(scope="module")
def quantized_gpt_oss(tmp_path_factory):
    """An MLX-quantized gpt-oss (MXFP4 experts, 8-bit attention and router)."""
    from fixtures import make_gpt_oss

    spec = {"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"}, "router": {"group_size": 64, "bits": 8},
            "attn": {"group_size": 64, "bits": 8}}
    return make_gpt_oss(tmp_path_factory.mktemp("q") / "gpt-oss-20b-MXFP4-Q8", seed=3, dtype="float32",
                        quantize=spec)


CASES = {
    "mlx-card": dict(name="Qwen3-4B-Instruct-2507-4bit", readme=MLX_CARD,
                     generation={"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}),
    "rich-card": dict(name="Mistral-7B-v0.3", readme=RICH_CARD, config={"_name_or_path": "mistralai/Mistral-7B-v0.3"}),
    "no-readme": dict(name="gpt-oss-20b-MXFP4-Q8", readme=None),
    "no-front-matter": dict(name="Llama-3.2-1B-Instruct-bf16", readme="# Llama 3.2\n\n---\nlicense: mit\n---\n"),
}


@pytest.mark.parametrize("case", CASES)
def test_general_keys_are_gguf_pys(mlx2gguf, tmp_path, case):
    c = CASES[case]
    d = make_folder(tmp_path, c["name"], c["readme"], config=c.get("config"), generation=c.get("generation"))
    out = convert(mlx2gguf, d, tmp_path / "out.gguf")
    counts = load_mlx_counts(d)
    assert gguf_counts(out) == counts
    want = written_keys(expected_metadata(d, counts))
    assert our_keys(out) == want
    if case == "mlx-card":
        assert ("general.base_model.0.organization", GGUFValueType.STRING, "Qwen") in want
        assert ("general.sampling.penalty_repeat", GGUFValueType.FLOAT32, float(np.float32(1.05))) in want


def test_quantized_weights_count_at_their_logical_shape(mlx2gguf, quantized_gpt_oss, tmp_path):
    out = convert(mlx2gguf, quantized_gpt_oss, tmp_path / "q.gguf")
    counts = load_mlx_counts(quantized_gpt_oss)
    assert gguf_counts(out) == counts and counts[3] == 4
    assert our_keys(out) == written_keys(expected_metadata(quantized_gpt_oss, counts))


def test_a_readme_changes_the_keys(mlx2gguf, tmp_path):
    """The negative check: the card is read from the model folder (without it, other keys)."""
    with_card = make_folder(tmp_path / "a", "Qwen3-4B-Instruct-2507-4bit", MLX_CARD)
    without = make_folder(tmp_path / "b", "Qwen3-4B-Instruct-2507-4bit", None)
    counts = load_mlx_counts(with_card)
    want_with = written_keys(expected_metadata(with_card, counts))
    want_without = written_keys(expected_metadata(without, counts))
    assert want_with != want_without
    got = our_keys(convert(mlx2gguf, without, tmp_path / "o.gguf"))
    assert got == want_without and got != want_with


def test_cache_snapshot_reads_as_its_repo_name(mlx2gguf, tmp_path):
    """A Hugging Face cache snapshot's folder is a commit hash: its repo's name stands for it,
    by repo id and by path alike."""
    repo = tmp_path / "hub" / "models--mlx-community--Qwen3-4B-Instruct-2507-4bit"
    snap = make_folder(repo / "snapshots", COMMIT, MLX_CARD)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    counts = load_mlx_counts(snap)
    want = written_keys(expected_metadata(snap, counts, name_folder=tmp_path / "Qwen3-4B-Instruct-2507-4bit"))
    assert ("general.basename", GGUFValueType.STRING, "Qwen3") in want
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"))
    for arg in (snap, "mlx-community/Qwen3-4B-Instruct-2507-4bit"):
        out = tmp_path / "c.gguf"
        p = subprocess.run([str(mlx2gguf), "convert", str(arg), "--outtype", "f32", "-q", "-o", str(out)],
                           capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr
        assert our_keys(out) == want


def test_metadata_override_is_gguf_pys(mlx2gguf, tmp_path):
    d = make_folder(tmp_path, "Mistral-7B-v0.3", RICH_CARD, generation={"temperature": 0.3})
    override = tmp_path / "meta.json"
    override.write_text(json.dumps({
        "general.name": "My Mistral", "general.author": "Me", "general.version": None,
        "general.license.name": "custom", "general.quantized_by": "mlx2gguf tests",
        "general.base_models": [{"name": "Base", "organization": "Org", "repo_url": "https://example.com/base"}],
        "general.datasets": [{"name": "D1"}, {"name": "D2", "url": "https://example.com/d2"}],
        "general.tags": ["a", "b"], "general.languages": ["de"], "general.sampling.temp": 0.9,
        "general.sampling.top_k": 40, "general.source.url": "https://example.com/src",
    }))
    out = convert(mlx2gguf, d, tmp_path / "o.gguf", "--metadata", override)
    counts = load_mlx_counts(d)
    want = written_keys(expected_metadata(d, counts, override=override))
    assert our_keys(out) == want
    assert ("general.name", GGUFValueType.STRING, "My Mistral") in want

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    p = run(mlx2gguf, "convert", d, "-q", "-o", tmp_path / "x.gguf", "--metadata", bad, check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 3 and len(lines) == 1 and "bad.json" in lines[0], p.stderr
    assert not (tmp_path / "x.gguf").exists()


def expected_stem(md, file_type, lora=False):
    output_type = gguf.LlamaFileType(file_type).name.partition("_")[2]
    return gguf.naming_convention(md.name, md.basename, md.finetune, md.version, md.size_label, output_type,
                                  model_type="LoRA" if lora else None)


@pytest.mark.parametrize("outtype", ["auto", "q8_0", "q4_k_m"])
def test_default_output_name_is_naming_conventions(mlx2gguf, quantized_gpt_oss, tmp_path, outtype):
    d = make_folder(tmp_path, "Qwen3-4B-Instruct-2507-4bit", MLX_CARD)
    for folder in (d, quantized_gpt_oss):
        work = tmp_path / f"cwd-{folder.name}"
        work.mkdir()
        dry = run(mlx2gguf, "convert", folder, "--outtype", outtype, "--dry-run", "--json")
        p = subprocess.run([str(mlx2gguf), "convert", str(folder), "--outtype", outtype, "-q"], cwd=work,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        [written] = list(work.iterdir())
        file_type = GGUFReader(str(written)).fields["general.file_type"].contents()
        md = expected_metadata(folder, load_mlx_counts(folder))
        assert written.name == expected_stem(md, file_type) + ".gguf"
        assert json.loads(dry.stdout)["outfile"] == written.name
        assert f"wrote {written.name}" in p.stdout
        if outtype == "auto" and folder == quantized_gpt_oss:
            assert written.name.endswith("-MXFP4_MOE.gguf")


def make_adapter(root, name, base_model):
    """A LoRA adapter on layer 0's q_proj, as mlx_lm.lora saves one."""
    from safetensors.numpy import save_file

    d = Path(root) / name
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    save_file({"model.layers.0.self_attn.q_proj.lora_a": rng.normal(size=(128, 4)).astype(np.float32) * 0.01,
               "model.layers.0.self_attn.q_proj.lora_b": rng.normal(size=(4, 256)).astype(np.float32) * 0.01},
              str(d / "adapters.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({
        "model": base_model, "fine_tune_type": "lora", "num_layers": 1,
        "lora_parameters": {"rank": 4, "scale": 20.0, "dropout": 0.0, "keys": ["self_attn.q_proj"]}}))
    return d


def base_entries(model_id, total):
    """The base model entry gguf-py makes of a card's `base_model: ID`."""
    return Metadata.apply_metadata_heuristic(Metadata(), {"base_model": model_id}, None, None, total).base_models


def test_fused_adapter_describes_the_fine_tune(mlx2gguf, tmp_path):
    d = make_folder(tmp_path, "Qwen3-4B-Instruct-2507-4bit", MLX_CARD)
    a = make_adapter(tmp_path, "sql-lora", "mlx-community/Qwen3-4B-Instruct-2507-4bit")
    out = convert(mlx2gguf, d, tmp_path / "fused.gguf", "--adapter", a)
    counts = load_mlx_counts(d)
    md = expected_metadata(d, counts)
    md.base_models = base_entries("mlx-community/Qwen3-4B-Instruct-2507-4bit", counts[0])
    md.finetune = f"{md.finetune}-sql-lora"  # general.name stays the model's
    assert our_keys(out) == written_keys(md)
    assert GGUFReader(str(out)).fields["general.type"].contents() == "model"


def test_adapter_file_keys_are_convert_lora_to_ggufs(mlx2gguf, tmp_path):
    d = make_folder(tmp_path, "Qwen3-4B-Instruct-2507-4bit", MLX_CARD)
    a = make_adapter(tmp_path, "Qwen3-4B-sql-lora", "/somewhere/else/Qwen3-4B")
    lora = tmp_path / "lora.gguf"
    convert(mlx2gguf, d, tmp_path / "base.gguf", "--adapter", a, "--adapter-out", lora)
    total = gguf_counts(lora)[0]
    assert total == -256 * 128
    md = Metadata.load(None, a, None, total)
    if md.base_models is None:
        # adapter_config.json's model is a path on another machine: the base folder's name.
        md.base_models = base_entries("Qwen3-4B-Instruct-2507-4bit", total)
    r = GGUFReader(str(lora))
    assert our_keys(lora) == written_keys(md)
    assert [k for k in r.fields if not k.startswith("GGUF.")][:3] == ["general.architecture", "general.type", "adapter.type"]
    assert r.fields["general.type"].contents() == "adapter" and r.fields["adapter.type"].contents() == "lora"
    assert r.fields["adapter.lora.alpha"].contents() == pytest.approx(80.0)
