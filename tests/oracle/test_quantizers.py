"""Our ggml block encoders and decoders, byte for byte against gguf-py and against ggml's own C
reference quantizers (`quantize_row_*_ref`, compiled by ggml_ref.py without FMA contraction).

Inputs cover what breaks a port: normal and heavy-tailed weights, all-zero and constant
blocks, grids that put x/d exactly on .5 (rounding ties), signed-max ties, denormal
magnitudes (where 1/d overflows to inf), magnitudes near the f16 limit, and mixtures of all
of these inside one superblock. Every row is 256 wide, so every type sees the same values.
"""
import os
import platform
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

import ggml_ref
from conftest import ROOT

ROW = 256

# ggml name -> (gguf-py type, gguf-py can quantize it)
TYPES = {
    "q4_0": (GGMLQuantizationType.Q4_0, True),
    "q4_1": (GGMLQuantizationType.Q4_1, True),
    "q5_0": (GGMLQuantizationType.Q5_0, True),
    "q5_1": (GGMLQuantizationType.Q5_1, True),
    "q8_0": (GGMLQuantizationType.Q8_0, True),
    "mxfp4": (GGMLQuantizationType.MXFP4, True),
    "nvfp4": (GGMLQuantizationType.NVFP4, False),
    "q4_K": (GGMLQuantizationType.Q4_K, False),
    "q5_K": (GGMLQuantizationType.Q5_K, False),
    "q6_K": (GGMLQuantizationType.Q6_K, False),
    "q2_K": (GGMLQuantizationType.Q2_K, False),
    "q3_K": (GGMLQuantizationType.Q3_K, False),
    "iq4_nl": (GGMLQuantizationType.IQ4_NL, False),
    "iq4_xs": (GGMLQuantizationType.IQ4_XS, False),
    "iq3_xxs": (GGMLQuantizationType.IQ3_XXS, False),
    "iq3_s": (GGMLQuantizationType.IQ3_S, False),
    "iq2_xxs": (GGMLQuantizationType.IQ2_XXS, False),
    "iq2_xs": (GGMLQuantizationType.IQ2_XS, False),
    "iq2_s": (GGMLQuantizationType.IQ2_S, False),
    "tq2_0": (GGMLQuantizationType.TQ2_0, False),
    "tq1_0": (GGMLQuantizationType.TQ1_0, False),
    "iq1_s": (GGMLQuantizationType.IQ1_S, False),
    "iq1_m": (GGMLQuantizationType.IQ1_M, False),
}

# ggml's `ggml_quantize_requires_imatrix` types: their quantizers assert on missing weights, so
# they have no unweighted encoder (and llama-quantize never writes them without an imatrix).
REQUIRES_WEIGHTS = {"iq2_xxs", "iq2_xs", "iq1_s"}


