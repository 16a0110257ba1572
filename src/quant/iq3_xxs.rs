//! GGML_TYPE_IQ3_XXS: superblocks of 256 as `{ f16 d; u8 qs[64]; u32 scales_and_signs[8]; }`
//! (98 bytes, ggml-common.h `block_iq3_xxs`). Each group of 4 values is a point of the
//! 256-point IQ3 grid (`qs` holds its index); each sub-block of 32 has one u32: four 7-bit
//! sign fields (bit i of field k flips value 8k + i; the eighth sign makes the count of flips
//! even, `ksigns`) and a 4-bit scale ls in the top bits. x ≈ d·(0.5 + ls)·0.5·g·sign with g
//! the decoded grid byte.
//!
//! llama-quantize calls ggml `quantize_iq3_xxs` (→ `quantize_row_iq3_xxs_impl` with the
//! 256-point grid), with or without an importance matrix. Per sub-block: weights x² (or the
//! imatrix's), |x| with the flips made even by keeping the sign of the least weighted value, then
//! a search over 31 candidate scales that snaps each group of 4 to the grid, and a refit of the
//! groups that fell off it (the search is shared with IQ3_S: [`SubBlockSearch`]). Then
//! d = max scale/31 stored ×1.0125 and ls = nearest_int((scale/d − 1)/2).

