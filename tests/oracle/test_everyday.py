"""The everyday commands: inspect (MLX folder and GGUF), --dry-run's plan equals what
convert writes, and the closing summary in JSON."""
import json

from gguf import GGUFReader

from conftest import ROOT, run
from fixtures import make_gpt_oss

EXAMPLE = ROOT / "examples" / "tiny-gpt-oss"


def test_inspect_mlx_folder(mlx2gguf, tmp_path):
    d = make_gpt_oss(tmp_path / "m", seed=95, quantize={"default": {"group_size": 32, "bits": 4, "mode": "mxfp4"},
                                                        "router": {"group_size": 64, "bits": 8}})
    (d / "adapters").mkdir()
    (d / "adapters" / "adapter_config.json").write_text("{}")
    doc = json.loads(run(mlx2gguf, "inspect", d, "--json").stdout)
    assert doc["model_type"] == "gpt_oss" and doc["architecture"] == "gpt-oss"
    classes = {c["class"]: c for c in doc["classes"]}
    assert classes["ffn_gate_exps.weight"]["source"] == "mxfp4" and classes["ffn_gate_exps.weight"]["type"] == "MXFP4"
    assert classes["ffn_gate_inp.weight"]["source"] == "affine 8-bit g64"
    assert doc["parameters"] == sum(
        int(__import__("numpy").prod(t.shape)) for t in GGUFReader(str(convert(mlx2gguf, d, tmp_path))).tensors)
    assert any(a.endswith("adapters") for a in doc["adapters"])
    text = run(mlx2gguf, "inspect", d).stdout
    assert "gpt_oss" in text and "ffn_gate_exps.weight" in text


def convert(exe, d, tmp_path):
    out = tmp_path / "f32.gguf"
    run(exe, "convert", d, "--outtype", "f32", "-o", out, "-q")
    return out


def test_dry_run_plan_matches_the_written_file(mlx2gguf, tmp_path):
    out = tmp_path / "o.gguf"
    plan = json.loads(run(mlx2gguf, "convert", EXAMPLE, "--outtype", "q8_0", "-o", out, "--dry-run", "--json").stdout)
    assert not out.exists()
    summary = json.loads(run(mlx2gguf, "convert", EXAMPLE, "--outtype", "q8_0", "-o", out, "--json").stdout)
    assert out.stat().st_size == plan["bytes"] == summary["bytes_written"]
    assert plan["classes"] == summary["classes"]
    types = {t.name: t.tensor_type.name for t in GGUFReader(str(out)).tensors}
    for c in plan["classes"]:
        assert sum(1 for n, ty in types.items() if n.endswith(c["class"]) and ty == c["type"]) >= c["count"]
    assert summary["seconds"] > 0 and summary["threads"] >= 1


def test_help_lists_every_output_type_convert_takes(mlx2gguf, tmp_path):
    """`convert --help` names each --outtype value (from the file-type table) and each one
    plans; one it does not list is refused."""
    import re

    help_text = " ".join(run(mlx2gguf, "convert", "--help").stdout.split())
    names = re.search(r"Output type: ([a-z0-9_, ]+)\.", help_text).group(1).split(", ")
    assert {"auto", "q8_0", "q4_k_m", "q6_k", "mxfp4_moe"} <= set(names), names
    needs_imatrix = set()
    for n in names:
        p = run(mlx2gguf, "convert", EXAMPLE, "--outtype", n, "-o", tmp_path / "o.gguf", "--dry-run", check=False)
        if p.returncode == 2 and "add --imatrix FILE" in p.stderr:
            needs_imatrix.add(n)
        else:
            assert p.returncode == 0, f"--outtype {n}: {p.stderr}"
    # Only the file types whose tensors llama-quantize refuses without an importance matrix
    # (which of them depends on the model's row sizes).
    assert "q2_k_s" in needs_imatrix
    assert needs_imatrix <= {"q2_k_s", "iq3_xxs", "iq3_xs", "iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq1_s", "iq1_m"}
    p = run(mlx2gguf, "convert", EXAMPLE, "--outtype", "q3_x", "-o", tmp_path / "o.gguf", "--dry-run", check=False)
    assert p.returncode == 2 and ", ".join(names) in p.stderr
