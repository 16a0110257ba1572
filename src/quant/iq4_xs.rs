//! GGML_TYPE_IQ4_XS: superblocks of 256 as `{ f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]; }`
//! (136 bytes): eight sub-blocks of 32, x ≈ d·(ls − 32)·v[q] with 6-bit ls (low nibbles in
//! scales_l, high pairs in scales_h) and IQ4_NL's table. ggml `quantize_iq4_xs`: IQ4_NL's scale
//! search per sub-block, then d = −max_scale/32 and ls = clamp(nearest_int(scale/d), −32, 31)
//! + 32, the levels re-derived against d·(ls − 32).

use super::iq4_nl::{quantize_superblock, VALUES};
use super::kquant::{fp16_at, fp16_bytes, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 136;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(23, "iq4_xs", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + 2 + BLOCK / 64 + BLOCK / 2);

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_block_weighted_opt(x, None, out);
}

/// With an importance matrix (ggml `quantize_iq4_xs` given weights).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    quantize_block_weighted_opt(x, Some(qw), out);
}

fn quantize_block_weighted_opt(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let (d, ls) = quantize_superblock(x, qw, &mut out[8..136]);
    out[..2].copy_from_slice(&fp16_bytes(d));
    let mut scales_h = 0u16;
    out[4..8].fill(0);
    for (ib, &l) in ls.iter().enumerate() {
        out[4 + ib / 2] |= (l & 0xF) << (4 * (ib % 2));
        scales_h |= ((l >> 4) as u16) << (2 * ib);
    }
    out[2..4].copy_from_slice(&scales_h.to_le_bytes());
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// ggml `dequantize_row_iq4_xs`: y = d·(ls − 32)·v[q].
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        let scales_h = u16::from_le_bytes([b[2], b[3]]);
        for ib in 0..8 {
            let ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) as i32 | ((((scales_h >> (2 * ib)) & 3) as i32) << 4);
            let dl = d * (ls - 32) as f32;
            let qs = &b[8 + 16 * ib..24 + 16 * ib];
            out.extend(qs.iter().map(|&q| dl * VALUES[(q & 0xF) as usize] as f32));
            out.extend(qs.iter().map(|&q| dl * VALUES[(q >> 4) as usize] as f32));
        }
    }
}

/// A row with importance weights, block by block.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}
