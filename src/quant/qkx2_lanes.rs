//! [`make_qkx2_quants`](super::kquant::make_qkx2_quants) for the 8 sub-blocks of a Q4_K /
//! Q5_K super-block at once: lane k runs sub-block k's whole search, every float operation in
//! the scalar search's order, and decisions become per-lane selects. The hot loops use
//! [`super::lanes`]' vectors (the baseline's, or AVX2's when the CPU has it); the others are
//! plain array loops. The bytes are the reference's by construction; tests compare the two on
//! adversarial blocks, and `MLX2GGUF_REFERENCE_KERNELS=1` runs the reference instead.

use super::kquant::{nearest_int, Search};
use super::lanes::{self, Isa, Portable, F8, I8};

/// Sub-blocks searched side by side.
pub(crate) const LANES: usize = 8;
/// One sub-block per lane, element-major: `x[j][k]` is element j of sub-block k (N elements
/// per sub-block: 32 for Q4_K/Q5_K, 16 for Q2_K).
type Lanes<T, const N: usize> = [[T; LANES]; N];

/// Per-lane results: (scale, the_min) as `make_qkx2_quants` returns them; levels in `l`.
pub(crate) struct Fit {
    pub scales: [f32; LANES],
    pub mins: [f32; LANES],
}

/// `make_qkx2_quants(nmax, x, w, l, search)` for the 8 sub-blocks of N values of `x` (8N
/// values) with weights `w` (8N), levels to `l` (8N), as [`super::kquant`]'s.
pub(crate) fn make_qkx2_quants_x8<const N: usize>(
    nmax: i32,
    x: &[f32],
    w: &[f32],
    search: Search,
    l: &mut [u8],
) -> Fit {
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
        return unsafe { x8_avx2::<N>(nmax, x, w, search, l) };
    }
    x8::<Portable, N>(nmax, x, w, search, l)
}

/// [`x8`] compiled for AVX2 (8 lanes in one register).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn x8_avx2<const N: usize>(nmax: i32, x: &[f32], w: &[f32], search: Search, l: &mut [u8]) -> Fit {
    x8::<lanes::Avx2, N>(nmax, x, w, search, l)
}

/// The search for the target's baseline (SSE2 on x86-64, NEON on arm64), or inlined into a
/// wider variant.
#[inline(always)]
fn x8<S: Isa, const N: usize>(nmax: i32, x: &[f32], w: &[f32], search: Search, l: &mut [u8]) -> Fit {
    let Search { rmin, rdelta, nstep, clamp_first, use_mad } = search;
    let xt: Lanes<f32, N> = std::array::from_fn(|j| std::array::from_fn(|k| x[N * k + j]));
    let wt: Lanes<f32, N> = std::array::from_fn(|j| std::array::from_fn(|k| w[N * k + j]));
    let mut s = State::new(&xt, &wt, nmax, clamp_first, use_mad);
    let mut lt: Lanes<i32, N> = [[0; LANES]; N];
    s.first_guess(&xt, &wt, &mut lt);
    if nstep >= 1 {
        // Each candidate writes all of it: zeroed once, not per candidate.
        let mut laux: Lanes<i32, N> = [[0; LANES]; N];
        for is in 0..=nstep {
            s.try_candidate::<S, N>(&xt, &wt, rmin + rdelta * is as f32 + s.nmax_f, &mut lt, &mut laux);
        }
    }
    for (j, row) in lt.iter().enumerate() {
        for k in 0..LANES {
            l[N * k + j] = if s.flat[k] { 0 } else { row[k] as u8 };
        }
    }
    let mins: [f32; LANES] = std::array::from_fn(|k| -s.min[k]);
    let scales = std::array::from_fn(|k| if s.flat[k] { 0.0 } else { s.scale[k] });
    Fit { scales, mins }
}

/// The search state of every lane.
struct State {
    nmax: i32,
    nmax_f: f32,
    /// ggml `make_qkx3_quants`' candidate levels: clamp to nmax before rounding, 0 unless > 0.
    clamp_first: bool,
    /// Absolute instead of squared error (Q2_K).
    use_mad: bool,
    min: [f32; LANES],
    max: [f32; LANES],
    sum_w: [f32; LANES],
    sum_x: [f32; LANES],
    /// max == min: the scalar search returns (0, -min) with zero levels at once.
    flat: [bool; LANES],
    scale: [f32; LANES],
    best_error: [f32; LANES],
}

