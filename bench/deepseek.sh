#!/usr/bin/env bash
# Memory benchmark (not a test) for a large MoE with multi-head latent attention: mlx2gguf
# on a synthetic DeepSeek V3 checkpoint at the real per-layer shapes (bench/make_deepseek.py,
# cached outside the repo), with its rank-16 adapter. Peak anonymous memory should stay as
# flat as for gpt-oss (bench/run.sh): tens of MiB, whatever the layer sizes.
#
# Usage: bench/deepseek.sh [LAYERS...]      (default: 2 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
layers=("$@")
[ $# -eq 0 ] && layers=(2 3)
root="${MLX2GGUF_BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx2gguf/bench}"
py="$(scripts/oracle-env.sh)"
cargo build --release --quiet
exe=target/release/mlx2gguf
out="$root/out"
mkdir -p "$out"
printf '%-8s %-22s %9s %10s %10s %10s\n' layers run seconds "in GB" "out GB" "peak anon"
for n in "${layers[@]}"; do
  ck="$root/deepseek-v3-L$n"
  if [ ! -f "$ck/.complete" ]; then
    rm -rf "$ck"
    "$py" bench/make_deepseek.py "$ck" "$n" >&2
    touch "$ck/.complete"
  fi
  in_bytes=$(du -cb "$ck"/model/*.safetensors | tail -1 | cut -f1)
  for run in "q8_0 adapter" "q4_k_m adapter" "auto"; do
    set -- $run
    args=(convert "$ck/model" --outtype "$1" -o "$out/o.gguf" --json --quiet)
    [ "${2:-}" = adapter ] && args+=(--adapter "$ck/adapter")
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    t0=$(date +%s.%N)
    "$exe" "${args[@]}" > "$out/last.json"
    t1=$(date +%s.%N)
    peak=$("$py" -c "import json;print(json.load(open('$out/last.json'))['peak_anon_bytes'] or 0)")
    printf '%-8s %-22s %9.1f %10.2f %10.2f %8.1f M\n' "$n" "$run" "$(awk "BEGIN{print $t1-$t0}")" \
      "$(awk "BEGIN{print $in_bytes/1e9}")" "$(awk "BEGIN{print $(stat -c %s "$out/o.gguf")/1e9}")" \
      "$(awk "BEGIN{print $peak/1048576}")"
    rm -f "$out/o.gguf"
  done
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB RAM; $(date -u +%Y-%m-%d)"
