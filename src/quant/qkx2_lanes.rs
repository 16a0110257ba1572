//! [`make_qkx2_quants`](super::kquant::make_qkx2_quants) for the 8 sub-blocks of a Q4_K /
//! Q5_K super-block at once: lane k runs sub-block k's whole search, every float operation in
//! the scalar search's order, and decisions become per-lane selects, on [`super::lanes`]'
//! vectors (the baseline's, or AVX2's when the CPU has it). The bytes are the reference's by
//! construction; tests compare the two on adversarial blocks, and
//! `MLX2GGUF_REFERENCE_KERNELS=1` runs the reference instead.

use super::kquant::Search;
use super::lanes::{self, Isa, Portable, F8, I8, M8};

/// Sub-blocks searched side by side.
pub(crate) const LANES: usize = 8;
/// One sub-block per lane, element-major: `x[j][k]` is element j of sub-block k (N elements
/// per sub-block: 32 for Q4_K/Q5_K, 16 for Q2_K). Levels are kept as floats (small integers,
/// exact), the form the sums and errors use.
type Lanes<T, const N: usize> = [[T; LANES]; N];

/// How a candidate's products become levels (the `ROUNDING` of the level loops).
/// `make_qkx3_quants`' clamp before rounding: exact in floats for every product.
const CLAMP_FIRST: u8 = 0;
/// `make_qkx2_quants`' clamp after rounding, in floats: `(t + 1.5·2²³) − 1.5·2²³` is the
/// nearest integer for |t| < 2²², where `nearest_int`'s bit trick gives the same. Taken when
/// [`State::in_range`] bounds every product.
const IN_RANGE: u8 = 1;
/// The same with `nearest_int`'s bits, for any product (huge ones give its wrapped values).
const BITS: u8 = 2;
/// Bound on |products| for [`IN_RANGE`]: half of 2²², for the bound's own rounding.
const IN_RANGE_LIMIT: f32 = (1 << 21) as f32;

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
    let (xt, wt) = (by_element::<S, N>(x), by_element::<S, N>(w));
    let mut s = State::<S>::new(&xt, &wt, nmax, clamp_first, use_mad);
    let mut lt: Lanes<f32, N> = [[0.0; LANES]; N];
    s.first_guess(&xt, &wt, &mut lt);
    if nstep >= 1 {
        // Each candidate writes all of it: zeroed once, not per candidate.
        let mut laux: Lanes<f32, N> = [[0.0; LANES]; N];
        for is in 0..=nstep {
            s.try_candidate(&xt, &wt, rmin + rdelta * is as f32 + s.nmax_f, &mut laux);
        }
        s.picked_levels(&xt, &mut lt);
    }
    // Back to one sub-block after another: 8 × 8 transpositions of the levels.
    let flat = s.flat.to_i32().to_array();
    for j0 in (0..N).step_by(LANES) {
        let rows = F8::<S>::columns::<LANES>(lt.as_flattened(), std::array::from_fn(|m| LANES * (j0 + m)));
        for (k, levels) in rows.iter().enumerate() {
            let out = &mut l[N * k + j0..N * k + j0 + LANES];
            if flat[k] != 0 {
                out.fill(0);
            } else {
                out.iter_mut().zip(levels.trunc().to_array()).for_each(|(o, q)| *o = q as u8);
            }
        }
    }
    let mins = s.min.to_array().map(|m| -m);
    let scales = s.flat.select(F8::zero(), s.scale).to_array();
    Fit { scales, mins }
}

/// The 8 sub-blocks of N values of `v` element-major, by 8 × 8 transpositions (N is a
/// multiple of 8).
#[inline(always)]
fn by_element<S: Isa, const N: usize>(v: &[f32]) -> Lanes<f32, N> {
    let mut out = [[0.0; LANES]; N];
    for (j0, rows) in out.chunks_exact_mut(LANES).enumerate() {
        let columns = F8::<S>::columns::<LANES>(v, std::array::from_fn(|k| N * k + LANES * j0));
        for (o, c) in rows.iter_mut().zip(columns) {
            *o = c.to_array();
        }
    }
    out
}

/// The search state of every lane.
struct State<S: Isa> {
    nmax: i32,
    nmax_f: f32,
    /// ggml `make_qkx3_quants`' candidate levels: clamp to nmax before rounding, 0 unless > 0.
    clamp_first: bool,
    /// Absolute instead of squared error (Q2_K).
    use_mad: bool,
    min: F8<S>,
    max: F8<S>,
    /// The largest |x| (infinite where some x is NaN): bounds |x − min| for [`Self::in_range`].
    reach: F8<S>,
    sum_w: F8<S>,
    sum_x: F8<S>,
    /// max == min: the scalar search returns (0, -min) with zero levels at once.
    flat: M8<S>,
    scale: F8<S>,
    best_error: F8<S>,
    /// Lanes whose best levels are a candidate's, not the first guess's, and that candidate's
    /// inverse scale and offset: its levels are made again from them at the end.
    picked: M8<S>,
    picked_iscale: F8<S>,
    picked_min: F8<S>,
}

