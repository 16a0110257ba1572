//! GGML_TYPE_Q5_0: blocks of 32 as `{ f16 d; u8 qh[4]; u8 qs[16]; }` (22 bytes).
//! Reference: ggml `quantize_row_q5_0_ref`: `max` is the signed element of largest
//! magnitude (the first on ties), d = max / -16, q = min(31, trunc(x/d + 16.5)); low nibbles
//! in qs (element j low, j+16 high), bit 4 of element j in bit j of the little-endian qh.

use super::lanes::{Isa, Portable};
use half::f16;

use super::legacy_lanes::Packed;

pub const BLOCK: usize = 32;
pub const BYTES: usize = 22;

const CODES: super::legacy_lanes::Symmetric = super::legacy_lanes::Symmetric { half: 16.0, top: 31 };

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

/// d, then the 5-bit codes: bit 4 of code j in bit j of qh, low nibbles in qs.
#[inline(always)]
pub(crate) fn pack<S: Isa>(d: f32, p: &Packed, out: &mut [u8]) {
    out[..2].copy_from_slice(&S::f16_bits(d).to_le_bytes());
    pack_codes(p, &mut out[2..]);
}

/// qh (4 bytes) then qs (16 bytes) of 32 5-bit codes.
#[inline(always)]
pub(crate) fn pack_codes(p: &Packed, out: &mut [u8]) {
    out[..4].copy_from_slice(&p.high.to_le_bytes());
    out[4..20].copy_from_slice(&p.nibbles);
}
/// ggml's `q5_0` block: f16 d, 32 high bits, 32 low nibbles.
pub const INFO: super::TypeInfo =
    super::TypeInfo::known(6, "q5_0", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + 4 + BLOCK / 2);

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
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let mut vals = [0f32; 32];
        for j in 0..16 {
            let lo = (b[6 + j] & 0x0F) as u32 | ((qh >> j) & 1) << 4;
            let hi = (b[6 + j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
            vals[j] = (lo as i32 - 16) as f32 * d;
            vals[j + 16] = (hi as i32 - 16) as f32 * d;
        }
        out.extend_from_slice(&vals);
    }
}

/// A row with importance weights (ggml `quantize_row_q5_0_impl`): per block
/// `make_qx_quants(32, 16)` weighted by qw·sqrt(σ² + x²) (σ² over the row).
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    let w = super::legacy_weights(row, qw);
    for ((x, w), o) in row.chunks_exact(BLOCK).zip(w.chunks_exact(BLOCK)).zip(out.chunks_exact_mut(BYTES)) {
        let mut l = [0u8; 32];
        let d = super::kquant::make_qx_quants(16, x, &mut l, Some(w));
        pack::<Portable>(d, &Packed::of_codes(&l), o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_and_round_trip() {
        let mut out = Vec::new();
        encode(&[0.0; 32], &mut out);
        // d = -0.0, qh all ones (q = 16), qs zero: ggml's bytes for an all-zero block.
        assert_eq!(&out[..6], &[0x00, 0x80, 0xff, 0xff, 0xff, 0xff]);
        assert!(out[6..].iter().all(|&b| b == 0));
        let x: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
        let mut out = Vec::new();
        encode(&x, &mut out);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn tiny_block_casts_infinite_codes_as_c() {
        // max = -1e-40: d = 6e-42, 1/d = +inf; C's int8 cast of inf is 0 (Rust's would be 127).
        let mut x = [0.0f32; 32];
        x[0] = -1e-40;
        x[1] = 1e-40;
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(&out[2..], &[0u8; 20]);
    }
}
