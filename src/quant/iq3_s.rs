//! GGML_TYPE_IQ3_S: superblocks of 256 as `{ f16 d; u8 qs[64]; u8 qh[8]; u8 signs[32];
//! u8 scales[4]; }` (110 bytes, ggml-common.h `block_iq3_s`). Each group of 4 values is a
//! point of the 512-point IQ3 grid: the low 8 bits of its index in `qs`, the ninth in `qh`
//! (bit k of qh[ib] for group k of sub-block ib); one sign bit per value; a 4-bit scale ls per
//! sub-block of 32 (two per byte, low nibble first). x ≈ d·(1 + 2·ls)·g·sign with g the
//! decoded grid value (1, 3, .., 15).
//!
//! llama-quantize calls ggml `quantize_iq3_s` (→ `quantize_row_iq3_s_impl` with sub-blocks of
//! 32), with or without an importance matrix: IQ3_XXS's sub-block search
//! ([`SubBlockSearch`]) with 19 candidate scales, every group refitted, and no sign parity;
//! then d = max scale/31 stored ×1.033. A quirk kept: ggml advances its `qs` and `signs`
//! cursors only past sub-blocks that are not all zero, so the ones after a zero sub-block are
//! stored early (and the last slots stay zero), while `qh` and the scales go by position.

use super::iq3_xxs::{running_max, scale_levels, sigma2, SubBlock, SubBlockSearch};
use super::iq_grid;
use super::kquant::{fp16_at, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 110;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(21, "iq3_s", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + BLOCK / 4 + BLOCK / 32 + BLOCK / 8 + BLOCK / 64);

/// Byte offsets of `qs`, `qh`, `signs` and `scales`.
const QS: usize = 2;
const QH: usize = QS + BLOCK / 4;
const SIGNS: usize = QH + BLOCK / 32;
const SCALES: usize = SIGNS + BLOCK / 8;

/// The decoded value of each grid level (ggml-common.h `iq3s_grid` bytes).
const LEVELS: [i8; 8] = [1, 3, 5, 7, 9, 11, 13, 15];

/// The sub-block search as `quantize_row_iq3_s_impl` runs it: a sub-block is zero only if its
/// largest |x| is 0 (xval ≥ 0, so "below the smallest denormal").
fn search() -> SubBlockSearch {
    SubBlockSearch { grid: iq_grid::iq3s(), zero_below: f32::from_bits(1), steps: 9, refit_all: true }
}

/// ggml `quantize_row_iq3_s_impl` (block size 32) for one superblock.
fn quantize_block_opt(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let search = search();
    let sigma2 = sigma2(x);
    let mut scales = [0.0f32; 8];
    let mut max_scale = 0.0f32;
    let mut l = [[0u8; 4]; 8];
    // Sub-blocks stored so far: where the next one's qs and signs go.
    let mut stored = 0;
    out.fill(0);
    for ib in 0..8 {
        let mut b = SubBlock::new(&x[32 * ib..32 * ib + 32], qw.map(|q| &q[32 * ib..32 * ib + 32]), sigma2);
        let Some(mut scale) = search.run(&b, &mut l) else { continue };
        if scale < 0.0 {
            scale = -scale;
            b.signs = b.signs.map(|s| !s);
        }
        for (k, j) in search.indices(&l).into_iter().enumerate() {
            out[QS + 8 * stored + k] = j as u8;
            out[QH + ib] |= ((j >> 8) as u8) << k;
        }
        out[SIGNS + 4 * stored..SIGNS + 4 * stored + 4].copy_from_slice(&b.signs);
        stored += 1;
        scales[ib] = scale;
        max_scale = running_max(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let (d, ls) = scale_levels(&scales, max_scale, 1.033);
    out[..2].copy_from_slice(&d);
    for (o, pair) in out[SCALES..].iter_mut().zip(ls.chunks_exact(2)) {
        *o = pair[0] | (pair[1] << 4);
    }
}

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_block_opt(x, None, out);
}

/// With an importance matrix (ggml `quantize_iq3_s` given weights).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    quantize_block_opt(x, Some(qw), out);
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// A row with importance weights, block by block.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}

/// ggml `dequantize_row_iq3_s`: y = d·(1 + 2·ls)·grid·sign.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let grid = iq_grid::iq3s();
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        for ib in 0..8 {
            let ls = (b[SCALES + ib / 2] >> (4 * (ib % 2))) & 0xF;
            let db = d * (1 + 2 * ls as i32) as f32;
            for k in 0..8 {
                let j = b[QS + 8 * ib + k] as usize | (((b[QH + ib] >> k) & 1) as usize) << 8;
                let signs = b[SIGNS + 4 * ib + k / 2] >> (4 * (k % 2));
                super::iq3_xxs::push_group(out, db, grid.decoded(j, &LEVELS), signs);
            }
        }
    }
}
