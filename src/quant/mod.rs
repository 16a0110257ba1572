//! ggml tensor types: ids, block geometry, and the f32 → block encoders.
//!
//! Ids and block sizes are ggml's (`ggml/include/ggml.h`, `ggml/src/ggml-common.h`).
//! One file per block type; each encoder takes whole rows of f32 values.

pub mod bf16;
pub mod f16;
pub mod f32;
mod kquant;
pub mod mxfp4;
pub mod nvfp4;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;

use std::fmt;

/// A ggml tensor type that this tool can write or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq4Nl,
    Bf16,
    Mxfp4,
    Nvfp4,
}

/// All types, for look-ups by id or name.
pub const ALL_TYPES: [GgmlType; 18] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
    GgmlType::Iq4Nl,
    GgmlType::Bf16,
    GgmlType::Mxfp4,
    GgmlType::Nvfp4,
];

impl GgmlType {
    /// The `ggml_type` id stored in GGUF tensor infos.
    pub const fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2K => 10,
            GgmlType::Q3K => 11,
            GgmlType::Q4K => 12,
            GgmlType::Q5K => 13,
            GgmlType::Q6K => 14,
            GgmlType::Q8K => 15,
            GgmlType::Iq4Nl => 20,
            GgmlType::Bf16 => 30,
            GgmlType::Mxfp4 => 39,
            GgmlType::Nvfp4 => 40,
        }
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        ALL_TYPES.into_iter().find(|t| t.id() == id)
    }

    /// Elements per block.
    pub const fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q8_1
            | GgmlType::Iq4Nl
            | GgmlType::Mxfp4 => 32,
            GgmlType::Nvfp4 => 64,
            GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K | GgmlType::Q8K => 256,
        }
    }

    /// Bytes per block.
    pub const fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::Bf16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q8_1 => 36,
            GgmlType::Q2K => 84,
            GgmlType::Q3K => 110,
            GgmlType::Q4K => 144,
            GgmlType::Q5K => 176,
            GgmlType::Q6K => 210,
            GgmlType::Q8K => 292,
            GgmlType::Iq4Nl => 18,
            GgmlType::Mxfp4 => 17,
            GgmlType::Nvfp4 => 36,
        }
    }

    /// ggml's lower-case type name (`ggml_type_name`).
    pub const fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "f32",
            GgmlType::F16 => "f16",
            GgmlType::Q4_0 => "q4_0",
            GgmlType::Q4_1 => "q4_1",
            GgmlType::Q5_0 => "q5_0",
            GgmlType::Q5_1 => "q5_1",
            GgmlType::Q8_0 => "q8_0",
            GgmlType::Q8_1 => "q8_1",
            GgmlType::Q2K => "q2_K",
            GgmlType::Q3K => "q3_K",
            GgmlType::Q4K => "q4_K",
            GgmlType::Q5K => "q5_K",
            GgmlType::Q6K => "q6_K",
            GgmlType::Q8K => "q8_K",
            GgmlType::Iq4Nl => "iq4_nl",
            GgmlType::Bf16 => "bf16",
            GgmlType::Mxfp4 => "mxfp4",
            GgmlType::Nvfp4 => "nvfp4",
        }
    }

    /// Bytes of one row of `row_len` elements, or `None` when the row is not a whole
    /// number of blocks (ggml rejects such tensors).
    pub fn row_bytes(self, row_len: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if !row_len.is_multiple_of(bs) {
            return None;
        }
        (row_len / bs).checked_mul(self.type_size() as u64)
    }

    /// Whether this tool can encode f32 rows into this type.
    pub fn can_encode(self) -> bool {
        encoder(self).is_some()
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_uppercase())
    }
}

/// C's float → `int8_t` / `uint8_t` conversion as x86-64 gcc compiles it: `cvttss2si`
/// (truncation toward zero; NaN and values outside i32 give 0x8000_0000), then the low byte.
/// Rust's saturating `as i8` differs for ±inf: ggml's `id = 1/d` overflows to inf when a
/// block's largest |x| is below ~1e-37, and then every quant byte comes out 0 in C (gguf-py's
/// numpy casts agree). MXFP4's exponent is negative there, and C keeps its low byte.
#[inline]
pub(crate) fn c_cast_u8(f: f32) -> u8 {
    if (-2147483648.0..2147483648.0).contains(&f) {
        // SAFETY: f is not NaN and truncates into i32's range, so this is plain `cvttss2si`.
        (unsafe { f.to_int_unchecked::<i32>() }) as u8
    } else {
        0
    }
}

