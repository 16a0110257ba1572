//! The lattice grids of the IQ1/IQ2/IQ3 types and their neighbour lists, built as ggml's
//! `iq2xs_init_impl` / `iq3xs_init_impl` build them (llama-quantize calls these before it
//! quantizes; the encoders depend on the exact neighbour order).
//!
//! A grid point has D elements, each a level l (2 bits for IQ1/IQ2, 3 for IQ3); the encoder
//! works with the odd values 2l+1. Every lattice index (levels packed, first element lowest)
//! maps either to its grid point or to the list of grid points nearest it: all points at the
//! `nwant` smallest squared distances, ordered by distance then grid index.

use std::sync::OnceLock;

use super::iq_grid_tables as tables;
use super::kquant::nearest_int;
use super::lanes::{Isa, F8, I8};

/// One grid and its neighbour lists.
pub struct Grid<const D: usize> {
    /// Each point's encoder values 2l+1.
    pub points: Vec<[i8; D]>,
    /// The same values as f32, D per point in point order.
    values: Vec<f32>,
    /// Each point's levels (0..radix).
    levels: Vec<[u8; D]>,
    /// Each point's levels packed (the `kgrid_*` entry).
    pub packed: &'static [u16],
    bits: u32,
    /// Levels per element the encoders use (0..radix): 3 for the 2-bit grids (ggml's lattice
    /// leaves level 3 unused), 8 for the 3-bit ones. Lattice indices count in this base, so
    /// the 2-bit grids' map has 3^8 entries (26 KiB, within L1) instead of ggml's 43,692.
    radix: usize,
    /// Lattice index → grid index (≥ 0) or −(offset of its neighbour list + 1).
    map: Vec<i32>,
    /// Per off-grid lattice index: the count, then that many grid indices.
    neighbours: Vec<u16>,
}

/// Where a lattice point lies: on the grid, or off it with its nearest grid points.
pub enum Lookup<'a> {
    On(u16),
    Off(&'a [u16]),
}

/// A sub-block's levels at each candidate scale of a search ([`Grid::candidate_levels`]),
/// 8 candidates to a chunk so that one vector holds an element's level at 8 candidates.
pub struct CandidateLevels<const D: usize, const G: usize, const C: usize> {
    /// `levels[c][k][j][i]`: element j of group k at candidate 8c + i.
    levels: [[[[u8; 8]; D]; G]; C],
    /// `entries[k][c][i]`: the grid's map entry of group k's rounded point at candidate
    /// 8c + i (≥ 0: the point is on the grid; else the neighbours replaced it).
    entries: [[[i32; 8]; C]; G],
}

impl<const D: usize, const G: usize, const C: usize> CandidateLevels<D, G, C> {
    /// Candidate t's levels, by group.
    pub fn levels(&self, t: usize) -> [[u8; D]; G] {
        std::array::from_fn(|k| std::array::from_fn(|j| self.levels[t / 8][k][j][t % 8]))
    }

    fn set_levels(&mut self, t: usize, k: usize, l: [u8; D]) {
        for (j, &v) in l.iter().enumerate() {
            self.levels[t / 8][k][j][t % 8] = v;
        }
    }

    /// Which of candidate t's groups rounded onto the grid.
    pub fn on_grid(&self, t: usize) -> [bool; G] {
        std::array::from_fn(|k| self.entries[k][t / 8][t % 8] >= 0)
    }

    /// Every candidate's [`fit_sums`] (the first `wx.len()` values), in candidate order:
    /// 8 candidates per vector where the CPU has them, each lane summing as the scalar code.
    pub fn fit_sums(&self, wx: &[f32], w: &[f32]) -> [[(f32, f32); 8]; C] {
        if super::reference_kernels() {
            return std::array::from_fn(|c| std::array::from_fn(|i| fit_sums(&self.levels(8 * c + i), wx, w)));
        }
        #[cfg(target_arch = "x86_64")]
        if super::simd_level() >= super::SimdLevel::Avx2 {
            // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
            return unsafe { self.fit_sums_avx2(wx, w) };
        }
        self.fit_sums_lanes::<super::lanes::Portable>(wx, w)
    }

