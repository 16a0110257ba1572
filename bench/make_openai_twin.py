"""The benchmark's MLX gpt-oss checkpoint rewritten in OpenAI's original Hugging Face
layout, the one llama.cpp's convert_hf_to_gguf.py (GptOssModel) reads, so the peer
converter can be timed on the same weights.

What is kept and what is not:
* MXFP4 experts: the same codes and E8M0 scales, byte for byte. MLX's packed words are
  OpenAI's `*_blocks` bytes viewed as uint32, and gate/up are interleaved back into
  `gate_up_proj_*` (gate on even rows), i.e. the inverse of mlx-lm's gpt_oss sanitize,
  which is checked at the end by running that sanitize on the result.
* Affine 8-bit tensors (attention q/k/v/o, router, embeddings, lm_head) become BF16, as
  in OpenAI's checkpoint: mx.dequantize gives the values MLX itself computes with
  (bf16 result of scale * q + bias). The peer then re-quantizes these from BF16.
* Norms, biases and sinks are copied unchanged (already BF16).
* The LoRA adapter is not applied: the peer cannot take one.
* Tokenizer files are copied; config.json gets OpenAI's architectures and
  quantization_config in place of MLX's quantization entries.

Files are written tensor by tensor (row chunks for the big ones), so memory stays at
about one source tensor, in HF-style shards of at most 5 GB with an index.

Usage: python make_openai_twin.py MLX_MODEL_DIR OUT_DIR
"""
import json
import shutil
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np

SHARD_BYTES = 5 * 10**9  # transformers' default max_shard_size
ROWS = 16384  # row chunk for dequantizing embeddings without a 2nd full copy in f32
DTYPE = {mx.bfloat16: "BF16", mx.uint8: "U8", mx.float16: "F16", mx.float32: "F32"}
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                   "generation_config.json", "special_tokens_map.json"]


def load_mlx(model_dir: Path) -> dict:
    index = model_dir / "model.safetensors.index.json"
    files = (sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists()
             else ["model.safetensors"])
    weights = {}
    for f in files:
        weights.update(mx.load(str(model_dir / f)))  # lazy: read when evaluated
    return weights


def raw(a: mx.array) -> bytes:
    if a.dtype == mx.bfloat16:
        a = a.view(mx.uint16)  # numpy has no bf16; the bytes are what matter
    return np.array(a).tobytes()


def plan(w: dict, qcfg: dict) -> list:
    """(name, dtype, shape, producer of byte chunks) for every tensor of the twin."""
    out = []

    def put(name, dtype, shape, gen):
        out.append((name, dtype, list(shape), gen))

    for name in w:
        if name.endswith((".scales", ".biases")):
            continue
        mod, _, leaf = name.rpartition(".")
        if ".mlp.experts." in name:
            layer, _, proj = mod.rpartition(".")  # ...mlp.experts, gate_proj
            if proj == "up_proj":
                continue  # written with gate_proj
            if proj == "gate_proj":
                g, u = w[name], w[f"{layer}.up_proj.{leaf}"]
                base = f"{layer}.gate_up_proj"
            else:
                g, u = w[name], None
                base = f"{layer}.down_proj"
            if leaf == "bias":
                put(base + "_bias", DTYPE[g.dtype], [g.shape[0], g.shape[1] * (1 if u is None else 2)],
                    interleave_gen(g, u))
                continue
            if qcfg.get(mod, qcfg).get("mode") != "mxfp4":
                raise SystemExit(f"{mod}: OpenAI's layout has MXFP4 experts only, got {qcfg.get(mod, qcfg)}")
            # MXFP4: U32 [E, out, in/8] -> U8 blocks [E, out, in/32, 16]; U8 scales [E, out, in/32]
            E, rows, _ = g.shape
            n = rows * (1 if u is None else 2)
            gs, us = w[f"{mod}.scales"], (None if u is None else w[f"{layer}.up_proj.scales"])
            nb = gs.shape[-1]
            gb = g.view(mx.uint8).reshape(E, rows, nb, 16)
            ub = None if u is None else u.view(mx.uint8).reshape(E, rows, nb, 16)
            put(base + "_blocks", "U8", [E, n, nb, 16], interleave_gen(gb, ub))
            put(base + "_scales", "U8", [E, n, nb], interleave_gen(gs, us))
        elif leaf == "weight" and f"{mod}.scales" in w:
            q = qcfg.get(mod, qcfg)
            if q.get("mode", "affine") != "affine":
                raise SystemExit(f"{mod}: only affine-quantized dense layers are expected, got {q}")
            cols = w[name].shape[-1] * 32 // q["bits"]
            put(name, "BF16", [w[name].shape[0], cols],
                dequant_gen(w[name], w[f"{mod}.scales"], w[f"{mod}.biases"], q["group_size"], q["bits"]))
        else:
            a = w[name]
            put(name, DTYPE[a.dtype], a.shape, lambda a=a: iter([raw(a)]))
    return sorted(out, key=lambda t: t[0])