def _inputs():
    """(category, rows × 256 f32) pairs."""
    rng = np.random.default_rng(20240611)
    f32 = np.float32

    def rows(n):
        return (n, ROW)

    cats = []
    cats.append(("normal", rng.standard_normal(rows(256)) * 0.02))
    cats.append(("normal-unit", rng.standard_normal(rows(128))))
    cats.append(("student-t2", rng.standard_t(2, rows(128)) * 0.02))
    cats.append(("student-t1.2", rng.standard_t(1.2, rows(64))))
    cats.append(("cauchy", np.clip(rng.standard_cauchy(rows(64)) * 0.01, -3e4, 3e4)))
    cats.append(("positive", np.abs(rng.standard_normal(rows(32))) + 0.5))
    cats.append(("negative", -np.abs(rng.standard_normal(rows(32))) - 0.5))
    cats.append(("zero", np.zeros(rows(8))))
    neg_zero = np.zeros(rows(4))
    neg_zero[:] = -0.0
    cats.append(("negative-zero", neg_zero))
    const = np.repeat(rng.choice([1.0, -1.0, 0.5, -3.25, 1e-3, 7e3, -2e4], 32), ROW).reshape(32, ROW)
    cats.append(("constant-row", const))
    cats.append(("constant-32", np.repeat(rng.standard_normal(64 * 8), 32).reshape(64, ROW)))
    cats.append(("constant-16", np.repeat(rng.standard_normal(64 * 16), 16).reshape(64, ROW)))
    # x = k/2 · 2^e: x/d lands on .5 for the 32-blocks (d = max/-8, max/-16, (max-min)/15 ...)
    # and for the K-quants' per-element re-quantization once d·sc is a power of two.
    for e in (-6, 0, 3):
        cats.append((f"half-grid-2^{e}", rng.integers(-32, 33, rows(64)) / 2 * 2.0 ** e))
    cats.append(("quarter-grid", rng.integers(-64, 65, rows(64)) / 4))
    cats.append(("small-int-grid", rng.integers(-8, 8, rows(64)).astype(float)))
    cats.append(("int-grid-0-15", rng.integers(0, 16, rows(32)).astype(float)))
    cats.append(("int-grid-0-31", rng.integers(0, 32, rows(32)).astype(float)))
    # ±max in one block: the first of equal magnitudes decides the sign of d.
    sm = rng.standard_normal(rows(64)) * 0.1
    for r in range(64):
        for b in range(0, ROW, 32):
            i, j = rng.choice(32, 2, replace=False)
            sm[r, b + i], sm[r, b + j] = 1.0, -1.0
    cats.append(("signed-max-tie", sm))
    # MXFP4 exponents come from log2f, which rounds up just below powers of two.
    edge = rng.standard_normal(rows(32)) * 0.01
    for r in range(32):
        for b in range(0, ROW, 32):
            p = np.float32(2.0 ** rng.integers(-10, 10))
            edge[r, b] = np.nextafter(p, f32(0), dtype=f32) if rng.random() < 0.7 else p
    cats.append(("pow2-edge", edge))
    for s in (1e-45, 1e-44, 1e-41, 1e-40, 1e-39, 3e-38, 1e-37, 1e-30, 1e-20, 1e-10, 1e-6):
        cats.append((f"tiny-{s:g}", rng.standard_normal(rows(8)) * s))
    huge = rng.uniform(1e4, 3e4, rows(64)) * rng.choice([-1.0, 1.0], rows(64))
    cats.append(("huge", huge))
    cats.append(("huge-offset", rng.uniform(2e4, 3e4, rows(16))))
    # One superblock mixing everything: each 32- and 16-block gets its own magnitude, some zero,
    # some constant, some with a lone outlier.
    mixed = np.empty(rows(256))
    for r in range(256):
        for b in range(0, ROW, 16):
            kind = rng.integers(0, 8)
            mag = 10.0 ** rng.uniform(-40, 4.4)
            blk = rng.standard_normal(16) * mag
            if kind == 0:
                blk[:] = 0
            elif kind == 1:
                blk[:] = blk[0]
            elif kind == 2:
                blk[rng.integers(16)] = rng.choice([-1, 1]) * min(mag * 100, 3e4)
            elif kind == 3:
                blk = rng.integers(-16, 17, 16) / 2 * 2.0 ** rng.integers(-8, 4)
            elif kind == 4:
                blk = np.abs(blk)
            mixed[r, b:b + 16] = np.clip(blk, -3e4, 3e4)
    cats.append(("mixed", mixed))
    for t in ("q4_K", "q5_K", "q6_K"):
        cats.append((f"ties-{t}", _k_tie_rows(rng, t, 64)))
    return [(name, np.ascontiguousarray(x, dtype=np.float32)) for name, x in cats]


