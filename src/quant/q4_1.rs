//! GGML_TYPE_Q4_1: blocks of 32 as `{ f16 d; f16 m; u8 qs[16]; }` (20 bytes).
//! Reference: ggml `quantize_row_q4_1_ref`: d = (max − min) / 15, m = min,
//! q = min(15, (int8_t)((x − min)/d + 0.5)) (truncation), with the reciprocal taken from the
//! unrounded f32 d; element j in the low nibble of qs[j], element j+16 in the high nibble.

use super::lanes::{Isa, Portable};
use half::f16;

use super::legacy_lanes::Packed;

pub const BLOCK: usize = 32;
pub const BYTES: usize = 20;

const CODES: super::legacy_lanes::Offset = super::legacy_lanes::Offset { levels: 15.0, top: 15 };

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
    out[4..20].copy_from_slice(&p.nibbles);
}
/// ggml's `q4_1` block: f16 d, f16 m, 32 4-bit codes.
pub const INFO: super::TypeInfo =
    super::TypeInfo::known(3, "q4_1", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + 2 + BLOCK / 2);

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
        let mut vals = [0f32; 32];
        for j in 0..16 {
            vals[j] = (b[4 + j] & 0x0F) as f32 * d + m;
            vals[j + 16] = (b[4 + j] >> 4) as f32 * d + m;
        }
        out.extend_from_slice(&vals);
    }
}

/// A row with importance weights (ggml `quantize_row_q4_1_impl`): per block
/// `make_qkx3_quants(32, 15)` (rmin −0.9, rdelta 0.05, 36 steps) weighted by
/// qw·sqrt(σ² + x²) (σ² over the row); d and m = the offset as fp16.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    let w = super::legacy_weights(row, qw);
    super::legacy_lanes::weighted_offset_blocks(15, row, &w, |i, d, min, l| {
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
        assert_eq!(out, vec![0u8; 20]);
    }

    #[test]
    fn round_trip_on_the_grid() {
        // min = -3, max = 12 → d = 1: every integer in between is exact.
        let x: Vec<f32> = (0..32).map(|i| (i % 16) as f32 - 3.0).collect();
        let mut out = Vec::new();
        encode(&x, &mut out);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn ties_truncate_upward() {
        // min = 0, max = 15 → d = 1: 0.5 → 1, 2.5 → 3, 14.5 → 15, 14.49 → 14.
        let mut x = [0.0f32; 32];
        x[0] = 15.0;
        x[1] = 0.5;
        x[2] = 2.5;
        x[3] = 14.5;
        x[4] = 14.49;
        let mut out = Vec::new();
        encode(&x, &mut out);
        let q: Vec<u8> = out[4..9].iter().map(|b| b & 0x0F).collect();
        assert_eq!(q, vec![15, 1, 3, 15, 14]);
    }
}
