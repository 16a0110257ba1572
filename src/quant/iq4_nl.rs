//! GGML_TYPE_IQ4_NL: blocks of 32 as `{ f16 d; u8 qs[16]; }` (18 bytes): x ≈ d·v[q] with q a
//! 4-bit index into the non-linear table `kvalues_iq4nl`. What llama-quantize writes is ggml's
//! `quantize_iq4_nl` (not `quantize_row_iq4_nl_ref`, which searches no scales): per block,
//! weights x² (or the importance matrix's), d from the largest |x| over the table's end, then
//! 15 candidate scales `(t − 127)/max` for t in −7..7 by weighted least squares; the levels
//! are the nearest table entries of x/d. The shared search is also IQ4_XS's.

use super::kquant::{fp16_at, fp16_bytes, nearest_int, GROUP_MAX_EPS};

pub const BLOCK: usize = 32;
pub const BYTES: usize = 18;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(20, "iq4_nl", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);

/// `kvalues_iq4nl` (ggml-common.h).
pub const VALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// How many scales around the first the search tries on each side (`ntry` of llama-quantize's path).
pub(crate) const NTRY: i32 = 7;

/// ggml `best_index_int8`: the index of the table entry nearest `x` (the upper on ties).
pub(crate) fn best_index(x: f32) -> u8 {
    let v = |i: usize| VALUES[i] as f32;
    if x <= v(0) {
        return 0;
    }
    if x >= v(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < v(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - v(mu - 1) < v(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// Weighted Σw·q·x and Σw·q² of the levels for inverse scale `id`.
fn sums(id: f32, x: &[f32], w: &[f32]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for (&v, &wj) in x.iter().zip(w) {
        let q = VALUES[best_index(id * v) as usize] as f32;
        sumqx += wj * q * v;
        sumq2 += wj * q * q;
    }
    (sumqx, sumq2)
}

/// One 32-block's scale (0 for an all-zero block), writing its first levels to `l`.
pub(crate) fn block_scale(x: &[f32], w: &[f32], l: &mut [u8]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let d = -max / VALUES[0] as f32;
    let id = 1.0 / d;
    for (lj, &v) in l.iter_mut().zip(x) {
        *lj = best_index(id * v);
    }
    let (sumqx, sumq2) = sums(id, x, w);
    let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        let id = (itry + VALUES[0] as i32) as f32 / max;
        let (sumqx, sumq2) = sums(id, x, w);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// The block weights: the importance matrix's, scaled by sqrt(σ² + x²) (`sigma2` of the
/// super-block, [`sigma2`]), or x².
pub(crate) fn weights(x: &[f32], sigma2: f32, imatrix: Option<&[f32]>, out: &mut [f32]) {
    match imatrix {
        Some(qw) => {
            for ((o, &q), &v) in out.iter_mut().zip(qw).zip(x) {
                *o = q * (sigma2 + v * v).sqrt();
            }
        }
        None => out.iter_mut().zip(x).for_each(|(o, &v)| *o = v * v),
    }
}

/// σ² = 2·mean x² of a super-block, summed in order as ggml does (once per super-block).
pub(crate) fn sigma2(super_x: &[f32]) -> f32 {
    let mut sigma2 = 0.0f32;
    for &v in super_x {
        sigma2 += v * v;
    }
    sigma2 * (2.0 / super_x.len() as f32)
}

/// The weights of a super-block's values into `w` (σ² over the whole super-block).
fn superblock_weights(x: &[f32], imatrix: Option<&[f32]>, w: &mut [f32]) {
    let s2 = imatrix.map_or(0.0, |_| sigma2(x));
    weights(x, s2, imatrix, w);
}

/// ggml `quantize_row_iq4_nl_impl` over a super-block of `x.len()` (32: IQ4_NL, 256:
/// IQ4_XS), one block's search at a time: the reference path. Returns d and the 6-bit
/// sub-block scales (IQ4_XS); writes packed levels to `q4`.
pub(crate) fn quantize_superblock(x: &[f32], imatrix: Option<&[f32]>, q4: &mut [u8]) -> (f32, [u8; 8]) {
    let nb = x.len() / BLOCK;
    let (mut w, mut l) = ([0f32; 256], [0u8; 256]);
    superblock_weights(x, imatrix, &mut w[..x.len()]);
    let mut scales = [0f32; 8];
    let blocks = x.chunks_exact(BLOCK).zip(w.chunks_exact(BLOCK)).zip(l.chunks_exact_mut(BLOCK));
    for (s, ((xb, wb), lb)) in scales.iter_mut().zip(blocks) {
        *s = block_scale(xb, wb, lb);
    }
    let mut ids = [0f32; 8];
    let head = sub_scales(&scales[..nb], &mut ids[..nb]);
    levels(&ids[..nb], x, &mut l);
    pack(&l[..x.len()], q4);
    head
}

/// From a super-block's block scales: d, the 6-bit sub-block scales and (into `ids`) each
/// block's inverse scale for its levels. One block: its scale is d.
fn sub_scales(scales: &[f32], ids: &mut [f32]) -> (f32, [u8; 8]) {
    let mut ls = [0u8; 8];
    if let [only] = scales {
        ids[0] = inverse(*only);
        return (*only, ls);
    }
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    for &s in scales {
        if s.abs() > amax_scale {
            amax_scale = s.abs();
            max_scale = s;
        }
    }
    let d = -max_scale / 32.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for ((&s, idl), l) in scales.iter().zip(ids).zip(&mut ls) {
        let q = nearest_int(id * s).clamp(-32, 31);
        *idl = inverse(d * q as f32);
        *l = (q + 32) as u8;
    }
    (d, ls)
}

/// How IQ4_NL and IQ4_XS lay out a super-block: `sb` values (32: IQ4_NL, 256: IQ4_XS) in
/// `bytes`, the packed levels last; `head` writes d and the sub-block scales in front of
/// them. Both types encode through it.
pub(crate) struct Layout {
    pub sb: usize,
    pub bytes: usize,
    pub head: fn(d: f32, ls: [u8; 8], out: &mut [u8]),
}

impl Layout {
    /// One super-block by the reference search (ggml's order, one block at a time).
    pub(crate) fn quantize_one(&self, x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
        let (d, ls) = quantize_superblock(x, qw, &mut out[self.bytes - self.sb / 2..self.bytes]);
        (self.head)(d, ls, out);
    }

    /// Whole rows, appended to `out`.
    pub(crate) fn encode(&self, src: &[f32], out: &mut Vec<u8>) {
        if super::reference_kernels() {
            super::encode_blocks(src, out, self.sb, self.bytes, |x, o| self.quantize_one(x, None, o));
        } else {
            let start = out.len();
            out.resize(start + src.len() / self.sb * self.bytes, 0);
            self.encode_superblocks(src, None, &mut out[start..]);
        }
    }

    /// A row with importance weights `qw`.
    pub(crate) fn encode_row_weighted(&self, row: &[f32], qw: &[f32], out: &mut [u8]) {
        if super::reference_kernels() {
            super::weighted_blocks(row, qw, out, self.sb, self.bytes, |x, q, o| self.quantize_one(x, Some(q), o));
        } else {
            self.encode_superblocks(row, Some(qw), out);
        }
    }

    /// The super-blocks of `src` into `out`, a batch at a time: the weights, then the 8-lane
    /// search over the batch, then each super-block's head, then the levels.
    fn encode_superblocks(&self, src: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
        let Layout { sb, bytes, head } = *self;
        let (mut w, mut l) = ([0f32; BATCH], [0u8; BATCH]);
        let (mut scales, mut ids) = ([0f32; BATCH / BLOCK], [0f32; BATCH / BLOCK]);
        let whole = src.len() / sb * sb;
        for start in (0..whole).step_by(BATCH) {
            let x = &src[start..whole.min(start + BATCH)];
            let (n, o) = (x.len(), &mut out[start / sb * bytes..]);
            for (s, (xs, ws)) in x.chunks_exact(sb).zip(w.chunks_exact_mut(sb)).enumerate() {
                let at = start + s * sb;
                superblock_weights(xs, qw.map(|q| &q[at..at + sb]), ws);
            }
            batch_scales(x, &w[..n], &mut scales[..n / BLOCK]);
            let per_sb = scales[..n / BLOCK].chunks_exact(sb / BLOCK).zip(ids.chunks_exact_mut(sb / BLOCK));
            for ((sc, id), ob) in per_sb.zip(o.chunks_exact_mut(bytes)) {
                let (d, ls) = sub_scales(sc, id);
                head(d, ls, ob);
            }
            levels(&ids[..n / BLOCK], x, &mut l[..n]);
            for (ls, ob) in l[..n].chunks_exact(sb).zip(o.chunks_exact_mut(bytes)) {
                pack(ls, &mut ob[bytes - sb / 2..]);
            }
        }
    }
}

/// Values in one batch of [`Layout::encode_superblocks`]: 8 groups of 8 blocks.
const BATCH: usize = 8 * super::iq4_lanes::LANES * BLOCK;

/// The 8-lane search over whole blocks, the blocks after the last whole group of 8 (IQ4_NL
/// rows such as gpt-oss's 90 blocks) in a group padded with zero blocks: each lane searches
/// its own block, so the padding changes no other lane's scale.
fn batch_scales(x: &[f32], w: &[f32], scales: &mut [f32]) {
    const GROUP: usize = super::iq4_lanes::LANES * BLOCK;
    let whole = x.len() / GROUP * GROUP;
    super::iq4_lanes::block_scales(&x[..whole], &w[..whole], &mut scales[..whole / BLOCK]);
    let rest = x.len() - whole;
    if rest > 0 {
        let (mut px, mut pw, mut ps) = ([0f32; GROUP], [0f32; GROUP], [0f32; super::iq4_lanes::LANES]);
        px[..rest].copy_from_slice(&x[whole..]);
        pw[..rest].copy_from_slice(&w[whole..]);
        super::iq4_lanes::block_scales(&px, &pw, &mut ps);
        scales[whole / BLOCK..].copy_from_slice(&ps[..rest / BLOCK]);
    }
}

/// 1/d, or 0 for d = 0.
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// `best_index(ids[b] · x)` for each value of block b (32 values each).
fn levels(ids: &[f32], x: &[f32], l: &mut [u8]) {
    if super::reference_kernels() {
        for ((&id, xb), lb) in ids.iter().zip(x.chunks_exact(BLOCK)).zip(l.chunks_exact_mut(BLOCK)) {
            for (lj, &v) in lb.iter_mut().zip(xb) {
                *lj = best_index(id * v);
            }
        }
    } else {
        super::iq4_lanes::best_indices(ids, x, l);
    }
}

/// Levels of 32-blocks as nibbles: element j low, j+16 high.
fn pack(l: &[u8], q4: &mut [u8]) {
    for (lb, qb) in l.chunks_exact(32).zip(q4.chunks_exact_mut(16)) {
        for j in 0..16 {
            qb[j] = lb[j] | (lb[16 + j] << 4);
        }
    }
}

const LAYOUT: Layout = Layout { sb: BLOCK, bytes: BYTES, head: write_head };

/// d in front of the levels.
fn write_head(d: f32, _: [u8; 8], out: &mut [u8]) {
    out[..2].copy_from_slice(&fp16_bytes(d));
}

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    LAYOUT.quantize_one(x, None, out);
}

/// With an importance matrix (ggml `quantize_iq4_nl` given weights).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    LAYOUT.quantize_one(x, Some(qw), out);
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    LAYOUT.encode(src, out);
}

/// ggml `dequantize_row_iq4_nl`: y = d·v[q].
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        let qs = &b[2..18];
        out.extend(qs.iter().map(|&q| d * VALUES[(q & 0xF) as usize] as f32));
        out.extend(qs.iter().map(|&q| d * VALUES[(q >> 4) as usize] as f32));
    }
}

/// A row with importance weights.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    LAYOUT.encode_row_weighted(row, qw, out);
}
