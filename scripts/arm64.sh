#!/usr/bin/env bash
# The arm64 build (NEON, what Apple Silicon runs) on an x86-64 Linux machine, under qemu's
# user-mode emulator: cross-compiled with Debian's aarch64 gcc as the linker.
#   scripts/arm64.sh test    runs the library's unit tests (every kernel against its reference)
#   scripts/arm64.sh build   builds the quantize_raw example and prints the command that runs it
# Installs what it lacks: the Rust target (rustup) and, as root, Debian's qemu-user and
# gcc-aarch64-linux-gnu. The oracle test that uses `build` compares its bytes with this
# machine's, which the other oracle tests compare with ggml's C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu

if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  echo "arm64.sh: for x86-64 Linux hosts (on arm64 the other tests run the NEON kernels natively)" >&2
  exit 2
fi
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target" >&2
fi
if ! command -v qemu-aarch64 > /dev/null || ! command -v aarch64-linux-gnu-gcc > /dev/null \
    || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "arm64.sh: needs qemu-aarch64 and an aarch64 gcc: sudo apt-get install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross" >&2
    exit 1
  fi
  pkgs=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  # A stale package index fails the install: refresh it once and retry.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" > /dev/null \
    || { apt-get update -q > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" > /dev/null; }
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"

case "${1:-}" in
  test) cargo test --release --quiet --lib --target "$target" ;;
  build)
    cargo build --release --quiet --example quantize_raw --target "$target" >&2
    echo "qemu-aarch64 -L $sysroot $PWD/target/$target/release/examples/quantize_raw"
    ;;
  *) echo "usage: scripts/arm64.sh test|build" >&2; exit 2 ;;
esac