impl State {
    #[inline(always)]
    fn new<const N: usize>(x: &Lanes<f32, N>, w: &Lanes<f32, N>, nmax: i32, clamp_first: bool, use_mad: bool) -> State {
        let (mut min, mut max) = (x[0], x[0]);
        let mut sum_w = w[0];
        let mut sum_x: [f32; LANES] = std::array::from_fn(|k| sum_w[k] * x[0][k]);
        for (xj, wj) in x.iter().zip(w).skip(1) {
            for k in 0..LANES {
                min[k] = if xj[k] < min[k] { xj[k] } else { min[k] };
                max[k] = if xj[k] > max[k] { xj[k] } else { max[k] };
                sum_w[k] += wj[k];
                sum_x[k] += wj[k] * xj[k];
            }
        }
        for m in &mut min {
            *m = if *m > 0.0 { 0.0 } else { *m };
        }
        let flat = std::array::from_fn(|k| max[k] == min[k]);
        let nmax_f = nmax as f32;
        State {
            nmax,
            nmax_f,
            clamp_first,
            use_mad,
            min,
            max,
            sum_w,
            sum_x,
            flat,
            scale: [0.0; LANES],
            best_error: [0.0; LANES],
        }
    }

    /// The levels at scale nmax/(max − min) and their error: the search's starting point.
    #[inline(always)]
    fn first_guess<const N: usize>(&mut self, x: &Lanes<f32, N>, w: &Lanes<f32, N>, lt: &mut Lanes<i32, N>) {
        let iscale: [f32; LANES] = std::array::from_fn(|k| self.nmax_f / (self.max[k] - self.min[k]));
        self.scale = std::array::from_fn(|k| 1.0 / iscale[k]);
        let mut err = [0.0f32; LANES];
        for ((xj, wj), lj) in x.iter().zip(w).zip(lt.iter_mut()) {
            for k in 0..LANES {
                let q = nearest_int(iscale[k] * (xj[k] - self.min[k])).clamp(0, self.nmax);
                lj[k] = q;
                let diff = self.scale[k] * q as f32 + self.min[k] - xj[k];
                err[k] += wj[k] * if self.use_mad { diff.abs() } else { diff * diff };
            }
        }
        self.best_error = err;
    }

    /// One candidate (numerator `num` = rmin + rdelta·is + nmax) in every lane, its levels
    /// in `laux`; lanes whose fit beats their best take it (scale, offset and levels).
    #[inline(always)]
    fn try_candidate<S: Isa, const N: usize>(
        &mut self,
        x: &Lanes<f32, N>,
        w: &Lanes<f32, N>,
        num: f32,
        lt: &mut Lanes<i32, N>,
        laux: &mut Lanes<i32, N>,
    ) {
        let min = self.min;
        let iscale: [f32; LANES] = std::array::from_fn(|k| num / (self.max[k] - min[k]));
        let [sum_l, sum_l2, sum_xl] = self.sums::<S, N>(x, w, iscale, laux);
        let mut fit_scale = [0.0f32; LANES];
        let mut fit_min = [0.0f32; LANES];
        let mut valid = [false; LANES];
        for k in 0..LANES {
            let d = self.sum_w[k] * sum_l2[k] - sum_l[k] * sum_l[k];
            let this_scale = (self.sum_w[k] * sum_xl[k] - self.sum_x[k] * sum_l[k]) / d;
            let this_min = (sum_l2[k] * self.sum_x[k] - sum_l[k] * sum_xl[k]) / d;
            let clamp = this_min > 0.0;
            fit_scale[k] = if clamp { sum_xl[k] / sum_l2[k] } else { this_scale };
            fit_min[k] = if clamp { 0.0 } else { this_min };
            valid[k] = d > 0.0 && !self.flat[k];
        }
        let err = errors::<S, N>(x, w, fit_scale, fit_min, laux, self.use_mad);
        let take: [bool; LANES] = std::array::from_fn(|k| valid[k] && err[k] < self.best_error[k]);
        for k in 0..LANES {
            if take[k] {
                self.best_error[k] = err[k];
                self.scale[k] = fit_scale[k];
                self.min[k] = fit_min[k];
            }
        }
        if !take.contains(&true) {
            return;
        }
        // One blend per element row (the per-lane `if` compiled to 8 branches and stores).
        let take = I8::<S>::new(take.map(i32::from)).eq(I8::splat(1));
        for (lj, aj) in lt.iter_mut().zip(laux.iter()) {
            *lj = take.select_i(I8::new(*aj), I8::new(*lj)).to_array();
        }
    }

