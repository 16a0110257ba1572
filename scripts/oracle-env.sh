#!/usr/bin/env bash
# Creates (only when missing) the pinned oracle venv used by the tests: the real
# MLX, mlx-lm, gguf-py and llama.cpp (via llama-cpp-python, built from source).
# Prints the venv's python path on stdout. The venv lives outside the work tree,
# keyed by a hash of the pinned list, so repeated runs cost nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/oracle-requirements.txt"
key=$(sha256sum "$req" | cut -c1-16)
root="${MLX2GGUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx2gguf}"
venv="$root/oracle-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "oracle-env: creating $venv (llama-cpp-python builds from source: ~5 min)" >&2
  rm -rf "$venv"
  mkdir -p "$root"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
    "$venv/bin/python" -m pip install --quiet -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