def _k_params(x, type_name):
    """Per sub-block (d·sc, dmin·m) that ggml's quantizer picks for rows x (f32, as the C code
    computes them before re-deriving the levels), and the sub-block length and level range."""
    f32 = np.float32
    b = np.frombuffer(ggml_ref.quantize(x, type_name), np.uint8).reshape(x.shape[0], -1)

    def f16(off):
        return b[:, off:off + 2].copy().view(np.float16).astype(f32)[:, 0]

    if type_name == "q6_K":
        dj = f16(208)[:, None] * b[:, 192:208].view(np.int8).astype(f32)
        return dj, np.zeros_like(dj), 16, (-32, 31)
    q = b[:, 4:16].astype(np.uint16)
    sc = np.concatenate([q[:, 0:4] & 63, (q[:, 8:12] & 0xF) | ((q[:, 0:4] >> 6) << 4)], axis=1)
    m = np.concatenate([q[:, 4:8] & 63, (q[:, 8:12] >> 4) | ((q[:, 4:8] >> 6) << 4)], axis=1)
    dj, dm = f16(0)[:, None] * sc.astype(f32), f16(2)[:, None] * m.astype(f32)
    return dj, dm, 32, (0, 15 if type_name == "q4_K" else 31)


def _k_ties(x, type_name):
    """How many elements sit exactly on a rounding tie of the K-quant level re-derivation,
    nearest_int((x + dmin·m) / (d·sc))."""
    dj, dm, sub, _ = _k_params(x, type_name)
    with np.errstate(all="ignore"):
        r = (x.reshape(x.shape[0], -1, sub) + dm[..., None]) / dj[..., None]
        return int((np.isfinite(r) & (r - np.floor(r) == 0.5)).sum())


def _k_tie_rows(rng, type_name, n_rows, rounds=6):
    """Normal rows nudged so that many elements land exactly on (k + ½)·d·sc − dmin·m for the
    parameters ggml then chooses. Each round plants two ties per sub-block (away from its
    extremes, never in the sub-blocks that set the superblock's d / dmin), re-runs ggml, and
    reverts the sub-blocks whose refitted (d·sc, dmin·m) moved, so the ties accumulate."""
    f32 = np.float32
    x = (rng.standard_normal((n_rows, ROW)) * 0.05).astype(f32)
    dj, dm, sub, (lo, hi) = _k_params(x, type_name)
    planted = np.zeros(x.shape, bool)
    for _ in range(rounds):
        before, before_planted = x.copy(), planted.copy()
        xs, ps = x.reshape(n_rows, -1, sub), planted.reshape(n_rows, -1, sub)
        for r in range(n_rows):
            for j in range(xs.shape[1]):
                d, m, blk = dj[r, j], dm[r, j], xs[r, j]
                if d == 0 or abs(d) == np.abs(dj[r]).max() or (m != 0 and m == dm[r].max()):
                    continue
                free = [i for i in range(sub) if not ps[r, j, i] and i not in (np.argmin(blk), np.argmax(blk))]
                for i in rng.choice(free, min(2, len(free)), replace=False):
                    k = f32(rng.integers(lo + 1, hi - 1) + 0.5)
                    v = f32(f32(k * d) - m)
                    for _ in range(8):  # a few ulps away there is usually an exact tie
                        t = f32(f32(v + m) / d)
                        if t == k:
                            break
                        v = np.nextafter(v, f32(np.inf) if (t < k) == (d > 0) else f32(-np.inf), dtype=f32)
                    if t == k and blk.min() < v < blk.max():
                        blk[i], ps[r, j, i] = v, True
        dj2, dm2, _, _ = _k_params(x, type_name)
        moved = (dj2 != dj) | (dm2 != dm)
        # A new d or dmin (the largest d·sc or dmin·m) moves every sub-block of the row.
        moved |= ((np.abs(dj2).max(axis=1) != np.abs(dj).max(axis=1)) | (dm2.max(axis=1) != dm.max(axis=1)))[:, None]
        mask = np.repeat(moved, sub, axis=1)
        x[mask], planted[mask] = before[mask], before_planted[mask]
        dj, dm, _, _ = _k_params(x, type_name)
    return x


