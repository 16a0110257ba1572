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

/// ggml `quantize_row_iq4_nl_impl` over a super-block of `x.len()` (32: IQ4_NL, 256:
/// IQ4_XS). Returns d and the 6-bit sub-block scales (IQ4_XS); writes packed levels to `q4`.
pub(crate) fn quantize_superblock(x: &[f32], imatrix: Option<&[f32]>, q4: &mut [u8]) -> (f32, [u8; 8]) {
    let nb = x.len() / 32;
    let mut l = [0u8; 256];
    let mut w = [0f32; 256];
    let s2 = imatrix.map_or(0.0, |_| sigma2(x));
    for ib in 0..nb {
        let r = 32 * ib..32 * ib + 32;
        weights(&x[r.clone()], s2, imatrix.map(|q| &q[r.clone()]), &mut w[r]);
    }
    let mut scales = [0f32; 8];
    if nb == super::iq4_lanes::LANES && !super::reference_kernels() {
        scales = super::iq4_lanes::block_scales_x8(x, &w);
    } else {
        let blocks = x.chunks_exact(32).zip(w.chunks_exact(32)).zip(l.chunks_exact_mut(32));
        for (s, ((xb, wb), lb)) in scales.iter_mut().zip(blocks) {
            *s = block_scale(xb, wb, lb);
        }
    }
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    for &s in &scales[..nb] {
        if s.abs() > amax_scale {
            amax_scale = s.abs();
            max_scale = s;
        }
    }
    let mut ls = [0u8; 8];
    let dh;
    if nb > 1 {
        let d = -max_scale / 32.0;
        dh = d;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut idl = [0f32; 8];
        for ib in 0..nb {
            let q = nearest_int(id * scales[ib]).clamp(-32, 31);
            idl[ib] = inverse(d * q as f32);
            ls[ib] = (q + 32) as u8;
        }
        levels(&idl[..nb], x, &mut l);
    } else {
        dh = scales[0];
        levels(&[inverse(dh)], x, &mut l);
    }
    pack(&l[..32 * nb], q4);
    (dh, ls)
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

/// IQ4_NL blocks 8 at a time through [`super::iq4_lanes`] (each block is its own super-block
/// for the weights), the rest one by one.
fn encode_blocks_x8(src: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    const GROUP: usize = super::iq4_lanes::LANES * BLOCK;
    let whole = src.len() / GROUP * GROUP;
    let mut w = [0f32; GROUP];
    let mut l = [0u8; GROUP];
    for (g, (x, o)) in src[..whole].chunks_exact(GROUP).zip(out.chunks_exact_mut(8 * BYTES)).enumerate() {
        for ib in 0..8 {
            let r = BLOCK * ib..BLOCK * ib + BLOCK;
            let q = qw.map(|q| &q[GROUP * g + BLOCK * ib..GROUP * g + BLOCK * ib + BLOCK]);
            let s2 = q.map_or(0.0, |_| sigma2(&x[r.clone()]));
            weights(&x[r.clone()], s2, q, &mut w[r]);
        }
        let scales = super::iq4_lanes::block_scales_x8(x, &w);
        levels(&scales.map(inverse), x, &mut l);
        for (ib, (lb, ob)) in l.chunks_exact(BLOCK).zip(o.chunks_exact_mut(BYTES)).enumerate() {
            ob[..2].copy_from_slice(&fp16_bytes(scales[ib]));
            pack(lb, &mut ob[2..18]);
        }
    }
    let tail = &mut out[whole / BLOCK * BYTES..];
    match qw {
        Some(qw) => super::weighted_blocks(&src[whole..], &qw[whole..], tail, BLOCK, BYTES, quantize_block_weighted),
        None => {
            for (x, o) in src[whole..].chunks_exact(BLOCK).zip(tail.chunks_exact_mut(BYTES)) {
                quantize_block(x, o);
            }
        }
    }
}

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_block_weighted_opt(x, None, out);
}

/// With an importance matrix (ggml `quantize_iq4_nl` given weights).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    quantize_block_weighted_opt(x, Some(qw), out);
}

fn quantize_block_weighted_opt(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let (d, _) = quantize_superblock(x, qw, &mut out[2..18]);
    out[..2].copy_from_slice(&fp16_bytes(d));
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    if super::reference_kernels() {
        return super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
    }
    let start = out.len();
    out.resize(start + src.len() / BLOCK * BYTES, 0);
    encode_blocks_x8(src, None, &mut out[start..]);
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

/// A row with importance weights, block by block.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    if super::reference_kernels() {
        super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
    } else {
        encode_blocks_x8(row, Some(qw), out);
    }
}
