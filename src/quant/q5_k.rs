//! GGML_TYPE_Q5_K: superblocks of 256 as
//! `{ f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }` (176 bytes): as Q4_K with
//! 5-bit levels. Reference: ggml `quantize_row_q5_K_ref`: Q4_K's algorithm with nmax 31 and
//! `make_qkx2_quants(rmin −0.5, rdelta 0.1, nstep 15)`. Low nibbles in qs as Q4_K; for
//! 64-element chunk c, bit 4 of element l goes to bit 2c of qh[l] and bit 4 of element l+32
//! to bit 2c+1.

use super::kquant::{fp16_at, get_scale_min_k4, quantize_scales, requantize, sub_block_scales};

pub const BLOCK: usize = super::kquant::QK_K;
pub const BYTES: usize = 176;

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let (scales, mins) = sub_block_scales(x, 31, -0.5, 15, &mut l);
    quantize_scales(&scales, &mins, out);
    requantize(x, 31, &out[..16], &mut l);
    pack(&l, out);
}

/// With an importance matrix (ggml `quantize_row_q5_K_impl`).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    super::kquant::weighted_k4(x, qw, 31, out, &mut l);
    pack(&l, out);
}

fn pack(l: &[u8; 256], out: &mut [u8]) {
    let (qh, qs) = out[16..BYTES].split_at_mut(32);
    qh.fill(0);
    for c in 0..4 {
        for i in 0..32 {
            let (l1, l2) = (l[64 * c + i], l[64 * c + 32 + i]);
            qh[i] |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
            qs[32 * c + i] = (l1 & 0xF) | ((l2 & 0xF) << 4);
        }
    }
}
/// ggml's `q5_K` block: f16 d, f16 dmin, 12 scale bytes, 256 high bits, 256 low nibbles.
pub const INFO: super::TypeInfo =
    super::TypeInfo::known(13, "q5_K", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + 2 + 12 + BLOCK / 8 + BLOCK / 2);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// ggml `dequantize_row_q5_K`: y = (d·sc)·q − dmin·m.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let (d, min) = (fp16_at(&b[0..2]), fp16_at(&b[2..4]));
        let (qh, qs) = (&b[16..48], &b[48..176]);
        let mut vals = [0f32; 256];
        for c in 0..4 {
            let (sc1, m1) = get_scale_min_k4(2 * c, &b[4..16]);
            let (sc2, m2) = get_scale_min_k4(2 * c + 1, &b[4..16]);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            for i in 0..32 {
                let q = qs[32 * c + i];
                let h1 = (qh[i] >> (2 * c)) & 1;
                let h2 = (qh[i] >> (2 * c + 1)) & 1;
                vals[64 * c + i] = d1 * ((q & 0xF) | (h1 << 4)) as f32 - m1;
                vals[64 * c + 32 + i] = d2 * ((q >> 4) | (h2 << 4)) as f32 - m2;
            }
        }
        out.extend_from_slice(&vals);
    }
}

/// A row with importance weights, block by block.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_is_zero_bytes() {
        let mut out = Vec::new();
        encode(&[0.0; 256], &mut out);
        assert_eq!(out, vec![0u8; BYTES]);
    }

    #[test]
    fn round_trip_of_an_exact_grid() {
        // Every sub-block holds k·g, k = 0..=31, with g = 63/64: scale g, min 0, so
        // d = fp16(g/63) = 2^-6 exactly and sc = 63; levels ≥ 16 exercise qh.
        let g = 63.0 / 64.0;
        let x: Vec<f32> = (0..256).map(|i| (i % 32) as f32 * g).collect();
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(fp16_at(&out[0..2]), 1.0 / 64.0);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn ties_round_half_to_even() {
        // As the Q4_K test: sub-block 0, (k − 16)·g, fixes d = 2^-6 and dmin = 1/4; sub-block 1
        // is k·½ with ties, its d·sc = ½ and m = 0: 0.5 → 0, 1.5 → 2, 2.5 → 2, 29.5 → 30.
        let g = 63.0f32 / 64.0;
        let mut x = [0f32; 256];
        for i in 0..32 {
            x[i] = (i as f32 - 16.0) * g;
            x[32 + i] = i as f32 * 0.5;
        }
        x[33..37].copy_from_slice(&[0.25, 0.75, 1.25, 14.75]);
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!((fp16_at(&out[0..2]), fp16_at(&out[2..4])), (1.0 / 64.0, 0.25));
        assert_eq!(get_scale_min_k4(1, &out[4..16]), (32, 0));
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(&back[..32], &x[..32]);
        assert_eq!(&back[32..38], &[0.0, 0.0, 1.0, 1.0, 15.0, 2.5]);
    }
}