@pytest.fixture(scope="session")
def quantize_raw():
    """The quantize_raw example (release), built once per session."""
    exe = ROOT / "target" / "release" / "examples" / "quantize_raw"
    if not exe.exists() or os.environ.get("MLX2GGUF_BUILD", "1") == "1":
        subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "quantize_raw"], cwd=ROOT, check=True)
    return exe


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """All categories as one f32 file, plus the category of every row."""
    cats = _inputs()
    x = np.concatenate([a for _, a in cats])
    labels = [name for name, a in cats for _ in range(len(a))]
    path = tmp_path_factory.mktemp("quant") / "in.f32"
    x.tofile(path)
    return path, x, labels


def _ours(exe, type_name, inp, tmp_path):
    out = tmp_path / f"{type_name}.bin"
    subprocess.run([str(exe), type_name, str(inp), str(out)], check=True)
    return out.read_bytes()


def _ours_decoded(exe, type_name, data, tmp_path):
    blocks, dec = tmp_path / f"{type_name}.blocks", tmp_path / f"{type_name}.dec.f32"
    blocks.write_bytes(data)
    subprocess.run([str(exe), "--decode", type_name, str(blocks), str(dec)], check=True)
    return np.fromfile(dec, dtype=np.float32)


def _assert_same_blocks(ours, ref, type_name, labels, what):
    """Byte equality, reported as the first differing blocks with their input category."""
    bs, nbytes = ggml_ref.TYPES[type_name][1:]
    a = np.frombuffer(ours, np.uint8).reshape(-1, nbytes)
    b = np.frombuffer(bytes(ref), np.uint8).reshape(-1, nbytes)
    assert a.shape == b.shape, f"{type_name}: {a.shape[0]} blocks vs {b.shape[0]} from {what}"
    bad = np.flatnonzero((a != b).any(axis=1))
    per_row = ROW // bs
    detail = [f"block {i} ({labels[i // per_row]}): ours {a[i].tobytes().hex()} {what} {b[i].tobytes().hex()}"
              for i in bad[:5]]
    assert bad.size == 0, f"{type_name}: {bad.size}/{a.shape[0]} blocks differ from {what}\n" + "\n".join(detail)


def _assert_same_f32(ours, ref, type_name, labels, what):
    """Bitwise f32 equality (so -0.0 vs 0.0 counts)."""
    a = np.ascontiguousarray(ours, dtype=np.float32).view(np.uint32)
    b = np.ascontiguousarray(ref, dtype=np.float32).reshape(-1).view(np.uint32)
    assert a.shape == b.shape
    bad = np.flatnonzero(a != b)
    detail = [f"element {i} ({labels[i // ROW]}): ours {ours[i]!r} {what} {ref.reshape(-1)[i]!r}" for i in bad[:5]]
    assert bad.size == 0, f"{type_name}: {bad.size} decoded values differ from {what}\n" + "\n".join(detail)


@pytest.mark.parametrize("type_name", [t for t in TYPES if t not in REQUIRES_WEIGHTS])
def test_encoder_matches_ggml_reference(type_name, quantize_raw, inputs, tmp_path):
    path, x, labels = inputs
    ours = _ours(quantize_raw, type_name, path, tmp_path)
    _assert_same_blocks(ours, ggml_ref.quantize(x, type_name), type_name, labels, "C quantize_row_ref")
    qtype, py_quantizes = TYPES[type_name]
    if py_quantizes:
        with np.errstate(all="ignore"):  # gguf-py divides by zero / overflows like C does
            py = quantize(x, qtype).reshape(-1, ggml_ref.TYPES[type_name][2]).copy()
        if type_name in ("q4_0", "q5_0"):
            # gguf-py's one known difference from C: in a block of zeros whose first element is
            # -0.0, numpy's argmax takes max = -0.0 and d = -0.0/-8 = +0.0, while C keeps
            # max = +0.0 (only a strictly larger |x| replaces it) and stores d = -0.0.
            blocks = x.reshape(-1, 32)
            neg = (blocks == 0).all(axis=1) & np.signbit(blocks[:, 0])
            assert neg.sum() >= 32, "inputs lost their -0.0 blocks"
            assert (py[neg, :2] == [0x00, 0x00]).all()
            py[neg, :2] = [0x00, 0x80]
        _assert_same_blocks(ours, py.tobytes(), type_name, labels, "gguf-py")


