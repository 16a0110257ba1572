//! Q3_K's `make_q3_quants(16, 4, do_rmse)` for the 16 sub-blocks of a super-block at once:
//! lane k runs sub-block k's whole search, every float operation in the scalar order. The
//! refinement passes change one level at a time and update the sums before the next element,
//! so each lane stays sequential over its elements; a lane whose pass changed nothing stops, as the
//! scalar loop breaks (running it on would change nothing either). Two vectors of
//! [`super::lanes`] hold the 16 lanes (the baseline's, or AVX2's when the CPU has it); tests
//! compare it with the scalar search on adversarial sub-blocks.

use super::kquant::first_max_per_group;
use super::lanes::{self, Isa, Portable, F8, I8, M8};

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
/// [`super::q3_k`]'s scalar `make_q3_quants` returns them. Fixed sizes: where this is not
/// inlined, the gathers' bounds checks would stay in (8 instructions per value on arm64).
pub(crate) fn make_q3_quants_x16(x: &[f32; LANES * N], l: &mut [u8; LANES * N]) -> [f32; LANES] {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
        return unsafe { x16_avx2(x, l) };
    }
    x16::<Portable>(x, l)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn x16_avx2(x: &[f32; LANES * N], l: &mut [u8; LANES * N]) -> [f32; LANES] {
    x16::<lanes::Avx2>(x, l)
}

/// Two 8-lane vectors: sub-blocks 0..8 and 8..16.
type V<S> = [F8<S>; 2];

#[inline(always)]
fn x16<S: Isa>(x: &[f32; LANES * N], l: &mut [u8; LANES * N]) -> [f32; LANES] {
    let mut xt = [[F8::<S>::zero(); 2]; N];
    for (j, v) in xt.iter_mut().enumerate() {
        for (h, vh) in v.iter_mut().enumerate() {
            let mut lane = [0f32; 8];
            for (k, o) in lane.iter_mut().enumerate() {
                *o = x[N * (8 * h + k) + j];
            }
            *vh = F8::new(lane);
        }
    }
    let (max, flat) = first_max_per_group::<N, LANES>(x);
    let mut q = [[I8::<S>::zero(); 2]; N];
    let (mut sumlx, mut suml2): (V<S>, V<S>) = ([F8::zero(); 2], [F8::zero(); 2]);
    for h in 0..2 {
        let iscale = F8::splat(-(NMAX as f32)) / F8::load(&max[8 * h..]);
        for (qj, v) in q.iter_mut().zip(&xt) {
            qj[h] = level(iscale * v[h]);
            let (w, qf) = (v[h] * v[h], qj[h].to_f32());
            sumlx[h] += w * v[h] * qf;
            suml2[h] += w * qf * qf;
        }
    }
    let mut active = [M8::all_true(); 2];
    for _ in 0..PASSES {
        let mut changed = [M8::none(); 2];
        for (qj, v) in q.iter_mut().zip(&xt) {
            for h in 0..2 {
                changed[h] |= refine(&mut qj[h], v[h], &mut sumlx[h], &mut suml2[h], active[h]);
            }
        }
        active[0] &= changed[0];
        active[1] &= changed[1];
        if !(active[0] | active[1]).any() {
            break;
        }
    }
    for (j, qj) in q.iter().enumerate() {
        for h in 0..2 {
            for (k, &v) in qj[h].to_array().iter().enumerate() {
                l[N * (8 * h + k) + j] = if flat[8 * h + k] { 0 } else { (v + NMAX) as u8 };
            }
        }
    }
    let mut scale = [0f32; LANES];
    for h in 0..2 {
        let s = suml2[h].gt(F8::zero()).select(sumlx[h] / suml2[h], F8::zero()).to_array();
        for k in 0..8 {
            scale[8 * h + k] = if flat[8 * h + k] { 0.0 } else { s[k] };
        }
    }
    scale
}

/// The level of `f`: nearest integer, clamped to −4..=3.
#[inline(always)]
fn level<S: Isa>(f: F8<S>) -> I8<S> {
    lanes::nearest_int(f).max(I8::splat(-NMAX)).min(I8::splat(NMAX - 1))
}

/// One element's refinement step in 8 lanes: the level that fits the other elements' sums
/// best, taken where the scalar loop would take it (`active` lanes only). True where taken.
#[inline(always)]
fn refine<S: Isa>(qj: &mut I8<S>, v: F8<S>, sumlx: &mut F8<S>, suml2: &mut F8<S>, active: M8<S>) -> M8<S> {
    let (w, qf) = (v * v, qj.to_f32());
    let slx = *sumlx - w * v * qf;
    let sl2 = *suml2 - w * qf * qf;
    // Computed in every lane; lanes where the scalar code would not get here drop it.
    let new = level(v * sl2 / slx);
    let nf = new.to_f32();
    let (slx_new, sl2_new) = (slx + w * v * nf, sl2 + w * nf * nf);
    let differs = !new.eq(*qj);
    let better = (slx_new * slx_new * *suml2).gt(*sumlx * *sumlx * sl2_new);
    let take = active & slx.gt(F8::zero()) & differs & sl2_new.gt(F8::zero()) & better;
    *qj = take.select_i(new, *qj);
    *sumlx = take.select(slx_new, *sumlx);
    *suml2 = take.select(sl2_new, *suml2);
    take
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
            let x: &[f32; LANES * N] = x.as_slice().try_into().expect("a super-block");
            let got: Vec<u32> = x16::<Portable>(x, &mut l).iter().map(|s| s.to_bits()).collect();
            assert_eq!((got, l), (want.clone(), want_l), "baseline path on {x:?}");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                let got: Vec<u32> = unsafe { x16_avx2(x, &mut l) }.iter().map(|s| s.to_bits()).collect();
                assert_eq!((got, l), (want, want_l), "AVX2 path on {x:?}");
            }
        }
    }
}