impl<S: Isa> State<S> {
    #[inline(always)]
    fn new<const N: usize>(x: &Lanes<f32, N>, w: &Lanes<f32, N>, nmax: i32, clamp_first: bool, use_mad: bool) -> Self {
        let farther = |reach: F8<S>, xv: F8<S>| {
            xv.is_nan().select(F8::splat(f32::INFINITY), xv.abs().gt(reach).select(xv.abs(), reach))
        };
        let (mut min, mut max) = (F8::new(x[0]), F8::new(x[0]));
        let mut reach = farther(F8::zero(), min);
        let mut sum_w = F8::new(w[0]);
        let mut sum_x = sum_w * F8::new(x[0]);
        for (xj, wj) in x.iter().zip(w).skip(1) {
            let (xv, wv) = (F8::new(*xj), F8::new(*wj));
            min = xv.lt(min).select(xv, min);
            max = xv.gt(max).select(xv, max);
            reach = farther(reach, xv);
            sum_w += wv;
            sum_x += wv * xv;
        }
        min = min.gt(F8::zero()).select(F8::zero(), min);
        State {
            nmax,
            nmax_f: nmax as f32,
            clamp_first,
            use_mad,
            min,
            max,
            reach,
            sum_w,
            sum_x,
            flat: max.eq(min),
            scale: F8::zero(),
            best_error: F8::zero(),
            picked: M8::none(),
            picked_iscale: F8::zero(),
            picked_min: F8::zero(),
        }
    }

    /// Whether every product `iscale·(x − min)` of the lanes searched is in [`IN_RANGE`]'s
    /// range (flat lanes' results are discarded). A NaN or infinite bound says no.
    #[inline(always)]
    fn in_range(&self, iscale: F8<S>, min: F8<S>) -> bool {
        let bound = iscale.abs() * (self.reach + min.abs());
        (bound.lt(F8::splat(IN_RANGE_LIMIT)) | self.flat).all()
    }

    /// The levels at scale nmax/(max − min) and their error: the search's starting point.
    #[inline(always)]
    fn first_guess<const N: usize>(&mut self, x: &Lanes<f32, N>, w: &Lanes<f32, N>, lt: &mut Lanes<f32, N>) {
        let iscale = F8::splat(self.nmax_f) / (self.max - self.min);
        self.scale = F8::splat(1.0) / iscale;
        // Clamped after rounding, also where the candidates clamp first. Once per search:
        // `nearest_int`'s bits, with no range to check.
        self.set_levels::<N, BITS>(x, iscale, self.min, M8::all_true(), lt);
        self.best_error = errors(x, w, self.scale, self.min, lt, self.use_mad);
    }

    /// One candidate (numerator `num` = rmin + rdelta·is + nmax) in every lane, its levels
    /// in `laux`; lanes whose fit beats their best take it (scale, offset, error) and note
    /// where its levels came from.
    #[inline(always)]
    fn try_candidate<const N: usize>(
        &mut self,
        x: &Lanes<f32, N>,
        w: &Lanes<f32, N>,
        num: f32,
        laux: &mut Lanes<f32, N>,
    ) {
        let min = self.min;
        let iscale = F8::splat(num) / (self.max - min);
        let [sum_l, sum_l2, sum_xl] = self.sums(x, w, iscale, laux);
        // The least-squares fit, each lane's operations in the scalar order.
        let d = self.sum_w * sum_l2 - sum_l * sum_l;
        let this_scale = (self.sum_w * sum_xl - self.sum_x * sum_l) / d;
        let this_min = (sum_l2 * self.sum_x - sum_l * sum_xl) / d;
        let clamp = this_min.gt(F8::zero());
        let fit_scale = clamp.select(sum_xl / sum_l2, this_scale);
        let fit_min = clamp.select(F8::zero(), this_min);
        let err = errors(x, w, fit_scale, fit_min, laux, self.use_mad);
        let take = d.gt(F8::zero()) & !self.flat & err.lt(self.best_error);
        if !take.any() {
            return;
        }
        self.best_error = take.select(err, self.best_error);
        self.scale = take.select(fit_scale, self.scale);
        self.min = take.select(fit_min, min);
        // Copying `laux` at every take cost more than making the last taken levels again.
        self.picked |= take;
        self.picked_iscale = take.select(iscale, self.picked_iscale);
        self.picked_min = take.select(min, self.picked_min);
    }