    /// The search's pick among the first `tries` candidates, ggml's running best: a candidate
    /// is taken when Σw·q² > 0 and (Σw·x·q)² > best·Σw·q², and then best = scale·Σw·x·q with
    /// scale = Σw·x·q / Σw·q². The last one taken and its scale; None if none was.
    pub fn best_fit(&self, wx: &[f32], w: &[f32], tries: usize) -> Option<(usize, f32)> {
        let (mut best, mut chosen) = (0.0f32, None);
        for (t, &(sumqx, sumq2)) in self.fit_sums(wx, w).as_flattened()[..tries].iter().enumerate() {
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                let scale = sumqx / sumq2;
                best = scale * sumqx;
                chosen = Some((t, scale));
            }
        }
        chosen
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn fit_sums_avx2(&self, wx: &[f32], w: &[f32]) -> [[(f32, f32); 8]; C] {
        self.fit_sums_lanes::<super::lanes::Avx2>(wx, w)
    }

    #[inline(always)]
    fn fit_sums_lanes<S: Isa>(&self, wx: &[f32], w: &[f32]) -> [[(f32, f32); 8]; C] {
        let mut out = [[(0.0, 0.0); 8]; C];
        for (levels, o) in self.levels.iter().zip(&mut out) {
            let (mut sumqx, mut sumq2) = (F8::<S>::zero(), F8::<S>::zero());
            for (lk, (wxk, wk)) in levels.iter().zip(wx.chunks_exact(D).zip(w.chunks_exact(D))) {
                for j in 0..D {
                    let q = (I8::<S>::from_bytes(lk[j]).shl::<1>() + I8::splat(1)).to_f32();
                    sumqx += F8::splat(wxk[j]) * q;
                    sumq2 += F8::splat(wk[j]) * q * q;
                }
            }
            for (o, (&a, &b)) in o.iter_mut().zip(sumqx.to_array().iter().zip(&sumq2.to_array())) {
                *o = (a, b);
            }
        }
        out
    }
}

/// Σ wx·q and Σ w·q² over the first `wx.len()` values of groups `l`, in element order, with
/// q = 2l + 1 (the search's fit of a candidate; C's `w*x*q` multiplies left to right, so wx
/// = w·x is the same for every candidate).
pub fn fit_sums<const D: usize>(l: &[[u8; D]], wx: &[f32], w: &[f32]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for (lk, (wxk, wk)) in l.iter().zip(wx.chunks_exact(D).zip(w.chunks_exact(D))) {
        for j in 0..D {
            let q = (2 * lk[j] as i32 + 1) as f32;
            sumqx += wxk[j] * q;
            sumq2 += wk[j] * q * q;
        }
    }
    (sumqx, sumq2)
}

impl<const D: usize> Grid<D> {
    fn build(packed: &'static [u16], bits: u32, nwant: usize, radix: usize) -> Grid<D> {
        let mask = (1u32 << bits) - 1;
        let point =
            |code: u32| -> [i8; D] { std::array::from_fn(|i| (2 * ((code >> (bits * i as u32)) & mask) + 1) as i8) };
        let points: Vec<[i8; D]> = packed.iter().map(|&k| point(k as u32)).collect();
        let levels: Vec<[u8; D]> = points.iter().map(|p| p.map(|q| ((q - 1) / 2) as u8)).collect();
        let mut map = vec![-1i32; radix.pow(D as u32)];
        for (j, l) in levels.iter().enumerate() {
            map[index_of(l, radix)] = j as i32;
        }
        // Lattice index → values 2l+1, l the index's digits in base `radix`, first lowest.
        let point = |mut i: usize| -> [i8; D] {
            std::array::from_fn(|_| {
                let l = i % radix;
                i /= radix;
                (2 * l + 1) as i8
            })
        };
        let mut neighbours = Vec::new();
        let mut dist = vec![0u32; points.len()];
        for (i, slot) in map.iter_mut().enumerate() {
            if *slot >= 0 {
                continue;
            }
            let pos = point(i);
            for (d, p) in dist.iter_mut().zip(&points) {
                *d = p.iter().zip(&pos).map(|(&a, &b)| ((a - b) as i32 * (a - b) as i32) as u32).sum();
            }
            *slot = -(neighbours.len() as i32 + 1);
            let count_at = neighbours.len();
            neighbours.push(0);
            // The nwant smallest distinct distances, each's points in grid order: the order
            // of qsort by (distance, index).
            let mut floor = None;
            for _ in 0..nwant {
                let Some(next) = dist.iter().copied().filter(|&d| floor.is_none_or(|f| d > f)).min() else { break };
                neighbours.extend((0..dist.len()).filter(|&j| dist[j] == next).map(|j| j as u16));
                floor = Some(next);
            }
            neighbours[count_at] = (neighbours.len() - count_at - 1) as u16;
        }
        let values = points.iter().flat_map(|p| p.map(f32::from)).collect();
        Grid { points, values, levels, packed, bits, radix, map, neighbours }
    }

