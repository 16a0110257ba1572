//! GGML_TYPE_IQ1_M: superblocks of 256 as `{ u8 qs[32]; u8 qh[16]; u8 scales[8]; }` (56
//! bytes). Each sub-block of 16 is two groups of 8 on IQ1_S's 2048-point grid (levels −1, 0,
//! 1): 11-bit grid indices (low bytes in qs; high 3 bits in qh bits 0..2 and 4..6), each
//! group's shift δ = ±1/8 in qh bit 3 / 7 (set: −), and a 3-bit scale ls (four per u16 of
//! `scales`, bits 3i..3i+2). The superblock's f16 d is spread over the top nibbles of those
//! four u16: x ≈ d·(2ls + 1)·(g + δ). llama-quantize calls `quantize_iq1_m` (with the
//! importance matrix if given, else weights x²): per sub-block, the exact three-level split of
//! the sorted values with the best weighted least-squares scale over the four shift patterns,
//! groups off the grid replaced by their best neighbour, then the scales to 3 bits and d
//! refitted to them.

use super::iq1_lanes::{padded, BestScan, Pick};
use super::iq1_s::{group_index, refit_scale, sort_indices, split_levels, DELTA, SHIFT_DOWN, SHIFT_UP};
use super::iq_grid::{self, Grid};
use super::kquant::{fp16_at, fp16_bytes, nearest_int};
use super::lanes::{Isa, Portable, F8};
use super::q8_0::c_max;

pub const BLOCK: usize = 256;
pub const BYTES: usize = 56;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(29, "iq1_m", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);

/// Elements per sub-block (`IQ1M_BLOCK_SIZE`).
const SUB: usize = 16;
/// `GROUP_MAX_EPS_IQ1_M`: sub-blocks whose largest |x| is below this are left zero.
const GROUP_MAX_EPS: f32 = 1e-7;
/// qh shift bits of the patterns ++, +−, −+, −− (first group, second group).
const SHIFT_BITS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];

/// The value tables of a sub-block's two groups under shift pattern `k`.
fn group_values(k: usize) -> [&'static [f32; 3]; 2] {
    [if k < 2 { &SHIFT_UP } else { &SHIFT_DOWN }, if k.is_multiple_of(2) { &SHIFT_UP } else { &SHIFT_DOWN }]
}

/// Prefix sums over the sorted `order` of w·x and w, kept per half of the sub-block (each
/// half's group can take its own shift).
fn half_prefix_sums(x: &[f32], w: &[f32], order: &[u8]) -> ([[f32; SUB + 1]; 2], [[f32; SUB + 1]; 2]) {
    let mut px = [[0f32; SUB + 1]; 2];
    let mut pw = [[0f32; SUB + 1]; 2];
    for (j, &i) in order.iter().enumerate() {
        let i = i as usize;
        let h = (i >= SUB / 2) as usize;
        px[h][j + 1] = px[h][j] + w[i] * x[i];
        px[1 - h][j + 1] = px[1 - h][j];
        pw[h][j + 1] = pw[h][j] + w[i];
        pw[1 - h][j + 1] = pw[1 - h][j];
    }
    (px, pw)
}

/// The best split of a sub-block in sorted `order` over both boundaries and the four shift
/// patterns (ggml's closed form: with level steps of 1, a split's Σw·q·x is T·v₂ − S(i1) −
/// S(i2)): `(i1, i2, pattern, scale)`, or None.
fn best_split(x: &[f32], w: &[f32], order: &[u8]) -> Option<(usize, usize, usize, f32)> {
    let sums = Sums::new(x, w, order);
    if super::reference_kernels() {
        return split_scalar(&sums);
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
        return unsafe { split_avx2(&sums) };
    }
    split_lanes::<Portable>(&sums)
}

/// A sub-block's prefix sums per half, padded for 8-lane loads, and the closed form's
/// constants.
struct Sums {
    px: [[f32; SUB + 8]; 2],
    pw: [[f32; SUB + 8]; 2],
    txs: [f32; 2],
    tws: [f32; 2],
}

