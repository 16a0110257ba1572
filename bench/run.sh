#!/usr/bin/env bash
# Speed and memory benchmark (not a test): mlx2gguf on synthetic gpt-oss checkpoints at the
# real per-layer shapes, against the I/O floor of the same machine, at two depths.
# Checkpoints are built once and cached outside the repo (MLX2GGUF_BENCH_DIR).
#
# The peer is llama.cpp's own convert_hf_to_gguf.py (bench/peer-env.sh), run on the same
# weights in OpenAI's original layout (bench/make_openai_twin.py, cached beside each
# checkpoint) with --outtype q8_0. It converts without the adapter, since it has no
# adapter support; that only favours it. For q4_k_m the peer is the pipeline a user would
# run instead: that converter to a BF16 GGUF (it keeps gpt-oss's MXFP4 experts), then
# llama-quantize --allow-requantize to Q4_K_M (scripts/llama-tools.sh, the same pinned
# source), timed end to end from a cold cache, intermediate file included.
# MLX2GGUF_BENCH_PEER=0 skips the peers (their venv is ~5 GB). Each of our rows is the
# min of MLX2GGUF_BENCH_REPEAT (default 2) samples of ours and of its floor, alternating.
#
# Usage: bench/run.sh [LAYERS...]      (default: 2 4)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
layers=("$@")
[ $# -eq 0 ] && layers=(2 4)
root="${MLX2GGUF_BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx2gguf/bench}"
py="$(scripts/oracle-env.sh)"
peer="${MLX2GGUF_BENCH_PEER:-1}"
repeat="${MLX2GGUF_BENCH_REPEAT:-2}"
if [ "$peer" != 0 ]; then
  peer_env="$(bench/peer-env.sh)"
  { read -r peer_py; read -r peer_conv; } <<< "$peer_env"
  llama_quantize="$(scripts/llama-tools.sh)/llama-quantize"
fi
cargo build --release --quiet
exe=target/release/mlx2gguf
out="$root/out"
mkdir -p "$out"

calc() { awk "BEGIN { print ($*) }"; }

# The lesser of a running least (empty before the first sample) and a new sample.
least() { calc "${1:-$2} < $2 ? ${1:-$2} : $2"; }
# The greater of a running most and a new sample.
most() { calc "${1:-$2} > $2 ? ${1:-$2} : $2"; }

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# Start and end (epoch seconds) and the user + sys CPU seconds of a command, its stdout to
# last.json, from a cold cache.
measure() {
  local t0 t1 cpu TIMEFORMAT='%3U %3S'
  drop_caches
  t0=$(date +%s.%N)
  # bash's `time` reports on the group's stderr; the command's own stderr goes to fd 3.
  cpu=$( { time "$@" > "$out/last.json" 2>&3; } 3>&2 2>&1 )
  t1=$(date +%s.%N)
  echo "$t0 $t1 $(calc "${cpu% *} + ${cpu#* }")"
}

# The I/O floor for a run: read the same input and write (and sync) the same number of
# output bytes, concurrently, from a cold cache. Args: OUT_BYTES INPUT_FILES...
floor() {
  local f0 f1 n=$1
  shift
  drop_caches
  f0=$(date +%s.%N)
  cat "$@" > /dev/null &
  # Written around the page cache where dd and the file system can (as we write on Linux's
  # local disk file systems; faster there), else through it.
  local blocks=$(( (n + 8388607) / 8388608 ))
  dd if=/dev/zero of="$out/floor.bin" bs=8M count=$blocks oflag=direct conv=fsync status=none 2>/dev/null ||
    dd if=/dev/zero of="$out/floor.bin" bs=8M count=$blocks conv=fsync status=none
  wait
  f1=$(date +%s.%N)
  rm -f "$out/floor.bin"
  calc "$f1 - $f0"
}

# Runs the peer converter in-process after two changes that do not touch its work:
# (1) the synthetic bench tokenizer's pre-tokenizer hash is unknown to it, so its own
# lookup still runs but an unknown hash reads as "gpt-4o" (the real gpt-oss tokenizer's);
# (2) a thread samples RssAnon, for comparison with our sampled peak. Writes CPU seconds,
# peak RSS (VmHWM, exact) and sampled peak anon as JSON to argv[1].
# Args: STATS_JSON CONVERTER CONVERTER_ARGS...
peer_launcher='
import json, os, resource, runpy, sys, threading, time
stats, conv = sys.argv[1], sys.argv[2]
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))
peak_anon = 0
def sample():
    global peak_anon
    while True:
        peak_anon = max(peak_anon, status("RssAnon:"))
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
sys.path.insert(0, os.path.dirname(conv))
from conversion.base import TextModel
known_pre = TextModel.get_vocab_base_pre
def pre(self, tokenizer):
    try:
        return known_pre(self, tokenizer)
    except NotImplementedError:
        return "gpt-4o"
