#!/usr/bin/env bash
# Speed and memory benchmark (not a test): mlx2gguf on synthetic gpt-oss checkpoints at the
# real per-layer shapes, against the I/O floor of the same machine, at two depths.
# Checkpoints are built once and cached outside the repo (MLX2GGUF_BENCH_DIR).
#
# Usage: bench/run.sh [LAYERS...]      (default: 2 4)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
layers=("$@")
[ $# -eq 0 ] && layers=(2 4)
root="${MLX2GGUF_BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx2gguf/bench}"
py="$(scripts/oracle-env.sh)"
cargo build --release --quiet
exe=target/release/mlx2gguf
out="$root/out"
mkdir -p "$out"

calc() { awk "BEGIN { print $* }"; }

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# wall seconds, user+sys seconds of a command (GNU time if present, else bash's).
measure() {
  local t0 t1
  drop_caches
  t0=$(date +%s.%N)
  "$@" > "$out/last.json"
  t1=$(date +%s.%N)
  echo "$t0 $t1"
}

printf '%-8s %-22s %9s %9s %9s %10s %9s\n' layers run seconds "in MB/s" "out MB/s" "peak anon" "x floor"
for n in "${layers[@]}"; do
  ck="$root/gpt-oss-L$n"
  if [ ! -f "$ck/.complete" ]; then
    rm -rf "$ck"
    "$py" bench/make_checkpoint.py "$ck" "$n" >&2
    touch "$ck/.complete"
  fi
  in_bytes=$(du -cb "$ck"/model/*.safetensors | tail -1 | cut -f1)
  for run in "q8_0 adapter" "q5_0 adapter" "auto"; do
    set -- $run
    args=(convert "$ck/model" --outtype "$1" -o "$out/o.gguf" --json --quiet)
    [ "${2:-}" = adapter ] && args+=(--adapter "$ck/adapter")
    read -r t0 t1 < <(measure "$exe" "${args[@]}")
    secs=$(calc "$t1 - $t0")
    out_bytes=$(stat -c %s "$out/o.gguf")
    peak=$("$py" -c "import json;d=json.load(open('$out/last.json'));print(round((d['peak_anon_bytes'] or 0)/2**20))")
    # The I/O floor for this run: read the same input and write (and sync) the same
    # number of output bytes, concurrently, from a cold cache.
    drop_caches
    f0=$(date +%s.%N)
    cat "$ck"/model/*.safetensors > /dev/null &
    dd if=/dev/zero of="$out/floor.bin" bs=8M count=$(( (out_bytes + 8388607) / 8388608 )) conv=fsync status=none
    wait
    f1=$(date +%s.%N)
    floor=$(calc "$f1 - $f0")
    rm -f "$out/floor.bin" "$out/o.gguf"
    printf '%-8s %-22s %9.1f %9.0f %9.0f %8s M %9.2f\n' "$n" "$run" "$secs" \
      "$(calc "$in_bytes / $secs / 1000000")" "$(calc "$out_bytes / $secs / 1000000")" \
      "$peak" "$(calc "$secs / $floor")"
  done
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB RAM; $(date -u +%Y-%m-%d)"
