//! IQ4_NL's scale search (also IQ4_XS's) for 8 blocks of 32 at once: lane k searches block
//! k, every float operation in the scalar search's order. The nearest table entry, a branchy
//! binary search in ggml, becomes a count of switch points passed: between two neighbouring
//! entries ggml's float test `a − lo < hi − a` is true below one float and false from it on
//! (both sides round monotonically), so that float, found once by bisection, decides exactly
//! as the test does; NaN → the last entry, as the binary search ends. It runs on
//! [`super::lanes`]' vectors: the baseline's, or AVX2's when the CPU has it. Tests compare it with [`super::iq4_nl`]'s scalar search on adversarial blocks.

use std::sync::OnceLock;

use super::lanes::{Isa, Portable, F8, I8};

#[cfg(test)]
use super::iq4_nl::best_index;
use super::iq4_nl::{NTRY, VALUES};
use super::kquant::first_max_per_group;

/// Blocks searched side by side.
pub(crate) const LANES: usize = 8;
/// Values per block.
const N: usize = 32;

/// The scales of the 8 blocks of `x` (256 values) with weights `w`, as `block_scale` returns
/// them (its first levels are not needed: both types derive the levels again from the scale).
pub(crate) fn block_scales_x8(x: &[f32], w: &[f32]) -> [f32; LANES] {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 (runtime-detected).
        return unsafe { x8_avx2(x, w) };
    }
    x8::<Portable>(x, w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn x8_avx2(x: &[f32], w: &[f32]) -> [f32; LANES] {
    x8::<super::lanes::Avx2>(x, w)
}

#[inline(always)]
fn x8<S: Isa>(x: &[f32], w: &[f32]) -> [f32; LANES] {
    let (mut xt, mut wt) = ([F8::<S>::zero(); N], [F8::<S>::zero(); N]);
    for j in 0..N {
        let (mut xj, mut wj) = ([0f32; LANES], [0f32; LANES]);
        for k in 0..LANES {
            xj[k] = x[N * k + j];
            wj[k] = w[N * k + j];
        }
        (xt[j], wt[j]) = (F8::new(xj), F8::new(wj));
    }
    let (max, flat) = first_max_per_group::<N, LANES>(x);
    let mut first_id = [0f32; LANES];
    for (id, &m) in first_id.iter_mut().zip(&max) {
        *id = 1.0 / (-m / VALUES[0] as f32);
    }
    // Loaded once for the 16 candidate scales.
    let t = switch_points().map(F8::<S>::splat);
    let (sumqx, sumq2) = sums(F8::new(first_id), &xt, &wt, &t);
    let positive = sumq2.gt(F8::zero());
    let mut d = positive.select(sumqx / sumq2, F8::zero());
    let mut best = d * sumqx;
    let maxv = F8::new(max);
    for itry in -NTRY..=NTRY {
        let id = F8::splat((itry + VALUES[0] as i32) as f32) / maxv;
        let (sumqx, sumq2) = sums(id, &xt, &wt, &t);
        let better = sumq2.gt(F8::zero()) & (sumqx * sumqx).gt(best * sumq2);
        d = better.select(sumqx / sumq2, d);
        best = better.select(d * sumqx, best);
    }
    let d = d.to_array();
    std::array::from_fn(|k| if flat[k] { 0.0 } else { d[k] })
}

/// Per lane, Σ w·q·x and Σ w·q² over the block, q the table entry nearest id·x (switch
/// points `t`).
#[inline(always)]
fn sums<S: Isa>(id: F8<S>, xt: &[F8<S>; N], wt: &[F8<S>; N], t: &[F8<S>; 15]) -> (F8<S>, F8<S>) {
    let (mut sumqx, mut sumq2) = (F8::zero(), F8::zero());
    for (&v, &w) in xt.iter().zip(wt) {
        let q = nearest_value(id * v, t);
        let wq = w * q;
        sumqx += wq * v;
        sumq2 += wq * q;
    }
    (sumqx, sumq2)
}

/// [`super::iq4_nl::best_index`] of `id · x` for each value of `x` (a multiple of 8 values), into `l`.
pub(crate) fn best_indices(id: f32, x: &[f32], l: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 (runtime-detected).
        return unsafe { best_indices_avx2(id, x, l) };
    }
    indices::<Portable>(id, x, l)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn best_indices_avx2(id: f32, x: &[f32], l: &mut [u8]) {
    indices::<super::lanes::Avx2>(id, x, l)
}

#[inline(always)]
fn indices<S: Isa>(id: f32, x: &[f32], l: &mut [u8]) {
    let id = F8::<S>::splat(id);
    let t = switch_points().map(F8::<S>::splat);
    let last = I8::splat(15);
    for (xc, lc) in x.chunks_exact(LANES).zip(l.chunks_exact_mut(LANES)) {
        let a = id * F8::load(xc);
        // Each switch point passed is one entry up; a mask is −1 where passed.
        let mut down = I8::zero();
        for &ti in &t {
            down += a.ge(ti).to_i32();
        }
        let i = a.is_nan().select_i(last, -down).to_array();
        for (o, &q) in lc.iter_mut().zip(&i) {
            *o = q as u8;
        }
    }
}

/// The table entry [`super::iq4_nl::best_index`] picks, per lane, given the switch points `t`.
#[inline(always)]
fn nearest_value<S: Isa>(a: F8<S>, t: &[F8<S>; 15]) -> F8<S> {
    let mut q = F8::splat(VALUES[0] as f32);
    for (i, &ti) in t.iter().enumerate() {
        let step = F8::splat((VALUES[i + 1] - VALUES[i]) as f32);
        q += a.ge(ti).and(step);
    }
    a.is_nan().select(F8::splat(VALUES[15] as f32), q)
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

    /// Every path's scales equal the scalar search's, bit for bit, on adversarial groups.
    #[test]
    fn scales_are_the_scalar_searchs() {
        let mut groups: Vec<Vec<f32>> = Vec::new();
        for blocks in super::super::legacy_lanes::tests::adversarial_blocks().chunks(LANES) {
            let mut g: Vec<f32> = blocks.iter().flatten().copied().collect();
            g.resize(LANES * N, 0.5);
            groups.push(g);
        }
        let mut next = crate::quant::test_values(7);
        for scale in [0.02f32, 1.0, 3e4] {
            groups.push((0..LANES * N).map(|_| next() * scale).collect());
        }
        for x in &groups {
            let squares: Vec<f32> = x.iter().map(|v| v * v).collect();
            let imatrix: Vec<f32> =
                x.iter().enumerate().map(|(i, _)| if i % 7 == 0 { 0.0 } else { next().abs() * 4.0 }).collect();
            for w in [&squares, &imatrix] {
                let want: Vec<u32> = (0..LANES)
                    .map(|k| {
                        let mut l = [0u8; N];
                        let r = N * k..N * k + N;
                        super::super::iq4_nl::block_scale(&x[r.clone()], &w[r], &mut l).to_bits()
                    })
                    .collect();
                let got: Vec<u32> = x8::<Portable>(x, w).iter().map(|s| s.to_bits()).collect();
                assert_eq!(got, want, "baseline path on {x:?}");
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    let got: Vec<u32> = unsafe { x8_avx2(x, w) }.iter().map(|s| s.to_bits()).collect();
                    assert_eq!(got, want, "AVX2 path on {x:?}");
                }
            }
        }
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
        let t = switch_points().map(F8::<Portable>::splat);
        for chunk in probes.chunks(LANES) {
            let mut a = [0f32; LANES];
            a[..chunk.len()].copy_from_slice(chunk);
            let got = nearest_value(F8::new(a), &t).to_array();
            let mut idx = [0u8; LANES];
            best_indices(1.0, &a, &mut idx);
            for (k, &p) in a.iter().enumerate() {
                assert_eq!(got[k], VALUES[best_index(p) as usize] as f32, "a = {p}");
                assert_eq!(idx[k], best_index(p), "a = {p}");
            }
        }
    }
}
