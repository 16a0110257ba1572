//! Q3_K's `make_q3_quants(16, 4, do_rmse)` for the 16 sub-blocks of a super-block at once:
//! lane k runs sub-block k's whole search, every float operation in the scalar order. The
//! refinement passes change one level at a time and update the sums before the next element,
//! so each lane stays sequential over its elements; a lane whose pass changed nothing stops, as the
//! scalar loop breaks (running it on would change nothing either). The `wide` crate's 16-lane
//! vectors run it, with an AVX2 copy chosen at run time; tests compare it with the scalar
//! search on adversarial sub-blocks.

use wide::{f32x16, i32x16};

use super::kquant::first_max_per_group;

/// Sub-blocks searched side by side: a whole super-block. The refinement is a chain of
/// dependent divisions per lane; 16 lanes keep more of them in flight than 8 (1.2x here).
pub(crate) const LANES: usize = 16;
/// Values per sub-block.
const N: usize = 16;
/// Levels −4..=3.
const NMAX: i32 = 4;
/// Refinement passes at most.
const PASSES: usize = 5;

/// The scales of the 16 sub-blocks of `x` (256 values), levels (offset by 4) to `l` (256), as
/// [`super::q3_k`]'s scalar `make_q3_quants` returns them.
pub(crate) fn make_q3_quants_x16(x: &[f32], l: &mut [u8]) -> [f32; LANES] {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 (runtime-detected).
        return unsafe { x8_avx2(x, l) };
    }
    x8(x, l)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn x8_avx2(x: &[f32], l: &mut [u8]) -> [f32; LANES] {
    x8(x, l)
}

#[inline(always)]
fn x8(x: &[f32], l: &mut [u8]) -> [f32; LANES] {
    let mut xt = [f32x16::ZERO; N];
    for (j, v) in xt.iter_mut().enumerate() {
        let mut lane = [0f32; LANES];
        for (k, o) in lane.iter_mut().enumerate() {
            *o = x[N * k + j];
        }
        *v = f32x16::from(lane);
    }
    let (max, flat) = first_max_per_group::<N, LANES>(x);
    let (lo, hi) = (i32x16::splat(-NMAX), i32x16::splat(NMAX - 1));
    let level = |f: f32x16| nearest_int_x16(f).max(lo).min(hi);
    let iscale = f32x16::splat(-(NMAX as f32)) / f32x16::from(max);
    let mut q = [i32x16::ZERO; N];
    let (mut sumlx, mut suml2) = (f32x16::ZERO, f32x16::ZERO);
    for (qj, &v) in q.iter_mut().zip(&xt) {
        *qj = level(iscale * v);
        let (w, qf) = (v * v, f32x16::from_i32x16(*qj));
        sumlx += w * v * qf;
        suml2 += w * qf * qf;
    }
    let mut active = f32x16::splat(f32::from_bits(u32::MAX));
    for _ in 0..PASSES {
        let mut changed = f32x16::ZERO;
        for (qj, &v) in q.iter_mut().zip(&xt) {
            let (w, qf) = (v * v, f32x16::from_i32x16(*qj));
            let slx = sumlx - w * v * qf;
            let sl2 = suml2 - w * qf * qf;
            // Computed in every lane; lanes where the scalar code would not get here drop it.
            let new = level(v * sl2 / slx);
            let nf = f32x16::from_i32x16(new);
            let (slx_new, sl2_new) = (slx + w * v * nf, sl2 + w * nf * nf);
            let differs: f32x16 = wide::bytemuck::cast(!new.simd_eq(*qj));
            let better = (slx_new * slx_new * suml2).simd_gt(sumlx * sumlx * sl2_new);
            let take = active & slx.simd_gt(f32x16::ZERO) & differs & sl2_new.simd_gt(f32x16::ZERO) & better;
            let take_int: i32x16 = wide::bytemuck::cast(take);
            *qj = take_int.select(new, *qj);
            sumlx = take.select(slx_new, sumlx);
            suml2 = take.select(sl2_new, suml2);
            changed |= take;
        }
        active &= changed;
        if !active.any() {
            break;
        }
    }
    for (j, qj) in q.iter().enumerate() {
        for (k, &v) in qj.to_array().iter().enumerate() {
            l[N * k + j] = if flat[k] { 0 } else { (v + NMAX) as u8 };
        }
    }
    let scale = suml2.simd_gt(f32x16::ZERO).select(sumlx / suml2, f32x16::ZERO).to_array();
    std::array::from_fn(|k| if flat[k] { 0.0 } else { scale[k] })
}

/// [`super::kquant::nearest_int`] of every lane (the same bit trick, so the same bits for
/// every input).
#[inline(always)]
fn nearest_int_x16(f: f32x16) -> i32x16 {
    let bits: i32x16 = wide::bytemuck::cast(f + f32x16::splat(12582912.0));
    (bits & i32x16::splat(0x007f_ffff)) - i32x16::splat(0x0040_0000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups of 8 sub-blocks from the legacy adversarial blocks (zeros, ±0, constants,
    /// denormals, NaN, inf, huge ranges, ties) and random ones at several scales.
    fn groups() -> Vec<Vec<f32>> {
        let blocks: Vec<f32> = super::super::legacy_lanes::tests::adversarial_blocks().into_iter().flatten().collect();
        let mut out: Vec<Vec<f32>> = blocks.chunks(LANES * N).map(|g| g.to_vec()).collect();
        out.last_mut().expect("blocks").resize(LANES * N, 0.25);
        let mut next = crate::quant::test_values(11);
        for scale in [0.02f32, 1.0, 3e4, 1e-30] {
            out.push((0..LANES * N).map(|_| next() * scale).collect());
        }
        // Integer grids: rounding ties in the first levels and the refinements.
        out.push((0..LANES * N).map(|i| ((i * 7919) % 9) as f32 - 4.0).collect());
        out
    }

    #[test]
    fn lanes_equal_the_scalar_search_on_every_path() {
        for x in groups() {
            let mut want_l = [0u8; LANES * N];
            let want: Vec<u32> = (0..LANES)
                .map(|k| super::super::q3_k::make_q3_quants(NMAX, &x[N * k..N * k + N], &mut want_l[N * k..]).to_bits())
                .collect();
            let mut l = [0u8; LANES * N];
            let got: Vec<u32> = x8(&x, &mut l).iter().map(|s| s.to_bits()).collect();
            assert_eq!((got, l), (want.clone(), want_l), "baseline path on {x:?}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let got: Vec<u32> = unsafe { x8_avx2(&x, &mut l) }.iter().map(|s| s.to_bits()).collect();
                assert_eq!((got, l), (want, want_l), "AVX2 path on {x:?}");
            }
        }
    }
}