TextModel.get_vocab_base_pre = pre
sys.argv = sys.argv[2:]
try:
    runpy.run_path(conv, run_name="__main__")
finally:
    peak_anon = max(peak_anon, status("RssAnon:"))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open(stats, "w") as f:
        json.dump({"cpu_seconds": ru.ru_utime + ru.ru_stime, "peak_rss_bytes": status("VmHWM:"),
                   "peak_anon_bytes": peak_anon}, f)
'

notes=()
: > "$out/ours.log"
# "CPU s" is our user + sys time (least of the samples); "CPU/cores" that time spread over
# every core, over the floor: what this machine's CPUs alone allow, however well the work
# overlaps the disk (a row above 1 is CPU-bound here).
cores=$(nproc)
printf '%-8s %-22s %9s %9s %9s %10s %9s %9s %7s %9s\n' layers run seconds "in MB/s" "out MB/s" "peak anon" "floor s" "x floor" \
  "CPU s" "CPU/cores"
for n in "${layers[@]}"; do
  ck="$root/gpt-oss-L$n"
  if [ ! -f "$ck/.complete" ]; then
    rm -rf "$ck"
    "$py" bench/make_checkpoint.py "$ck" "$n" >&2
    touch "$ck/.complete"
  fi
  in_bytes=$(du -cb "$ck"/model/*.safetensors | tail -1 | cut -f1)
  # Against the peers (one sample each), our slowest sample counts.
  declare -A secs_of=() peak_of=() bytes_of=()
  for run in "q8_0 adapter" "q5_0 adapter" "q4_k_m adapter" "q6_k adapter" "iq4_xs adapter" "auto"; do
    set -- $run
    args=(convert "$ck/model" --outtype "$1" -o "$out/o.gguf" --json --quiet)
    [ "${2:-}" = adapter ] && args+=(--adapter "$ck/adapter")
    # Our warnings (the synthetic adapter's update is below every 4–8-bit type's noise) go
    # to a log, out of the table.
    # The min of $repeat alternating samples of ours and of the floor: this VM's cold
    # reads vary by up to 2x from one sample to the next (see the notes at the end).
    secs="" slow=0 fl="" peak_b=0 cpu=""
    for _ in $(seq "$repeat"); do
      read -r t0 t1 c1 < <(measure "$exe" "${args[@]}" 2>> "$out/ours.log")
      s1=$(calc "$t1 - $t0")
      out_bytes=$(stat -c %s "$out/o.gguf")
      p1=$("$py" -c "import json;print(json.load(open('$out/last.json'))['peak_anon_bytes'] or 0)")
      rm -f "$out/o.gguf"
      f1=$(floor "$out_bytes" "$ck"/model/*.safetensors)
      secs=$(least "$secs" "$s1")
      cpu=$(least "$cpu" "$c1")
      slow=$(most "$slow" "$s1")
      fl=$(least "$fl" "$f1")
      peak_b=$(most "$peak_b" "$p1")
    done
    peak=$(calc "int($peak_b / 1048576 + 0.5)")
    secs_of[$run]=$slow peak_of[$run]=$peak_b bytes_of[$run]=$out_bytes
    printf '%-8s %-22s %9.1f %9.0f %9.0f %8s M %9.1f %9.2f %7.1f %9.2f\n' "$n" "$run" "$secs" \
      "$(calc "$in_bytes / $secs / 1000000")" "$(calc "$out_bytes / $secs / 1000000")" \
      "$peak" "$fl" "$(calc "$secs / $fl")" "$cpu" "$(calc "$cpu / $cores / $fl")"
  done
  [ "$peer" = 0 ] && continue
  if [ ! -f "$ck/openai/.complete" ]; then
    rm -rf "$ck/openai"
    "$py" bench/make_openai_twin.py "$ck/model" "$ck/openai" >&2
    touch "$ck/openai/.complete"
  fi
  # The twin's input is larger than ours (BF16 embeddings, attention and router where
  # the MLX checkpoint has 8-bit), so its MB/s and floor are over its own input.
  peer_in=$(du -cb "$ck"/openai/*.safetensors | tail -1 | cut -f1)
  rm -f "$out/peer.gguf" "$out/peer.json"
  read -r t0 t1 _ < <(measure "$peer_py" -c "$peer_launcher" "$out/peer.json" "$peer_conv" "$ck/openai" \
    --outtype q8_0 --outfile "$out/peer.gguf" 2> "$out/peer.log")
  if [ ! -s "$out/peer.gguf" ] || [ ! -s "$out/peer.json" ]; then
    tail -20 "$out/peer.log" >&2
    echo "bench: the peer converter failed (log: $out/peer.log)" >&2
    exit 1
  fi
  secs=$(calc "$t1 - $t0")
  out_bytes=$(stat -c %s "$out/peer.gguf")
  read -r cpu rss anon < <("$py" -c "import json;d=json.load(open('$out/peer.json'));print(d['cpu_seconds'],d['peak_rss_bytes'],d['peak_anon_bytes'])")
  fl=$(floor "$out_bytes" "$ck"/openai/*.safetensors)
  rm -f "$out/peer.gguf"
  printf '%-8s %-22s %9.1f %9.0f %9.0f %8s M %9.1f %9.2f\n' "$n" "peer q8_0 (peak RSS)" "$secs" \
    "$(calc "$peer_in / $secs / 1000000")" "$(calc "$out_bytes / $secs / 1000000")" \
    "$(calc "int($rss / 1048576 + 0.5)")" "$fl" "$(calc "$secs / $fl")"
  # Ratios: peer time (one sample) / our slowest sample, and peer peak RSS / our sampled peak anon. "auto" is the
  # like-for-like output: both copy the MXFP4 experts and write the 8-bit tensors as Q8_0
  # (our q8_0 re-encodes the experts as Q8_0, as llama-quantize would).
  for run in "q8_0 adapter" "auto"; do
    printf '%-8s %-22s %8.1fx %9s %9s %9.0fx\n' "$n" "peer / $run" \
      "$(calc "$secs / ${secs_of[$run]}")" "" "" "$(calc "$rss / ${peak_of[$run]}")"
  done
  # The q4_k_m pipeline: converter to BF16, then llama-quantize, one cold-cache timing.
  rm -f "$out/peer-bf16.gguf" "$out/peer-q4_k_m.gguf"
  read -r t0 t1 _ < <(measure bash -c '"$1" -c "$2" "$3/peer-bf16.json" "$4" "$5" --outtype bf16 --outfile "$3/peer-bf16.gguf" \
      && "$6" --allow-requantize "$3/peer-bf16.gguf" "$3/peer-q4_k_m.gguf" Q4_K_M' _ \
    "$peer_py" "$peer_launcher" "$out" "$peer_conv" "$ck/openai" "$llama_quantize" 2> "$out/peer-q4.log")
  if [ ! -s "$out/peer-q4_k_m.gguf" ]; then
    tail -20 "$out/peer-q4.log" >&2
    echo "bench: the peer q4_k_m pipeline failed (log: $out/peer-q4.log)" >&2
    exit 1
  fi
  pipe=$(calc "$t1 - $t0")
  mid=$(stat -c %s "$out/peer-bf16.gguf")
  rm -f "$out/peer-bf16.gguf" "$out/peer-q4_k_m.gguf"
  printf '%-8s %-22s %9.1f\n' "$n" "peer bf16→q4_k_m" "$pipe"
  printf '%-8s %-22s %8.1fx\n' "$n" "peer / q4_k_m adapter" "$(calc "$pipe / ${secs_of[q4_k_m adapter]}")"
  notes+=("$(printf 'peer L%s q4_k_m pipeline: %.1f s, intermediate BF16 GGUF %s bytes (ours: no intermediate file)' "$n" "$pipe" "$mid")")
  notes+=("$(printf 'peer L%s: %.1f s CPU, peak RSS %.0f M, sampled peak anon %.0f M; output %s bytes (ours: q8_0 adapter %s, auto %s)' \
    "$n" "$cpu" "$(calc "$rss / 1048576")" "$(calc "$anon / 1048576")" "$out_bytes" \
    "${bytes_of[q8_0 adapter]}" "${bytes_of[auto]}")")
done
for line in "${notes[@]}"; do echo "$line"; done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB RAM; $(date -u +%Y-%m-%d)"
# A VM whose balloon device reports free pages (virtio feature bit 5) gives the host back
# what drop_caches and deleted outputs free, and the next touch of that memory faults in
# the host: on such a machine cold-cache runs, the floor's included, pay it unevenly.
for f in /sys/bus/virtio/drivers/virtio_balloon/virtio*/features; do
  if [ -r "$f" ] && [ "$(cut -c6 "$f")" = 1 ]; then
    echo "machine: free page reporting to the hypervisor is on; first touches of freed memory fault in the host, so timings here vary by up to 2x"
  fi
done