@pytest.mark.parametrize("type_name", list(TYPES))
def test_decoder_matches_ggml_reference(type_name, quantize_raw, inputs, tmp_path):
    path, x, labels = inputs
    if type_name in REQUIRES_WEIGHTS:
        data = ggml_ref.quantize_weighted(x, type_name, _weight_rows(np.random.default_rng(7))[0])
    else:
        data = ggml_ref.quantize(x, type_name)
    ours = _ours_decoded(quantize_raw, type_name, data, tmp_path)
    qtype, _ = TYPES[type_name]
    blocks = np.frombuffer(data, np.uint8).reshape(x.shape[0], -1)
    _assert_same_f32(ours, dequantize(blocks, qtype), type_name, labels, "gguf-py")
    _assert_same_f32(ours, ggml_ref.dequantize(data, type_name), type_name, labels, "C dequantize_row")


def test_inputs_cover_ties_and_overflowing_reciprocals(inputs):
    """Guards the input set: exact .5 ties for Q4_0 and blocks whose 1/d overflows."""
    _, x, _ = inputs
    b = x.reshape(-1, 32).astype(np.float64)
    imax = np.abs(b).argmax(axis=1)
    mx = b[np.arange(len(b)), imax]
    d = (mx / -8).astype(np.float32)
    with np.errstate(all="ignore"):
        inv = np.where(d == 0, 0, np.float32(1) / d).astype(np.float32)
        t = b.astype(np.float32) * inv[:, None] + np.float32(8.5)
    assert np.isinf(inv).sum() > 100
    assert (np.isfinite(t) & (t == np.trunc(t)) & (np.abs(b) > 0)).sum() > 1000


@pytest.mark.parametrize("type_name", ["q4_K", "q5_K", "q6_K"])
def test_inputs_cover_k_quant_ties(type_name, inputs):
    """Guards the input set: exact ties in the K-quants' final per-element rounding."""
    _, x, labels = inputs
    rows = np.array([lab == f"ties-{type_name}" for lab in labels])
    assert _k_ties(x[rows], type_name) > 200


WEIGHTED = ["q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs",
            "iq3_xxs", "iq3_s", "iq2_xxs", "iq2_xs", "iq2_s", "iq1_s", "iq1_m"]


def _weight_rows(rng):
    """Importance-matrix rows (one weight per column) as llama-imatrix makes them: mean
    squared activations, heavy-tailed, with some exact zeros (columns never activated) and a
    wide dynamic range."""
    rows = [rng.exponential(1.0, ROW), rng.standard_cauchy(ROW) ** 2, np.full(ROW, 1.0)]
    sparse = rng.exponential(1.0, ROW)
    sparse[rng.random(ROW) < 0.3] = 0.0
    rows.append(sparse)
    rows.append(10.0 ** rng.uniform(-8, 4, ROW))
    return [np.ascontiguousarray(np.clip(r, 0, 1e30), dtype=np.float32) for r in rows]


@pytest.mark.parametrize("type_name", WEIGHTED)
def test_weighted_encoder_matches_ggml(type_name, quantize_raw, inputs, tmp_path):
    """With importance weights (ggml's `quantize_row_*_impl` paths that llama-quantize takes
    given an imatrix): byte-equal to the C functions, for several weight rows over the whole
    adversarial input set."""
    path, x, labels = inputs
    rng = np.random.default_rng(7)
    for k, qw in enumerate(_weight_rows(rng)):
        wpath = tmp_path / f"w{k}.f32"
        qw.tofile(wpath)
        out = tmp_path / f"{type_name}-{k}.bin"
        subprocess.run([str(quantize_raw), "--weights", str(wpath), type_name, str(path), str(out)], check=True)
        _assert_same_blocks(out.read_bytes(), ggml_ref.quantize_weighted(x, type_name, qw), type_name, labels,
                            f"C quantize_{type_name} with weights row {k}")


