//! The split searches of IQ1_S and IQ1_M (ggml's `quantize_row_iq1_s_impl` /
//! `quantize_row_iq1_m_impl`) with 8 second boundaries (i2) per vector. Each candidate's
//! Σw·q·x and Σw·q² are computed lane by lane in the scalar order; the running best (a
//! candidate is taken when `sumq2 > 0 && sumqx² > best·sumq2`, and then `best = (sumqx /
//! sumq2)·sumqx`) is kept exactly: the candidates of a vector are compared with the current
//! best at once, and only when one of them beats it are they taken one at a time, each
//! against the best so far, as the scalar loop does. Tests compare both with the scalar
//! searches.

use super::lanes::{Isa, F8};

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
        let (mut beats, mut any) = ([0u32; P], 0u32);
        for p in 0..P {
            beats[p] = (q2[p].gt(F8::zero()) & (qx[p] * qx[p]).gt(best * q2[p])).bitmask();
            any |= beats[p];
        }
        // Most vectors hold no better candidate: one test, no bit juggling.
        if any & ((1u32 << lanes) - 1) != 0 {
            // Plain arrays across the call: vectors of an instruction set chosen at run time
            // must not cross a function boundary that lacks its target feature.
            let mut o = Offered { i1, i2_0, lanes, beats, qx: [[0f32; 8]; P], q2: [[0f32; 8]; P] };
            for p in 0..P {
                (o.qx[p], o.q2[p]) = (qx[p].to_array(), q2[p].to_array());
            }
            self.take_in_order(&o);
        }
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
}