def interleave_gen(g, u):
    """One expert at a time; gate rows even, up rows odd (OpenAI's gate_up layout)."""
    def gen():
        for e in range(g.shape[0]):
            if u is None:
                yield raw(g[e])
            else:
                rows = g[e].shape
                yield raw(mx.stack([g[e], u[e]], axis=1).reshape(2 * rows[0], *rows[1:]))
    return gen


def dequant_gen(wq, s, b, group_size, bits):
    def gen():
        for r in range(0, wq.shape[0], ROWS):
            yield raw(mx.dequantize(wq[r:r + ROWS], s[r:r + ROWS], b[r:r + ROWS],
                                    group_size=group_size, bits=bits))
    return gen


def nbytes(t):
    size = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1}[t[1]]
    for d in t[2]:
        size *= d
    return size


def write_shards(tensors: list, out: Path) -> dict:
    shards, cur, cur_bytes = [], [], 0
    for t in tensors:
        if cur and cur_bytes + nbytes(t) > SHARD_BYTES:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(t)
        cur_bytes += nbytes(t)
    shards.append(cur)
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, dtype, shape, _ in shard:
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes((name, dtype, shape))]}
            off += nbytes((name, dtype, shape))
            weight_map[name] = fname
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(out / fname, "wb") as f:
            f.write(len(h).to_bytes(8, "little") + h)
            for name, dtype, shape, gen in shard:
                start = f.tell()
                for chunk in gen():
                    f.write(chunk)
                assert f.tell() - start == nbytes((name, dtype, shape)), name
    total = sum(nbytes(t) for t in tensors)
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return weight_map


def openai_config(cfg: dict, model_dir: Path) -> dict:
    cfg = {k: v for k, v in cfg.items() if k not in ("quantization", "quantization_config")}
    gen = model_dir / "generation_config.json"
    ids = json.loads(gen.read_text()) if gen.exists() else {}
    eos = ids.get("eos_token_id")
    cfg.update({
        "architectures": ["GptOssForCausalLM"],
        "hidden_act": "silu",
        "quantization_config": {
            "quant_method": "mxfp4",
            "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                       "model.embed_tokens", "lm_head"],
        },
        "eos_token_id": eos[0] if isinstance(eos, list) else eos,
        "pad_token_id": ids.get("pad_token_id"),
    })
    return dict(sorted(cfg.items()))


def check(mlx_w: dict, out: Path):
    """mlx-lm's own HF->MLX sanitize must give back the MLX expert tensors exactly."""
    from mlx_lm.models.gpt_oss import Model
    twin = {}
    for f in sorted(out.glob("*.safetensors")):
        twin.update(mx.load(str(f)))
    back = Model.sanitize(None, {k: v for k, v in twin.items() if ".experts." in k})
    for k, v in back.items():
        ref = mlx_w[k]
        if not mx.array_equal(v.view(ref.dtype) if v.dtype != ref.dtype else v, ref).item():
            raise SystemExit(f"twin check failed: {k}")
    n_mlx = len([k for k in mlx_w if ".experts." in k])
    if len(back) != n_mlx:
        raise SystemExit(f"twin check failed: {len(back)} expert tensors, MLX has {n_mlx}")


def main(model_dir: Path, out: Path):
    cfg = json.loads((model_dir / "config.json").read_text())
    qcfg = cfg.get("quantization", {})
    w = load_mlx(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_shards(plan(w, qcfg), out)
    (out / "config.json").write_text(json.dumps(openai_config(cfg, model_dir), indent=2))
    for f in TOKENIZER_FILES:
        if (model_dir / f).exists():
            shutil.copy(model_dir / f, out / f)
    check(w, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
