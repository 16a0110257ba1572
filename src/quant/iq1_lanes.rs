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
            let (mut x, mut q) = ([[0f32; 8]; P], [[0f32; 8]; P]);
            for p in 0..P {
                (x[p], q[p]) = (qx[p].to_array(), q2[p].to_array());
            }
            self.take_in_order(i1, i2_0, lanes, &beats, &x, &q);
        }
    }

    /// The candidates of one vector one take at a time, each against the best so far. A
    /// candidate that did not beat the best at entry (`beats`, bit k per pattern) cannot beat
    /// a best at least as high (the test's right side grows with it), so it is skipped while
    /// the best has not fallen below its entry value.
    #[inline(never)]
    fn take_in_order<const P: usize>(
        &mut self,
        i1: usize,
        i2_0: usize,
        lanes: usize,
        beats: &[u32; P],
        qx: &[[f32; 8]; P],
        q2: &[[f32; 8]; P],
    ) {
        let entry = self.score;
        for k in 0..lanes {
            for p in 0..P {
                // `fallen` is also true when the best is NaN.
                let fallen = self.score.partial_cmp(&entry).is_none_or(|o| o.is_lt());
                if beats[p] >> k & 1 != 0 || fallen {
                    self.consider((i1, i2_0 + k, p), qx[p][k], q2[p][k]);
                }
            }
        }
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