    /// A candidate's levels (to `laux`) and per lane Σw·q, Σw·q², Σw·q·x in element order.
    #[inline(always)]
    fn sums<S: Isa, const N: usize>(
        &self,
        x: &Lanes<f32, N>,
        w: &Lanes<f32, N>,
        iscale: [f32; LANES],
        laux: &mut Lanes<i32, N>,
    ) -> [[f32; LANES]; 3] {
        // One loop per rounding: the compiler kept the test inside a single loop.
        if self.clamp_first {
            self.sums_rounded::<S, N, true>(x, w, iscale, laux)
        } else {
            self.sums_rounded::<S, N, false>(x, w, iscale, laux)
        }
    }

    /// [`Self::sums`] with `clamp_first` known.
    #[inline(always)]
    fn sums_rounded<S: Isa, const N: usize, const CLAMP_FIRST: bool>(
        &self,
        x: &Lanes<f32, N>,
        w: &Lanes<f32, N>,
        iscale: [f32; LANES],
        laux: &mut Lanes<i32, N>,
    ) -> [[f32; LANES]; 3] {
        let (iscale, min) = (F8::<S>::new(iscale), F8::new(self.min));
        let (zero, nmax) = (I8::zero(), I8::splat(self.nmax));
        let nmax_f = F8::splat(self.nmax_f);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (F8::zero(), F8::zero(), F8::zero());
        for ((xj, wj), aj) in x.iter().zip(w).zip(laux.iter_mut()) {
            let (xv, wv) = (F8::new(*xj), F8::new(*wj));
            let t = iscale * (xv - min);
            let qi = if CLAMP_FIRST {
                let positive = t.gt(F8::zero()).to_i32();
                lanes::nearest_int(t.min(nmax_f)) & positive
            } else {
                lanes::nearest_int(t).max(zero).min(nmax)
            };
            *aj = qi.to_array();
            let q = qi.to_f32();
            let wq = wv * q;
            sum_l += wq;
            sum_l2 += wq * q;
            sum_xl += wq * xv;
        }
        [sum_l.to_array(), sum_l2.to_array(), sum_xl.to_array()]
    }
}

/// Per lane Σ w·(scale·l + min − x)² (or, `use_mad`, Σ w·|scale·l + min − x|), in element
/// order.
#[inline(always)]
fn errors<S: Isa, const N: usize>(
    x: &Lanes<f32, N>,
    w: &Lanes<f32, N>,
    scale: [f32; LANES],
    min: [f32; LANES],
    laux: &Lanes<i32, N>,
    use_mad: bool,
) -> [f32; LANES] {
    // One loop per error, as in `State::sums`.
    if use_mad {
        errors_of::<S, N, true>(x, w, scale, min, laux)
    } else {
        errors_of::<S, N, false>(x, w, scale, min, laux)
    }
}

