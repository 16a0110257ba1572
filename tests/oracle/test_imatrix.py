"""--imatrix: an importance matrix made by llama.cpp's own llama-imatrix on our F32 output
(GGUF and legacy .dat formats), applied when converting from the MLX checkpoint, gives
exactly the tensors (types and blocks) that llama.cpp's own `llama-quantize --imatrix`
writes from our F32 file, for every importance-weighted type and for dense, MoE (one weight
row per expert) and MLA models, with the adapter fused."""
import subprocess

import numpy as np
import pytest

from arch_fixtures import BPE_CORPUS
from conftest import run
from test_archs import tensors_of

QUANTIZE_NAME = {"q4_k_m": "Q4_K_M", "q2_k": "Q2_K", "q3_k_m": "Q3_K_M", "iq4_xs": "IQ4_XS", "iq4_nl": "IQ4_NL",
                 "q4_0": "Q4_0", "q5_1": "Q5_1", "q6_k": "Q6_K", "q5_k_s": "Q5_K_S", "q2_k_s": "Q2_K_S"}


class Imatrices:
    """One imatrix per (architecture, format), made once."""

    def __init__(self, root, tools):
        self.root, self.tools, self.made = root, tools, {}

    def get(self, builds, mlx2gguf, arch, fmt="gguf"):
        key = (arch, fmt)
        if key not in self.made:
            f32 = builds.gguf(mlx2gguf, arch, "f32", adapter=True)
            text = self.root / "calibration.txt"
            text.write_text("\\n".join(BPE_CORPUS * 6), encoding="utf-8")
            out = self.root / f"{arch}.imatrix.{fmt}"
            subprocess.run([str(self.tools / "llama-imatrix"), "-m", str(f32), "-f", str(text), "-o", str(out),
                            "-c", "64", "--chunks", "4", "-t", "2", "--no-ppl", "--output-format", fmt],
                           check=True, capture_output=True)
            self.made[key] = out
        return self.made[key]


@pytest.fixture(scope="module")
def imatrices(tmp_path_factory, llama_tools):
    return Imatrices(tmp_path_factory.mktemp("imatrix"), llama_tools)


def llama_quantize_tool(tools, src, dst, outtype, imatrix):
    subprocess.run([str(tools / "llama-quantize"), "--imatrix", str(imatrix), str(src), str(dst),
                    QUANTIZE_NAME[outtype], "2"], check=True, capture_output=True)
    return dst


def assert_same_tensors(ours, ref):
    a, b = tensors_of(ours), tensors_of(ref)
    assert set(a) == set(b)
    for name in sorted(a):
        ta, tb = a[name], b[name]
        assert ta.tensor_type == tb.tensor_type, f"{name}: ours {ta.tensor_type.name}, llama.cpp {tb.tensor_type.name}"
        assert bytes(ta.data.tobytes()) == bytes(tb.data.tobytes()), f"{name} ({ta.tensor_type.name}): blocks differ"


@pytest.mark.parametrize("outtype", list(QUANTIZE_NAME))
@pytest.mark.parametrize("arch", ["llama", "qwen3_moe", "deepseek_v3"])
def test_imatrix_matches_llama_quantize(mlx2gguf, builds, imatrices, llama_tools, tmp_path, arch, outtype):
    imatrix = imatrices.get(builds, mlx2gguf, arch)
    ours = tmp_path / "ours.gguf"
    run(mlx2gguf, "convert", builds.model(arch), "--adapter", builds.adapter(arch), "--outtype", outtype,
        "--imatrix", imatrix, "--quiet", "-o", ours)
    ref = llama_quantize_tool(llama_tools, builds.gguf(mlx2gguf, arch, "f32", adapter=True), tmp_path / "ref.gguf",
                              outtype, imatrix)
    assert_same_tensors(ours, ref)


def test_legacy_dat_imatrix_matches_llama_quantize(mlx2gguf, builds, imatrices, llama_tools, tmp_path):
    """The legacy .dat format llama-imatrix still writes (`--output-format dat`)."""
    imatrix = imatrices.get(builds, mlx2gguf, "qwen3_moe", "dat")
    ours = tmp_path / "ours.gguf"
    run(mlx2gguf, "convert", builds.model("qwen3_moe"), "--adapter", builds.adapter("qwen3_moe"), "--outtype",
        "q4_k_m", "--imatrix", imatrix, "--quiet", "-o", ours)
    ref = llama_quantize_tool(llama_tools, builds.gguf(mlx2gguf, "qwen3_moe", "f32", adapter=True),
                              tmp_path / "ref.gguf", "q4_k_m", imatrix)
    assert_same_tensors(ours, ref)


def test_imatrix_changes_the_blocks_and_errors_name_the_file(mlx2gguf, builds, imatrices, tmp_path):
    """The weights matter (the same conversion without them differs), and an imatrix of
    another model is refused naming the file and the tensor."""
    imatrix = imatrices.get(builds, mlx2gguf, "llama")
    with_w, without = tmp_path / "w.gguf", tmp_path / "n.gguf"
    run(mlx2gguf, "convert", builds.model("llama"), "--outtype", "q4_k_m", "--imatrix", imatrix, "-q", "-o", with_w)
    run(mlx2gguf, "convert", builds.model("llama"), "--outtype", "q4_k_m", "-q", "-o", without)
    a, b = tensors_of(with_w), tensors_of(without)
    assert any(bytes(a[n].data.tobytes()) != bytes(b[n].data.tobytes()) for n in a)
    # Qwen3's heads are wider than Llama's: its attn_output has other columns.
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", builds.model("qwen3"), "--outtype", "q4_k_m", "--imatrix", imatrix, "-o", out,
            check=False)
    assert p.returncode != 0 and imatrix.name in p.stderr and "attn_output" in p.stderr and not out.exists(), p.stderr


def test_q2_k_s_needs_an_imatrix(mlx2gguf, builds, tmp_path):
    """As llama-quantize: a Q2_K_S file's Q2_K tensors need an importance matrix."""
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", builds.model("llama"), "--outtype", "q2_k_s", "-o", out, check=False)
    assert p.returncode != 0 and "--imatrix" in p.stderr and "q2_k_s" in p.stderr, p.stderr
    assert not out.exists()
