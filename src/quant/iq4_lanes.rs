//! IQ4_NL's scale search (also IQ4_XS's) for 8 blocks of 32 at once: lane k searches block
//! k, every float operation in the scalar search's order. The nearest table entry, a branchy
//! binary search in ggml, becomes a count of switch points passed: between two neighbouring
//! entries ggml's float test `a − lo < hi − a` is true below one float and false from it on
//! (both sides round monotonically), so that float, found once by bisection, decides exactly
//! as the test does; NaN → the last entry, as the binary search ends. Where lanes permute
//! in one instruction (AVX2, NEON's `tbl`) the points passed are found by bisection, else
//! (SSE2) counted. It runs on [`super::lanes`]' vectors: the baseline's, or AVX2's when the
//! CPU has it. The 15 candidate scales after the first share one [`Bracket`]: per value, the
//! two entries any of them can pick and the switch point between them. Tests compare it
//! with [`super::iq4_nl`]'s scalar search on adversarial blocks.

use std::sync::OnceLock;

use super::lanes::{first_max, Isa, Portable, F8, I8};

#[cfg(test)]
use super::iq4_nl::best_index;
use super::iq4_nl::{NTRY, VALUES};
use super::kquant::GROUP_MAX_EPS;

/// Blocks searched side by side.
pub(crate) const LANES: usize = 8;
/// Values per block.
const N: usize = 32;

