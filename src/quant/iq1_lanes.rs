//! The split searches of IQ1_S and IQ1_M (ggml's `quantize_row_iq1_s_impl` /
//! `quantize_row_iq1_m_impl`) with 8 second boundaries (i2) per vector. Each candidate's
//! Σw·q·x and Σw·q² are computed lane by lane in the scalar order; the running best (a
//! candidate is taken when `sumq2 > 0 && sumqx² > best·sumq2`, and then `best = (sumqx /
//! sumq2)·sumqx`) is kept exactly: the candidates of a vector are compared with the current
//! best at once. When one of them beats it and its score is clearly above every other's
//! (see [`BestScan::take_clear_winner`]), it is the one the scalar loop ends with; otherwise
//! they are taken one at a time, each against the best so far, as the scalar loop does.
//! Tests compare both with the scalar searches.

use super::lanes::{Isa, F8, M8};

/// A clear winner's score is above every other beating candidate's by more than this
/// fraction (64 ulps): the rounding of a take's test, a few ulps, cannot reorder them.
const CLEAR_MARGIN: f32 = 1.0 / (1 << 18) as f32;
/// Clean candidates have Σw·q² in [2⁻⁶⁰, 2³⁰] and |Σw·q·x| ≤ 2³⁰: with a winning score of at
/// least 2⁻⁵⁰, no score or product of a test that decides the outcome overflows, and
/// underflow's absolute error is far below the margin.
const CLEAN_Q2: (f32, f32) = (1.0 / (1u64 << 60) as f32, (1u64 << 30) as f32);
const CLEAN_QX: f32 = (1u64 << 30) as f32;
const CLEAN_SCORE: f32 = 1.0 / (1u64 << 50) as f32;

/// A search's result: `(i1, i2, pattern, scale)` of the last candidate taken.
pub(crate) type Pick = (usize, usize, usize, f32);

/// One vector's candidates for [`BestScan::take_in_order`]: the first (i1, i2) of its
/// lanes, how many lanes hold one, which beat the best at entry (bit k per pattern), and
/// their sums by pattern and lane.
struct Offered<const P: usize> {
    i1: usize,
    i2_0: usize,
    lanes: usize,
    beats: [u32; P],
    qx: [[f32; 8]; P],
    q2: [[f32; 8]; P],
}

/// The running best of a search.
pub(crate) struct BestScan {
    score: f32,
    pub pick: Option<Pick>,
}

impl BestScan {
    pub(crate) fn new() -> Self {
        BestScan { score: -f32::MAX, pick: None }
    }

