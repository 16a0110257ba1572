//! Helpers shared by the K-quant encoders, ported from ggml `ggml-quants.c`: `nearest_int`,
//! `make_qkx2_quants` (Q4_K, Q5_K), `make_qx_quants` (Q6_K), the Q4_K/Q5_K 12-byte packing
//! of 6-bit scales and mins (`get_scale_min_k4`), and the two passes Q4_K and Q5_K share
//! (`quantize_row_q4_K_ref` and `quantize_row_q5_K_ref` differ only in nmax, the search
//! grid and the bit layout of the levels).
//!
//! Every sum runs in the C order with f32 operations and no fused multiply-add, so results
//! are bit-identical to an x86-64 ggml build (which compiles ggml-quants.c without FMA).

/// Elements per K-quant superblock (`QK_K`).
pub(crate) const QK_K: usize = 256;

/// `GROUP_MAX_EPS`: below this largest |x|, `make_qx_quants` treats a group as all zero.
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// For searches that run L groups of N values side by side (group k is `x[N·k..N·k + N]`):
/// per group, the first element of largest magnitude (ggml's `if (ax > amax)` scan), or 1
/// where the group is flat (largest |x| below [`GROUP_MAX_EPS`]: that lane then runs on
/// harmless values and its result is dropped), and which groups are flat. Always inlined:
/// out of line, IQ4's search (an AVX2 copy) ran ~10 % slower.
#[inline(always)]
pub(crate) fn first_max_per_group<const N: usize, const L: usize>(x: &[f32]) -> ([f32; L], [bool; L]) {
    let (mut max, mut flat) = ([0f32; L], [false; L]);
    for k in 0..L {
        let (mut amax, mut m) = (0.0f32, 0.0f32);
        for &v in &x[N * k..N * k + N] {
            if v.abs() > amax {
                amax = v.abs();
                m = v;
            }
        }
        flat[k] = amax < GROUP_MAX_EPS;
        max[k] = if flat[k] { 1.0 } else { m };
    }
    (max, flat)
}

