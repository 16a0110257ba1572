//! GGML_TYPE_Q4_K: superblocks of 256 as `{ f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }`
//! (144 bytes): eight sub-blocks of 32, each x ≈ d·sc·q − dmin·m with 6-bit sc, m and 4-bit q.
//! Reference: ggml `quantize_row_q4_K_ref`: per sub-block `make_qkx2_quants(nmax 15,
//! weights av_x + |x|, rmin −1, rdelta 0.1, nstep 20)`; sc, m = nearest_int(63·s / max s)
//! capped at 63; then the levels are re-derived from the fp16-rounded d and dmin as
//! nearest_int((x + dmin·m) / (d·sc)), except in sub-blocks whose d·sc is 0, which keep the
//! make_qkx2_quants levels. qs: per 64-element chunk, element l low and l+32 high nibble.

use super::kquant::{fp16_at, get_scale_min_k4, quantize_scales, requantize, sub_block_scales, weighted_k4};

pub const BLOCK: usize = super::kquant::QK_K;
pub const BYTES: usize = 144;

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let (scales, mins) = sub_block_scales(x, 15, -1.0, 20, &mut l);
    quantize_scales(&scales, &mins, out);
    requantize(x, 15, &out[..16], &mut l);
    pack(&l, out);
}

/// With an importance matrix (ggml `quantize_row_q4_K_impl`).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    weighted_k4(x, qw, 15, out, &mut l);
    pack(&l, out);
}

fn pack(l: &[u8; 256], out: &mut [u8]) {
    let qs = &mut out[16..BYTES];
    for c in 0..4 {
        for i in 0..32 {
            qs[32 * c + i] = l[64 * c + i] | (l[64 * c + 32 + i] << 4);
        }
    }
}
/// ggml's `q4_K` block: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 256 4-bit codes.
pub const INFO: super::TypeInfo =
    super::TypeInfo::known(12, "q4_K", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + 2 + 12 + BLOCK / 2);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// ggml `dequantize_row_q4_K`: y = (d·sc)·q − dmin·m.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let (d, min) = (fp16_at(&b[0..2]), fp16_at(&b[2..4]));
        let mut vals = [0f32; 256];
        for c in 0..4 {
            let (sc1, m1) = get_scale_min_k4(2 * c, &b[4..16]);
            let (sc2, m2) = get_scale_min_k4(2 * c + 1, &b[4..16]);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            for i in 0..32 {
                let q = b[16 + 32 * c + i];
                vals[64 * c + i] = d1 * (q & 0xF) as f32 - m1;
                vals[64 * c + 32 + i] = d2 * (q >> 4) as f32 - m2;
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
        // Every sub-block holds k·g, k = 0..=15 twice, with g = 63/64: scale g, min 0, so
        // d = fp16(g/63) = 2^-6 exactly and sc = 63.
        let g = 63.0 / 64.0;
        let x: Vec<f32> = (0..256).map(|i| (i % 16) as f32 * g).collect();
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(fp16_at(&out[0..2]), 1.0 / 64.0);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn ties_round_half_to_even_and_zero_scales_are_skipped() {
        // Sub-block 0, (k − 8)·g, fixes d = 2^-6 (sc 63) and dmin = 1/8 (m 63). Sub-block 1 is
        // k·½ with four ties: its fitted scale stays near ½ (sc 32, d·sc = ½) and its min rounds
        // to m = 0, so its levels are nearest_int(x / ½): 0.5 → 0, 1.5 → 2, 2.5 → 2, 13.5 → 14.
        // Sub-blocks 2..8 are zero: sc = 0, skipped, levels 0.
        let g = 63.0f32 / 64.0;
        let mut x = [0f32; 256];
        for i in 0..32 {
            x[i] = ((i % 16) as f32 - 8.0) * g;
            x[32 + i] = (i % 16) as f32 * 0.5;
        }
        x[33..37].copy_from_slice(&[0.25, 0.75, 1.25, 6.75]);
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!((fp16_at(&out[0..2]), fp16_at(&out[2..4])), (1.0 / 64.0, 0.125));
        assert_eq!(get_scale_min_k4(0, &out[4..16]), (63, 63));
        assert_eq!(get_scale_min_k4(1, &out[4..16]), (32, 0));
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(&back[..32], &x[..32]);
        assert_eq!(&back[32..38], &[0.0, 0.0, 1.0, 1.0, 7.0, 2.5]);
        assert!(back[64..].iter().all(|&v| v == 0.0));
    }
}
