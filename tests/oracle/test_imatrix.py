"""--imatrix: an importance matrix made by llama.cpp's own llama-imatrix on our F32 output
(GGUF and legacy .dat formats), applied when converting from the MLX checkpoint, gives
exactly the tensors (types and blocks) that llama.cpp's own `llama-quantize --imatrix`
writes from our F32 file, for every importance-weighted type and for dense, MoE (one weight
row per expert) and MLA models, with the adapter fused."""
import json
import subprocess

import numpy as np
import pytest

from arch_fixtures import BPE_CORPUS
from conftest import run
from test_archs import tensors_of

QUANTIZE_NAME = {"q4_k_m": "Q4_K_M", "q2_k": "Q2_K", "q3_k_m": "Q3_K_M", "iq4_xs": "IQ4_XS", "iq4_nl": "IQ4_NL",
                 "q4_0": "Q4_0", "q5_1": "Q5_1", "q6_k": "Q6_K", "q5_k_s": "Q5_K_S", "q2_k_s": "Q2_K_S",
                 "iq3_xxs": "IQ3_XXS", "iq3_xs": "IQ3_XS", "iq3_s": "IQ3_S", "iq3_m": "IQ3_M",
                 "iq2_xxs": "IQ2_XXS", "iq2_xs": "IQ2_XS", "iq2_s": "IQ2_S", "iq2_m": "IQ2_M",
                 "iq1_s": "IQ1_S", "iq1_m": "IQ1_M", "tq1_0": "TQ1_0", "tq2_0": "TQ2_0"}


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


def llama_quantize_tool(tools, src, dst, outtype, imatrix, *options):
    extra = [*options, "--imatrix", str(imatrix)] if imatrix else []
    subprocess.run([str(tools / "llama-quantize"), *extra, str(src), str(dst), QUANTIZE_NAME[outtype], "2"],
                   check=True, capture_output=True)
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


@pytest.mark.parametrize("outtype", ["iq3_s", "iq3_m", "tq1_0", "tq2_0"])
@pytest.mark.parametrize("arch", ["llama", "qwen3_moe", "deepseek_v3"])
def test_low_bit_without_imatrix_matches_llama_quantize(mlx2gguf, builds, llama_tools, tmp_path, arch, outtype):
    """The new low-bit file types llama-quantize makes without an importance matrix: the same
    tensors as `llama-quantize` (no --imatrix) of our F32 file."""
    ours = tmp_path / "ours.gguf"
    run(mlx2gguf, "convert", builds.model(arch), "--adapter", builds.adapter(arch), "--outtype", outtype,
        "--quiet", "-o", ours)
    ref = llama_quantize_tool(llama_tools, builds.gguf(mlx2gguf, arch, "f32", adapter=True), tmp_path / "ref.gguf",
                              outtype, None)
    assert_same_tensors(ours, ref)


@pytest.mark.parametrize("select", [("--include-weights", "attn_v"), ("--include-weights", "ffn_down"),
                                    ("--exclude-weights", "ffn_"), ("--include-weights", "nothing-matches")])
def test_include_exclude_weights_match_llama_quantize(mlx2gguf, builds, imatrices, llama_tools, tmp_path, select):
    """`--include-weights` / `--exclude-weights` select imatrix entries by substring as
    llama-quantize's options do (none left: as without an imatrix): same tensors and the same
    quantize.imatrix.* keys."""
    from gguf import GGUFReader
    from test_archs import field

    imatrix = imatrices.get(builds, mlx2gguf, "llama")
    ours = tmp_path / "ours.gguf"
    run(mlx2gguf, "convert", builds.model("llama"), "--adapter", builds.adapter("llama"), "--outtype", "q4_k_m",
        "--imatrix", imatrix, *select, "--quiet", "-o", ours)
    ref = llama_quantize_tool(llama_tools, builds.gguf(mlx2gguf, "llama", "f32", adapter=True), tmp_path / "ref.gguf",
                              "q4_k_m", imatrix, *select)
    assert_same_tensors(ours, ref)
    a, b = GGUFReader(str(ours)), GGUFReader(str(ref))
    keys = [k for k in b.fields if k.startswith("quantize.imatrix.")]
    assert (len(keys) == 0) == (select[1] == "nothing-matches"), keys
    assert sorted(keys) == sorted(k for k in a.fields if k.startswith("quantize.imatrix.")), keys
    for k in keys:
        assert field(a, k) == field(b, k), k


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


