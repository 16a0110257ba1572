//! GGML_TYPE_IQ1_S: superblocks of 256 as `{ f16 d; u8 qs[32]; u16 qh[8]; }` (50 bytes). Each
//! sub-block of 32 is four groups of 8 on the 2048-point IQ1 grid (levels −1, 0, 1): an 11-bit
//! grid index per group (low byte in qs, high 3 bits in qh bits 3k..3k+2), and in qh bits
//! 12..14 a 3-bit scale ls, in bit 15 the sign of the shift δ = ±1/8:
//! x ≈ d·(2ls + 1)·(g + δ). llama-quantize refuses IQ1_S without an importance matrix
//! (`ggml_quantize_requires_imatrix`) and then calls `quantize_iq1_s` with it
//! (`quantize_row_iq1_s_impl` asserts on missing weights): per sub-block, the exact
//! three-level split of the sorted values with the best weighted least-squares scale (both
//! shifts), groups off the grid replaced by their best neighbour, then the scales to 3 bits.
//!
//! The helpers for sorting, neighbour search and refitting are IQ1_M's too.

use std::cmp::Ordering;

use super::iq1_lanes::{padded, BestScan, Pick};
use super::iq_grid::{self, Grid, Lookup};
use super::kquant::{fp16_at, fp16_bytes, nearest_int};
use super::lanes::{Isa, Portable, F8};
use super::q8_0::c_max;

pub const BLOCK: usize = 256;
pub const BYTES: usize = 50;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(19, "iq1_s", BLOCK, BYTES).decoder(decode).weighted(encode_row_weighted);

/// `IQ1S_DELTA` (= `IQ1M_DELTA`).
pub(crate) const DELTA: f32 = 0.125;
/// The values of levels 0, 1, 2 with the shift up (`x_p`) and down (`x_m`).
pub(crate) const SHIFT_UP: [f32; 3] = [-1.0 + DELTA, DELTA, 1.0 + DELTA];
pub(crate) const SHIFT_DOWN: [f32; 3] = [-1.0 - DELTA, -DELTA, 1.0 - DELTA];

/// Elements per sub-block (`IQ1S_BLOCK_SIZE`).
const SUB: usize = 32;
/// `GROUP_MAX_EPS_IQ1_S`: sub-blocks whose largest |x| is below this are left zero.
const GROUP_MAX_EPS: f32 = 1e-12;

/// The order glibc's `qsort` (2.36; every released glibc for arrays under 1 KiB) gives
/// ggml's (value, index) pairs under `iq1_sort_helper`: its top-down merge sort, which takes
/// from the left run unless its value is strictly greater. That is stable, so equal values
/// (and 0.0 / −0.0) keep index order: without NaN, the order of the keys (value, index).
/// Writes the indices of `x` into `order` (as long as `x`).
pub(crate) fn sort_indices(x: &[f32], order: &mut [u8]) {
    if x.iter().any(|v| v.is_nan()) {
        // NaN compares equal to everything: only glibc's own merge order reproduces it.
        order.iter_mut().enumerate().for_each(|(i, o)| *o = i as u8);
        merge_sort(order, x, &mut [0u8; 256][..x.len()]);
        return;
    }
    let mut keys = [0u64; 256];
    let keys = &mut keys[..x.len()];
    for (i, (k, &v)) in keys.iter_mut().zip(x).enumerate() {
        // Adding 0.0 turns −0.0 into 0.0; the bits then map to integers in float order.
        let b = (v + 0.0).to_bits();
        let ordered = if b >> 31 == 1 { !b } else { b | 0x8000_0000 };
        *k = (ordered as u64) << 8 | i as u64;
    }
    keys.sort_unstable();
    for (o, &k) in order.iter_mut().zip(keys.iter()) {
        *o = k as u8;
    }
}

/// glibc's `msort_with_tmp` on indices into `x`, comparing as `iq1_sort_helper` does.
fn merge_sort(order: &mut [u8], x: &[f32], tmp: &mut [u8]) {
    let n = order.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort(&mut order[..n1], x, tmp);
    merge_sort(&mut order[n1..], x, tmp);
    let (mut i, mut j, mut t) = (0, n1, 0);
    while i < n1 && j < n {
        let take_left = x[order[i] as usize].partial_cmp(&x[order[j] as usize]) != Some(Ordering::Greater);
        tmp[t] = if take_left { order[i] } else { order[j] };
        i += take_left as usize;
        j += !take_left as usize;
        t += 1;
    }
    // What is left of the right run is already in place.
    tmp[t..t + n1 - i].copy_from_slice(&order[i..n1]);
    let done = t + n1 - i;
    order[..done].copy_from_slice(&tmp[..done]);
}