    /// The candidates (i1, i2₀ + k, p) for lanes k < `lanes` and the P patterns, in the
    /// scalar order (k outer, p inner), with their sums `qx[p]`, `q2[p]` in lane k.
    #[inline(always)]
    pub(crate) fn offer<S: Isa, const P: usize>(
        &mut self,
        i1: usize,
        i2_0: usize,
        lanes: usize,
        qx: &[F8<S>; P],
        q2: &[F8<S>; P],
    ) {
        let best = F8::splat(self.score);
        let live = F8::<S>::new([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).lt(F8::splat(lanes as f32));
        let mut beat = [M8::<S>::none(); P];
        let (mut beats, mut any) = ([0u32; P], 0u32);
        for p in 0..P {
            beat[p] = live & q2[p].gt(F8::zero()) & (qx[p] * qx[p]).gt(best * q2[p]);
            beats[p] = beat[p].bitmask();
            any |= beats[p];
        }
        // Most vectors hold no better candidate: one test, no bit juggling.
        if any != 0 && !self.take_clear_winner((i1, i2_0), live, &beat, qx, q2) {
            // Plain arrays across the call: vectors of an instruction set chosen at run time
            // must not cross a function boundary that lacks its target feature.
            let mut o = Offered { i1, i2_0, lanes, beats, qx: [[0f32; 8]; P], q2: [[0f32; 8]; P] };
            for p in 0..P {
                (o.qx[p], o.q2[p]) = (qx[p].to_array(), q2[p].to_array());
            }
            self.take_in_order(&o);
        }
    }

    /// Settles a vector at once when the scalar loop's outcome is certain: some candidate c
    /// that beats the best at entry E has a score s_c = (qx/q2)·qx at least E and above
    /// every other such candidate's by [`CLEAR_MARGIN`], and every candidate is clean or
    /// never taken. Then c is taken whatever was taken before it: a candidate not beating E
    /// can only be taken after a take left the best below E, and that take's score, within
    /// ulps of E, is far below s_c. Its take sets best to s_c (the same operations as
    /// here), and no later test passes: a candidate's qx² rounds to at most E·q2 if it did
    /// not beat E, and is far below s_c·q2 if it did. False: nothing was taken.
    #[inline(always)]
    fn take_clear_winner<S: Isa, const P: usize>(
        &mut self,
        (i1, i2_0): (usize, usize),
        live: M8<S>,
        beat: &[M8<S>; P],
        qx: &[F8<S>; P],
        q2: &[F8<S>; P],
    ) -> bool {
        let entry = self.score;
        let (lo, hi, qx_max) = (F8::splat(CLEAN_Q2.0), F8::splat(CLEAN_Q2.1), F8::splat(CLEAN_QX));
        let (mut scale, mut score) = ([F8::<S>::zero(); P], [F8::<S>::zero(); P]);
        let (mut unclean, mut top) = (0u32, F8::<S>::splat(-1.0));
        for p in 0..P {
            let never_taken = !q2[p].gt(F8::zero()) | qx[p].is_nan();
            let clean = q2[p].ge(lo) & hi.ge(q2[p]) & qx_max.ge(qx[p].abs());
            unclean |= (live & !(never_taken | clean)).bitmask();
            scale[p] = qx[p] / q2[p];
            score[p] = scale[p] * qx[p];
            top = top.fast_max(beat[p].select(score[p], F8::splat(-1.0)));
        }
        let high = top.to_array().into_iter().fold(-1.0f32, f32::max);
        // E is −f32::MAX or an earlier score (never NaN here: nothing beats NaN).
        if unclean != 0 || high < CLEAN_SCORE || high < entry {
            return false;
        }
        let near = F8::splat(high * (1.0 - CLEAR_MARGIN));
        let mut winner = None;
        for p in 0..P {
            let lanes_near = (beat[p] & score[p].ge(near)).bitmask();
            if lanes_near != 0 {
                if winner.is_some() || !lanes_near.is_power_of_two() {
                    return false;
                }
                winner = Some((p, lanes_near.trailing_zeros() as usize));
            }
        }
        let Some((p, k)) = winner else { return false };
        self.score = high;
        self.pick = Some((i1, i2_0 + k, p, scale[p].to_array()[k]));
        true
    }

    /// The candidates of one vector one take at a time, each against the best so far. A
    /// candidate that did not beat the best at entry (`beats`, bit k per pattern) cannot beat
    /// a best at least as high (the test's right side grows with it), so while the best has
    /// not fallen below its entry value only those that did are visited.
    #[inline(never)]
    fn take_in_order<const P: usize>(&mut self, o: &Offered<P>) {
        let entry = self.score;
        if self.fallen_below(entry) {
            return self.take_from(o, entry, 0);
        }
        let mut lanes_beating = o.beats.iter().fold(0, |a, &b| a | b) & ((1u32 << o.lanes) - 1);
        while lanes_beating != 0 {
            let k = lanes_beating.trailing_zeros() as usize;
            lanes_beating &= lanes_beating - 1;
            for p in (0..P).filter(|&p| o.beats[p] >> k & 1 != 0) {
                self.consider((o.i1, o.i2_0 + k, p), o.qx[p][k], o.q2[p][k]);
                if self.fallen_below(entry) {
                    return self.take_from(o, entry, k * P + p + 1);
                }
            }
        }
    }

    /// [`Self::take_in_order`] from candidate `from` (k·P + p) on, visiting also those that
    /// did not beat the best at entry while the best is below it.
    fn take_from<const P: usize>(&mut self, o: &Offered<P>, entry: f32, from: usize) {
        for c in from..o.lanes * P {
            let (k, p) = (c / P, c % P);
            if o.beats[p] >> k & 1 != 0 || self.fallen_below(entry) {
                self.consider((o.i1, o.i2_0 + k, p), o.qx[p][k], o.q2[p][k]);
            }
        }
    }

    /// Whether the best is below `entry`, or NaN.
    fn fallen_below(&self, entry: f32) -> bool {
        self.score.partial_cmp(&entry).is_none_or(|o| o.is_lt())
    }

    /// ggml's step for one candidate `(i1, i2, pattern)`: taken when `sumq2 > 0` and
    /// `sumqx² > best·sumq2`, and then `best = (sumqx / sumq2)·sumqx`.
    #[inline(always)]
    pub(crate) fn consider(&mut self, (i1, i2, p): (usize, usize, usize), sumqx: f32, sumq2: f32) {
        if sumq2 > 0.0 && sumqx * sumqx > self.score * sumq2 {
            let scale = sumqx / sumq2;
            self.score = scale * sumqx;
            self.pick = Some((i1, i2, p, scale));
        }
    }
}

/// A prefix-sum array of n + 1 values, padded with 7 zeros so that 8 lanes load from any
/// index up to n.
pub(crate) fn padded<const N1: usize, const P: usize>(sums: &[f32; N1]) -> [f32; P] {
    let mut out = [0f32; P];
    out[..N1].copy_from_slice(sums);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector's takes equal ggml's loop taking every candidate in order, also when a take
    /// leaves the best below its entry value (near-ties round that way) and with NaN and inf.
    #[test]
    fn takes_in_order_are_the_scalar_loop() {
        const P: usize = 2;
        let mut next = crate::quant::test_values(21);
        let mut falls = 0;
        for round in 0..100_000 {
            let s = 1.0 + next().abs() * 4.0;
            let lanes = 1 + round % 8;
            let mut o = Offered::<P> { i1: round, i2_0: 3, lanes, beats: [0; P], qx: [[0.0; 8]; P], q2: [[0.0; 8]; P] };
            for p in 0..P {
                for k in 0..8 {
                    let q2 = 0.5 + next().abs();
                    // Within a few ulps of the entry score s, either side.
                    let qx = (s * q2).sqrt() * (1.0 + next() * 2e-7);
                    (o.qx[p][k], o.q2[p][k]) = match (round + 3 * k + p) % 97 {
                        0 => (f32::NAN, q2),
                        1 => (f32::INFINITY, q2),
                        2 => (qx, 0.0),
                        _ => (qx, q2),
                    };
                    let beat = o.q2[p][k] > 0.0 && o.qx[p][k] * o.qx[p][k] > s * o.q2[p][k];
                    o.beats[p] |= u32::from(beat) << k;
                }
            }
            let mut fast = BestScan { score: s, pick: None };
            fast.take_in_order(&o);
            let mut want = BestScan { score: s, pick: None };
            for k in 0..lanes {
                for p in 0..P {
                    want.consider((o.i1, o.i2_0 + k, p), o.qx[p][k], o.q2[p][k]);
                    falls += usize::from(want.fallen_below(s));
                }
            }
            assert_eq!(fast.score.to_bits(), want.score.to_bits(), "round {round}");
            assert_eq!(format!("{:?}", fast.pick), format!("{:?}", want.pick), "round {round}");
        }
        assert!(falls > 0, "no take left the best below its entry value");
    }

    /// One vector's candidates by pattern and lane, for [`offer_is_the_scalar_loop`].
    type Candidates = ([[f32; 8]; 4], [[f32; 8]; 4]);

    fn offer_portable(scan: &mut BestScan, lanes: usize, (qx, q2): &Candidates) {
        use crate::quant::lanes::Portable;
        scan.offer::<Portable, 4>(5, 2, lanes, &qx.map(F8::new), &q2.map(F8::new));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn offer_avx2(scan: &mut BestScan, lanes: usize, (qx, q2): &Candidates) {
        use crate::quant::lanes::Avx2;
        scan.offer::<Avx2, 4>(5, 2, lanes, &qx.map(F8::new), &q2.map(F8::new));
    }

    /// A vector offered at once ends where ggml's loop over its candidates ends, with clear
    /// winners (settled without takes), near-ties, scores at the clean range's edges,
    /// NaN, inf, zero and negative Σw·q², and entry bests of −f32::MAX, zero and NaN.
    #[test]
    fn offer_is_the_scalar_loop() {
        let mut next = crate::quant::test_values(33);
        let mut clear = 0;
        for round in 0..200_000 {
            let lanes = 1 + round % 8;
            let entry = match round % 11 {
                0 => -f32::MAX,
                1 => 0.0,
                2 => f32::NAN,
                _ => 0.5 + next().abs(),
            };
            // Ratios of score to entry: spread over [1, 2]; within a few ulps of one another;
            // or all within ulps below 1 but one, within ulps of it.
            let (mode, near_lane) = (round % 3, (round / 3) % 32);
            // Σw·q·x and Σw·q² scaled in and beyond the clean range (the fourth underflows).
            let (qx_scale, q2_scale) = [(1.0, 1.0), (1e-4, 1e-8), (1e4, 1e8), (1e-22, 2e-18), (1e12, 1e25)][round % 5];
            let mut c: Candidates = ([[0.0; 8]; 4], [[0.0; 8]; 4]);
            for p in 0..4 {
                for k in 0..8 {
                    let q2 = 0.5 + next().abs();
                    let ratio = match mode {
                        0 => 1.0 + (next() + 0.5) * 2e-7,
                        1 if 8 * p + k == near_lane => 1.0 + next() * 4e-7,
                        1 => 1.0 - next().abs() * 4e-7,
                        _ => 1.5 + next(),
                    };
                    let qx = (entry.max(0.5) * ratio * q2).sqrt() * (1.0 - 2.0 * (k % 2) as f32) * qx_scale;
                    let q2 = q2 * q2_scale;
                    // Special candidates in a quarter of the vectors.
                    let special = if round % 4 == 0 { (round / 4 + 5 * k + 3 * p) % 23 } else { 99 };
                    (c.0[p][k], c.1[p][k]) = match special {
                        0 => (f32::NAN, q2),
                        1 => (f32::INFINITY, q2),
                        2 => (qx, 0.0),
                        3 => (qx, -q2),
                        4 => (0.0, q2),
                        5 => (f32::INFINITY, f32::INFINITY),
                        6 => (qx * 1e20, q2 * 1e20),
                        7 => (qx * 1e-22, q2 * 1e-40),
                        8 => (qx * 1e-3, q2 * 1e-6),
                        _ => (qx, q2),
                    };
                }
            }
            let mut want = BestScan { score: entry, pick: None };
            for k in 0..lanes {
                for p in 0..4 {
                    want.consider((5, 2 + k, p), c.0[p][k], c.1[p][k]);
                }
            }
            let want = (want.score.to_bits(), format!("{:?}", want.pick));
            let mut portable = BestScan { score: entry, pick: None };
            offer_portable(&mut portable, lanes, &c);
            assert_eq!((portable.score.to_bits(), format!("{:?}", portable.pick)), want, "round {round}");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                let mut avx2 = BestScan { score: entry, pick: None };
                // SAFETY: the CPU has AVX2 and F16C.
                unsafe { offer_avx2(&mut avx2, lanes, &c) };
                assert_eq!((avx2.score.to_bits(), format!("{:?}", avx2.pick)), want, "AVX2, round {round}");
            }
            let mut settled = BestScan { score: entry, pick: None };
            let v = |a: &[[f32; 8]; 4]| a.map(F8::<crate::quant::lanes::Portable>::new);
            let live = F8::new([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).lt(F8::splat(lanes as f32));
            let beat = std::array::from_fn(|p| {
                let (qx, q2) = (F8::new(c.0[p]), F8::new(c.1[p]));
                live & q2.gt(F8::zero()) & (qx * qx).gt(F8::splat(entry) * q2)
            });
            clear += usize::from(settled.take_clear_winner((5, 2), live, &beat, &v(&c.0), &v(&c.1)));
        }
        assert!(clear > 20_000, "only {clear} vectors settled at once");
    }
}
