//! GGML_TYPE_IQ2_XXS: superblocks of 256 as `{ f16 d; u16 qs[32]; }` (66 bytes). Each
//! sub-block of 32 owns 8 bytes: four grid indices (one byte each, 8 values per point of the
//! 256-point E8-derived grid), then a u32 holding four 7-bit sign masks (the eighth sign of
//! each group makes its count of negatives even) and a 4-bit scale s in the top bits:
//! x ≈ d·(0.5 + s)/4·grid·sign.
//!
//! llama-quantize calls ggml `quantize_iq2_xxs`, which refuses to run without an importance
//! matrix, so this type has only the weighted encoder. The per-sub-block scale and grid search
//! here is shared with IQ2_XS and IQ2_S ([`SubBlock`], [`search_scale`]).

use super::iq_grid::{self, ksigns, Grid, Lookup};
use super::kquant::{fp16_at, fp16_bytes, make_qp_quants, nearest_int, GROUP_MAX_EPS, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 66;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(16, "iq2_xxs", BLOCK, BYTES).decoder(decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + BLOCK / 4);

/// The largest level of the IQ2 grids (`kMaxQ − 1`); the values are 2l + 1 ∈ {1, 3, 5}.
const MAX_LEVEL: i32 = 2;

/// ggml `MAX(a, b)`: `a` unless `b` is larger (NaN operands keep `b`).
#[inline]
pub(crate) fn c_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// One sub-block of N values (N = 32: IQ2_XXS, 16: IQ2_XS and IQ2_S) as the IQ2 searches see
/// it: magnitudes with the signs folded out, their weights, and the weights' roots (which
/// the neighbour search uses).
pub(crate) struct SubBlock<const N: usize> {
    pub xval: [f32; N],
    pub weight: [f32; N],
    pub waux: [f32; N],
}

impl<const N: usize> SubBlock<N> {
    pub(crate) fn new() -> Self {
        SubBlock { xval: [0.0; N], weight: [0.0; N], waux: [0.0; N] }
    }

    /// Importance weights `qw·sqrt(σ² + x²)` and their roots.
    pub(crate) fn set_weights(&mut self, x: &[f32], qw: &[f32], sigma2: f32) {
        for ((w, &q), &v) in self.weight.iter_mut().zip(qw).zip(x) {
            *w = q * (sigma2 + v * v).sqrt();
        }
        self.set_roots();
    }

    pub(crate) fn set_roots(&mut self) {
        for (r, &w) in self.waux.iter_mut().zip(&self.weight) {
            *r = w.sqrt();
        }
    }

    /// |x| into `xval`, returning each group of 8's sign mask (bit i: x[i] < 0). With
    /// `even_signs` (IQ2_XXS, IQ2_XS, which store 7 signs), a group with an odd count of
    /// negatives keeps the sign of its least important element (smallest w·x², the first on
    /// ties) instead, so its count becomes even; the mask is then cut to 7 bits.
    pub(crate) fn fold_signs(&mut self, x: &[f32], even_signs: bool, signs: &mut [u8]) {
        for (k, s) in signs.iter_mut().enumerate() {
            let xg = &x[8 * k..8 * k + 8];
            let mut mask = 0u8;
            for (i, &v) in xg.iter().enumerate() {
                if v >= 0.0 {
                    self.xval[8 * k + i] = v;
                } else {
                    self.xval[8 * k + i] = -v;
                    mask |= 1 << i;
                }
            }
            if even_signs && mask.count_ones() % 2 == 1 {
                let wg = &self.weight[8 * k..8 * k + 8];
                let (mut imin, mut min) = (0, wg[0] * xg[0] * xg[0]);
                for i in 1..8 {
                    let ax = wg[i] * xg[i] * xg[i];
                    if ax < min {
                        (min, imin) = (ax, i);
                    }
                }
                self.xval[8 * k + imin] = -self.xval[8 * k + imin];
                mask ^= 1 << imin;
            }
            *s = if even_signs { mask & 127 } else { mask };
        }
    }

    /// The largest of `xval` (ggml's running `MAX` from the first).
    pub(crate) fn max(&self) -> f32 {
        self.xval[1..].iter().fold(self.xval[0], |m, &v| c_max(m, v))
    }

    /// Group `k`'s levels for inverse scale `id`: the rounded lattice point if the grid has
    /// it, else its best neighbour at `scale`. Returns whether the lattice point was on the grid.
    fn group_to_grid(&self, grid: &Grid<8>, k: usize, id: f32, scale: f32, l: &mut [u8; N]) -> bool {
        let xg = &self.xval[8 * k..8 * k + 8];
        let mut lv = grid.rounded(xg, id);
        let on_grid = match grid.lookup(&lv) {
            Lookup::On(_) => true,
            Lookup::Off(candidates) => {
                grid.best_neighbour(candidates, xg, &self.waux[8 * k..8 * k + 8], scale, &mut lv);
                false
            }
        };
        l[8 * k..8 * k + 8].copy_from_slice(&lv);
        on_grid
    }
}

/// The most groups of 8 a sub-block has (IQ2_XXS: 4) and candidate scales a search has
/// (IQ2_XS, IQ2_S: 19).
const MAX_GROUPS: usize = 4;
const MAX_TRIES: usize = 19;
/// The chunks of 8 candidates a search fills ([`Grid::candidate_levels`]).
const CHUNKS: usize = MAX_TRIES.div_ceil(8);

/// How a type runs [`search_scale`].
#[derive(Clone, Copy)]
pub(crate) struct Search {
    /// Candidate inverse scales (5 + 0.1·is)/base for is in −steps..=steps.
    pub steps: i32,
    /// Re-quantize every group at the chosen scale (IQ2_XXS), not only those the search
    /// left off the grid (IQ2_XS, IQ2_S).
    pub refine_all: bool,
}

/// The sub-block search of ggml `quantize_row_iq2_xxs_impl`, `quantize_row_iq2_xs_impl` and
/// `quantize_row_iq2_s_impl`: each candidate scale rounds the groups of 8 to lattice points,
/// replacing those off the grid by their best neighbour; the candidate with the largest
/// (Σwxq)²/Σwq² wins (the first on ties, and only if Σwxq² beats 0). The groups then
/// re-quantized at the winning scale (see [`Search::refine_all`]) refit the scale.
///
/// `scale` is the scale kept if no candidate wins, with `l` its levels (on the grid).
/// Returns the scale, which can come out negative.
pub(crate) fn search_scale<const N: usize>(
    grid: &Grid<8>,
    sb: &SubBlock<N>,
    mut scale: f32,
    base: f32,
    search: Search,
    l: &mut [u8; N],
) -> f32 {
    let groups = N / 8;
    let mut on_grid = [true; MAX_GROUPS];
    let mut ids = [0f32; MAX_TRIES];
    let tries = (2 * search.steps + 1) as usize;
    for (id, is) in ids[..tries].iter_mut().zip(-search.steps..) {
        *id = (5.0 + is as f32 * 0.1) / base;
    }
    let candidates = grid.candidate_levels::<MAX_GROUPS, CHUNKS>(&ids[..tries], &sb.xval, &sb.waux);
    let wx: [f32; N] = std::array::from_fn(|i| sb.weight[i] * sb.xval[i]);
    if let Some((t, s)) = candidates.best_fit(&wx, &sb.weight, tries) {
        scale = s;
        for (lg, g) in l.chunks_exact_mut(8).zip(&candidates.levels(t)) {
            lg.copy_from_slice(g);
        }
        on_grid = candidates.on_grid(t);
    }
    if search.refine_all {
        on_grid = [false; MAX_GROUPS];
    }
    if on_grid[..groups].iter().any(|&g| !g) && scale > 0.0 {
        let id = 1.0 / scale;
        for k in (0..groups).filter(|&k| !on_grid[k]) {
            sb.group_to_grid(grid, k, id, scale, l);
        }
        let (sumqx, sumq2) = iq_grid::fit_sums(l.as_chunks::<8>().0, &wx, &sb.weight);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

/// The grid index of group `k`'s levels, which the search left on the grid.
pub(crate) fn grid_index<const N: usize>(grid: &Grid<8>, l: &[u8; N], k: usize) -> u16 {
    let lv: &[u8; 8] = l[8 * k..8 * k + 8].try_into().unwrap();
    match grid.lookup(lv) {
        Lookup::On(j) => j,
        // ggml aborts here ("found point not on grid"); the search never leaves one.
        Lookup::Off(_) => unreachable!("IQ2 levels {lv:?} are not a grid point"),
    }
}

/// The 4-bit code of a sub-block scale against the superblock's d: nearest_int((s/d − 1)/2).
pub(crate) fn scale_code(id: f32, scale: f32) -> u8 {
    nearest_int(0.5 * (id * scale - 1.0)).clamp(0, 15) as u8
}

/// ggml `quantize_row_iq2_xxs_impl` for one superblock, `qw` its columns' importance.
fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let grid = iq_grid::iq2xxs();
    let mut sumx2 = 0.0f32;
    for &v in x {
        sumx2 += v * v;
    }
    let sigma2 = sumx2 / QK_K as f32;
    let mut sb = SubBlock::<32>::new();
    let mut scratch = [0u8; 32];
    let mut l = [0u8; 32];
    let mut scales = [0.0f32; 8];
    let mut q2 = [0u32; 16];
    let mut max_scale = 0.0f32;
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        sb.set_weights(xb, &qw[32 * ib..32 * ib + 32], sigma2);
        let mut signs = [0u8; 4];
        sb.fold_signs(xb, true, &mut signs);
        if sb.max() < GROUP_MAX_EPS {
            continue;
        }
        // The starting scale fits the magnitudes to levels 0..=4 (its levels are never kept).
        let mut scale = make_qp_quants(MAX_LEVEL + 2, &sb.xval, &mut scratch, &sb.weight);
        let eff_max = scale * (MAX_LEVEL + 1) as f32;
        if eff_max <= 0.0 {
            continue;
        }
        scale = search_scale(grid, &sb, scale, eff_max, Search { steps: 6, refine_all: true }, &mut l);
        if scale < 0.0 {
            scale = -scale;
            signs.iter_mut().for_each(|s| *s = !*s & 127);
        }
        for (k, &s) in signs.iter().enumerate() {
            q2[2 * ib] |= (grid_index(grid, &l, k) as u32) << (8 * k);
            q2[2 * ib + 1] |= (s as u32) << (7 * k);
        }
        scales[ib] = scale;
        max_scale = c_max(max_scale, scale);
    }
    out.fill(0);
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 31.0;
    out[..2].copy_from_slice(&fp16_bytes(d));
    let id = 1.0 / d;
    for (ib, &s) in scales.iter().enumerate() {
        q2[2 * ib + 1] |= (scale_code(id, s) as u32) << 28;
    }
    for (o, q) in out[2..].chunks_exact_mut(4).zip(q2) {
        o.copy_from_slice(&q.to_le_bytes());
    }
}

/// A row with importance weights, superblock by superblock.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}

/// The decoded IQ2 levels (ggml-common.h's IQ2 grids hold these bytes).
pub(crate) const GRID_VALUES: [i8; 3] = [8, 25, 43];

/// Appends one group of 8: db·grid·(−1 where the sign bit is set), ggml's product order.
#[inline]
pub(crate) fn push_group(db: f32, point: &[i8; 8], signs: u8, out: &mut Vec<f32>) {
    out.extend(point.iter().enumerate().map(|(j, &g)| {
        let sign = if signs & (1 << j) != 0 { -1.0f32 } else { 1.0 };
        db * g as f32 * sign
    }));
}

/// ggml `dequantize_row_iq2_xxs`.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let grid = iq_grid::iq2xxs();
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        for sub in b[2..].chunks_exact(8) {
            let aux = u32::from_le_bytes([sub[4], sub[5], sub[6], sub[7]]);
            let db = d * (0.5 + (aux >> 28) as f32) * 0.25;
            for (k, &j) in sub[..4].iter().enumerate() {
                let signs = ksigns(((aux >> (7 * k)) & 127) as u8);
                push_group(db, &grid.decoded(j as usize, &GRID_VALUES), signs, out);
            }
        }
    }
}