/// Σ w·(scale·v[l] − x)² of grid point `j` (levels l) against eight values.
fn distance(grid: &Grid<8>, j: usize, x: &[f32], w: &[f32], scaled: &[f32; 3]) -> f32 {
    let mut d2 = 0.0f32;
    for ((&p, &xv), &wv) in grid.points[j].iter().zip(x).zip(w) {
        let diff = scaled[(p >> 1) as usize] - xv;
        d2 += wv * diff * diff;
    }
    d2
}

/// ggml `iq1_find_best_neighbour2`: the candidate minimizing Σ w·(scale·v[l] − x)² (the
/// first on ties). When every candidate's distance overflows to inf or NaN, ggml scans the
/// whole grid but reads x past the group (x[i] for grid index i: undefined, and it aborts if
/// that finds nothing); this scans the whole grid against the group's own eight values.
pub(crate) fn best_neighbour(
    grid: &Grid<8>,
    candidates: &[u16],
    x: &[f32],
    w: &[f32],
    scale: f32,
    v: &[f32; 3],
) -> u16 {
    let scaled = v.map(|q| scale * q);
    first_nearest(grid, candidates, x, w, &scaled)
        .or_else(|| first_nearest_scalar(grid, 0..grid.points.len() as u16, x, w, &scaled))
        .unwrap_or(0)
}

/// The first of `candidates` whose distance is below every earlier one and below f32::MAX
/// (None if none is): 8 per vector where the CPU has AVX2, else one at a time.
fn first_nearest(grid: &Grid<8>, candidates: &[u16], x: &[f32], w: &[f32], scaled: &[f32; 3]) -> Option<u16> {
    #[cfg(target_arch = "x86_64")]
    if candidates.len() >= 8 && !super::reference_kernels() && super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
        return unsafe { first_nearest_avx2(grid, candidates, x, w, scaled) };
    }
    first_nearest_scalar(grid, candidates.iter().copied(), x, w, scaled)
}

/// ggml's loop over grid points `js`: the first whose distance is below every earlier one and
/// below f32::MAX.
fn first_nearest_scalar(
    grid: &Grid<8>,
    js: impl Iterator<Item = u16>,
    x: &[f32],
    w: &[f32],
    scaled: &[f32; 3],
) -> Option<u16> {
    let mut best = f32::MAX;
    let mut best_j = None;
    for j in js {
        let d2 = distance(grid, j as usize, x, w, scaled);
        if d2 < best {
            best = d2;
            best_j = Some(j);
        }
    }
    best_j
}

