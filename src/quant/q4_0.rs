//! GGML_TYPE_Q4_0: blocks of 32 as `{ f16 d; u8 qs[16]; }` (18 bytes).
//! Reference: ggml `quantize_row_q4_0_ref`: `max` is the signed element of largest
//! magnitude (the first on ties), d = max / -8, q = min(15, (int8_t)(x/d + 8.5)) (truncation),
//! with the reciprocal taken from the unrounded f32 d; element j in the low nibble of qs[j],
//! element j+16 in the high nibble.

use super::lanes::{Isa, Portable};
use half::f16;

use super::legacy_lanes::Packed;

pub const BLOCK: usize = 32;
pub const BYTES: usize = 18;

const CODES: super::legacy_lanes::Symmetric = super::legacy_lanes::Symmetric { half: 8.0, top: 15 };

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let (d, q) = CODES.reference(x);
    pack::<Portable>(d, &Packed::of_codes(&q), out);
}

/// [`quantize_block`]'s bytes through [`super::legacy_lanes`]' vectors.
pub(crate) struct Fast;

impl super::legacy_lanes::FastBlock for Fast {
    const BYTES: usize = BYTES;

    #[inline(always)]
    fn quantize<S: Isa>(x: &[f32], out: &mut [u8]) {
        let (d, p) = CODES.fast::<S>(x);
        pack::<S>(d, &p, out);
    }

    #[inline(always)]
    fn quantize_group<S: Isa>(x: &[f32], out: &mut [u8]) {
        CODES.fast_group::<S>(x, |k, d, p| pack::<S>(d, p, &mut out[BYTES * k..BYTES * (k + 1)]));
    }
}

#[inline(always)]
fn pack<S: Isa>(d: f32, p: &Packed, out: &mut [u8]) {
    out[..2].copy_from_slice(&S::f16_bits(d).to_le_bytes());
    out[2..18].copy_from_slice(&p.nibbles);
}
/// ggml's `q4_0` block: f16 d, 32 4-bit codes.
pub const INFO: super::TypeInfo =
    super::TypeInfo::known(2, "q4_0", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + BLOCK / 2);

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
        let mut vals = [0f32; 32];
        for j in 0..16 {
            vals[j] = ((b[2 + j] & 0x0F) as i32 - 8) as f32 * d;
            vals[j + 16] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
        }
        out.extend_from_slice(&vals);
    }
}

/// A row with importance weights (ggml `quantize_row_q4_0_impl`): per block
/// `make_qx_quants(32, 8)` weighted by qw·sqrt(σ² + x²) (σ² over the row), d = fp16(scale).
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    let w = super::legacy_weights(row, qw);
    for ((x, w), o) in row.chunks_exact(BLOCK).zip(w.chunks_exact(BLOCK)).zip(out.chunks_exact_mut(BYTES)) {
        let mut l = [0u8; 32];
        let d = super::kquant::make_qx_quants(8, x, &mut l, Some(w));
        o[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        for j in 0..16 {
            o[2 + j] = l[j] | (l[j + 16] << 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_bytes() {
        let mut out = Vec::new();
        encode(&[0.0; 32], &mut out);
        // d = 0 / -8 = -0.0, id = 0, every q = trunc(8.5) = 8.
        assert_eq!(&out[..2], &[0x00, 0x80]);
        assert!(out[2..].iter().all(|&b| b == 0x88));
    }

    #[test]
    fn round_trip_on_the_grid() {
        // max = -8 → d = 1: the integers -8..=7 are exact.
        let x: Vec<f32> = (0..32).map(|i| (i % 16) as f32 - 8.0).collect();
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(&out[..2], &f16::from_f32(1.0).to_bits().to_le_bytes());
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn ties_truncate_upward_and_first_max_wins() {
        // |8| ties with |-8|: the first (8) wins, so d = -1 and q = trunc(-x + 8.5):
        // x = 0.5 → 8 (not 7), x = -0.5 → 9 (both halves go up), x = 8 → 0.
        let mut x = [0.0f32; 32];
        x[0] = 8.0;
        x[1] = -8.0;
        x[2] = 0.5;
        x[3] = -0.5;
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(&out[..2], &f16::from_f32(-1.0).to_bits().to_le_bytes());
        let q: Vec<u8> = out[2..6].iter().map(|b| b & 0x0F).collect();
        assert_eq!(q, vec![0, 15, 8, 9]);
    }

    #[test]
    fn tiny_blocks_give_zero_codes_as_in_c() {
        // d = 1e-40 / -8 makes 1/d overflow; C's int8 cast of ±inf / NaN gives 0.
        let mut x = [0.0f32; 32];
        x[0] = 1e-40;
        x[1] = -1e-40;
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert!(out[2..].iter().all(|&b| b == 0));
    }
}
