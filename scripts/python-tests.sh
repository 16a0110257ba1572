#!/usr/bin/env bash
# The Python wheel's tests: builds the wheel and the sdist with a pinned maturin (in a
# cached venv outside the work tree), checks the sdist holds what cargo builds from,
# installs the wheel into a fresh venv with pytest only, and runs tests/python there.
# The wheel build is a release build with the `python` feature; it shares most of
# target/release with `cargo build --release`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
maturin_version=1.16.0
uv_version=0.13.9
pytest_version=8.3.4
root="${MLX2GGUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx2gguf}"
tools="$root/maturin-$maturin_version-uv-$uv_version"
if [ ! -f "$tools/.complete" ]; then
  echo "python-tests: creating $tools" >&2
  rm -rf "$tools"
  mkdir -p "$root"
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "maturin==$maturin_version" "uv==$uv_version" >&2
  touch "$tools/.complete"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

start=$SECONDS
"$tools/bin/maturin" build --release --quiet --out "$work/dist" >&2
echo "python-tests: wheel built in $((SECONDS - start)) s" >&2

"$tools/bin/maturin" sdist --out "$work/sdist" >/dev/null 2>&1
listing="$(tar tzf "$work"/sdist/mlx2gguf-*.tar.gz)"
for f in Cargo.toml Cargo.lock pyproject.toml src/lib.rs src/python.rs python/mlx2gguf/__init__.py \
  tests/tools/o200k_fixture.rs tests/tools/quantize_raw.rs; do
  grep -q "^mlx2gguf-[^/]*/$f\$" <<<"$listing" || { echo "python-tests: the sdist lacks $f" >&2; exit 1; }
done

# `uv tool install` and `uvx` on the same wheel (offline: it has no dependencies), in
# throw-away uv directories: both must give the command.
export UV_CACHE_DIR="$work/uv-cache" UV_TOOL_DIR="$work/uv-tools" UV_TOOL_BIN_DIR="$work/uv-bin" UV_OFFLINE=1
wheel="$(ls "$work"/dist/*.whl)"
"$tools/bin/uv" tool install --quiet --python python3 "$wheel" >&2
"$work/uv-bin/mlx2gguf" convert examples/tiny-gpt-oss -o "$work/uv.gguf" --quiet >/dev/null
"$tools/bin/uv" tool run --quiet --python python3 --from "$wheel" mlx2gguf verify "$work/uv.gguf" >/dev/null
echo "python-tests: uv tool install and uvx run the command" >&2

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work"/dist/*.whl "pytest==$pytest_version"
start=$SECONDS
"$work/venv/bin/python" -m pytest tests/python -q -p no:cacheprovider "$@"
echo "python-tests: tests ran in $((SECONDS - start)) s" >&2
