//! GGML_TYPE_IQ2_S: superblocks of 256 as `{ f16 d; u8 qs[64]; u8 qh[8]; u8 scales[8]; }`
//! (82 bytes). Each group of 8 values has a 10-bit index into the 1024-point grid (low byte in
//! qs[0..32], the top two bits in qh, four groups per byte) and a full 8-bit sign mask
//! (qs[32..64]); each sub-block of 16 has a 4-bit scale s (low nibble first):
//! x ≈ d·(0.5 + s)/4·grid·sign.
//!
//! llama-quantize calls ggml `quantize_iq2_s`, with the importance matrix if it has one and
//! weights σ²/4 + x² (σ² = 2·mean x²) otherwise. The search is IQ2_XS's
//! ([`super::iq2_xs::quantize_sub_blocks`]) without the sign folding; the stored d is
//! 0.9875 × the d the scale codes are rounded against.

use super::iq2_xs::{quantize_sub_blocks, scale_nibbles, Pass};
use super::iq2_xxs::{push_group, GRID_VALUES};
use super::iq_grid;
use super::kquant::{fp16_at, fp16_bytes, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 82;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(22, "iq2_s", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + BLOCK / 4 + BLOCK / 16);

/// `GROUP_MAX_EPS_IQ2_S`: below this largest |x| a sub-block is left zero.
const GROUP_MAX_EPS: f32 = 1e-8;

/// ggml `quantize_row_iq2_s_impl` for one superblock, with or without importance weights.
fn quantize_block_opt(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let mut sumx2 = 0.0f32;
    for &v in x {
        sumx2 += v * v;
    }
    let pass =
        Pass { grid: iq_grid::iq2s(), sigma2: 2.0 * sumx2 / QK_K as f32, qw, even_signs: false, eps: GROUP_MAX_EPS };
    let r = quantize_sub_blocks(x, &pass);
    out.fill(0);
    // Indices and signs are stored even when every scale is 0 (then d is 0).
    for (i, (&j, &s)) in r.index.iter().zip(&r.signs).enumerate() {
        out[2 + i] = j as u8;
        out[66 + i / 4] |= ((j >> 8) as u8) << (2 * (i % 4));
        out[34 + i] = s;
    }
    if r.max_scale == 0.0 {
        return;
    }
    let (d, packed) = scale_nibbles(&r.scales, r.max_scale);
    out[..2].copy_from_slice(&fp16_bytes(d * 0.9875));
    out[74..82].copy_from_slice(&packed);
}

fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_block_opt(x, None, out);
}

fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    quantize_block_opt(x, Some(qw), out);
}

/// What ggml `quantize_iq2_s(src, dst, nrow, n_per_row, NULL)` writes.
pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// A row with importance weights, superblock by superblock.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}

/// ggml `dequantize_row_iq2_s`.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let grid = iq_grid::iq2s();
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        let (qs, signs, qh, scales) = (&b[2..34], &b[34..66], &b[66..74], &b[74..82]);
        for (ib32, &sc) in scales.iter().enumerate() {
            let db = [d * (0.5 + (sc & 0xF) as f32) * 0.25, d * (0.5 + (sc >> 4) as f32) * 0.25];
            for l in 0..4 {
                let i = 4 * ib32 + l;
                let j = qs[i] as usize | (((qh[ib32] as usize) << (8 - 2 * l)) & 0x300);
                push_group(db[l / 2], &grid.decoded(j, &GRID_VALUES), signs[i], out);
            }
        }
    }
}
