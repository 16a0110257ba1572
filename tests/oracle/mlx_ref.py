"""An independent numpy statement of the exact f32 dequantization formulas (reference doc
§1): used to check our output bit for bit, and mx.dequantize to check both."""
import numpy as np

FP4 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def unpack(words, bits, n):
    """Codes of `bits` bits from each row's little-endian bit stream (LSB first)."""
    rows = words.reshape(-1, words.shape[-1])
    stream = np.unpackbits(rows.astype("<u4").view(np.uint8), axis=-1, bitorder="little")
    stream = stream[:, : n * bits].reshape(rows.shape[0], n, bits).astype(np.uint32)
    codes = (stream << np.arange(bits, dtype=np.uint32)).sum(-1)
    return codes.reshape(*words.shape[:-1], n)


def e4m3(b):
    b = b.astype(np.int32)
    sign = np.where(b & 0x80, -1.0, 1.0)
    e = (b >> 3) & 15
    m = (b & 7).astype(np.float64)
    mag = np.where(e == 0, m / 8 * 2.0**-6, (1 + m / 8) * np.exp2(e - 7.0))
    out = (sign * mag).astype(np.float32)
    return np.where((b & 0x7F) == 0x7F, np.float32(np.nan), out)


def e8m0(s):
    s = s.astype(np.int32)
    return np.where(s == 255, np.float32(np.inf), np.ldexp(np.float32(1), s - 127).astype(np.float32))


def rep(x, g):
    return np.repeat(x, g, axis=-1)


def dequant_exact(mode, bits, gs, wq, scales, biases=None, global_scale=None):
    n = wq.shape[-1] * 32 // bits
    c = unpack(wq, bits, n)
    with np.errstate(invalid="ignore", over="ignore"):
        if mode == "affine":
            return c.astype(np.float32) * rep(scales.astype(np.float32), gs) + rep(biases.astype(np.float32), gs)
        if mode == "mxfp4":
            return FP4[c] * rep(e8m0(scales), gs)
        if mode == "mxfp8":
            return e4m3(c) * rep(e8m0(scales), gs)
        if mode == "nvfp4":
            s = e4m3(scales)
            if global_scale is not None:
                g = (global_scale.astype(np.float32) / np.float32(2688)).astype(np.float32)
                s = s * g.reshape(-1, *([1] * (s.ndim - 1)))
            return FP4[c] * rep(s.astype(np.float32), gs)
    raise ValueError(mode)
