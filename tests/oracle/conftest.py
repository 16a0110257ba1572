"""Shared set-up for the oracle tests: the release binary, and fixtures built by mlx-lm."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def mlx2gguf():
    """Path of the release binary (scripts/test.sh builds it; build here if run alone)."""
    exe = ROOT / "target" / "release" / "mlx2gguf"
    if not exe.exists() or os.environ.get("MLX2GGUF_BUILD", "1") == "1":
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    return exe


@pytest.fixture(scope="session")
def llama_tools():
    """llama.cpp's own llama-quantize and llama-imatrix, built once from the pinned source
    (scripts/llama-tools.sh, cached outside the work tree)."""
    out = subprocess.run([str(ROOT / "scripts" / "llama-tools.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """The tiny architecture checkpoints, adapters and conversions, shared by every module."""
    from test_archs import ArchBuilds

    return ArchBuilds(tmp_path_factory.mktemp("archs"))


def run(exe, *args, check=True):
    """Runs the binary; returns the CompletedProcess (stdout/stderr as text)."""
    p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"mlx2gguf {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def llama_logits(gguf_path, tokens, n_ctx=64):
    """llama.cpp's logits for every position, with an F32 KV cache so the file is measured."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=True,
                type_k=0, type_v=0, n_threads=2, verbose=False, seed=0)
    llm.eval(list(tokens))
    out = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    del llm
    return out


def llama_quantize(src, dst, ftype):
    """llama.cpp's own quantizer (llama_model_quantize) applied to a GGUF file."""
    import ctypes
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    assert rc == 0, f"llama_model_quantize failed ({rc})"
    return dst


LLAMA_FTYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q4_k_m": 15,
               "q5_k_s": 16, "q5_k_m": 17, "q6_k": 18, "q4_k_s": 14, "bf16": 32, "mxfp4_moe": 38,
               "q2_k": 10, "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13, "iq4_nl": 25, "iq4_xs": 30,
               "iq2_xxs": 19, "iq2_xs": 20, "iq3_xs": 22, "iq3_xxs": 23, "iq1_s": 24, "iq3_s": 26, "iq3_m": 27,
               "iq2_s": 28, "iq2_m": 29, "iq1_m": 31, "tq1_0": 36, "tq2_0": 37}