def _encodings(wpath):
    """(type, extra arguments) of every encoder quantize_raw has: each type unweighted unless
    it requires weights, and weighted (weights in `wpath`) where it takes them."""
    for t in TYPES:
        for extra in ([], ["--weights", str(wpath)]):
            if (extra or t not in REQUIRES_WEIGHTS) and (not extra or t in WEIGHTED):
                yield t, extra


@pytest.mark.parametrize("path", ["MLX2GGUF_REFERENCE_KERNELS=1", "MLX2GGUF_SIMD=baseline", "MLX2GGUF_SIMD=avx2"])
def test_every_kernel_path_writes_the_same_bytes(path, quantize_raw, inputs, tmp_path):
    """The reference (one candidate at a time, as ggml), baseline-SIMD and AVX2 paths write
    what the default path (the widest this CPU has; AVX-512 on CI) writes, for every type,
    with and without weights."""
    src, _, _ = inputs
    key, value = path.split("=")
    env = {**os.environ, key: value}
    which = subprocess.run([str(quantize_raw), "--kernels"], env=env, capture_output=True, text=True, check=True)
    want = {"1": "reference", "baseline": "Baseline", "avx2": "Avx2"}[value]
    assert which.stdout.strip() == want
    qw = _weight_rows(np.random.default_rng(7))[1]
    wpath = tmp_path / "w.f32"
    qw.tofile(wpath)
    for t, extra in _encodings(wpath):
        outs = []
        for e in (os.environ, env):
            out = tmp_path / f"{t}-{len(outs)}.bin"
            subprocess.run([str(quantize_raw), *extra, t, str(src), str(out)], check=True, env=e)
            outs.append(out.read_bytes())
        assert outs[0] == outs[1], f"{t} {extra}: {path} differs"


@pytest.fixture(scope="session")
def arm64_quantize_raw():
    """quantize_raw built for arm64 (NEON kernels), as a command run under qemu-user."""
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        pytest.skip("cross-runs arm64 from x86-64 Linux; on arm64 the other tests run the NEON kernels")
    out = subprocess.run([str(ROOT / "scripts" / "arm64.sh"), "build"], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.split()


def test_arm64_build_writes_the_same_bytes(arm64_quantize_raw, quantize_raw, inputs, tmp_path):
    """What Apple Silicon runs: the arm64 build encodes every type (with and without
    weights) and decodes it to the same bytes as this machine's build, which the tests above
    hold to ggml's C."""
    src, _, _ = inputs
    assert subprocess.run([*arm64_quantize_raw, "--kernels"], capture_output=True, text=True,
                          check=True).stdout.strip() == "Baseline"
    wpath = tmp_path / "w.f32"
    _weight_rows(np.random.default_rng(7))[4].tofile(wpath)
    builds = ([str(quantize_raw)], arm64_quantize_raw)
    decoded_types = set()
    for t, extra in _encodings(wpath):
        outs = [tmp_path / f"{t}-{k}.bin" for k in range(2)]
        for exe, out in zip(builds, outs):
            subprocess.run([*exe, *extra, t, str(src), str(out)], check=True)
        assert outs[0].read_bytes() == outs[1].read_bytes(), f"{t} {extra}: the arm64 build encodes differently"
        if t not in decoded_types:
            decoded_types.add(t)
            decs = [tmp_path / f"{t}-{k}.f32" for k in range(2)]
            for exe, dec in zip(builds, decs):
                subprocess.run([*exe, "--decode", t, str(outs[0]), str(dec)], check=True)
            assert decs[0].read_bytes() == decs[1].read_bytes(), f"{t}: the arm64 build decodes differently"
    assert decoded_types == set(TYPES)