/// ggml's `nearest_int`: adding 1.5·2^23 leaves round-half-even(f) in the low mantissa bits.
/// Kept as the bit trick rather than `round_ties_even` so that out-of-range arguments (±inf
/// when a denormal group range makes `iscale` overflow) give what C gives with asserts off.
#[inline]
pub(crate) fn nearest_int(f: f32) -> i32 {
    let val = f + 12582912.0;
    (val.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// `make_qkx2_quants`' scale search: `nstep + 1` candidates from `rmin` in steps of
/// `rdelta` (added to nmax), judged by squared or (`use_mad`) absolute error.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Search {
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    pub use_mad: bool,
    /// ggml `make_qkx3_quants` (the importance-weighted paths): candidate levels clamp
    /// their argument before rounding (`nearest_int(min(v, nmax))`, 0 unless v > 0), which
    /// differs from `make_qkx2_quants`' clamp after rounding for infinite or huge v.
    pub clamp_first: bool,
}

impl Search {
    /// `make_qkx3_quants`' search of the importance-weighted paths: rmin −0.9, rdelta 0.05,
    /// 36 steps, squared error.
    pub(crate) const WEIGHTED: Search =
        Search { rmin: -0.9, rdelta: 0.05, nstep: 36, use_mad: false, clamp_first: true };
}

/// ggml `make_qkx2_quants` (and `make_qkx3_quants`, `search.clamp_first`): an asymmetric quantization of `x` to levels 0..=nmax, searching
/// `nstep + 1` candidate scales by weighted least squares, judged by the weighted squared
/// error (or, `use_mad`, absolute error: Q2_K).
/// Writes the levels to `l` and returns `(scale, the_min)`, where `the_min` is the positive
/// magnitude of the (non-positive) offset: x ≈ scale·l − the_min.
pub(crate) fn make_qkx2_quants(nmax: i32, x: &[f32], weights: &[f32], l: &mut [u8], search: Search) -> (f32, f32) {
    let Search { nstep, use_mad, .. } = search;
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += w;
        sum_x += w * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l[..n].fill(0);
        return (0.0, -min);
    }
    let nmax_f = nmax as f32;
    let iscale = nmax_f / (max - min);
    let scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for ((li, &v), &w) in l.iter_mut().zip(x).zip(weights) {
        *li = nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
        let diff = scale * *li as f32 + min - v;
        best_error += w * if use_mad { diff.abs() } else { diff * diff };
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let best = Best { error: best_error, scale, min };
    let best = search_candidates(nmax, x, weights, max, (sum_w, sum_x), search, best, l);
    (best.scale, -best.min)
}

/// The best fit so far of [`make_qkx2_quants`]' search.
#[derive(Clone, Copy)]
struct Best {
    error: f32,
    scale: f32,
    min: f32,
}

/// A candidate's levels: `nearest_int(iscale·(v − min))` clamped to 0..=nmax (after rounding,
/// or before it: `clamp_first`).
#[inline(always)]
fn candidate_level(t: f32, nmax: i32, nmax_f: f32, clamp_first: bool) -> i32 {
    if clamp_first {
        if t > 0.0 {
            nearest_int(t.min(nmax_f))
        } else {
            0
        }
    } else {
        nearest_int(t).clamp(0, nmax)
    }
}

/// The least-squares (scale, min) of a candidate from its sums, or `None` when degenerate.
#[inline(always)]
fn candidate_fit(sum_w: f32, sum_x: f32, sum_l: f32, sum_l2: f32, sum_xl: f32) -> Option<(f32, f32)> {
    let d = sum_w * sum_l2 - sum_l * sum_l;
    if d > 0.0 {
        let this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
        let this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
        if this_min > 0.0 {
            return Some((sum_xl / sum_l2, 0.0));
        }
        return Some((this_scale, this_min));
    }
    None
}

/// The candidate search, one candidate after another as ggml runs it.
#[allow(clippy::too_many_arguments)]
fn search_candidates(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    max: f32,
    (sum_w, sum_x): (f32, f32),
    search: Search,
    mut best: Best,
    l: &mut [u8],
) -> Best {
    let Search { rmin, rdelta, nstep, use_mad, clamp_first } = search;
    let nmax_f = nmax as f32;
    let mut laux = [0u8; 32];
    let laux = &mut laux[..x.len()];
    for is in 0..=nstep {
        // ggml moves the offset to each better candidate's, and later candidates start there.
        let min = best.min;
        let iscale = (rmin + rdelta * is as f32 + nmax_f) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((la, &v), &w) in laux.iter_mut().zip(x).zip(weights) {
            let q = candidate_level(iscale * (v - min), nmax, nmax_f, clamp_first);
            *la = q as u8;
            let q = q as f32;
            sum_l += w * q;
            sum_l2 += w * q * q;
            sum_xl += w * q * v;
        }
        let Some((this_scale, this_min)) = candidate_fit(sum_w, sum_x, sum_l, sum_l2, sum_xl) else { continue };
        let mut cur_error = 0.0f32;
        for ((&la, &v), &w) in laux.iter().zip(x).zip(weights) {
            let diff = this_scale * la as f32 + this_min - v;
            cur_error += w * if use_mad { diff.abs() } else { diff * diff };
        }
        if cur_error < best.error {
            l[..x.len()].copy_from_slice(laux);
            best = Best { error: cur_error, scale: this_scale, min: this_min };
        }
    }
    best
}

/// ggml `make_qx_quants` with `rmse_type = 1`: a symmetric quantization to levels
/// −nmax..nmax−1, stored in `l` offset by nmax, weighted by `qw` (importance) or x², trying 18
/// scales around nmax/max. Returns the scale (x ≈ scale·(l − nmax)).
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [u8], qw: Option<&[f32]>) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l[..x.len()].fill(0);
        return 0.0;
    }
    if !super::reference_kernels() {
        return make_qx_quants_lanes(nmax, x, max, l, qw, qx_sums_dispatch);
    }
    make_qx_quants_ref(nmax, x, max, l, qw)
}

