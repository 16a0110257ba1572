#!/usr/bin/env bash
# Single-thread throughput of our ggml block encoders vs ggml's own C reference quantizers
# (quantize_row_*_ref, or quantize_<t> where llama-quantize calls that, from the pinned llama.cpp, built by tests/oracle/ggml_ref.py with
# -O2 -ffp-contract=off), on the same input: N(0, 0.02²) weights, one row of 2^20 elements.
# A benchmark, not a test: it also checks the two outputs are equal, then prints a table.
#
# Usage: bench/quantizers.sh [SECONDS_PER_MEASUREMENT (default 2)] [TYPE ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-2}"
shift || true
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(q4_0 q4_1 q5_0 q5_1 q8_0 mxfp4 q2_K q3_K q4_K q5_K q6_K iq4_nl iq4_xs)
cargo build --release --quiet --example quantize_raw
exe="$PWD/target/release/examples/quantize_raw"
py="$(scripts/oracle-env.sh)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" - "$exe" "$tmp" "$secs" "${types[@]}" <<'PY'
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path("tests/oracle").resolve()))
import ggml_ref  # noqa: E402

exe, tmp, secs, types = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
n = 1 << 20
x = (np.random.default_rng(0).standard_normal(n) * 0.02).astype(np.float32)
inp = tmp / "in.f32"
x.tofile(inp)
lib = ggml_ref.lib()

print(f"{'type':<6} {'ours (elem/s)':>14} {'ggml C ref (elem/s)':>20} {'ours/C':>7}")
for t in types:
    fn, bs, nbytes = ggml_ref.TYPES[t]
    subprocess.run([exe, t, str(inp), str(tmp / "ours.bin")], check=True)
    assert (tmp / "ours.bin").read_bytes() == ggml_ref.quantize(x, t), f"{t}: outputs differ"
    ours = float(subprocess.run([exe, "--bench", t, str(inp), str(secs)], check=True, capture_output=True,
                                text=True).stdout.split()[1])
    out = np.zeros(n // bs * nbytes, dtype=np.uint8)
    if t in ggml_ref.ROW_QUANTIZERS:  # what llama-quantize calls for these: quantize_<t>
        g = getattr(lib, f"quantize_{fn}")
        f = lambda src, dst, k: g(src, dst, 1, k, None)  # noqa: E731
    else:
        f = getattr(lib, f"quantize_row_{fn}_ref")
    runs, start = 0, time.perf_counter()
    while runs == 0 or time.perf_counter() - start < secs:
        f(x.ctypes.data, out.ctypes.data, n)
        runs += 1
    c = runs * n / (time.perf_counter() - start)
    print(f"{t:<6} {ours:>14.3e} {c:>20.3e} {ours / c:>7.2f}")
PY