/// C's `roundf` (half away from zero) without a libm call: exact because `v - trunc(v)`
/// is exact for |v| < 2^23; larger values (already integers), inf and NaN take `round`.
#[inline]
pub(crate) fn round_away(v: f32) -> f32 {
    if v.abs() < 8388608.0 {
        let i = v as i32;
        let frac = v - i as f32;
        let r = if frac >= 0.5 {
            i + 1
        } else if frac <= -0.5 {
            i - 1
        } else {
            i
        };
        // Keep the sign of zero as roundf does (-0.3 → -0.0).
        if r == 0 {
            return 0.0f32.copysign(v);
        }
        r as f32
    } else {
        v.round()
    }
}

/// Appends the blocks of `src` (a whole number of `block`-element blocks), each encoded by
/// `quantize_block` into `bytes` bytes.
pub(crate) fn encode_blocks(
    src: &[f32],
    out: &mut Vec<u8>,
    block: usize,
    bytes: usize,
    quantize_block: fn(&[f32], &mut [u8]),
) {
    let start = out.len();
    out.resize(start + src.len() / block * bytes, 0);
    for (x, o) in src.chunks_exact(block).zip(out[start..].chunks_exact_mut(bytes)) {
        quantize_block(x, o);
    }
}

/// Encodes whole rows of f32 values into the type's bytes, appending to `out`.
/// `src.len()` is a multiple of the block size (the plan guarantees it).
pub type EncodeFn = fn(src: &[f32], out: &mut Vec<u8>);

/// The encoder for a type, if this tool can write it.
pub fn encoder(t: GgmlType) -> Option<EncodeFn> {
    match t {
        GgmlType::F32 => Some(f32::encode),
        GgmlType::F16 => Some(f16::encode),
        GgmlType::Bf16 => Some(bf16::encode),
        GgmlType::Q8_0 => Some(q8_0::encode),
        GgmlType::Q4_0 => Some(q4_0::encode),
        GgmlType::Q4_1 => Some(q4_1::encode),
        GgmlType::Q5_0 => Some(q5_0::encode),
        GgmlType::Q5_1 => Some(q5_1::encode),
        GgmlType::Q4K => Some(q4_k::encode),
        GgmlType::Q5K => Some(q5_k::encode),
        GgmlType::Q6K => Some(q6_k::encode),
        GgmlType::Mxfp4 => Some(mxfp4::encode),
        GgmlType::Nvfp4 => Some(nvfp4::encode),
        _ => None,
    }
}

/// Decodes a type's bytes back to f32 (for survival estimates and tests).
pub type DecodeFn = fn(src: &[u8], out: &mut Vec<f32>);

pub fn decoder(t: GgmlType) -> Option<DecodeFn> {
    match t {
        GgmlType::F32 => Some(f32::decode),
        GgmlType::F16 => Some(f16::decode),
        GgmlType::Bf16 => Some(bf16::decode),
        GgmlType::Q8_0 => Some(q8_0::decode),
        GgmlType::Q4_0 => Some(q4_0::decode),
        GgmlType::Q4_1 => Some(q4_1::decode),
        GgmlType::Q5_0 => Some(q5_0::decode),
        GgmlType::Q5_1 => Some(q5_1::decode),
        GgmlType::Q4K => Some(q4_k::decode),
        GgmlType::Q5K => Some(q5_k::decode),
        GgmlType::Q6K => Some(q6_k::decode),
        GgmlType::Mxfp4 => Some(mxfp4::decode),
        GgmlType::Nvfp4 => Some(nvfp4::decode),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_away_equals_roundf() {
        let mut v = -300.0f32;
        while v < 300.0 {
            for x in [v, v + 0.5, v - 0.5, (v + 0.5).next_up(), (v + 0.5).next_down(), (v - 0.5).next_up()] {
                assert_eq!(round_away(x).to_bits(), x.round().to_bits(), "{x}");
            }
            v += 0.25;
        }
        for x in [0.0f32, -0.0, 0.49999997, -0.49999997, 8388607.5, -8388607.5, 1e10, f32::INFINITY, f32::MIN_POSITIVE]
        {
            assert_eq!(round_away(x).to_bits(), x.round().to_bits(), "{x}");
        }
        assert!(round_away(f32::NAN).is_nan());
    }

    #[test]
    fn ids_round_trip_and_sizes_match_ggml() {
        for t in ALL_TYPES {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        // Spot values from ggml-common.h static asserts.
        assert_eq!(GgmlType::Q8_0.row_bytes(2880), Some(90 * 34));
        assert_eq!(GgmlType::Q4K.row_bytes(2880), None);
        assert_eq!(GgmlType::Mxfp4.row_bytes(64), Some(34));
        assert_eq!(GgmlType::from_id(4), None);
    }

    #[test]
    fn c_cast_keeps_the_low_byte_of_cvttss2si() {
        let cases = [(3.9, 3), (-0.5, 0), (-8.0, 0xF8), (200.0, 200), (300.7, 44), (3e9, 0), (-3e9, 0)];
        for (f, want) in cases {
            assert_eq!(c_cast_u8(f), want, "{f}");
        }
        for f in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            assert_eq!(c_cast_u8(f), 0);
        }
    }
}