/// The one-candidate-at-a-time search, as ggml runs it.
fn make_qx_quants_ref(nmax: i32, x: &[f32], max: f32, l: &mut [u8], qw: Option<&[f32]>) -> f32 {
    let nmax_f = nmax as f32;
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    // Σ w·x·l and Σ w·l², with w = x², summed in element order.
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for (i, &v) in x.iter().enumerate() {
            let q = level(iscale, v) as f32;
            let w = qw.map_or(v * v, |w| w[i]);
            sumlx += w * v * q;
            suml2 += w * q * q;
        }
        (sumlx, suml2)
    };
    let iscale = -nmax_f / max;
    for (li, &v) in l.iter_mut().zip(x) {
        *li = (level(iscale, v) + nmax) as u8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(nmax_f + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &v) in l.iter_mut().zip(x) {
                *li = (level(iscale, v) + nmax) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `make_qx_quants`' first guess and its 18 candidates, each a lane.
const QX_CANDIDATES: usize = 19;
/// Lanes summed: the candidates and copies of the first up to a multiple of 8, so the
/// compiler vectorizes every lane (with 19, three were summed one at a time).
const QX_LANES: usize = QX_CANDIDATES.next_multiple_of(8);
/// Each lane's step `is` (the first guess's 0, then −9..−1, 1..9, then the copies' 0).
const QX_STEPS: [f32; QX_LANES] = {
    let mut steps = [0.0; QX_LANES];
    let mut k = 1;
    while k < QX_CANDIDATES {
        let is = k as i32 - 10;
        steps[k] = (if is < 0 { is } else { is + 1 }) as f32;
        k += 1;
    }
    steps
};

/// [`make_qx_quants`] with every candidate's sums computed side by side (each lane in
/// element order, as the one-at-a-time search sums), then chosen in the same order. `max`
/// is the first value of largest magnitude.
fn make_qx_quants_lanes(nmax: i32, x: &[f32], max: f32, l: &mut [u8], qw: Option<&[f32]>, sums: QxSumsFn) -> f32 {
    let nmax_f = nmax as f32;
    // The first guess's −nmax/max too: nmax + 0.1·0 is nmax.
    let iscales: [f32; QX_LANES] = std::array::from_fn(|k| -(nmax_f + 0.1 * QX_STEPS[k]) / max);
    let (sumlx, suml2) = sums(nmax, x, qw, &iscales);
    let mut scale = if suml2[0] != 0.0 { sumlx[0] / suml2[0] } else { 0.0 };
    let mut best = scale * sumlx[0];
    let mut winner = 0;
    for k in 1..QX_CANDIDATES {
        if suml2[k] > 0.0 && sumlx[k] * sumlx[k] > best * suml2[k] {
            scale = sumlx[k] / suml2[k];
            best = scale * sumlx[k];
            winner = k;
        }
    }
    for (li, &v) in l.iter_mut().zip(x) {
        *li = (nearest_int(iscales[winner] * v).clamp(-nmax, nmax - 1) + nmax) as u8;
    }
    scale
}

fn qx_sums_dispatch(nmax: i32, x: &[f32], qw: Option<&[f32]>, iscales: &[f32; QX_LANES]) -> QxSums {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
        return unsafe { qx_sums_avx2(nmax, x, qw, iscales) };
    }
    qx_sums(nmax, x, qw, iscales)
}

type QxSums = ([f32; QX_LANES], [f32; QX_LANES]);
type QxSumsFn = fn(i32, &[f32], Option<&[f32]>, &[f32; QX_LANES]) -> QxSums;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn qx_sums_avx2(nmax: i32, x: &[f32], qw: Option<&[f32]>, iscales: &[f32; QX_LANES]) -> QxSums {
    qx_sums(nmax, x, qw, iscales)
}

/// Per lane, Σ w·x·l and Σ w·l² (w = the importance weight or x²) in element order.
#[inline(always)]
fn qx_sums(nmax: i32, x: &[f32], qw: Option<&[f32]>, iscales: &[f32; QX_LANES]) -> QxSums {
    // Finite x and scales: every |iscale·x| ≤ (nmax + 0.9)·|x|/|max| is far below 2²².
    if x.iter().chain(iscales).all(|v| v.is_finite()) {
        qx_sums_rounded::<true>(nmax, x, qw, iscales)
    } else {
        qx_sums_rounded::<false>(nmax, x, qw, iscales)
    }
}

/// [`qx_sums`], the levels rounded in floats (`(t + 1.5·2²³) − 1.5·2²³`, exact below 2²² in
/// magnitude, where it is `nearest_int`) or with `nearest_int`'s bits (any product).
#[inline(always)]
fn qx_sums_rounded<const IN_FLOATS: bool>(
    nmax: i32,
    x: &[f32],
    qw: Option<&[f32]>,
    iscales: &[f32; QX_LANES],
) -> QxSums {
    let (lowest, highest) = (-nmax as f32, (nmax - 1) as f32);
    let (mut sumlx, mut suml2) = ([0.0f32; QX_LANES], [0.0f32; QX_LANES]);
    for (i, &v) in x.iter().enumerate() {
        let w = qw.map_or(v * v, |w| w[i]);
        for k in 0..QX_LANES {
            let t = iscales[k] * v;
            let q = if IN_FLOATS {
                let r = (t + 12582912.0) - 12582912.0;
                let r = if r < lowest { lowest } else { r };
                if r > highest {
                    highest
                } else {
                    r
                }
            } else {
                nearest_int(t).clamp(-nmax, nmax - 1) as f32
            };
            sumlx[k] += w * v * q;
            suml2[k] += w * q * q;
        }
    }
    (sumlx, suml2)
}

/// ggml `make_qp_quants`: non-negative `x` (sub-block scales or mins) to levels 0..=nmax,
/// weighted by `qw`: 9 candidate scales by weighted squared error, then up to five passes of
/// single-level changes. Returns the scale.
pub(crate) fn make_qp_quants(nmax: i32, x: &[f32], l: &mut [u8], qw: &[f32]) -> f32 {
    let mut max = 0.0f32;
    for &v in x {
        max = if max > v { max } else { v };
    }
    if max < GROUP_MAX_EPS {
        l[..x.len()].fill(0);
        return 0.0;
    }
    let nmax_f = nmax as f32;
    let mut iscale = nmax_f / max;
    // C stores nearest_int's int into a uint8_t here (no clamp).
    for (li, &v) in l.iter_mut().zip(x) {
        *li = nearest_int(iscale * v) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best = 0.0f32;
    for ((&li, &v), &w) in l.iter().zip(x).zip(qw) {
        let diff = v - scale * li as f32;
        best += w * diff * diff;
    }
    for is in (-4..=4).filter(|&is| is != 0) {
        let iscale_is = (0.1 * is as f32 + nmax_f) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for (&v, &w) in x.iter().zip(qw) {
            let q = nearest_int(iscale_is * v).min(nmax);
            let diff = v - scale_is * q as f32;
            mse += w * diff * diff;
        }
        if mse < best {
            best = mse;
            iscale = iscale_is;
        }
    }
    // The levels live in a uint8_t array (C wraps a negative one); the first sums use the int.
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for ((o, &v), &w) in l.iter_mut().zip(x).zip(qw) {
        let q = nearest_int(iscale * v).min(nmax);
        *o = q as u8;
        sumlx += w * v * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for ((o, &v), &w) in l.iter_mut().zip(x).zip(qw) {
            let cur = *o as f32;
            let mut slx = sumlx - w * v * cur;
            let mut sl2 = suml2 - w * cur * cur;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(v * sl2 / slx).min(nmax);
                if new_l != *o as i32 {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        (*o, sumlx, suml2) = (new_l as u8, slx, sl2);
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Importance weights of one sub-block: `qw · sqrt(σ² + x²)` (σ² = 2·mean x² of the
/// super-block, or the mean itself for Q2_K).
pub(crate) fn importance(x: &[f32], qw: &[f32], sigma2: f32, out: &mut [f32]) {
    for ((o, &q), &v) in out.iter_mut().zip(qw).zip(x) {
        *o = q * (sigma2 + v * v).sqrt();
    }
}

/// Σx² of a super-block, in element order.
pub(crate) fn sum_sq(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s
}

/// Q4_K/Q5_K with an importance matrix (ggml `quantize_row_q4_K_impl`/`q5_K_impl`): per
/// sub-block `make_qkx3_quants` (rmin −0.9, rdelta 0.05, 36 steps), then scales and mins
/// to 6 bits by `make_qp_quants` weighted by the sub-blocks' weight sums; writes d, dmin
/// and the 12 packed bytes to `out[0..16]` and leaves the re-derived levels in `l`.
pub(crate) fn weighted_k4(x: &[f32], qw: &[f32], nmax: i32, out: &mut [u8], l: &mut [u8; 256]) {
    let sigma2 = 2.0 * sum_sq(x) / QK_K as f32;
    let (mut scales, mut mins, mut sw) = ([0f32; 8], [0f32; 8], [0f32; 8]);
    let mut w = [0f32; 256];
    let search = Search::WEIGHTED;
    for j in 0..8 {
        let ws = &mut w[32 * j..32 * j + 32];
        importance(&x[32 * j..32 * j + 32], &qw[32 * j..32 * j + 32], sigma2, ws);
        let mut sumw = 0.0f32;
        for &v in ws.iter() {
            sumw += v;
        }
        sw[j] = sumw;
    }
    if super::reference_kernels() {
        for j in 0..8 {
            let r = 32 * j..32 * j + 32;
            (scales[j], mins[j]) = make_qkx2_quants(nmax, &x[r.clone()], &w[r.clone()], &mut l[r], search);
        }
    } else {
        let fit = super::qkx2_lanes::make_qkx2_quants_x8::<32>(nmax, x, &w, search, l);
        (scales, mins) = (fit.scales, fit.mins);
    }
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    // (Q5_K caps at 63; make_qp_quants never goes above it.)
    out[0..2].copy_from_slice(&fp16_bytes(d_block));
    out[2..4].copy_from_slice(&fp16_bytes(m_block));
    pack_scale_min_k4(&ls.map(|v| v.min(63)), &lm.map(|v| v.min(63)), &mut out[4..16]);
    requantize(x, nmax, &out[..16], l);
}

/// Packs eight 6-bit scales and mins into Q4_K/Q5_K's 12 bytes: sub-blocks 0..4 take the
/// low 6 bits of bytes 0..4 (scales) and 4..8 (mins); sub-blocks 4..8 put their low nibbles in
/// bytes 8..12 and their top 2 bits in the spare top bits of bytes 0..8.
pub(crate) fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8], out: &mut [u8]) {
    for j in 0..4 {
        out[j] = ls[j] | ((ls[j + 4] >> 4) << 6);
        out[j + 4] = lm[j] | ((lm[j + 4] >> 4) << 6);
        out[j + 8] = (ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4);
    }
}

/// ggml `get_scale_min_k4`: the 6-bit (scale, min) of sub-block `j` from the 12 packed bytes.
#[inline]
pub(crate) fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// `GGML_FP32_TO_FP16` (round to nearest even) as little-endian bytes.
#[inline]
pub(crate) fn fp16_bytes(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_bits().to_le_bytes()
}

/// The f32 value of the little-endian fp16 at `b[0..2]`.
#[inline]
pub(crate) fn fp16_at(b: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

/// Q4_K/Q5_K's first pass: per sub-block of 32, `make_qkx2_quants` with weights
/// av_x + |x| (av_x = rms of the sub-block) and step rdelta 0.1; returns the (scale, min) pairs
/// and leaves the levels in `l`.
pub(crate) fn sub_block_scales(x: &[f32], nmax: i32, rmin: f32, nstep: i32, l: &mut [u8; 256]) -> ([f32; 8], [f32; 8]) {
    let mut weights = [0f32; 256];
    for (xs, ws) in x.chunks_exact(32).zip(weights.chunks_exact_mut(32)) {
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in ws.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
    }
    if !super::reference_kernels() {
        let search = Search { rmin, rdelta: 0.1, nstep, use_mad: false, clamp_first: false };
        let fit = super::qkx2_lanes::make_qkx2_quants_x8::<32>(nmax, x, &weights, search, l);
        return (fit.scales, fit.mins);
    }
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let search = Search { rmin, rdelta: 0.1, nstep, use_mad: false, clamp_first: false };
    for j in 0..8 {
        let r = 32 * j..32 * j + 32;
        (scales[j], mins[j]) = make_qkx2_quants(nmax, &x[r.clone()], &weights[r.clone()], &mut l[r], search);
    }
    (scales, mins)
}

/// Quantizes the sub-block scales and mins of Q4_K/Q5_K to 6 bits against their maxima and
/// writes d = fp16(max scale / 63), dmin = fp16(max min / 63) and the 12 packed bytes to
/// `out[0..16]`.
pub(crate) fn quantize_scales(scales: &[f32; 8], mins: &[f32; 8], out: &mut [u8]) {
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // C stores nearest_int's int into a uint8_t (wrapping) before capping at 63.
    let ls = scales.map(|s| (nearest_int(inv_scale * s) as u8).min(63));
    let lm = mins.map(|m| (nearest_int(inv_min * m) as u8).min(63));
    out[0..2].copy_from_slice(&fp16_bytes(max_scale / 63.0));
    out[2..4].copy_from_slice(&fp16_bytes(max_min / 63.0));
    pack_scale_min_k4(&ls, &lm, &mut out[4..16]);
}

/// Q4_K/Q5_K's second pass: re-derives the levels from the stored fp16 d, dmin and 6-bit
/// scales as nearest_int((x + dmin·m) / (d·sc)) clamped to 0..=nmax (a division, as in C);
/// sub-blocks with d·sc = 0 keep their first-pass levels.
pub(crate) fn requantize(x: &[f32], nmax: i32, head: &[u8], l: &mut [u8; 256]) {
    let (d_all, dmin_all) = (fp16_at(&head[0..2]), fp16_at(&head[2..4]));
    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, &head[4..16]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for (li, &v) in l[32 * j..32 * j + 32].iter_mut().zip(&x[32 * j..32 * j + 32]) {
            *li = nearest_int((v + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    /// Groups that break ports (random, zeros, −0.0, constant, denormal, huge, one outlier,
    /// half-integer grids, one NaN, one infinity), each 16 or 32 long, with and without
    /// importance weights: the candidate lanes equal the one-at-a-time search on every path
    /// this machine runs.
    #[test]
    fn qx_lanes_equal_the_reference_on_every_path() {
        let mut rnd = crate::quant::test_values(0x9E3779B97F4A7C15);
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut paths: Vec<(&str, super::QxSumsFn)> = vec![("baseline", super::qx_sums)];
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx2() {
            // SAFETY: the CPU has AVX2 and F16C.
            paths.push(("avx2", |n, x, w, i| unsafe { super::qx_sums_avx2(n, x, w, i) }));
        }
        for case in 0..480 {
            let n = if case % 2 == 0 { 16 } else { 32 };
            let kind = case / 2 % 12;
            let x: Vec<f32> = (0..n)
                .map(|i| match kind {
                    0 => rnd() * 0.05,
                    1 => 0.0,
                    2 => -0.0,
                    3 => 0.75,
                    4 => rnd() * 1e-38,
                    5 => rnd() * 6e4,
                    6 if i == 3 => -80.0,
                    6 => rnd() * 0.01,
                    7 => ((rnd() * 32.0) as i32) as f32 * 0.5,
                    8 => rnd().abs(),
                    10 if i == 7 => f32::NAN,
                    11 if i == 2 => f32::INFINITY,
                    _ => rnd() * 2.0,
                })
                .collect();
            let qw: Vec<f32> = (0..n).map(|i| if i % 5 == 0 { 0.0 } else { rnd().abs() * 10.0 }).collect();
            let max = x.iter().fold((0.0f32, 0.0f32), |(m, a), &v| if v.abs() > a { (v, v.abs()) } else { (m, a) }).0;
            if max == 0.0 || max.abs() < super::GROUP_MAX_EPS {
                continue;
            }
            for nmax in [4, 8, 16, 32] {
                for w in [None, Some(&qw[..])] {
                    let mut want = vec![0u8; n];
                    let s = super::make_qx_quants_ref(nmax, &x, max, &mut want, w);
                    for (name, sums) in &paths {
                        let mut got = vec![0u8; n];
                        let g = super::make_qx_quants_lanes(nmax, &x, max, &mut got, w, *sums);
                        assert_eq!((g.to_bits(), &got), (s.to_bits(), &want), "{name} case {case} nmax {nmax}");
                    }
                }
            }
        }
    }
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (f, want) in [(0.5, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (-2.5, -2), (3.49, 3), (-0.0, 0)] {
            assert_eq!(nearest_int(f), want, "{f}");
            assert_eq!(nearest_int(f), f.round_ties_even() as i32);
        }
        // Out of range, as C with asserts off: the low mantissa bits of inf / NaN.
        assert_eq!(nearest_int(f32::INFINITY), -0x40_0000);
        assert_eq!(nearest_int(f32::NAN), 0);
    }

    #[test]
    fn scale_min_packing_round_trips() {
        let ls = [0, 1, 17, 63, 32, 15, 48, 63];
        let lm = [63, 2, 33, 0, 16, 47, 1, 62];
        let mut b = [0u8; 12];
        pack_scale_min_k4(&ls, &lm, &mut b);
        for j in 0..8 {
            assert_eq!(get_scale_min_k4(j, &b), (ls[j], lm[j]));
        }
    }

    #[test]
    fn qkx2_constant_group_is_all_zero_levels() {
        let x = [0.25f32; 32];
        let w = [1.0f32; 32];
        let mut l = [7u8; 32];
        // min is clamped to 0, so a positive constant group is not "max == min".
        let (scale, m) = make_qkx2_quants(
            15,
            &x,
            &w,
            &mut l,
            Search { rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false, clamp_first: false },
        );
        assert!(scale > 0.0 && m == 0.0);
        let x = [-0.5f32; 32];
        let (scale, m) = make_qkx2_quants(
            15,
            &x,
            &w,
            &mut l,
            Search { rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false, clamp_first: false },
        );
        assert_eq!((scale, m), (0.0, 0.5));
        assert_eq!(l, [0; 32]);
    }
}
