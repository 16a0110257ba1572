//! GGML_TYPE_IQ2_XS: superblocks of 256 as `{ f16 d; u16 qs[32]; u8 scales[8]; }` (74 bytes).
//! Each group of 8 values is one u16: a 9-bit index into the 512-point grid and a 7-bit sign
//! mask (the eighth sign makes the count of negatives even); each sub-block of 16 (two groups)
//! has a 4-bit scale s (low nibble first): x ≈ d·(0.5 + s)/4·grid·sign.
//!
//! llama-quantize calls ggml `quantize_iq2_xs`, which refuses to run without an importance
//! matrix, so this type has only the weighted encoder. Its search is IQ2_XXS's on sub-blocks
//! of 16 ([`super::iq2_xxs::search_scale`]); IQ2_S runs the same per-superblock pass
//! ([`quantize_sub_blocks`]).

use super::iq2_xxs::{grid_index, push_group, scale_code, search_scale, Search, SubBlock, GRID_VALUES};
use super::iq_grid::{self, ksigns, Grid};
use super::kquant::{fp16_at, fp16_bytes, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 74;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(17, "iq2_xs", BLOCK, BYTES).decoder(decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + BLOCK / 4 + BLOCK / 32);

/// One superblock's sixteen sub-blocks of 16, searched: their scales (all ≥ 0 or NaN), each
/// group of 8's grid index and sign mask, and the largest scale (ggml's running `MAX`).
pub(crate) struct SubBlocks {
    pub scales: [f32; 16],
    pub index: [u16; 32],
    pub signs: [u8; 32],
    pub max_scale: f32,
}

/// How IQ2_XS and IQ2_S weigh and fold a superblock.
pub(crate) struct Pass<'a> {
    pub grid: &'a Grid<8>,
    /// The mean-square term of the weights (IQ2_XS: mean x²; IQ2_S: twice it).
    pub sigma2: f32,
    /// Importance weights of the superblock's columns; without them IQ2_S weighs σ²/4 + x².
    pub qw: Option<&'a [f32]>,
    /// Store 7 signs per group and fold the eighth (IQ2_XS), or all 8 (IQ2_S).
    pub even_signs: bool,
    /// Below this largest |x| a sub-block is left zero.
    pub eps: f32,
}

/// The sub-block loop of ggml `quantize_row_iq2_xs_impl` / `quantize_row_iq2_s_impl`: per
/// sub-block of 16, scale 0 if max |x| < eps; else IQ2_XXS's search from max/5 over 19
/// candidates, refitting only the groups it left off the grid; a negative scale flips the
/// signs. Skipped sub-blocks keep index 0 and sign mask 0.
pub(crate) fn quantize_sub_blocks(x: &[f32], pass: &Pass) -> SubBlocks {
    let mut r = SubBlocks { scales: [0.0; 16], index: [0; 32], signs: [0; 32], max_scale: 0.0 };
    let mut sb = SubBlock::<16>::new();
    for ib in 0..16 {
        let xb = &x[16 * ib..16 * ib + 16];
        match pass.qw {
            Some(qw) => sb.set_weights(xb, &qw[16 * ib..16 * ib + 16], pass.sigma2),
            None => {
                for (w, &v) in sb.weight.iter_mut().zip(xb) {
                    *w = 0.25 * pass.sigma2 + v * v;
                }
                sb.set_roots();
            }
        }
        let signs = &mut r.signs[2 * ib..2 * ib + 2];
        sb.fold_signs(xb, pass.even_signs, signs);
        let max = sb.max();
        let mut l = [0u8; 16];
        if max < pass.eps {
            signs.fill(0);
            continue;
        }
        let mut scale = search_scale(pass.grid, &sb, max / 5.0, max, Search { steps: 9, refine_all: false }, &mut l);
        if scale < 0.0 {
            scale = -scale;
            let keep = if pass.even_signs { 127 } else { 255 };
            signs.iter_mut().for_each(|s| *s = !*s & keep);
        }
        for k in 0..2 {
            r.index[2 * ib + k] = grid_index(pass.grid, &l, k);
        }
        r.scales[ib] = scale;
        r.max_scale = super::iq2_xxs::c_max(r.max_scale, scale);
    }
    r
}

/// d = max_scale/31 and each sub-block's 4-bit scale code (sub-block 2i in the low nibble of
/// byte i, 2i + 1 in the high).
pub(crate) fn scale_nibbles(scales: &[f32; 16], max_scale: f32) -> (f32, [u8; 8]) {
    let d = max_scale / 31.0;
    let id = 1.0 / d;
    let mut packed = [0u8; 8];
    for (ib, &s) in scales.iter().enumerate() {
        packed[ib / 2] |= scale_code(id, s) << (4 * (ib % 2));
    }
    (d, packed)
}

/// ggml `quantize_row_iq2_xs_impl` for one superblock, `qw` its columns' importance.
fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let mut sumx2 = 0.0f32;
    for &v in x {
        sumx2 += v * v;
    }
    let pass = Pass {
        grid: iq_grid::iq2xs(),
        sigma2: sumx2 / QK_K as f32,
        qw: Some(qw),
        even_signs: true,
        eps: super::kquant::GROUP_MAX_EPS,
    };
    let r = quantize_sub_blocks(x, &pass);
    out.fill(0);
    if r.max_scale == 0.0 {
        return;
    }
    let (d, packed) = scale_nibbles(&r.scales, r.max_scale);
    out[..2].copy_from_slice(&fp16_bytes(d));
    for ((o, &j), &s) in out[2..66].chunks_exact_mut(2).zip(&r.index).zip(&r.signs) {
        o.copy_from_slice(&(j | (s as u16) << 9).to_le_bytes());
    }
    out[66..74].copy_from_slice(&packed);
}

/// A row with importance weights, superblock by superblock.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}

/// ggml `dequantize_row_iq2_xs`.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let grid = iq_grid::iq2xs();
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        for (ib32, &sc) in b[66..74].iter().enumerate() {
            let db = [d * (0.5 + (sc & 0xF) as f32) * 0.25, d * (0.5 + (sc >> 4) as f32) * 0.25];
            for l in 0..4 {
                let at = 2 + 8 * ib32 + 2 * l;
                let q = u16::from_le_bytes([b[at], b[at + 1]]);
                let point = grid.decoded((q & 511) as usize, &GRID_VALUES);
                push_group(db[l / 2], &point, ksigns((q >> 9) as u8), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lowest_levels_are_a_grid_point() {
        // A sub-block whose candidates all lose keeps levels 0 (ggml aborts if off the grid).
        for grid in [iq_grid::iq2xxs(), iq_grid::iq2xs(), iq_grid::iq2s()] {
            assert_eq!(grid_index(grid, &[0u8; 16], 0), 0);
        }
    }

    #[test]
    fn zero_superblock_is_all_zero_bytes() {
        let mut out = [0xAAu8; BYTES];
        quantize_block_weighted(&[0.0; 256], &[1.0; 256], &mut out);
        assert!(out.iter().all(|&b| b == 0));
    }
}