/// [`best_neighbour`]'s scan over the candidates with 8 per vector (None: none is below
/// f32::MAX): a point's value 2l+1 selects `scaled[l]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn first_nearest_avx2(
    grid: &Grid<8>,
    candidates: &[u16],
    x: &[f32],
    w: &[f32],
    scaled: &[f32; 3],
) -> Option<u16> {
    first_nearest_lanes::<super::lanes::Avx2>(grid, candidates, x, w, scaled)
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn first_nearest_lanes<S: Isa>(
    grid: &Grid<8>,
    candidates: &[u16],
    x: &[f32],
    w: &[f32],
    scaled: &[f32; 3],
) -> Option<u16> {
    let [s0, s1, s2] = [F8::<S>::splat(scaled[0]), F8::splat(scaled[1]), F8::splat(scaled[2])];
    let (two, four) = (F8::<S>::splat(2.0), F8::<S>::splat(4.0));
    grid.first_nearest_lanes(candidates, x, w, |q| q.lt(two).select(s0, q.lt(four).select(s1, s2)))
}

/// The grid index of eight levels `l`: their own point, or the best neighbour (false: off
/// the grid).
pub(crate) fn group_index(grid: &Grid<8>, l: &[u8], x: &[f32], w: &[f32], scale: f32, v: &[f32; 3]) -> (u16, bool) {
    let levels: [u8; 8] = std::array::from_fn(|i| l[i]);
    match grid.lookup(&levels) {
        Lookup::On(j) => (j, true),
        Lookup::Off(candidates) => (best_neighbour(grid, candidates, x, w, scale, v), false),
    }
}

/// The least-squares scale of groups of eight at grid points `index` (group k valued by
/// `values[k]`), or `scale` unless Σw·q·x and Σw·q² are both positive.
pub(crate) fn refit_scale(
    grid: &Grid<8>,
    index: &[u16],
    x: &[f32],
    w: &[f32],
    values: &[&[f32; 3]],
    scale: f32,
) -> f32 {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for (k, &j) in index.iter().enumerate() {
        for (i, &p) in grid.points[j as usize].iter().enumerate() {
            let q = values[k][(p >> 1) as usize];
            let wq = w[8 * k + i] * q;
            sumqx += wq * x[8 * k + i];
            sumq2 += wq * q;
        }
    }
    if sumqx > 0.0 && sumq2 > 0.0 {
        sumqx / sumq2
    } else {
        scale
    }
}

/// Levels from a split of the sorted order: the first `i1` get 0, up to `i2` 1, the rest 2.
pub(crate) fn split_levels(order: &[u8], i1: usize, i2: usize, l: &mut [u8]) {
    for (j, &i) in order.iter().enumerate() {
        l[i as usize] = (j >= i1) as u8 + (j >= i2) as u8;
    }
}

/// The best split of a sub-block in sorted `order`, by exhaustive search over both
/// boundaries and both shifts: `(i1, i2, shift, scale)`, or None.
fn best_split(x: &[f32], w: &[f32], order: &[u8]) -> Option<(usize, usize, i8, f32)> {
    let mut sumx = [0f32; SUB + 1];
    let mut sumw = [0f32; SUB + 1];
    for (j, &i) in order.iter().enumerate() {
        let i = i as usize;
        sumx[j + 1] = sumx[j] + w[i] * x[i];
        sumw[j + 1] = sumw[j] + w[i];
    }
    let pick = if super::reference_kernels() { split_scalar(&sumx, &sumw) } else { split_fast(&sumx, &sumw) };
    pick.map(|(i1, i2, p, scale)| (i1, i2, if p == 0 { 1 } else { -1 }, scale))
}

/// Shift pattern 0 (up) and 1 (down).
const PATTERNS: [&[f32; 3]; 2] = [&SHIFT_UP, &SHIFT_DOWN];

/// ggml's loop over (i1, i2, pattern) on the prefix sums of w·x and w.
fn split_scalar(sumx: &[f32; SUB + 1], sumw: &[f32; SUB + 1]) -> Option<Pick> {
    let mut scan = BestScan::new();
    for i1 in 0..=SUB {
        for i2 in i1..=SUB {
            let sx = [sumx[i1] - sumx[0], sumx[i2] - sumx[i1], sumx[SUB] - sumx[i2]];
            let sw = [sumw[i1] - sumw[0], sumw[i2] - sumw[i1], sumw[SUB] - sumw[i2]];
            for (p, v) in PATTERNS.iter().enumerate() {
                let sumqx = sx[0] * v[0] + sx[1] * v[1] + sx[2] * v[2];
                let sumq2 = sw[0] * v[0] * v[0] + sw[1] * v[1] * v[1] + sw[2] * v[2] * v[2];
                scan.consider((i1, i2, p), sumqx, sumq2);
            }
        }
    }
    scan.pick
}

/// [`split_scalar`]'s pick with 8 values of i2 per vector ([`super::iq1_lanes`]).
fn split_fast(sumx: &[f32; SUB + 1], sumw: &[f32; SUB + 1]) -> Option<Pick> {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
        return unsafe { split_avx2(sumx, sumw) };
    }
    split_lanes::<Portable>(sumx, sumw)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn split_avx2(sumx: &[f32; SUB + 1], sumw: &[f32; SUB + 1]) -> Option<Pick> {
    split_lanes::<super::lanes::Avx2>(sumx, sumw)
}

#[inline(always)]
fn split_lanes<S: Isa>(sumx: &[f32; SUB + 1], sumw: &[f32; SUB + 1]) -> Option<Pick> {
    let mut scan = BestScan::new();
    let (px, pw): ([f32; SUB + 8], [f32; SUB + 8]) = (padded(sumx), padded(sumw));
    let (xend, wend) = (F8::<S>::splat(sumx[SUB]), F8::<S>::splat(sumw[SUB]));
    for i1 in 0..=SUB {
        let (sx0, sw0) = (F8::<S>::splat(sumx[i1] - sumx[0]), F8::<S>::splat(sumw[i1] - sumw[0]));
        let (x1, w1) = (F8::<S>::splat(sumx[i1]), F8::<S>::splat(sumw[i1]));
        for i2_0 in (i1..=SUB).step_by(8) {
            let (x2, w2) = (F8::<S>::load(&px[i2_0..]), F8::<S>::load(&pw[i2_0..]));
            let (sx1, sx2, sw1, sw2) = (x2 - x1, xend - x2, w2 - w1, wend - w2);
            let (mut qx, mut q2) = ([F8::zero(); 2], [F8::zero(); 2]);
            for (p, v) in PATTERNS.iter().enumerate() {
                let (v0, v1, v2) = (F8::splat(v[0]), F8::splat(v[1]), F8::splat(v[2]));
                qx[p] = sx0 * v0 + sx1 * v1 + sx2 * v2;
                q2[p] = sw0 * v0 * v0 + sw1 * v1 * v1 + sw2 * v2 * v2;
            }
            scan.offer::<S, 2>(i1, i2_0, (SUB + 1 - i2_0).min(8), &qx, &q2);
        }
    }
    scan.pick
}

/// One sub-block: its scale and shift, and its four grid indices in `index` (None: the
/// sub-block stays zero, shift +).
fn quantize_sub_block(x: &[f32], w: &[f32], index: &mut [u16; 4]) -> Option<(f32, i8)> {
    let max = x[1..].iter().fold(x[0].abs(), |m, v| c_max(m, v.abs()));
    if max < GROUP_MAX_EPS {
        return None;
    }
    let mut order = [0u8; SUB];
    sort_indices(x, &mut order);
    let (i1, i2, mut shift, mut scale) = best_split(x, w, &order)?;
    let mut l = [0u8; SUB];
    split_levels(&order, i1, i2, &mut l);
    if scale < 0.0 {
        l.iter_mut().for_each(|v| *v = 2 - *v);
        scale = -scale;
        shift = -shift;
    }
    let v = if shift == 1 { &SHIFT_UP } else { &SHIFT_DOWN };
    let grid = iq_grid::iq1s();
    let mut all_on_grid = true;
    for (k, ix) in index.iter_mut().enumerate() {
        let g = 8 * k..8 * k + 8;
        let (j, on) = group_index(grid, &l[g.clone()], &x[g.clone()], &w[g], scale, v);
        *ix = j;
        all_on_grid &= on;
    }
    if !all_on_grid {
        scale = refit_scale(grid, index, x, w, &[v; 4], scale);
    }
    Some((scale, shift))
}

/// ggml `quantize_row_iq1_s_impl` for one superblock with importance weights `qw`.
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    out.fill(0);
    let sigma2 = 2.0 * super::kquant::sum_sq(x) / BLOCK as f32;
    let mut scales = [0f32; BLOCK / SUB];
    let mut shifts = [1i8; BLOCK / SUB];
    let mut max_scale = 0.0f32;
    let mut w = [0f32; SUB];
    for ib in 0..BLOCK / SUB {
        let xb = &x[SUB * ib..SUB * (ib + 1)];
        super::kquant::importance(xb, &qw[SUB * ib..SUB * (ib + 1)], sigma2, &mut w);
        let mut index = [0u16; 4];
        let Some((scale, shift)) = quantize_sub_block(xb, &w, &mut index) else { continue };
        let mut h = 0u16;
        for (k, &j) in index.iter().enumerate() {
            out[2 + 4 * ib + k] = j as u8;
            h |= (j >> 8) << (3 * k);
        }
        out[34 + 2 * ib..36 + 2 * ib].copy_from_slice(&h.to_le_bytes());
        scales[ib] = scale;
        shifts[ib] = shift;
        max_scale = c_max(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 15.0;
    // ggml's 1.125 on the stored d is an empirical fudge factor.
    out[..2].copy_from_slice(&fp16_bytes(d * 1.125));
    let id = 1.0 / d;
    for ib in 0..BLOCK / SUB {
        let mut l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7) as u8;
        if shifts[ib] == -1 {
            l |= 8;
        }
        out[35 + 2 * ib] |= l << 4;
    }
}

/// A row with importance weights, superblock by superblock (ggml `quantize_iq1_s`).
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}