use super::iq_grid::{self, Grid, Lookup};
use super::kquant::{fp16_at, fp16_bytes, nearest_int, sum_sq, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 98;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(18, "iq3_xxs", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + BLOCK / 4 + 4 * (BLOCK / 32));

/// The decoded value of each grid level (ggml-common.h `iq3xxs_grid` bytes).
const LEVELS: [i8; 8] = [4, 12, 20, 28, 36, 44, 52, 62];

/// `GROUP_MAX_EPS_IQ3_XXS`: below this largest |x| a sub-block is all zero.
const ZERO_BELOW: f32 = 1e-8;

/// The sub-block search as `quantize_row_iq3_xxs_impl` runs it for the 256-point grid.
fn search() -> SubBlockSearch {
    SubBlockSearch { grid: iq_grid::iq3xxs(), zero_below: ZERO_BELOW, steps: 15, refit_all: false }
}

/// One sub-block of 32 values made ready for the search: the magnitudes the grid must match,
/// the sign bits (one byte per 8 values), the weights and their square roots.
pub(crate) struct SubBlock {
    pub xval: [f32; 32],
    pub signs: [u8; 4],
    pub weight: [f32; 32],
    pub waux: [f32; 32],
}

impl SubBlock {
    /// Weights qw·sqrt(σ² + x²) given importance weights, else x²; xval = |x| (a set sign bit
    /// where x is not ≥ 0, so −0.0 keeps a clear bit and NaN a set one).
    pub(crate) fn new(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> SubBlock {
        let mut b = SubBlock { xval: [0.0; 32], signs: [0; 4], weight: [0.0; 32], waux: [0.0; 32] };
        match qw {
            Some(qw) => {
                for ((w, &q), &v) in b.weight.iter_mut().zip(qw).zip(xb) {
                    *w = q * (sigma2 + v * v).sqrt();
                }
            }
            None => b.weight.iter_mut().zip(xb).for_each(|(w, &v)| *w = v * v),
        }
        b.waux.iter_mut().zip(&b.weight).for_each(|(a, &w)| *a = w.sqrt());
        for (i, &v) in xb.iter().enumerate() {
            if v >= 0.0 {
                b.xval[i] = v;
            } else {
                b.xval[i] = -v;
                b.signs[i / 8] |= 1 << (i % 8);
            }
        }
        b
    }

    /// IQ3_XXS stores 7 signs per 8 values: where the flips are odd, the value of least
    /// w·x² (the first on ties) keeps its sign and enters the search negated instead.
    fn make_flips_even(&mut self, xb: &[f32]) {
        for k in 0..4 {
            let s = &mut self.signs[k];
            if s.count_ones() % 2 == 1 {
                let at = |i: usize| self.weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                let mut imin = 0;
                let mut min = at(0);
                for i in 1..8 {
                    if at(i) < min {
                        min = at(i);
                        imin = i;
                    }
                }
                self.xval[8 * k + imin] = -self.xval[8 * k + imin];
                *s ^= 1 << imin;
            }
            *s &= 127;
        }
    }
}

/// The per-sub-block search of ggml `quantize_row_iq3_xxs_impl` and `quantize_row_iq3_s_impl`
/// and what differs between them.
pub(crate) struct SubBlockSearch {
    pub grid: &'static Grid<4>,
    /// A sub-block whose largest xval is below this is all zero (IQ3_S: only 0, written as the
    /// smallest denormal since xval ≥ 0 there).
    pub zero_below: f32,
    /// The candidate scales are 1/id with id = (15 + 0.2·is)/max for is in −steps..=steps.
    pub steps: i32,
    /// IQ3_S refits every group after the search, and also when no candidate was taken;
    /// IQ3_XXS only the groups the chosen candidate put off the grid.
    pub refit_all: bool,
}

/// The most candidate scales a search has (IQ3_XXS: 31), and the chunks of 8 they fill.
const MAX_TRIES: usize = 31;
const CHUNKS: usize = MAX_TRIES.div_ceil(8);

/// The grid levels (0..=7) of a sub-block's eight groups of 4.
pub(crate) type Levels = [[u8; 4]; 8];

impl SubBlockSearch {
    /// The sub-block's scale on the values 2l+1 (None when it is all zero), its levels in `l`.
    /// Negative when the weighted fit says so (C then flips the stored signs).
    pub(crate) fn run(&self, b: &SubBlock, l: &mut Levels) -> Option<f32> {
        *l = [[0; 4]; 8];
        let mut max = b.xval[0];
        for &v in &b.xval[1..] {
            max = if max > v { max } else { v };
        }
        if max < self.zero_below {
            return None;
        }
        let wx: [f32; 32] = std::array::from_fn(|i| b.weight[i] * b.xval[i]);
        let mut scale = max / 15.0;
        let mut on_grid = [!self.refit_all; 8];
        let mut ids = [0f32; MAX_TRIES];
        let tries = (2 * self.steps + 1) as usize;
        for (id, is) in ids[..tries].iter_mut().zip(-self.steps..) {
            *id = (15.0 + is as f32 * 0.2) / max;
        }
        let candidates = self.grid.candidate_levels::<8, CHUNKS>(&ids[..tries], &b.xval, &b.waux);
        if let Some((t, s)) = candidates.best_fit(&wx, &b.weight, tries) {
            scale = s;
            *l = candidates.levels(t);
            on_grid = candidates.on_grid(t);
        }
        if on_grid.contains(&false) && scale > 0.0 {
            let id = 1.0 / scale;
            for k in 0..8 {
                if self.refit_all || !on_grid[k] {
                    self.group_levels(b, k, id, scale, &mut l[k]);
                }
            }
            let (sumqx, sumq2) = iq_grid::fit_sums(l, &wx, &b.weight);
            if sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        Some(scale)
    }

    /// Group k's levels nearest_int((id·x − 1)/2) clamped to 0..=7, replaced by the best
    /// neighbour at `scale` when they are off the grid. Returns whether they were on it.
    fn group_levels(&self, b: &SubBlock, k: usize, id: f32, scale: f32, l: &mut [u8; 4]) -> bool {
        let x = &b.xval[4 * k..4 * k + 4];
        *l = self.grid.rounded(x, id);
        match self.grid.lookup(l) {
            Lookup::On(_) => true,
            Lookup::Off(n) => {
                self.grid.best_neighbour(n, x, &b.waux[4 * k..4 * k + 4], scale, l);
                false
            }
        }
    }

    /// The grid index of each group (the search leaves every group on the grid).
    pub(crate) fn indices(&self, l: &Levels) -> [u16; 8] {
        l.map(|g| match self.grid.lookup(&g) {
            Lookup::On(j) => j,
            Lookup::Off(_) => panic!("IQ3 levels {g:?} are not a grid point"),
        })
    }
}

/// C's `MAX(max_scale, scale)`.
pub(crate) fn running_max(max: f32, v: f32) -> f32 {
    if max > v {
        max
    } else {
        v
    }
}

/// The 4-bit sub-block scales against d = max_scale/31: clamp(nearest_int((scale/d − 1)/2),
/// 0, 15). Returns d times `fudge` as stored (fp16) and the scales.
pub(crate) fn scale_levels(scales: &[f32; 8], max_scale: f32, fudge: f32) -> ([u8; 2], [u8; 8]) {
    let d = max_scale / 31.0;
    let id = 1.0 / d;
    (fp16_bytes(d * fudge), scales.map(|s| nearest_int(0.5 * (id * s - 1.0)).clamp(0, 15) as u8))
}

/// σ² = 2·mean x² of the superblock (weights the importance matrix).
pub(crate) fn sigma2(x: &[f32]) -> f32 {
    2.0 * sum_sq(x) / QK_K as f32
}

/// ggml `quantize_row_iq3_xxs_impl` (grid 256) for one superblock.
fn quantize_block_opt(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let search = search();
    let sigma2 = sigma2(x);
    let mut scales = [0.0f32; 8];
    let mut max_scale = 0.0f32;
    let mut l = [[0u8; 4]; 8];
    out.fill(0);
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        let mut b = SubBlock::new(xb, qw.map(|q| &q[32 * ib..32 * ib + 32]), sigma2);
        b.make_flips_even(xb);
        let Some(mut scale) = search.run(&b, &mut l) else { continue };
        if scale < 0.0 {
            scale = -scale;
            b.signs = b.signs.map(|s| !s & 127);
        }
        for (q, j) in out[2 + 8 * ib..10 + 8 * ib].iter_mut().zip(search.indices(&l)) {
            *q = j as u8;
        }
        let signs = b.signs.iter().enumerate().fold(0u32, |a, (k, &s)| a | (s as u32) << (7 * k));
        out[66 + 4 * ib..70 + 4 * ib].copy_from_slice(&signs.to_le_bytes());
        scales[ib] = scale;
        max_scale = running_max(max_scale, scale);
    }
    if max_scale == 0.0 {
        out.fill(0);
        return;
    }
    let (d, ls) = scale_levels(&scales, max_scale, 1.0125);
    out[..2].copy_from_slice(&d);
    for (ib, &s) in ls.iter().enumerate() {
        out[69 + 4 * ib] |= s << 4;
    }
}

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_block_opt(x, None, out);
}

/// With an importance matrix (ggml `quantize_iq3_xxs` given weights).
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

/// Appends group `g`'s four values db·grid·sign, sign bit i of `signs` for value i.
pub(crate) fn push_group(out: &mut Vec<f32>, db: f32, g: [i8; 4], signs: u8) {
    for (i, &v) in g.iter().enumerate() {
        let sign = if signs & (1 << i) != 0 { -1.0f32 } else { 1.0 };
        out.push(db * (v as u8) as f32 * sign);
    }
}

/// ggml `dequantize_row_iq3_xxs`: y = d·(0.5 + ls)·0.5·grid·sign.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let grid = iq_grid::iq3xxs();
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        for ib in 0..8 {
            let aux = u32::from_le_bytes(b[66 + 4 * ib..70 + 4 * ib].try_into().unwrap());
            let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
            for l in 0..4 {
                let signs = iq_grid::ksigns(((aux >> (7 * l)) & 127) as u8);
                for h in 0..2 {
                    let j = b[2 + 8 * ib + 2 * l + h] as usize;
                    push_group(out, db, grid.decoded(j, &LEVELS), signs >> (4 * h));
                }
            }
        }
    }
}