    /// A candidate's levels (to `laux`) and per lane Σw·q, Σw·q², Σw·q·x in element order.
    #[inline(always)]
    fn sums<const N: usize>(
        &self,
        x: &Lanes<f32, N>,
        w: &Lanes<f32, N>,
        iscale: F8<S>,
        laux: &mut Lanes<f32, N>,
    ) -> [F8<S>; 3] {
        // One loop per rounding: the compiler kept the test inside a single loop.
        if self.clamp_first {
            self.sums_rounded::<N, CLAMP_FIRST>(x, w, iscale, laux)
        } else if self.in_range(iscale, self.min) {
            self.sums_rounded::<N, IN_RANGE>(x, w, iscale, laux)
        } else {
            self.sums_rounded::<N, BITS>(x, w, iscale, laux)
        }
    }

    /// [`Self::sums`] with the rounding known.
    #[inline(always)]
    fn sums_rounded<const N: usize, const ROUNDING: u8>(
        &self,
        x: &Lanes<f32, N>,
        w: &Lanes<f32, N>,
        iscale: F8<S>,
        laux: &mut Lanes<f32, N>,
    ) -> [F8<S>; 3] {
        let (nmax, nmax_f) = (I8::splat(self.nmax), F8::splat(self.nmax_f));
        let (mut sum_l, mut sum_l2, mut sum_xl) = (F8::zero(), F8::zero(), F8::zero());
        for ((xj, wj), aj) in x.iter().zip(w).zip(laux.iter_mut()) {
            let (xv, wv) = (F8::new(*xj), F8::new(*wj));
            let q = level::<S, ROUNDING>(iscale * (xv - self.min), nmax, nmax_f);
            *aj = q.to_array();
            let wq = wv * q;
            sum_l += wq;
            sum_l2 += wq * q;
            sum_xl += wq * xv;
        }
        [sum_l, sum_l2, sum_xl]
    }

    /// The levels of the lanes that took a candidate, made again from its scale and offset
    /// (as [`Self::sums`] made them: its rounding, or `nearest_int`'s bits, which equal
    /// [`IN_RANGE`]'s wherever that is taken), into `lt`.
    #[inline(always)]
    fn picked_levels<const N: usize>(&self, x: &Lanes<f32, N>, lt: &mut Lanes<f32, N>) {
        if !self.picked.any() {
            return;
        }
        let (iscale, min, lanes) = (self.picked_iscale, self.picked_min, self.picked);
        if self.clamp_first {
            self.set_levels::<N, CLAMP_FIRST>(x, iscale, min, lanes, lt);
        } else {
            self.set_levels::<N, BITS>(x, iscale, min, lanes, lt);
        }
    }

    /// The levels of `iscale·(x − min)` by `ROUNDING` into the `lanes` of `lt`.
    #[inline(always)]
    fn set_levels<const N: usize, const ROUNDING: u8>(
        &self,
        x: &Lanes<f32, N>,
        iscale: F8<S>,
        min: F8<S>,
        lanes: M8<S>,
        lt: &mut Lanes<f32, N>,
    ) {
        let (nmax, nmax_f) = (I8::splat(self.nmax), F8::splat(self.nmax_f));
        for (xj, lj) in x.iter().zip(lt.iter_mut()) {
            let q = level::<S, ROUNDING>(iscale * (F8::new(*xj) - min), nmax, nmax_f);
            *lj = lanes.select(q, F8::new(*lj)).to_array();
        }
    }
}

/// The level of product `t` in 0..=nmax by `ROUNDING`, as a float.
#[inline(always)]
fn level<S: Isa, const ROUNDING: u8>(t: F8<S>, nmax: I8<S>, nmax_f: F8<S>) -> F8<S> {
    let magic = F8::splat(12582912.0);
    match ROUNDING {
        // NaN → nmax by `fast_min`, then 0 by the test; past 2²² only where masked.
        CLAMP_FIRST => t.gt(F8::zero()).and((t.fast_min(nmax_f) + magic) - magic),
        IN_RANGE => ((t + magic) - magic).fast_max(F8::zero()).fast_min(nmax_f),
        _ => lanes::nearest_int(t).max(I8::zero()).min(nmax).to_f32(),
    }
}

/// Per lane Σ w·(scale·l + min − x)² (or, `use_mad`, Σ w·|scale·l + min − x|), in element
/// order.
#[inline(always)]
fn errors<S: Isa, const N: usize>(
    x: &Lanes<f32, N>,
    w: &Lanes<f32, N>,
    scale: F8<S>,
    min: F8<S>,
    laux: &Lanes<f32, N>,
    use_mad: bool,
) -> F8<S> {
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
    scale: F8<S>,
    min: F8<S>,
    laux: &Lanes<f32, N>,
) -> F8<S> {
    let mut err = F8::zero();
    for ((xj, wj), aj) in x.iter().zip(w).zip(laux.iter()) {
        let diff = scale * F8::new(*aj) + min - F8::new(*xj);
        err += F8::new(*wj) * if MAD { diff.abs() } else { diff * diff };
    }
    err
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
