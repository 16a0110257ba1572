#!/usr/bin/env bash
# Instructions executed per value by our block encoders on x86-64 (the AVX2 copy) and on arm64
# (the NEON build Apple Silicon runs), counted under qemu's user-mode emulator: this machine
# cannot time arm64 code, but it can count what arm64 code executes. Counts are not cycles;
# they show where one architecture's kernels do more work than the other's.
# Each count is (run on 2^16 values − run on 2^14) / (2^16 − 2^14), so start-up cancels;
# reading the input and writing the output (~9 instructions per value) stay in.
# A benchmark, not a test: it also checks both builds wrote the same bytes.
#
# Usage: bench/instructions.sh [TYPE ...]   (default: iq4_xs q4_K q6_K q5_0 q8_0)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(iq4_xs q4_K q6_K q5_0 q8_0)
cargo build --release --quiet --example quantize_raw
x86=(qemu-x86_64 -cpu max "$PWD/target/release/examples/quantize_raw")
read -r -a arm <<< "$(scripts/arm64.sh build)"
py="$(scripts/oracle-env.sh)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -c "
import numpy as np
for n in (1 << 14, 1 << 16):
    (np.random.default_rng(0).standard_normal(n) * 0.02).astype(np.float32).tofile('$tmp/x%d.f32' % n)"

# Guest instructions executed, from qemu's log of each translated block and each execution.
count() {
  "$py" -c '
import re, sys
size, runs, start = {}, {}, None
# x86 instructions over 8 bytes go on with a line of bytes alone: not another instruction.
more_bytes = re.compile(r"0x[0-9a-f]+:(\s+[0-9a-f]{2})+\s*$")
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("IN:"):
        start = None
    elif line.startswith("Trace "):
        pc = int(line.split("[")[1].split("/")[1], 16)
        runs[pc] = runs.get(pc, 0) + 1
    elif (m := re.match(r"0x([0-9a-f]+):", line)) and not more_bytes.match(line):
        start = int(m.group(1), 16) if start is None else start
        size[start] = size.get(start, 0) + 1
print(sum(size.get(pc, 0) * n for pc, n in runs.items()))' "$1"
}

per_value() {  # per_value NAME TYPE COMMAND...
  local name=$1 t=$2 small big
  shift 2
  for n in 16384 65536; do
    "${@:1:$#-1}" -d in_asm,exec,nochain -D "$tmp/log" "${@: -1}" "$t" "$tmp/x$n.f32" "$tmp/$name.$n.bin"
    [ $n = 16384 ] && small=$(count "$tmp/log") || big=$(count "$tmp/log")
  done
  echo $(( (big - small) / 49152 ))
}

printf '%-8s %8s %8s %8s\n' type x86-64 arm64 ratio
for t in "${types[@]}"; do
  a=$(per_value x86 "$t" "${x86[@]}")
  b=$(per_value arm "$t" "${arm[@]}")
  cmp -s "$tmp/x86.65536.bin" "$tmp/arm.65536.bin" || { echo "$t: the two builds wrote different bytes" >&2; exit 1; }
  printf '%-8s %8d %8d %8.2f\n' "$t" "$a" "$b" "$(awk "BEGIN{print $b / $a}")"
done