@pytest.mark.parametrize("outtype", ["iq2_xxs", "iq1_s", "iq3_xs"])
def test_llama_quantize_files_are_read_and_verified(mlx2gguf, builds, imatrices, llama_tools, tmp_path, outtype):
    """Files llama.cpp's own llama-quantize writes in the IQ1/IQ2/IQ3 file types: inspect reads
    every tensor type and verify passes them."""
    imatrix = imatrices.get(builds, mlx2gguf, "llama")
    ref = llama_quantize_tool(llama_tools, builds.gguf(mlx2gguf, "llama", "f32", adapter=True),
                              tmp_path / "ref.gguf", outtype, imatrix)
    doc = json.loads(run(mlx2gguf, "inspect", ref, "--json").stdout)
    want = {t.tensor_type.name.lower() for t in tensors_of(ref).values()}
    assert {t["type"].lower() for t in doc["tensors"]} == want
    assert outtype.split("_")[0] in " ".join(want), want
    p = run(mlx2gguf, "verify", ref, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def _without_entry(src, dst, tensor):
    """A copy of a GGUF imatrix without one tensor's entries."""
    from gguf import GGUFReader, GGUFWriter, GGUFValueType

    r = GGUFReader(str(src))
    w = GGUFWriter(str(dst), arch=None)
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        vt = f.types[0]
        if vt == GGUFValueType.ARRAY:
            w.add_key_value(f.name, list(f.contents()), vt, sub_type=f.types[-1])
        else:
            w.add_key_value(f.name, f.contents(), vt)
    for t in r.tensors:
        if not t.name.startswith(tensor + "."):
            w.add_tensor(t.name, np.array(t.data), raw_shape=list(reversed(t.shape.tolist())))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


def test_missing_entry_for_a_very_low_bit_tensor_is_refused(mlx2gguf, builds, imatrices, llama_tools, tmp_path):
    """An imatrix without the entry of a tensor that becomes IQ2_XXS: refused naming the file and
    the tensor, as llama-quantize refuses it; nothing written."""
    imatrix = _without_entry(imatrices.get(builds, mlx2gguf, "llama"), tmp_path / "partial.imatrix.gguf",
                             "blk.1.attn_q.weight")
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", builds.model("llama"), "--outtype", "iq2_xxs", "--imatrix", imatrix, "-o", out,
            check=False)
    assert p.returncode == 2 and "partial.imatrix.gguf" in p.stderr and "blk.1.attn_q.weight" in p.stderr, p.stderr
    assert not out.exists()
    ref = subprocess.run([str(llama_tools / "llama-quantize"), "--imatrix", str(imatrix),
                          str(builds.gguf(mlx2gguf, "llama", "f32")), str(tmp_path / "ref.gguf"), "IQ2_XXS", "2"],
                         capture_output=True, text=True)
    assert ref.returncode != 0 and "blk.1.attn_q.weight" in ref.stdout + ref.stderr


@pytest.mark.parametrize("outtype", ["iq2_xxs", "iq2_s", "iq1_m", "iq3_xxs", "q2_k_s"])
def test_very_low_bit_types_need_an_imatrix(mlx2gguf, builds, tmp_path, outtype):
    """As llama-quantize: the IQ1/IQ2/IQ3_XXS types (and Q2_K in Q2_K_S) need an importance
    matrix; the refusal names the type and the fix."""
    out = tmp_path / "o.gguf"
    p = run(mlx2gguf, "convert", builds.model("llama"), "--outtype", outtype, "-o", out, check=False)
    assert p.returncode == 2 and "--imatrix" in p.stderr and outtype in p.stderr, p.stderr
    assert not out.exists()