/// The scales of the blocks of `x` (whole groups of 8 blocks, 256 values) with weights `w`,
/// into `scales` (one per block), as `block_scale` returns them (its first levels are not
/// needed: both types derive the levels again from the scale). One call sets up the table
/// and the bracket for every group.
pub(crate) fn block_scales(x: &[f32], w: &[f32], scales: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match super::simd_level() {
        // SAFETY: the CPU has the features of the level (runtime-detected).
        super::SimdLevel::Avx512 => return unsafe { groups_avx512(x, w, scales) },
        super::SimdLevel::Avx2 => return unsafe { groups_avx2(x, w, scales) },
        super::SimdLevel::Baseline => {}
    }
    groups::<Portable>(x, w, scales)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn groups_avx2(x: &[f32], w: &[f32], scales: &mut [f32]) {
    groups::<super::lanes::Avx2>(x, w, scales)
}

/// The AVX2 kernel again, with AVX-512's 32 registers: 3 candidates' sums and the bracket's
/// terms no longer spill.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c,avx512f,avx512vl,avx512bw,avx512dq")]
unsafe fn groups_avx512(x: &[f32], w: &[f32], scales: &mut [f32]) {
    groups::<super::lanes::Avx2>(x, w, scales)
}

#[inline(always)]
fn groups<S: Isa>(x: &[f32], w: &[f32], scales: &mut [f32]) {
    const GROUP: usize = LANES * N;
    assert!(x.len().is_multiple_of(GROUP) && w.len() == x.len() && scales.len() == x.len() / N);
    let t = Table::<S>::new();
    // One for all groups: each fill writes all of it, and zeroing 5 KiB per group cost
    // ~5 % of the search.
    let mut bracket = Bracket::empty();
    for ((xg, wg), sg) in x.chunks_exact(GROUP).zip(w.chunks_exact(GROUP)).zip(scales.chunks_exact_mut(LANES)) {
        sg.copy_from_slice(&x8(xg, wg, &t, &mut bracket));
    }
}

#[inline(always)]
fn x8<S: Isa>(x: &[f32], w: &[f32], t: &Table<S>, bracket: &mut Bracket<S>) -> [f32; LANES] {
    let (xt, wt) = (by_value::<S>(x), by_value::<S>(w));
    let (maxv, flat) = first_max(&xt, GROUP_MAX_EPS);
    // ggml's 1/(−max/values[0]); (−a)/b and a/(−b) round alike.
    let first_id = F8::splat(1.0) / (maxv / F8::splat(-(VALUES[0] as f32)));
    let extremes = [candidate_id(-NTRY, maxv), candidate_id(NTRY, maxv)];
    let (bracketed, (sumqx, sumq2)) = bracket.fill(extremes, first_id, &xt, &wt, t);
    let positive = sumq2.gt(F8::zero());
    let mut d = positive.select(sumqx / sumq2, F8::zero());
    let mut best = d * sumqx;
    for first in (-NTRY..=NTRY).step_by(AT_ONCE) {
        let mut ids = [F8::zero(); AT_ONCE];
        for (k, id) in ids.iter_mut().enumerate() {
            *id = candidate_id(first + k as i32, maxv);
        }
        let mut terms = [(F8::zero(), F8::zero()); AT_ONCE];
        if bracketed {
            terms = bracket.sums(ids, &xt);
        } else {
            for (o, &id) in terms.iter_mut().zip(&ids) {
                *o = sums(id, &xt, &wt, t);
            }
        }
        // The candidates in their order, as ggml takes them.
        for (sumqx, sumq2) in terms {
            let better = sumq2.gt(F8::zero()) & (sumqx * sumqx).gt(best * sumq2);
            d = better.select(sumqx / sumq2, d);
            best = better.select(d * sumqx, best);
        }
    }
    flat.select(F8::zero(), d).to_array()
}

/// The 8 blocks of `v` as 32 vectors: lane k of vector j is value j of block k.
#[inline(always)]
fn by_value<S: Isa>(v: &[f32]) -> [F8<S>; N] {
    const D: usize = 8;
    let mut out = [F8::zero(); N];
    for (c, o) in out.chunks_exact_mut(D).enumerate() {
        let mut starts = [0; LANES];
        for (k, s) in starts.iter_mut().enumerate() {
            *s = N * k + D * c;
        }
        o.copy_from_slice(&F8::columns::<D>(v, starts));
    }
    out
}

/// How far apart (as a ratio) a bracket's extreme scales may be: the search's are 134/120 =
/// 1.117 apart, and any two switch points of one sign at least 1.235 (−115.5 and −93.5;
/// 101/79 = 1.278 among the positive ones), so products of one value never pass two.
const MAX_SPREAD: f32 = 1.2;

/// Candidate scales summed side by side: each sum runs over the values in order, a chain of
/// dependent additions, so three chains interleave (the 15 candidates in 5 steps).
const AT_ONCE: usize = 3;
const _: () = assert!((2 * NTRY as usize + 1).is_multiple_of(AT_ONCE));

/// The inverse scale of candidate `itry`, as ggml computes it.
#[inline(always)]
fn candidate_id<S: Isa>(itry: i32, max: F8<S>) -> F8<S> {
    F8::splat((itry + VALUES[0] as i32) as f32) / max
}

/// Per lane, Σ w·q·x and Σ w·q² over the block, q the table entry nearest id·x (switch
/// points `t`).
#[inline(always)]
fn sums<S: Isa>(id: F8<S>, xt: &[F8<S>; N], wt: &[F8<S>; N], t: &Table<S>) -> (F8<S>, F8<S>) {
    let (mut sumqx, mut sumq2) = (F8::zero(), F8::zero());
    for (&v, &w) in xt.iter().zip(wt) {
        let q = t.nearest(id * v).1;
        let wq = w * q;
        sumqx += wq * v;
        sumq2 += wq * q;
    }
    (sumqx, sumq2)
}

/// The terms of the candidate scales −NTRY..=NTRY. id·x is monotone in the scale (finite
/// scales; both roundings are monotone) and the entry picked is monotone in id·x, so each
/// value's entry for any candidate lies between its entries for the two extreme scales. They
/// are at most one step apart (ids ±5.5 % around 127/max, entries ≥ 11 apart), so per value
/// one switch point decides, and w·q·x, w·q² are computed once per entry, not per scale.
struct Bracket<S: Isa> {
    /// Per value, the switch point from its lower entry to the next (passed by none of the
    /// products when its two entries are one).
    point: [F8<S>; N],
    /// Per value, w·q·x for the lower entry and the upper one.
    qx: [[F8<S>; 2]; N],
    /// Per value, w·q·q likewise.
    q2: [[F8<S>; 2]; N],
}

impl<S: Isa> Bracket<S> {
    #[inline(always)]
    fn empty() -> Self {
        Bracket { point: [F8::zero(); N], qx: [[F8::zero(); 2]; N], q2: [[F8::zero(); 2]; N] }
    }

    /// The bracket of the extreme scales `ids`, and whether it holds: only where a lane's
    /// extreme scales are finite, of one sign and at most [`MAX_SPREAD`] apart (else every
    /// scale is searched in full); then no product moves more than one switch point. Also
    /// [`sums`] of the first candidate `first`, in a loop of its own: in one loop with the
    /// bracket's work, the tables and scales of both outgrew AVX2's 16 registers and
    /// spilled (1–3 % slower).
    #[inline(always)]
    fn fill(
        &mut self,
        ids: [F8<S>; 2],
        first: F8<S>,
        xt: &[F8<S>; N],
        wt: &[F8<S>; N],
        t: &Table<S>,
    ) -> (bool, (F8<S>, F8<S>)) {
        let (a, b) = (ids[0].abs(), ids[1].abs());
        let (small, large) = (a.fast_min(b), a.fast_max(b));
        let apart = large.gt(small * F8::splat(MAX_SPREAD));
        let refused = !(large.lt(F8::splat(f32::INFINITY)) & (ids[0] * ids[1]).gt(F8::zero())) | apart;
        let first_sums = sums(first, xt, wt, t);
        for (j, &x) in xt.iter().enumerate() {
            let (a, c) = (ids[0] * x, ids[1] * x);
            let (low, high) = (a.fast_min(c), a.fast_max(c));
            // The entry of the lower product, and whether the higher one passes the next
            // switch point (then its entry is the next; never the one after, see
            // [`MAX_SPREAD`]).
            let (lo, q_lo) = t.nearest(low);
            let up = high.ge(t.point(lo));
            let hi = lo - up.to_i32();
            let q_hi = t.entry(hi);
            self.point[j] = t.point(lo);
            let (w_lo, w_hi) = (wt[j] * q_lo, wt[j] * q_hi);
            self.qx[j] = [w_lo * x, w_hi * x];
            self.q2[j] = [w_lo * q_lo, w_hi * q_hi];
        }
        (!refused.any(), first_sums)
    }

    /// [`sums`] for candidate scales `ids` of the bracket, each summed in the values' order.
    #[inline(always)]
    fn sums(&self, ids: [F8<S>; AT_ONCE], xt: &[F8<S>; N]) -> [(F8<S>, F8<S>); AT_ONCE] {
        let mut out = [(F8::zero(), F8::zero()); AT_ONCE];
        for (j, &x) in xt.iter().enumerate() {
            let [qx_lo, qx_hi] = self.qx[j];
            let [q2_lo, q2_hi] = self.q2[j];
            for (o, &id) in out.iter_mut().zip(&ids) {
                let up = (id * x).ge(self.point[j]);
                o.0 += up.select(qx_hi, qx_lo);
                o.1 += up.select(q2_hi, q2_lo);
            }
        }
        out
    }
}

/// [`super::iq4_nl::best_index`] of `ids[b] · x` for each value of block b (32 values), into `l`.
pub(crate) fn best_indices(ids: &[f32], x: &[f32], l: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    match super::simd_level() {
        // SAFETY: the CPU has the features of the level (runtime-detected).
        super::SimdLevel::Avx512 => return unsafe { best_indices_avx512(ids, x, l) },
        super::SimdLevel::Avx2 => return unsafe { best_indices_avx2(ids, x, l) },
        super::SimdLevel::Baseline => {}
    }
    indices::<Portable>(ids, x, l)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn best_indices_avx2(ids: &[f32], x: &[f32], l: &mut [u8]) {
    indices::<super::lanes::Avx2>(ids, x, l)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c,avx512f,avx512vl,avx512bw,avx512dq")]
unsafe fn best_indices_avx512(ids: &[f32], x: &[f32], l: &mut [u8]) {
    indices::<super::lanes::Avx2>(ids, x, l)
}

#[inline(always)]
fn indices<S: Isa>(ids: &[f32], x: &[f32], l: &mut [u8]) {
    let t = Table::<S>::new();
    for ((&id, xb), lb) in ids.iter().zip(x.chunks_exact(N)).zip(l.chunks_exact_mut(N)) {
        let id = F8::<S>::splat(id);
        for (xc, lc) in xb.chunks_exact(2 * LANES).zip(lb.chunks_exact_mut(2 * LANES)) {
            let (a, b) = (F8::load(&xc[..LANES]), F8::load(&xc[LANES..]));
            lc.copy_from_slice(&t.nearest(id * a).0.low_bytes(t.nearest(id * b).0));
        }
    }
}

/// The switch points and table entries, laid out for both ways of finding the nearest entry.
struct Table<S: Isa> {
    /// Every switch point, for counting the ones passed.
    points: [F8<S>; 15],
    /// The switch points in two halves, for looking one up; after the last entry NaN,
    /// which no value passes.
    points_low: F8<S>,
    points_high: F8<S>,
    /// Bisection: the middle point (7), the quarter points (3, 11), the odd eighths (1, 5,
    /// 9, 13) and the even sixteenths (0, 2, …, 14), then the entries in two halves.
    p7: F8<S>,
    p3: F8<S>,
    p11: F8<S>,
    odd: F8<S>,
    even: F8<S>,
    low: F8<S>,
    high: F8<S>,
}

impl<S: Isa> Table<S> {
    #[inline(always)]
    fn new() -> Self {
        let p = switch_points();
        let mut points = [F8::zero(); 15];
        for (o, &v) in points.iter_mut().zip(&p) {
            *o = F8::splat(v);
        }
        let mut entries = [0f32; 16];
        for (o, &v) in entries.iter_mut().zip(&VALUES) {
            *o = v as f32;
        }
        let odd = [p[1], p[5], p[9], p[13], p[1], p[5], p[9], p[13]];
        let even = [p[0], p[2], p[4], p[6], p[8], p[10], p[12], p[14]];
        let mut upper_points = [f32::NAN; 8];
        upper_points[..7].copy_from_slice(&p[8..]);
        Table {
            points,
            points_low: F8::load(&p[..8]),
            points_high: F8::new(upper_points),
            p7: F8::splat(p[7]),
            p3: F8::splat(p[3]),
            p11: F8::splat(p[11]),
            odd: F8::new(odd),
            even: F8::new(even),
            low: F8::load(&entries[..8]),
            high: F8::load(&entries[8..]),
        }
    }

    /// Per lane, the index [`super::iq4_nl::best_index`] picks for `a` and its entry: the
    /// number of switch points at or below `a` (NaN: the last), by bisection where lanes
    /// permute in one instruction, else by counting.
    #[inline(always)]
    fn nearest(&self, a: F8<S>) -> (I8<S>, F8<S>) {
        let nan = a.is_nan();
        let (index, entry) = if S::FAST_PERMUTE { self.bisect(a) } else { self.count(a) };
        (nan.select_i(I8::splat(15), index), nan.select(F8::splat(VALUES[15] as f32), entry))
    }

    /// Per lane, the entry at index `i` (0..16).
    #[inline(always)]
    fn entry(&self, i: I8<S>) -> F8<S> {
        F8::permute16(self.low, self.high, i)
    }

    /// Per lane, the switch point from entry `i` to the next (0..15).
    #[inline(always)]
    fn point(&self, i: I8<S>) -> F8<S> {
        F8::permute16(self.points_low, self.points_high, i)
    }

    #[inline(always)]
    fn count(&self, a: F8<S>) -> (I8<S>, F8<S>) {
        // A mask is −1 where a point is passed.
        let mut down = I8::zero();
        let mut q = F8::splat(VALUES[0] as f32);
        for (i, &p) in self.points.iter().enumerate() {
            let passed = a.ge(p);
            down += passed.to_i32();
            q += passed.and(F8::splat((VALUES[i + 1] - VALUES[i]) as f32));
        }
        (-down, q)
    }

    /// Four compares, each against the point the previous ones select.
    #[inline(always)]
    fn bisect(&self, a: F8<S>) -> (I8<S>, F8<S>) {
        let one = I8::splat(1);
        let upper = a.ge(self.p7);
        let quarter = a.ge(upper.select(self.p11, self.p3));
        let k2 = (upper.to_i32() & I8::splat(2)) | (quarter.to_i32() & one);
        let k1 = k2.shl::<1>() | (a.ge(self.odd.permute(k2)).to_i32() & one);
        let k0 = k1.shl::<1>() | (a.ge(self.even.permute(k1)).to_i32() & one);
        // Where a 16-entry lookup is one instruction, it beats two permutes and the select.
        let entry =
            if S::FAST_PERMUTE16 { self.entry(k0) } else { upper.select(self.high.permute(k0), self.low.permute(k0)) };
        (k0, entry)
    }
}

/// For each pair of neighbouring entries (lo, hi), the smallest float `a` for which ggml's
/// `best_index_int8` takes hi: `!(a − lo < hi − a)`. Every a ≤ lo is below it and every
/// a ≥ hi at or above it, so the entry picked is the first plus the points passed.
fn switch_points() -> [f32; 15] {
    static POINTS: OnceLock<[f32; 15]> = OnceLock::new();
    *POINTS.get_or_init(|| std::array::from_fn(|i| switch_point(VALUES[i] as f32, VALUES[i + 1] as f32)))
}

/// Bisection over the floats from `lo` (takes lo) to `hi` (takes hi), in their order.
fn switch_point(lo: f32, hi: f32) -> f32 {
    // ggml's test as written (takes lo iff `a − lo < hi − a`); the floats here are ordered.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    let takes_hi = |a: f32| !(a - lo < hi - a);
    // Floats in value order as integers: negative ones mirrored below zero.
    let key =
        |f: f32| if f.is_sign_negative() { -i64::from(f.to_bits() & 0x7FFF_FFFF) } else { i64::from(f.to_bits()) };
    let float = |k: i64| if k < 0 { f32::from_bits((-k) as u32 | 0x8000_0000) } else { f32::from_bits(k as u32) };
    let (mut below, mut at) = (key(lo), key(hi));
    while at - below > 1 {
        let mid = below + (at - below) / 2;
        if takes_hi(float(mid)) {
            at = mid;
        } else {
            below = mid;
        }
    }
    float(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path's scales equal the scalar search's, bit for bit, on adversarial groups, all
    /// in one call (one bracket for every group).
    #[test]
    fn scales_are_the_scalar_searchs() {
        let mut x: Vec<f32> = Vec::new();
        for blocks in super::super::legacy_lanes::tests::adversarial_blocks().chunks(LANES) {
            x.extend(blocks.iter().flatten());
            x.resize(x.len().next_multiple_of(LANES * N), 0.5);
        }
        let mut next = crate::quant::test_values(7);
        for scale in [0.02f32, 1.0, 3e4] {
            x.extend((0..LANES * N).map(|_| next() * scale));
        }
        let squares: Vec<f32> = x.iter().map(|v| v * v).collect();
        let imatrix: Vec<f32> =
            x.iter().enumerate().map(|(i, _)| if i % 7 == 0 { 0.0 } else { next().abs() * 4.0 }).collect();
        for w in [&squares, &imatrix] {
            let want: Vec<u32> = x
                .chunks_exact(N)
                .zip(w.chunks_exact(N))
                .map(|(xb, wb)| super::super::iq4_nl::block_scale(xb, wb, &mut [0u8; N]).to_bits())
                .collect();
            assert_eq!(bits_of(groups::<Portable>, &x, w), want, "baseline path");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                assert_eq!(bits_of(|x, w, s| unsafe { groups_avx2(x, w, s) }, &x, w), want, "AVX2 path");
            }
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx512() {
                // SAFETY: the CPU has AVX2, F16C and the AVX-512 subsets.
                assert_eq!(bits_of(|x, w, s| unsafe { groups_avx512(x, w, s) }, &x, w), want, "AVX-512 path");
            }
        }
    }

    /// The bits of the scales `search` finds for `x` with weights `w`.
    fn bits_of(search: impl Fn(&[f32], &[f32], &mut [f32]), x: &[f32], w: &[f32]) -> Vec<u32> {
        let mut scales = vec![0f32; x.len() / N];
        search(x, w, &mut scales);
        scales.iter().map(|s| s.to_bits()).collect()
    }

    /// The bracket is taken for ordinary blocks and sums every candidate as the full search
    /// does; it is refused where a lane's scale is not finite.
    #[test]
    fn bracket_sums_are_the_full_sums() {
        let mut next = crate::quant::test_values(11);
        for scale in [0.02f32, 1.0, 3e4] {
            let x: Vec<f32> = (0..LANES * N).map(|_| next() * scale).collect();
            let w: Vec<f32> = x.iter().map(|_| next().abs()).collect();
            check_bracket::<Portable>(&x, &w);
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                unsafe { check_bracket_avx2(&x, &w) };
            }
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx512() {
                // SAFETY: the CPU has AVX2, F16C and the AVX-512 subsets.
                unsafe { check_bracket_avx512(&x, &w) };
            }
        }
        // Scales from the search never fail these checks (finite, of one sign, ±5.5 %
        // apart); the guards are tested with made-up ones.
        let x = vec![0.5f32; LANES * N];
        let (xt, t) = (by_value::<Portable>(&x), Table::new());
        for ids in
            [[-1.0, -100.0], [-1.0, -1.25], [f32::NEG_INFINITY, -1.0], [-1.0, f32::NAN], [1.0, -1.05], [0.0, 0.0]]
        {
            let splat = [F8::splat(ids[0]), F8::splat(ids[1])];
            assert!(!Bracket::empty().fill(splat, F8::splat(1.0), &xt, &xt, &t).0, "refused for scales {ids:?}");
        }
        assert!(Bracket::empty().fill([F8::splat(-1.0), F8::splat(-1.05)], F8::splat(1.0), &xt, &xt, &t).0);
    }

    /// Why the bracket needs one switch point per value: neighbouring switch points of one
    /// sign are further apart than [`MAX_SPREAD`] (with room for the products' rounding),
    /// and the search's extreme scales are within it.
    #[test]
    fn neighbouring_switch_points_are_further_apart_than_the_spread() {
        let p = switch_points();
        for pair in p.windows(2).filter(|w| w[0] * w[1] > 0.0) {
            let ratio = (pair[0] / pair[1]).max(pair[1] / pair[0]);
            assert!(ratio > MAX_SPREAD * 1.01, "switch points {pair:?}");
        }
        let extremes = (NTRY - VALUES[0] as i32) as f32 / (-NTRY - VALUES[0] as i32) as f32;
        assert!(extremes < MAX_SPREAD, "the search's scales are {extremes} apart");
    }

    fn check_bracket<S: Isa>(x: &[f32], w: &[f32]) {
        let (xt, wt, t) = (by_value::<S>(x), by_value::<S>(w), Table::<S>::new());
        let max = first_max(&xt, GROUP_MAX_EPS).0;
        let mut bracket = Bracket::empty();
        let ids = [candidate_id(-NTRY, max), candidate_id(NTRY, max)];
        let bits = |(a, b): (F8<S>, F8<S>)| (a.to_bits().to_array(), b.to_bits().to_array());
        let first = F8::splat(0.5) * ids[0];
        let (holds, first_sums) = bracket.fill(ids, first, &xt, &wt, &t);
        assert!(holds, "ordinary blocks take the bracket");
        assert_eq!(bits(first_sums), bits(sums(first, &xt, &wt, &t)), "the first candidate's sums");
        for first in (-NTRY..=NTRY).step_by(AT_ONCE) {
            let mut ids = [F8::zero(); AT_ONCE];
            for (k, id) in ids.iter_mut().enumerate() {
                *id = candidate_id(first + k as i32, max);
            }
            for (got, &id) in bracket.sums(ids, &xt).into_iter().zip(&ids) {
                assert_eq!(bits(got), bits(sums(id, &xt, &wt, &t)), "candidates from {first}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn check_bracket_avx2(x: &[f32], w: &[f32]) {
        check_bracket::<super::super::lanes::Avx2>(x, w)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c,avx512f,avx512vl,avx512bw,avx512dq")]
    unsafe fn check_bracket_avx512(x: &[f32], w: &[f32]) {
        check_bracket::<super::super::lanes::Avx2>(x, w)
    }

    #[test]
    fn nearest_value_is_best_index() {
        let mut probes: Vec<f32> = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-30, -1e30];
        for &e in &VALUES {
            let e = e as f32;
            probes.extend([e, e - 0.5, e + 0.5, e.next_up(), e.next_down(), e - 200.0, e + 200.0]);
        }
        for w in VALUES.windows(2) {
            let mid = (w[0] as f32 + w[1] as f32) / 2.0;
            probes.extend([mid, mid.next_up(), mid.next_down()]);
        }
        for p in switch_points() {
            probes.extend([p, p.next_up(), p.next_down()]);
        }
        let (count, bisect) = both_methods::<Portable>(&probes);
        assert_eq!(count, bisect, "bisection and counting on the baseline");
        for (k, &p) in probes.iter().enumerate() {
            let want = best_index(p);
            assert_eq!(count[k], (want, VALUES[want as usize] as f32), "a = {p}");
        }
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx2() {
            // SAFETY: the CPU has AVX2 and F16C.
            assert_eq!(unsafe { both_methods_avx2(&probes) }, (count.clone(), count.clone()), "AVX2");
        }
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx512() {
            // SAFETY: the CPU has AVX2, F16C and the AVX-512 subsets.
            assert_eq!(unsafe { both_methods_avx512(&probes) }, (count.clone(), count), "AVX-512");
        }
        probes.resize(probes.len().div_ceil(N) * N, 0.0);
        let (ids, mut idx) = (vec![1.0; probes.len() / N], vec![0u8; probes.len()]);
        let check = |path: &str, idx: &[u8]| {
            for (&i, &p) in idx.iter().zip(&probes) {
                assert_eq!(i, best_index(p), "best_indices on the {path} path, a = {p}");
            }
        };
        indices::<Portable>(&ids, &probes, &mut idx);
        check("baseline", &idx);
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx2() {
            // SAFETY: the CPU has AVX2 and F16C.
            unsafe { best_indices_avx2(&ids, &probes, &mut idx) };
            check("AVX2", &idx);
        }
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx512() {
            // SAFETY: the CPU has AVX2, F16C and the AVX-512 subsets.
            unsafe { best_indices_avx512(&ids, &probes, &mut idx) };
            check("AVX-512", &idx);
        }
    }

    type Picks = Vec<(u8, f32)>;

    /// (index, entry) of every probe by counting and by bisection.
    fn both_methods<S: Isa>(probes: &[f32]) -> (Picks, Picks) {
        let t = Table::<S>::new();
        let (mut count, mut bisect) = (Vec::new(), Vec::new());
        for chunk in probes.chunks(LANES) {
            let mut a = [0f32; LANES];
            a[..chunk.len()].copy_from_slice(chunk);
            let a = F8::new(a);
            let nan = a.is_nan();
            for ((i, e), out) in [(t.count(a), &mut count), (t.bisect(a), &mut bisect)] {
                let (i, e) = (nan.select_i(I8::splat(15), i), nan.select(F8::splat(VALUES[15] as f32), e));
                out.extend(i.to_array().iter().zip(e.to_array()).map(|(&i, e)| (i as u8, e)).take(chunk.len()));
            }
        }
        (count, bisect)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn both_methods_avx2(probes: &[f32]) -> (Picks, Picks) {
        both_methods::<super::super::lanes::Avx2>(probes)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c,avx512f,avx512vl,avx512bw,avx512dq")]
    unsafe fn both_methods_avx512(probes: &[f32]) -> (Picks, Picks) {
        both_methods::<super::super::lanes::Avx2>(probes)
    }
}