/// ggml `dequantize_row_iq1_s`: y = d·(2ls + 1)·(g + δ).
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let grid = iq_grid::iq1s();
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        for ib in 0..BLOCK / SUB {
            let qh = u16::from_le_bytes([b[34 + 2 * ib], b[35 + 2 * ib]]);
            let dl = d * (2 * ((qh >> 12) & 7) + 1) as f32;
            let delta = if qh & 0x8000 != 0 { -DELTA } else { DELTA };
            for k in 0..4 {
                let j = b[2 + 4 * ib + k] as usize | (((qh >> (3 * k)) & 7) as usize) << 8;
                out.extend(grid.decoded(j, &[-1, 0, 1]).map(|g| dl * (g as f32 + delta)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prefix sums of the kinds that break the vector scan: random, ties (equal steps),
    /// zero weights, NaN, inf, negative.
    fn adversarial_prefix_sums() -> Vec<([f32; SUB + 1], [f32; SUB + 1])> {
        let mut next = crate::quant::test_values(17);
        let mut out = Vec::new();
        for kind in 0..24 {
            let (mut sx, mut sw) = ([0f32; SUB + 1], [0f32; SUB + 1]);
            for j in 0..SUB {
                let (dx, dw) = match kind % 6 {
                    0 => (next(), next().abs()),
                    1 => (0.25, 1.0),
                    2 => (next(), 0.0),
                    3 if j == 7 => (f32::NAN, 1.0),
                    4 if j == 3 => (f32::INFINITY, 1.0),
                    5 => (-next().abs() * 3.0, next().abs()),
                    _ => ((j as f32 - 16.0) * 0.1, 0.5),
                };
                sx[j + 1] = sx[j] + dx;
                sw[j + 1] = sw[j] + dw;
            }
            out.push((sx, sw));
        }
        out
    }

    #[test]
    fn vector_split_is_the_scalar_split() {
        for (sx, sw) in adversarial_prefix_sums() {
            let want = split_scalar(&sx, &sw).map(|(a, b, p, s)| (a, b, p, s.to_bits()));
            let bits = |p: Option<Pick>| p.map(|(a, b, p, s)| (a, b, p, s.to_bits()));
            assert_eq!(bits(split_lanes::<Portable>(&sx, &sw)), want, "baseline on {sx:?} {sw:?}");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                assert_eq!(bits(unsafe { split_avx2(&sx, &sw) }), want, "AVX2 on {sx:?} {sw:?}");
            }
        }
    }

    /// The vector scan picks the scalar scan's neighbour (or none when the scalar finds none).
    #[test]
    fn vector_neighbour_scan_is_the_scalar_scan() {
        let grid = iq_grid::iq1s();
        let mut next = crate::quant::test_values(23);
        let mut checked = 0;
        for i in (0..43692usize).step_by(97) {
            let l: [u8; 8] = std::array::from_fn(|k| ((i >> (2 * k)) & 3).min(2) as u8);
            let Lookup::Off(candidates) = grid.lookup(&l) else { continue };
            if candidates.len() < 8 {
                continue;
            }
            let mut x: Vec<f32> = (0..8).map(|_| next()).collect();
            let mut w: Vec<f32> = (0..8).map(|_| next().abs()).collect();
            match i % 4 {
                1 => w.fill(0.0),
                2 => x[i % 8] = f32::NAN,
                3 => x[i % 8] = 3e38,
                _ => {}
            }
            let scaled = SHIFT_UP.map(|q| 0.7 * q);
            let want = first_nearest_scalar(grid, candidates.iter().copied(), &x, &w, &scaled);
            assert_eq!(first_nearest_lanes::<Portable>(grid, candidates, &x, &w, &scaled), want, "baseline");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                let got = unsafe { first_nearest_avx2(grid, candidates, &x, &w, &scaled) };
                assert_eq!(got, want, "AVX2 on {x:?} {w:?}");
            }
            checked += 1;
        }
        assert!(checked > 50, "{checked} lists");
    }

    #[test]
    fn sort_is_glibcs_merge_order() {
        // Ties (0.0 and −0.0 among them) keep index order, as glibc's merge sort leaves them.
        let x = [1.0f32, -0.0, 0.0, -2.0, 1.0, 0.0, -2.0, 3.0, -0.0];
        let mut order = [0u8; 9];
        sort_indices(&x, &mut order);
        assert_eq!(order, [3, 6, 1, 2, 5, 8, 0, 4, 7]);
        let mut merged: [u8; 9] = std::array::from_fn(|i| i as u8);
        merge_sort(&mut merged, &x, &mut [0u8; 9]);
        assert_eq!(merged, order);
        // With a NaN the comparison is no order; glibc's merges decide (its qsort gives this).
        let x = [2.0f32, f32::NAN, 1.0, 0.5];
        let mut order = [0u8; 4];
        sort_indices(&x, &mut order);
        assert_eq!(order, [3, 2, 0, 1]);
    }
}