/// [`errors`] with `use_mad` known.
#[inline(always)]
fn errors_of<S: Isa, const N: usize, const MAD: bool>(
    x: &Lanes<f32, N>,
    w: &Lanes<f32, N>,
    scale: [f32; LANES],
    min: [f32; LANES],
    laux: &Lanes<i32, N>,
) -> [f32; LANES] {
    let (scale, min) = (F8::<S>::new(scale), F8::new(min));
    let mut err = F8::zero();
    for ((xj, wj), aj) in x.iter().zip(w).zip(laux.iter()) {
        let diff = scale * I8::new(*aj).to_f32() + min - F8::new(*xj);
        err += F8::new(*wj) * if MAD { diff.abs() } else { diff * diff };
    }
    err.to_array()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::kquant::make_qkx2_quants;

    /// Super-blocks of the kinds that break ports: random, zeros, −0.0, constant, denormal,
    /// huge, one outlier, integer grids (rounding ties), all positive.
    fn adversarial() -> Vec<Vec<f32>> {
        let mut rnd = crate::quant::test_values(0x2545F4914F6CDD1D);
        let mut out = Vec::new();
        for kind in 0..40 {
            let sb: Vec<f32> = (0..256)
                .map(|i| {
                    let r = rnd();
                    let sub = (i / 32 + kind) % 9;
                    match sub {
                        0 => r * 0.04,
                        1 => 0.0,
                        2 => -0.0,
                        3 => 1.5,
                        4 => r * 1e-40,
                        5 => r * 6e4,
                        6 if i % 32 == 5 => 300.0,
                        6 => r * 0.01,
                        7 => ((r * 16.0) as i32) as f32 * 0.5,
                        _ => r.abs() + 0.25,
                    }
                })
                .collect();
            out.push(sb);
        }
        out
    }

    fn weights(x: &[f32]) -> Vec<f32> {
        x.chunks(32)
            .flat_map(|xs| {
                let av = (xs.iter().map(|v| v * v).sum::<f32>() / 32.0).sqrt();
                xs.iter().map(move |v| av + v.abs()).collect::<Vec<_>>()
            })
            .collect()
    }

    fn reference<const N: usize>(nmax: i32, x: &[f32], w: &[f32], search: Search) -> (Vec<u32>, Vec<u8>) {
        let mut l = vec![0u8; 8 * N];
        let mut bits = Vec::new();
        for j in 0..8 {
            let r = N * j..N * j + N;
            let (s, m) = make_qkx2_quants(nmax, &x[r.clone()], &w[r.clone()], &mut l[r], search);
            bits.extend([s.to_bits(), m.to_bits()]);
        }
        (bits, l)
    }

    fn lanes<const N: usize>(f: impl Fn(&mut [u8]) -> Fit) -> (Vec<u32>, Vec<u8>) {
        let mut l = vec![0u8; 8 * N];
        let fit = f(&mut l);
        (fit.scales.iter().zip(&fit.mins).flat_map(|(s, m)| [s.to_bits(), m.to_bits()]).collect(), l)
    }

    /// Both paths of one search on 8 sub-blocks of N.
    fn check<const N: usize>(nmax: i32, x: &[f32], w: &[f32], search: Search) {
        let want = reference::<N>(nmax, x, w, search);
        assert_eq!(lanes::<N>(|l| x8::<Portable, N>(nmax, x, w, search, l)), want, "baseline {search:?}");
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx2() {
            // SAFETY: the CPU has AVX2 and F16C.
            assert_eq!(lanes::<N>(|l| unsafe { x8_avx2::<N>(nmax, x, w, search, l) }), want, "avx2 {search:?}");
        }
    }

    /// Every path this machine can run gives the reference's bits: Q4_K's and Q5_K's searches,
    /// Q2_K's (sub-blocks of 16, absolute error) and the importance-weighted one
    /// (`make_qkx3_quants`) at both sizes, on weights with zeros too.
    #[test]
    fn lanes_equal_the_reference_on_every_path() {
        let q4 = Search { rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false, clamp_first: false };
        let q5 = Search { rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: false, clamp_first: false };
        let q2 = Search { rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true, clamp_first: false };
        for (i, x) in adversarial().into_iter().enumerate() {
            let mut w = weights(&x);
            for (nmax, search) in [(15, q4), (31, q5), (15, Search::WEIGHTED), (31, Search::WEIGHTED)] {
                if search.clamp_first {
                    // Importance weights: some columns never activated.
                    w.iter_mut().enumerate().filter(|(j, _)| (j + i) % 7 == 0).for_each(|(_, v)| *v = 0.0);
                }
                check::<32>(nmax, &x, &w, search);
            }
            let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
            for r in [0..128, 128..256] {
                check::<16>(3, &x[r.clone()], &abs[r.clone()], q2);
                check::<16>(3, &x[r.clone()], &w[r], Search::WEIGHTED);
            }
        }
    }
}
