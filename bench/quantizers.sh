#!/usr/bin/env bash
# Single-thread throughput of our ggml block encoders vs ggml's own C quantizers
# (quantize_row_*_ref, or quantize_<t> where llama-quantize calls that, from the pinned llama.cpp, built by tests/oracle/ggml_ref.py with
# -O2 -ffp-contract=off), on the same input: N(0, 0.02²) weights, 2^20 elements; then with
# importance weights (an exponential imatrix row, rows of 4096) where the type takes them.
# Rates are per CPU second of the measuring thread (not wall time), so a loaded machine
# slows both sides alike.
# A benchmark, not a test: it also checks the two outputs are equal, then prints a table.
#
# Usage: bench/quantizers.sh [SECONDS_PER_MEASUREMENT (default 2)] [TYPE ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-2}"
shift || true
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(q4_0 q4_1 q5_0 q5_1 q8_0 mxfp4 q2_K q3_K q4_K q5_K q6_K iq4_nl iq4_xs iq3_xxs iq3_s iq2_xxs iq2_xs iq2_s iq1_s iq1_m tq1_0 tq2_0)
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
n, row = 1 << 20, 4096
x = (np.random.default_rng(0).standard_normal(n) * 0.02).astype(np.float32)
qw = np.random.default_rng(1).exponential(1.0, row).astype(np.float32)  # an imatrix row
inp, wts = tmp / "in.f32", tmp / "w.f32"
x.tofile(inp)
qw.tofile(wts)
lib = ggml_ref.lib()


def c_rate(f):  # per CPU second of this thread, as quantize_raw measures ours
    runs, start = 0, time.thread_time()
    while runs == 0 or time.thread_time() - start < secs:
        f()
        runs += 1
    return runs * n / (time.thread_time() - start)


def ours_rate(*args):
    p = subprocess.run([exe, *args, str(secs)], capture_output=True, text=True)
    return float(p.stdout.split()[1]) if p.returncode == 0 else None


def cell(v):
    return f"{v:>11.3e}" if v else f"{'-':>11}"


def ratio(a, b):
    return f"{a / b:>6.2f}" if a and b else f"{'-':>6}"


print(f"{'type':<8} {'ours':>11} {'ggml C':>11} {'ours/C':>6}   {'ours (w)':>11} {'ggml C (w)':>11} {'ours/C':>6}")
for t in types:
    fn, bs, nbytes = ggml_ref.TYPES[t]
    out = np.zeros(n // bs * nbytes, dtype=np.uint8)
    ours = c = ours_w = c_w = None
    if subprocess.run([exe, t, str(inp), str(tmp / "ours.bin")], capture_output=True).returncode == 0:
        assert (tmp / "ours.bin").read_bytes() == ggml_ref.quantize(x, t), f"{t}: outputs differ"
        ours = ours_rate("--bench", t, str(inp))
        if t in ggml_ref.ROW_QUANTIZERS:  # what llama-quantize calls for these: quantize_<t>
            g = getattr(lib, f"quantize_{fn}")
            c = c_rate(lambda: g(x.ctypes.data, out.ctypes.data, n // row, row, None))
        else:
            g = getattr(lib, f"quantize_row_{fn}_ref")
            c = c_rate(lambda: g(x.ctypes.data, out.ctypes.data, n))
    w = subprocess.run([exe, "--weights", str(wts), t, str(inp), str(tmp / "ours-w.bin")], capture_output=True)
    if w.returncode == 0:
        assert (tmp / "ours-w.bin").read_bytes() == ggml_ref.quantize_weighted(x, t, qw), f"{t}: weighted outputs differ"
        ours_w = ours_rate("--bench-weights", str(wts), t, str(inp))
        g = getattr(lib, f"quantize_{fn}")
        c_w = c_rate(lambda: g(x.ctypes.data, out.ctypes.data, n // row, row, qw.ctypes.data))
    print(f"{t:<8} {cell(ours)} {cell(c)} {ratio(ours, c)}   {cell(ours_w)} {cell(c_w)} {ratio(ours_w, c_w)}")
PY
