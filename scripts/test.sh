#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, the Python wheel's tests, then
# the oracle tests that compare our files with the real MLX, mlx-lm, gguf-py and llama.cpp
# (the pinned oracle venv is created on first use, outside the work tree). On x86-64 Linux
# the unit tests also run as arm64 code under qemu (scripts/arm64.sh), and an oracle test
# compares that build's bytes with this one's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --quiet
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  scripts/arm64.sh test
fi
cargo build --release --quiet
scripts/python-tests.sh
py="$(scripts/oracle-env.sh)"
MLX2GGUF_BUILD=0 "$py" -m pytest tests/oracle -q -p no:cacheprovider "$@"
