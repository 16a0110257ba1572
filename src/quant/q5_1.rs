//! GGML_TYPE_Q5_1: blocks of 32 as `{ f16 d; f16 m; u8 qh[4]; u8 qs[16]; }` (24 bytes).
//! Reference: ggml `quantize_row_q5_1_ref`: d = (max − min) / 31, m = min,
//! q = (uint8_t)((x − min)/d + 0.5) (truncation, no clamp), with the reciprocal taken from
//! the unrounded f32 d; low nibbles in qs (element j low, j+16 high), bit 4 of element j in
//! bit j of the little-endian qh.

use super::lanes::{Isa, Portable};
use half::f16;

use super::legacy_lanes::Packed;

pub const BLOCK: usize = 32;
pub const BYTES: usize = 24;

const CODES: super::legacy_lanes::Offset = super::legacy_lanes::Offset { levels: 31.0, top: i8::MAX };

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let (d, m, q) = CODES.reference(x);
    pack::<Portable>(d, m, &Packed::of_codes(&q), out);
}

/// [`quantize_block`]'s bytes through [`super::legacy_lanes`]' vectors.
pub(crate) struct Fast;

impl super::legacy_lanes::FastBlock for Fast {
    const BYTES: usize = BYTES;

    #[inline(always)]
    fn quantize<S: Isa>(x: &[f32], out: &mut [u8]) {
        let (d, m, p) = CODES.fast::<S>(x);
        pack::<S>(d, m, &p, out);
    }

    #[inline(always)]
    fn quantize_group<S: Isa>(x: &[f32], out: &mut [u8]) {
        CODES.fast_group::<S>(x, |k, d, m, p| pack::<S>(d, m, p, &mut out[BYTES * k..BYTES * (k + 1)]));
    }
}

#[inline(always)]
fn pack<S: Isa>(d: f32, min: f32, p: &Packed, out: &mut [u8]) {
    out[..2].copy_from_slice(&S::f16_bits(d).to_le_bytes());
    out[2..4].copy_from_slice(&S::f16_bits(min).to_le_bytes());
    super::q5_0::pack_codes(p, &mut out[4..]);
}
/// ggml's `q5_1` block: f16 d, f16 m, 32 high bits, 32 low nibbles.
pub const INFO: super::TypeInfo =
    super::TypeInfo::known(7, "q5_1", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + 2 + 4 + BLOCK / 2);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    if super::reference_kernels() {
        super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
    } else {
        super::legacy_lanes::encode_blocks::<Fast>(src, out);
    }
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
        let m = f16::from_bits(u16::from_le_bytes([b[2], b[3]])).to_f32();
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let mut vals = [0f32; 32];
        for j in 0..16 {
            let lo = (b[8 + j] & 0x0F) as u32 | ((qh >> j) & 1) << 4;
            let hi = (b[8 + j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
            vals[j] = lo as f32 * d + m;
            vals[j + 16] = hi as f32 * d + m;
        }
        out.extend_from_slice(&vals);
    }
}

/// A row with importance weights (ggml `quantize_row_q5_1_impl`): as Q4_1's with nmax 31.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    let w = super::legacy_weights(row, qw);
    super::legacy_lanes::weighted_offset_blocks(31, row, &w, |i, d, min, l| {
        pack::<Portable>(d, min, &Packed::of_codes(l), &mut out[BYTES * i..BYTES * (i + 1)]);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_bytes() {
        let mut out = Vec::new();
        encode(&[0.0; 32], &mut out);
        assert_eq!(out, vec![0u8; 24]);
    }

    #[test]
    fn round_trip_on_the_grid() {
        // min = -16, max = 15 → d = 1: all 32 levels, exact.
        let x: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 0xFFFF_0000);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn ties_truncate_upward() {
        // min = 0, max = 31 → d = 1: 0.5 → 1, 15.5 → 16 (sets the qh bit), 30.5 → 31.
        let mut x = [0.0f32; 32];
        x[0] = 31.0;
        x[1] = 0.5;
        x[2] = 15.5;
        x[3] = 30.5;
        let mut out = Vec::new();
        encode(&x, &mut out);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(&back[..4], &[31.0, 1.0, 16.0, 31.0]);
    }
}