/// (v₂, v₀² − v₁², v₁² − v₂²) of the shift up and down.
fn closed_form_constants() -> [[f32; 3]; 2] {
    [SHIFT_UP, SHIFT_DOWN].map(|v| [v[2], v[0] * v[0] - v[1] * v[1], v[1] * v[1] - v[2] * v[2]])
}

impl Sums {
    fn new(x: &[f32], w: &[f32], order: &[u8]) -> Sums {
        let (px, pw) = half_prefix_sums(x, w, order);
        Sums {
            px: px.map(|p| padded(&p)),
            pw: pw.map(|p| padded(&p)),
            txs: [px[0][SUB], px[1][SUB]],
            tws: [pw[0][SUB], pw[1][SUB]],
        }
    }
}

/// ggml's loop over (i1, i2, pattern).
fn split_scalar(s: &Sums) -> Option<Pick> {
    let [[p2, cp1, cp2], [m2, cm1, cm2]] = closed_form_constants();
    let (px, pw, txs, tws) = (&s.px, &s.pw, s.txs, s.tws);
    let mut scan = BestScan::new();
    for i1 in 0..=SUB {
        for i2 in i1..=SUB {
            let (mut qx_p, mut qx_m, mut q2_p, mut q2_m) = ([0f32; 2], [0f32; 2], [0f32; 2], [0f32; 2]);
            for h in 0..2 {
                let sx = px[h][i1] + px[h][i2];
                qx_p[h] = txs[h] * p2 - sx;
                qx_m[h] = txs[h] * m2 - sx;
                q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
            }
            let sumqx = [qx_p[0] + qx_p[1], qx_p[0] + qx_m[1], qx_m[0] + qx_p[1], qx_m[0] + qx_m[1]];
            let sumq2 = [q2_p[0] + q2_p[1], q2_p[0] + q2_m[1], q2_m[0] + q2_p[1], q2_m[0] + q2_m[1]];
            for k in 0..4 {
                scan.consider((i1, i2, k), sumqx[k], sumq2[k]);
            }
        }
    }
    scan.pick
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn split_avx2(s: &Sums) -> Option<Pick> {
    split_lanes::<super::lanes::Avx2>(s)
}

/// [`split_scalar`]'s pick with 8 values of i2 per vector ([`super::iq1_lanes`]).
#[inline(always)]
fn split_lanes<S: Isa>(s: &Sums) -> Option<Pick> {
    let [[p2, cp1, cp2], [m2, cm1, cm2]] = closed_form_constants().map(|c| c.map(F8::<S>::splat));
    let mut scan = BestScan::new();
    for i1 in 0..=SUB {
        for i2_0 in (i1..=SUB).step_by(8) {
            let (mut qx_p, mut qx_m) = ([F8::<S>::zero(); 2], [F8::<S>::zero(); 2]);
            let (mut q2_p, mut q2_m) = ([F8::<S>::zero(); 2], [F8::<S>::zero(); 2]);
            for h in 0..2 {
                let (txs, tws) = (F8::splat(s.txs[h]), F8::splat(s.tws[h]));
                let (px1, pw1) = (F8::splat(s.px[h][i1]), F8::splat(s.pw[h][i1]));
                let (px2, pw2) = (F8::load(&s.px[h][i2_0..]), F8::load(&s.pw[h][i2_0..]));
                let sx = px1 + px2;
                qx_p[h] = txs * p2 - sx;
                qx_m[h] = txs * m2 - sx;
                q2_p[h] = tws * p2 * p2 + pw1 * cp1 + pw2 * cp2;
                q2_m[h] = tws * m2 * m2 + pw1 * cm1 + pw2 * cm2;
            }
            let qx = [qx_p[0] + qx_p[1], qx_p[0] + qx_m[1], qx_m[0] + qx_p[1], qx_m[0] + qx_m[1]];
            let q2 = [q2_p[0] + q2_p[1], q2_p[0] + q2_m[1], q2_m[0] + q2_p[1], q2_m[0] + q2_m[1]];
            scan.offer::<S, 4>(i1, i2_0, (SUB + 1 - i2_0).min(8), &qx, &q2);
        }
    }
    scan.pick
}

/// One sub-block: its scale and shift pattern, and its two grid indices in `index` (None:
/// the sub-block stays zero, pattern ++).
fn quantize_sub_block(x: &[f32], w: &[f32], index: &mut [u16; 2]) -> Option<(f32, usize)> {
    let max = x[1..].iter().fold(x[0].abs(), |m, v| c_max(m, v.abs()));
    if max < GROUP_MAX_EPS {
        return None;
    }
    let mut order = [0u8; SUB];
    sort_indices(x, &mut order);
    let (i1, i2, mut k, mut scale) = best_split(x, w, &order)?;
    let mut l = [0u8; SUB];
    split_levels(&order, i1, i2, &mut l);
    if scale < 0.0 {
        l.iter_mut().for_each(|v| *v = 2 - *v);
        scale = -scale;
        // Negating flips both groups' shifts.
        k = 3 - k;
    }
    let values = group_values(k);
    let grid = iq_grid::iq1s();
    let mut all_on_grid = true;
    for (g, ix) in index.iter_mut().enumerate() {
        let r = 8 * g..8 * g + 8;
        let (j, on) = group_index(grid, &l[r.clone()], &x[r.clone()], &w[r], scale, values[g]);
        *ix = j;
        all_on_grid &= on;
    }
    if !all_on_grid {
        scale = refit_scale(grid, index, x, w, &values, scale);
    }
    Some((scale, k))
}

/// Weights of one sub-block: the importance matrix's times sqrt(σ² + x²), or x².
fn weights(x: &[f32], qw: Option<&[f32]>, sigma2: f32, out: &mut [f32]) {
    match qw {
        Some(qw) => super::kquant::importance(x, qw, sigma2, out),
        None => out.iter_mut().zip(x).for_each(|(o, &v)| *o = v * v),
    }
}

/// d refitted to the 3-bit scales `ls` and the stored grid points: Σw·q·x / Σw·q² with
/// q = v[l]·(2ls + 1), or `d` unless Σw·q² is positive.
fn refit_d(grid: &Grid<8>, x: &[f32], w: &[f32], out: &[u8], ls: &[i32; BLOCK / SUB], shifts: &[usize], d: f32) -> f32 {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for ib in 0..BLOCK / SUB {
        let values = group_values(shifts[ib]);
        let qh = out[32 + ib] as usize;
        for g in 0..2 {
            let j = out[2 * ib + g] as usize | ((qh << (8 - 4 * g)) & 0x700);
            for (i, &p) in grid.points[j].iter().enumerate() {
                let e = SUB * ib + 8 * g + i;
                let q = values[g][(p >> 1) as usize] * (2 * ls[ib] + 1) as f32;
                let wq = w[e] * q;
                sumqx += wq * x[e];
                sumq2 += wq * q;
            }
        }
    }
    if sumq2 > 0.0 {
        sumqx / sumq2
    } else {
        d
    }
}

/// ggml `quantize_row_iq1_m_impl` for one superblock, with importance weights `qw` or none.
fn quantize_superblock(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    out.fill(0);
    let sigma2 = 2.0 * super::kquant::sum_sq(x) / BLOCK as f32;
    let mut w = [0f32; BLOCK];
    let mut scales = [0f32; BLOCK / SUB];
    let mut shifts = [0usize; BLOCK / SUB];
    let mut max_scale = 0.0f32;
    for ib in 0..BLOCK / SUB {
        let r = SUB * ib..SUB * (ib + 1);
        weights(&x[r.clone()], qw.map(|q| &q[r.clone()]), sigma2, &mut w[r.clone()]);
        let mut index = [0u16; 2];
        let Some((scale, k)) = quantize_sub_block(&x[r.clone()], &w[r], &mut index) else { continue };
        out[2 * ib] = index[0] as u8;
        out[2 * ib + 1] = index[1] as u8;
        out[32 + ib] = ((index[0] >> 8) | ((index[1] >> 8) << 4)) as u8;
        scales[ib] = scale;
        shifts[ib] = k;
        max_scale = c_max(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 15.0;
    let id = 1.0 / d;
    let mut sc = [0u16; 4];
    let mut ls = [0i32; BLOCK / SUB];
    for ib in 0..BLOCK / SUB {
        ls[ib] = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
        sc[ib / 4] |= (ls[ib] as u16) << (3 * (ib % 4));
        out[32 + ib] |= SHIFT_BITS[shifts[ib]];
    }
    let d = refit_d(iq_grid::iq1s(), x, &w, out, &ls, &shifts, d);
    // ggml's 1.1125 on the stored d is an empirical fudge factor.
    let s = u16::from_le_bytes(fp16_bytes(d * 1.1125));
    sc[0] |= (s & 0x000f) << 12;
    sc[1] |= (s & 0x00f0) << 8;
    sc[2] |= (s & 0x0f00) << 4;
    sc[3] |= s & 0xf000;
    for (o, v) in out[48..56].chunks_exact_mut(2).zip(sc) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}

/// Without importance weights (ggml `quantize_iq1_m` given none: weights x²).
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_superblock(x, None, out);
}

/// With an importance matrix (ggml `quantize_iq1_m` given weights).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    quantize_superblock(x, Some(qw), out);
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// A row with importance weights, superblock by superblock.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}

/// ggml `dequantize_row_iq1_m`: y = d·(2ls + 1)·(g + δ).
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let grid = iq_grid::iq1s();
    for b in src.chunks_exact(BYTES) {
        let sc: [u16; 4] = std::array::from_fn(|i| u16::from_le_bytes([b[48 + 2 * i], b[49 + 2 * i]]));
        let d_bits = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
        let d = fp16_at(&d_bits.to_le_bytes());
        for ib in 0..BLOCK / 32 {
            let s = sc[ib / 2] >> (6 * (ib % 2));
            let dl = [d * (2 * (s & 7) + 1) as f32, d * (2 * ((s >> 3) & 7) + 1) as f32];
            for g in 0..4 {
                let qh = b[32 + 2 * ib + g / 2] as usize;
                let nibble = qh >> (4 * (g % 2));
                let j = b[4 * ib + g] as usize | (nibble & 7) << 8;
                let delta = if nibble & 8 != 0 { -DELTA } else { DELTA };
                let dl = dl[g / 2];
                out.extend(grid.decoded(j, &[-1, 0, 1]).map(|v| dl * (v as f32 + delta)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector split search picks the scalar one's split on random, tied, zero-weight,
    /// NaN, inf and one-sided sub-blocks.
    #[test]
    fn vector_split_is_the_scalar_split() {
        let mut next = crate::quant::test_values(29);
        for kind in 0..36 {
            let mut x: Vec<f32> = (0..SUB).map(|_| next()).collect();
            let mut w: Vec<f32> = (0..SUB).map(|_| next().abs()).collect();
            match kind % 6 {
                1 => x.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 3) as f32 - 1.0),
                2 => w.iter_mut().step_by(2).for_each(|v| *v = 0.0),
                3 => x[kind % SUB] = f32::NAN,
                4 => x[kind % SUB] = f32::INFINITY,
                5 => x.iter_mut().for_each(|v| *v = v.abs() + 0.5),
                _ => {}
            }
            let mut order = [0u8; SUB];
            sort_indices(&x, &mut order);
            let sums = Sums::new(&x, &w, &order);
            let bits = |p: Option<Pick>| p.map(|(a, b, k, s)| (a, b, k, s.to_bits()));
            let want = bits(split_scalar(&sums));
            assert_eq!(bits(split_lanes::<Portable>(&sums)), want, "baseline on {x:?} {w:?}");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                assert_eq!(bits(unsafe { split_avx2(&sums) }), want, "AVX2 on {x:?} {w:?}");
            }
        }
    }
}
