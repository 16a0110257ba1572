"""Convert MLX checkpoints (mlx-lm folders, quantized, with LoRA adapters) into GGUF files
for llama.cpp, Ollama and LM Studio.

    import mlx2gguf
    summary = mlx2gguf.convert("mlx-community/Qwen3-4B-4bit", "qwen3-4b-q8_0.gguf", outtype="q8_0")

``convert``, ``inspect`` and ``verify`` return the JSON documents the command line prints
with ``--json``, as dicts. Errors raise :class:`mlx2gguf.Error` (``kind`` tells which);
Ctrl-C cancels a conversion, leaving nothing under the output name, and raises
KeyboardInterrupt.
"""

import sys

from . import _native
from ._errors import Error, InputError, InternalError, IoError, UsageError
from ._native import convert, inspect, verify

__all__ = [
    "convert",
    "inspect",
    "verify",
    "main",
    "Error",
    "UsageError",
    "InputError",
    "IoError",
    "InternalError",
]


def main() -> None:
    """The ``mlx2gguf`` command (the same as the Rust binary); exits with its code."""
    sys.exit(_native.main(["mlx2gguf", *sys.argv[1:]]))