    /// The lattice index of levels `l` (each below the radix).
    #[inline]
    pub fn index(&self, l: &[u8; D]) -> usize {
        index_of(l, self.radix)
    }

    /// The neighbour list of off-grid lattice index `i`.
    #[cfg(test)]
    fn off_list(&self, i: usize) -> &[u16] {
        self.neighbours_of(self.map[i])
    }

    /// The neighbour list a negative map entry points to.
    #[inline]
    fn neighbours_of(&self, entry: i32) -> &[u16] {
        let at = (-entry - 1) as usize;
        &self.neighbours[at + 1..at + 1 + self.neighbours[at] as usize]
    }

    /// Whether levels `l` are a grid point, else their nearest grid points.
    #[inline]
    pub fn lookup(&self, l: &[u8; D]) -> Lookup<'_> {
        match self.map[self.index(l)] {
            m if m >= 0 => Lookup::On(m as u16),
            m => Lookup::Off(self.neighbours_of(m)),
        }
    }

    /// ggml `iq2_find_best_neighbour` / `iq3_find_best_neighbour`: the candidate minimizing
    /// Σ w·(scale·q − x)² (the first on ties); writes its levels to `l`.
    pub fn best_neighbour(&self, candidates: &[u16], x: &[f32], w: &[f32], scale: f32, l: &mut [u8; D]) -> u16 {
        let best_j = self.best_candidate(candidates, x, w, scale);
        *l = self.levels_of(best_j);
        best_j
    }

    /// The levels (0..) of grid point `j`.
    #[inline]
    pub fn levels_of(&self, j: u16) -> [u8; D] {
        self.levels[j as usize]
    }

    /// [`Self::best_candidate`] at each of several scales (the same candidates, values and
    /// weights), into `picks`: 8 scales per vector, each lane running ggml's loop for its
    /// scale, so every candidate costs a few vector operations for all of them.
    pub fn best_per_scale(&self, candidates: &[u16], x: &[f32], w: &[f32], scales: &[f32], picks: &mut [u16]) {
        if super::reference_kernels() {
            for (p, &s) in picks.iter_mut().zip(scales) {
                *p = self.best_candidate_scalar(candidates, x, w, s);
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if super::simd_level() >= super::SimdLevel::Avx2 {
            // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
            return unsafe { self.best_per_scale_avx2(candidates, x, w, scales, picks) };
        }
        self.per_scale_lanes::<super::lanes::Portable>(candidates, x, w, scales, picks)
    }

    /// The lattice point of D values `x` at inverse scale `id`: nearest_int((id·x − 1)/2)
    /// clamped to the grid's levels.
    pub fn rounded(&self, x: &[f32], id: f32) -> [u8; D] {
        let top = self.radix as i32 - 1;
        std::array::from_fn(|i| nearest_int(0.5 * (id * x[i] - 1.0)).clamp(0, top) as u8)
    }

    /// The groups' levels at every candidate inverse scale `ids[t]` of a scale search (IQ2's
    /// and IQ3's): each group of D values of `x` (weights `w` for the neighbour search) at its
    /// [`Self::rounded`] point, or that point's best neighbour at scale 1/id when it is off
    /// the grid. A group's point changes only a few times over the candidates (it grows with
    /// id), so its neighbour searches run by runs ([`Self::picks_by_runs`]).
    /// Sized for at most 8·C candidates and G groups (groups past `x` stay on the grid).
    pub fn candidate_levels<const G: usize, const C: usize>(
        &self,
        ids: &[f32],
        x: &[f32],
        w: &[f32],
    ) -> CandidateLevels<D, G, C> {
        assert!(ids.len() <= 8 * C && x.len() <= D * G, "{} candidates, {} values", ids.len(), x.len());
        let tries = ids.len();
        let mut out = CandidateLevels { levels: [[[[0; 8]; D]; G]; C], entries: [[[0; 8]; C]; G] };
        self.round_candidates(ids, x, &mut out);
        let mut scales = [[0f32; 8]; C];
        for (s, &id) in scales.as_flattened_mut().iter_mut().zip(ids) {
            *s = 1.0 / id;
        }
        let mut picks = [[0u16; 8]; C];
        for (k, (xk, wk)) in x.chunks_exact(D).zip(w.chunks_exact(D)).enumerate() {
            let entries = out.entries[k];
            let entries = &entries.as_flattened()[..tries];
            let picks = &mut picks.as_flattened_mut()[..tries];
            self.picks_by_runs(entries, xk, wk, &scales.as_flattened()[..tries], picks);
            for t in (0..tries).filter(|&t| entries[t] < 0) {
                out.set_levels(t, k, self.levels_of(picks[t]));
            }
        }
        out
    }

    /// Every candidate's [`Self::rounded`] levels of every group of `x` and the grid's map
    /// entry for them, into `out`.
    fn round_candidates<const G: usize, const C: usize>(
        &self,
        ids: &[f32],
        x: &[f32],
        out: &mut CandidateLevels<D, G, C>,
    ) {
        if super::reference_kernels() {
            return self.round_candidates_scalar(ids, x, out);
        }
        #[cfg(target_arch = "x86_64")]
        if super::simd_level() >= super::SimdLevel::Avx2 {
            // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
            return unsafe { self.round_candidates_avx2(ids, x, out) };
        }
        self.round_lanes::<super::lanes::Portable, G, C>(ids, x, out)
    }

    /// [`Self::round_candidates`] one candidate and group at a time: the reference path.
    fn round_candidates_scalar<const G: usize, const C: usize>(
        &self,
        ids: &[f32],
        x: &[f32],
        out: &mut CandidateLevels<D, G, C>,
    ) {
        for (t, &id) in ids.iter().enumerate() {
            for (k, xk) in x.chunks_exact(D).enumerate() {
                let l = self.rounded(xk, id);
                out.set_levels(t, k, l);
                out.entries[k][t / 8][t % 8] = self.map[self.index(&l)];
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn round_candidates_avx2<const G: usize, const C: usize>(
        &self,
        ids: &[f32],
        x: &[f32],
        out: &mut CandidateLevels<D, G, C>,
    ) {
        self.round_lanes::<super::lanes::Avx2, G, C>(ids, x, out)
    }

    /// [`Self::round_candidates`] with 8 candidates per vector, lane t rounding as the scalar
    /// code does; the index accumulates in f32, exact below 2^24 (the largest is 8^4 − 1).
    /// Lanes past `ids` round at id 0.
    #[inline(always)]
    fn round_lanes<S: Isa, const G: usize, const C: usize>(
        &self,
        ids: &[f32],
        x: &[f32],
        out: &mut CandidateLevels<D, G, C>,
    ) {
        let (top, radix) = (I8::<S>::splat(self.radix as i32 - 1), F8::<S>::splat(self.radix as f32));
        for (c, chunk) in ids.chunks(8).enumerate() {
            let mut id = [0f32; 8];
            id[..chunk.len()].copy_from_slice(chunk);
            let id = F8::<S>::new(id);
            for (k, xk) in x.chunks_exact(D).enumerate() {
                let mut index = F8::<S>::zero();
                for j in (0..D).rev() {
                    let v = F8::splat(0.5) * (id * F8::splat(xk[j]) - F8::splat(1.0));
                    let l = super::lanes::nearest_int(v).max(I8::zero()).min(top);
                    index = index * radix + l.to_f32();
                    out.levels[c][k][j].copy_from_slice(&l.low_bytes(l)[..8]);
                }
                for (e, &i) in out.entries[k][c].iter_mut().zip(&index.to_array()) {
                    *e = self.map[i as usize];
                }
            }
        }
    }

    /// One group's picks over consecutive candidate scales: `entries[t]` the grid's map entry
    /// of its point at `scales[t]` (≥ 0: on the grid there, `picks[t]` left alone). A group's
    /// point changes only a few times over a search's candidates, so each run of scales with
    /// the same point is searched at once ([`Self::best_per_scale`]).
    fn picks_by_runs(&self, entries: &[i32], x: &[f32], w: &[f32], scales: &[f32], picks: &mut [u16]) {
        let mut t = 0;
        while t < entries.len() {
            let entry = entries[t];
            if entry >= 0 {
                t += 1;
                continue;
            }
            let mut end = t + 1;
            while end < entries.len() && entries[end] == entry {
                end += 1;
            }
            self.best_per_scale(self.neighbours_of(entry), x, w, &scales[t..end], &mut picks[t..end]);
            t = end;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn best_per_scale_avx2(&self, candidates: &[u16], x: &[f32], w: &[f32], scales: &[f32], picks: &mut [u16]) {
        self.per_scale_lanes::<super::lanes::Avx2>(candidates, x, w, scales, picks)
    }

    #[inline(always)]
    fn per_scale_lanes<S: Isa>(&self, candidates: &[u16], x: &[f32], w: &[f32], scales: &[f32], picks: &mut [u16]) {
        let (xs, ws): ([F8<S>; D], [F8<S>; D]) = (x_splat(x), x_splat(w));
        for (sc, pc) in scales.chunks(8).zip(picks.chunks_mut(8)) {
            // Lanes past the scales get 0: harmless, and not read back.
            let mut lanes = [0f32; 8];
            lanes[..sc.len()].copy_from_slice(sc);
            let scale = F8::<S>::new(lanes);
            let (mut best, mut best_j) = (F8::<S>::splat(f32::MAX), I8::<S>::splat(i32::from(candidates[0])));
            for &j in candidates {
                let q = &self.values[D * j as usize..][..D];
                let mut d2 = F8::zero();
                for i in 0..D {
                    let diff = scale * F8::splat(q[i]) - xs[i];
                    d2 += ws[i] * diff * diff;
                }
                let better = d2.lt(best);
                best = better.select(d2, best);
                best_j = better.select_i(I8::splat(i32::from(j)), best_j);
            }
            for (p, &j) in pc.iter_mut().zip(&best_j.to_array()) {
                *p = j as u16;
            }
        }
    }

    /// The search: 8 candidates per vector where the CPU has AVX2 (their values transposed
    /// into vectors by shuffles), else one at a time.
    fn best_candidate(&self, candidates: &[u16], x: &[f32], w: &[f32], scale: f32) -> u16 {
        #[cfg(target_arch = "x86_64")]
        if candidates.len() >= 8 && !super::reference_kernels() && super::simd_level() >= super::SimdLevel::Avx2 {
            // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
            return unsafe { self.best_candidate_avx2(candidates, x, w, scale) };
        }
        self.best_candidate_scalar(candidates, x, w, scale)
    }

    /// ggml's loop: the first candidate whose Σ w·(scale·q − x)², summed in element order,
    /// is below every earlier one (and below f32::MAX); the first candidate if none is.
    fn best_candidate_scalar(&self, candidates: &[u16], x: &[f32], w: &[f32], scale: f32) -> u16 {
        // Fixed-size views, so that the element loop unrolls; the values as floats already.
        let (x, w): (&[f32; D], &[f32; D]) = (x.try_into().unwrap(), w.try_into().unwrap());
        let mut best = f32::MAX;
        let mut best_j = candidates[0];
        for &j in candidates {
            let q: &[f32; D] = self.values[D * j as usize..][..D].try_into().unwrap();
            let mut d2 = 0.0f32;
            for i in 0..D {
                let diff = scale * q[i] - x[i];
                d2 += w[i] * diff * diff;
            }
            if d2 < best {
                best = d2;
                best_j = j;
            }
        }
        best_j
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn best_candidate_avx2(&self, candidates: &[u16], x: &[f32], w: &[f32], scale: f32) -> u16 {
        self.best_candidate_lanes::<super::lanes::Avx2>(candidates, x, w, scale)
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    /// [`Self::best_candidate_scalar`] with candidate k of each 8 in lane k.
    #[inline(always)]
    fn best_candidate_lanes<S: Isa>(&self, candidates: &[u16], x: &[f32], w: &[f32], scale: f32) -> u16 {
        let scale = F8::<S>::splat(scale);
        self.first_nearest_lanes(candidates, x, w, |q| scale * q).unwrap_or(candidates[0])
    }

    /// The first candidate whose Σ w·(value(q) − x)², summed in element order, is below every
    /// earlier one and below f32::MAX (None if none is), with candidate k of each 8 in lane
    /// k (q: the point's values 2l+1): every lane keeps its first smallest, and the smallest
    /// of the lanes (the earliest on ties) is the scalar scan's pick. For 8 ≤ candidates.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    pub(crate) fn first_nearest_lanes<S: Isa>(
        &self,
        candidates: &[u16],
        x: &[f32],
        w: &[f32],
        value: impl Fn(F8<S>) -> F8<S>,
    ) -> Option<u16> {
        let (xs, ws): ([F8<S>; D], [F8<S>; D]) = (x_splat(x), x_splat(w));
        let lane = I8::<S>::new([0, 1, 2, 3, 4, 5, 6, 7]);
        let lane_f = lane.to_f32();
        let (mut best, mut best_pos) = (F8::<S>::splat(f32::MAX), I8::<S>::splat(-1));
        for (c, chunk) in candidates.chunks(8).enumerate() {
            let mut starts = [0usize; 8];
            for (k, o) in starts.iter_mut().enumerate() {
                *o = D * *chunk.get(k).unwrap_or(&chunk[0]) as usize;
            }
            let q = F8::<S>::columns::<D>(&self.values, starts);
            let mut d2 = F8::zero();
            for ((&qi, &xi), &wi) in q.iter().zip(&xs).zip(&ws) {
                let diff = value(qi) - xi;
                d2 += wi * diff * diff;
            }
            let better = lane_f.lt(F8::splat(chunk.len() as f32)) & d2.lt(best);
            best = better.select(d2, best);
            best_pos = better.select_i(lane + I8::splat(8 * c as i32), best_pos);
        }
        let (best, best_pos) = (best.to_array(), best_pos.to_array());
        let mut pick: Option<(f32, i32)> = None;
        for (&b, &p) in best.iter().zip(&best_pos) {
            let earlier = |(pb, pp): (f32, i32)| b < pb || (b == pb && p < pp);
            if p >= 0 && pick.is_none_or(earlier) {
                pick = Some((b, p));
            }
        }
        pick.map(|(_, p)| candidates[p as usize])
    }

    /// The decoded values of point `j`: level l → `values[l]` (ggml-common.h's `*_grid`
    /// tables are these bytes).
    pub fn decoded(&self, j: usize, values: &[i8]) -> [i8; D] {
        let mask = (1u32 << self.bits) - 1;
        std::array::from_fn(|i| values[((self.packed[j] as u32 >> (self.bits * i as u32)) & mask) as usize])
    }
}

/// Each of the D values of `x` in every lane.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn x_splat<S: Isa, const D: usize>(x: &[f32]) -> [F8<S>; D] {
    let mut out = [F8::zero(); D];
    for (o, &v) in out.iter_mut().zip(x) {
        *o = F8::splat(v);
    }
    out
}

/// The lattice index of levels `l` in base `radix`, first element lowest.
#[inline]
fn index_of<const D: usize>(l: &[u8; D], radix: usize) -> usize {
    debug_assert!(l.iter().all(|&v| (v as usize) < radix), "levels {l:?} outside 0..{radix}");
    l.iter().rev().fold(0, |i, &v| i * radix + v as usize)
}

/// Levels per element of the 2-bit grids (0..=2) and of the 3-bit ones (0..=7).
const RADIX_2BIT: usize = 3;
const RADIX_3BIT: usize = 8;

macro_rules! grid {
    ($(#[$doc:meta])* $name:ident, $d:literal, $table:ident, $bits:literal, $nwant:literal, $radix:ident) => {
        $(#[$doc])*
        pub fn $name() -> &'static Grid<$d> {
            static G: OnceLock<Grid<$d>> = OnceLock::new();
            G.get_or_init(|| Grid::build(&tables::$table, $bits, $nwant, $radix))
        }
    };
}

grid!(/// IQ2_XXS: 256 points, neighbours at the 2 nearest distances.
    iq2xxs, 8, KGRID_IQ2XXS, 2, 2, RADIX_2BIT);
grid!(/// IQ2_XS: 512 points, 2 distances.
    iq2xs, 8, KGRID_IQ2XS, 2, 2, RADIX_2BIT);
grid!(/// IQ2_S: 1024 points, the nearest distance only.
    iq2s, 8, KGRID_IQ2S, 2, 1, RADIX_2BIT);
grid!(/// IQ1_S and IQ1_M: 2048 points, 3 distances.
    iq1s, 8, KGRID_IQ1S, 2, 3, RADIX_2BIT);
grid!(/// IQ3_XXS: 256 points of 4, 2 distances.
    iq3xxs, 4, KGRID_IQ3XXS, 3, 2, RADIX_3BIT);
grid!(/// IQ3_S: 512 points of 4, 3 distances.
    iq3s, 4, KGRID_IQ3S, 3, 3, RADIX_3BIT);

/// ggml `ksigns_iq2xs[i]`: seven sign bits and an eighth that makes the count of set bits even.
pub fn ksigns(i: u8) -> u8 {
    let i = i & 127;
    i | (((i.count_ones() & 1) as u8) << 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_map_to_themselves() {
        let g = iq3s();
        for (j, p) in g.points.iter().enumerate() {
            let l: [u8; 4] = std::array::from_fn(|i| ((p[i] - 1) / 2) as u8);
            assert!(matches!(g.lookup(&l), Lookup::On(k) if k as usize == j));
        }
    }

    #[test]
    fn neighbour_lists_are_nearest_first_in_grid_order() {
        let g = iq2xxs();
        let l = [2u8, 2, 2, 2, 2, 2, 2, 2];
        let Lookup::Off(n) = g.lookup(&l) else { panic!("all-2 is not an IQ2_XXS point") };
        let pos = [5i8; 8];
        let d = |j: u16| g.points[j as usize].iter().zip(&pos).map(|(&a, &b)| ((a - b) as i32).pow(2)).sum::<i32>();
        assert!(!n.is_empty());
        assert!(n.windows(2).all(|w| (d(w[0]), w[0]) < (d(w[1]), w[1])));
        let distinct: std::collections::BTreeSet<i32> = n.iter().map(|&j| d(j)).collect();
        assert_eq!(distinct.len(), 2);
        // Nothing closer was left out.
        let min = (0..g.points.len() as u16).map(d).min().unwrap();
        assert_eq!(d(n[0]), min);
    }

    /// The vector search (on every instruction set) picks the scalar scan's candidate: random
    /// groups, groups on grid values (exact ties), zero weights (all tie), NaN and inf.
    fn check_lanes<const D: usize>(g: &Grid<D>) {
        let mut next = crate::quant::test_values(5);
        let lists: Vec<&[u16]> = (0..g.map.len())
            .step_by(7)
            .filter_map(|i| if g.map[i] < 0 { Some(g.off_list(i)) } else { None })
            .filter(|n| n.len() >= 8)
            .take(300)
            .collect();
        assert!(lists.len() > 50);
        for (t, n) in lists.iter().enumerate() {
            let mut x: Vec<f32> = (0..D).map(|_| next() * 4.0).collect();
            let mut w: Vec<f32> = (0..D).map(|_| next().abs()).collect();
            let scale = 0.5 + next().abs();
            match t % 5 {
                1 => x = g.points[n[t % n.len()] as usize].iter().map(|&q| scale * q as f32).collect(),
                2 => w.fill(0.0),
                3 => x[t % D] = f32::NAN,
                4 => x[t % D] = f32::INFINITY,
                _ => {}
            }
            let want = g.best_candidate_scalar(n, &x, &w, scale);
            assert_eq!(g.best_candidate_lanes::<super::super::lanes::Portable>(n, &x, &w, scale), want, "baseline");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                assert_eq!(unsafe { g.best_candidate_avx2(n, &x, &w, scale) }, want, "AVX2 on {x:?} {w:?}");
            }
        }
    }

    /// Several scales at once (one per lane) pick what the scalar scan picks at each: lists
    /// of every length, the adversarial groups above, scales including 0, NaN and inf.
    fn check_per_scale<const D: usize>(g: &Grid<D>) {
        let mut next = crate::quant::test_values(9);
        let lists: Vec<&[u16]> =
            (0..g.map.len()).step_by(5).filter_map(|i| if g.map[i] < 0 { Some(g.off_list(i)) } else { None }).collect();
        assert!(lists.iter().any(|n| n.len() < 8) && lists.iter().any(|n| n.len() >= 8));
        for (t, n) in lists.iter().enumerate().take(400) {
            let mut x: Vec<f32> = (0..D).map(|_| next() * 4.0).collect();
            let mut w: Vec<f32> = (0..D).map(|_| next().abs()).collect();
            let mut scales: Vec<f32> = (0..1 + t % 11).map(|_| 0.5 + next().abs()).collect();
            match t % 5 {
                1 => x = g.points[n[t % n.len()] as usize].iter().map(|&q| scales[0] * q as f32).collect(),
                2 => w.fill(0.0),
                3 => x[t % D] = f32::NAN,
                4 => scales.extend([0.0, f32::NAN, f32::INFINITY, -1.0]),
                _ => {}
            }
            let want: Vec<u16> = scales.iter().map(|&s| g.best_candidate_scalar(n, &x, &w, s)).collect();
            let mut got = vec![0u16; scales.len()];
            g.per_scale_lanes::<super::super::lanes::Portable>(n, &x, &w, &scales, &mut got);
            assert_eq!(got, want, "baseline on {x:?} {w:?} {scales:?}");
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                // SAFETY: the CPU has AVX2 and F16C.
                unsafe { g.best_per_scale_avx2(n, &x, &w, &scales, &mut got) };
                assert_eq!(got, want, "AVX2 on {x:?} {w:?} {scales:?}");
            }
        }
    }

    /// Candidates' levels and map entries 8 at a time equal [`Grid::rounded`] and its map
    /// entry one at a time, and so do their fit sums: values from tiny to past the top
    /// level, exact .5 ties, NaN and ±inf, and numbers of candidates that leave lanes unused.
    fn check_rounding<const D: usize>(g: &Grid<D>) {
        const G: usize = 4;
        const C: usize = 4;
        let mut next = crate::quant::test_values(13);
        let blank = || CandidateLevels::<D, G, C> { levels: [[[[0; 8]; D]; G]; C], entries: [[[0; 8]; C]; G] };
        for round in 0..200 {
            let mut x: Vec<f32> = (0..G * D).map(|_| next() * [0.1, 4.0, 1e30][round % 3]).collect();
            match round % 4 {
                1 => x.iter_mut().for_each(|v| *v = v.round() + 0.5),
                2 => x[round % (G * D)] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][round % 3],
                _ => {}
            }
            let w: Vec<f32> = (0..G * D).map(|_| next().abs()).collect();
            let wx: Vec<f32> = w.iter().zip(&x).map(|(a, b)| a * b).collect();
            let ids: Vec<f32> = (0..1 + round % (8 * C)).map(|t| 1.0 + t as f32 * 0.2).collect();
            let mut want = blank();
            g.round_candidates_scalar(&ids, &x, &mut want);
            let same = |got: &CandidateLevels<D, G, C>| {
                (0..ids.len()).all(|t| {
                    let l = got.levels(t);
                    l == want.levels(t)
                        && got.on_grid(t) == want.on_grid(t)
                        && (0..G).all(|k| got.entries[k][t / 8][t % 8] == want.entries[k][t / 8][t % 8])
                })
            };
            let mut got = blank();
            g.round_lanes::<super::super::lanes::Portable, G, C>(&ids, &x, &mut got);
            assert!(same(&got), "baseline on {x:?}, {} candidates", ids.len());
            let sums = |c: &CandidateLevels<D, G, C>| -> Vec<(u32, u32)> {
                (0..ids.len())
                    .map(|t| fit_sums(&c.levels(t), &wx, &w))
                    .map(|(a, b)| (a.to_bits(), b.to_bits()))
                    .collect()
            };
            let lanes_sums = |s: [[(f32, f32); 8]; C]| -> Vec<(u32, u32)> {
                s.as_flattened()[..ids.len()].iter().map(|&(a, b)| (a.to_bits(), b.to_bits())).collect()
            };
            assert_eq!(
                lanes_sums(got.fit_sums_lanes::<super::super::lanes::Portable>(&wx, &w)),
                sums(&want),
                "baseline sums"
            );
            #[cfg(target_arch = "x86_64")]
            if crate::quant::cpu_has_avx2() {
                let mut got = blank();
                // SAFETY: the CPU has AVX2 and F16C.
                unsafe { g.round_candidates_avx2(&ids, &x, &mut got) };
                assert!(same(&got), "AVX2 on {x:?}, {} candidates", ids.len());
                // SAFETY: as above.
                assert_eq!(lanes_sums(unsafe { got.fit_sums_avx2(&wx, &w) }), sums(&want), "AVX2 sums");
            }
        }
    }

    #[test]
    fn candidates_round_as_one_at_a_time() {
        check_rounding(iq2xxs());
        check_rounding(iq3s());
    }

    #[test]
    fn per_scale_neighbour_search_is_the_scalar_scan() {
        check_per_scale(iq3xxs());
        check_per_scale(iq3s());
        check_per_scale(iq2s());
    }

    #[test]
    fn vector_neighbour_search_is_the_scalar_scan() {
        check_lanes(iq2xxs());
        check_lanes(iq2xs());
        check_lanes(iq3s());
    }

    #[test]
    fn ksigns_have_even_parity() {
        assert_eq!(ksigns(0), 0);
        assert_eq!(ksigns(1), 129);
        assert_eq!(ksigns(3), 3);
        assert!((0..128u8).all(|i| ksigns(i).count_ones().is_multiple_of(2)));
    }
}
