"""Fixtures for the tests of the installed wheel (scripts/python-tests.sh runs them in a
fresh venv holding only the wheel and pytest)."""

import json
import os
import struct
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-gpt-oss"

# The cancellation tests interrupt a conversion of the deep model while it runs, so it must
# outlast a few of the module's 50 ms polls. With the fast kernels iq4_xs converts it in
# about 0.1 s on one thread; the reference kernels (same bytes) take about 2 s. Set before
# any conversion: the library reads the switch once per process, and child processes
# inherit it.
os.environ["MLX2GGUF_REFERENCE_KERNELS"] = "1"


@pytest.fixture
def example() -> Path:
    return EXAMPLE


def _read_safetensors(path: Path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    return header, data[8 + n :]


@pytest.fixture(scope="session")
def deep_model(tmp_path_factory) -> Path:
    """The example with its two layers repeated to 32 (about 20 MB of bf16): a conversion
    long enough to be interrupted while it runs."""
    layers = 32
    out = tmp_path_factory.mktemp("deep")
    for f in EXAMPLE.iterdir():
        if f.name not in ("model.safetensors", "model.safetensors.index.json", "config.json"):
            (out / f.name).write_bytes(f.read_bytes())
    config = json.loads((EXAMPLE / "config.json").read_text())
    config["num_hidden_layers"] = layers
    config["layer_types"] = [config["layer_types"][i % 2] for i in range(layers)]
    (out / "config.json").write_text(json.dumps(config))
    header, body = _read_safetensors(EXAMPLE / "model.safetensors")
    tensors = []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        parts = name.split(".")
        copies = [name]
        if parts[:2] == ["model", "layers"]:
            copies = [".".join(parts[:2] + [str(i)] + parts[3:]) for i in range(layers) if i % 2 == int(parts[2])]
        tensors += [(n, info, body[begin:end]) for n in copies]
    new_header, offset = {}, 0
    for name, info, data in tensors:
        new_header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(new_header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _, _, data in tensors:
            f.write(data)
    return out
