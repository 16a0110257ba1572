//! GGML_TYPE_Q2_K: superblocks of 256 as `{ u8 scales[16]; u8 qs[64]; f16 d; f16 dmin; }`
//! (84 bytes): sixteen sub-blocks of 16, each x ≈ d·sc·q − dmin·m with 4-bit sc and m (low
//! and high nibble of `scales[j]`) and 2-bit q. Reference: ggml `quantize_row_q2_K_ref`: per
//! sub-block `make_qkx2_quants(16, 3, weights |x|, rmin −0.5, rdelta 0.1, nstep 15, mad)`;
//! sc = nearest_int(15/max_scale · scale), d = fp16(max_scale/15), likewise m and dmin from
//! the largest min; then levels re-derived as clamp(nearest_int((x + dmin·m)/(d·sc)), 0, 3)
//! where d·sc ≠ 0. Per 128-element chunk, qs[l] holds q[l], q[l+32], q[l+64], q[l+96] at
//! bits 0, 2, 4, 6.

use super::kquant::{fp16_at, fp16_bytes, make_qkx2_quants, nearest_int, Search, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 84;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(10, "q2_K", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == BLOCK / 16 + BLOCK / 4 + 4);

/// Q2_K's scale search: rmin −0.5, rdelta 0.1, 15 steps, absolute error.
const MAD_SEARCH: Search = Search { rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true, clamp_first: false };

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    let mut weights = [0f32; 256];
    weights.iter_mut().zip(x).for_each(|(w, v)| *w = v.abs());
    sub_block_fits(x, &weights, MAD_SEARCH, &mut l, &mut scales, &mut mins);
    for j in 0..16 {
        max_scale = if scales[j] > max_scale { scales[j] } else { max_scale };
        max_min = if mins[j] > max_min { mins[j] } else { max_min };
    }
    let out = &mut out[..BYTES];
    let q4scale = 15.0f32;
    if max_scale > 0.0 {
        let iscale = q4scale / max_scale;
        for j in 0..16 {
            out[j] = nearest_int(iscale * scales[j]) as u8;
        }
        out[80..82].copy_from_slice(&fp16_bytes(max_scale / q4scale));
    } else {
        out[..16].fill(0);
        out[80..82].copy_from_slice(&fp16_bytes(0.0));
    }
    if max_min > 0.0 {
        let iscale = q4scale / max_min;
        for j in 0..16 {
            out[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        out[82..84].copy_from_slice(&fp16_bytes(max_min / q4scale));
    } else {
        out[82..84].copy_from_slice(&fp16_bytes(0.0));
    }
    let (d_all, m_all) = (fp16_at(&out[80..82]), fp16_at(&out[82..84]));
    for j in 0..16 {
        let d = d_all * (out[j] & 0xF) as f32;
        if d == 0.0 {
            continue;
        }
        let dm = m_all * (out[j] >> 4) as f32;
        for (li, &v) in l[16 * j..16 * j + 16].iter_mut().zip(&x[16 * j..16 * j + 16]) {
            *li = nearest_int((v + dm) / d).clamp(0, 3) as u8;
        }
    }
    pack_2bit(&l, &mut out[16..80]);
}

/// With an importance matrix (ggml `quantize_row_q2_K_impl`): per sub-block
/// `make_qkx3_quants(16, 3)` weighted by qw·sqrt(σ² + x²) (σ² = mean x²), rmin −0.9, rdelta
/// 0.05, 36 steps; scales and mins to 4 bits by `make_qp_quants` weighted by the sub-blocks'
/// weight sums; levels re-derived against the stored values.
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    use super::kquant::{importance, make_qp_quants, sum_sq};
    let mut l = [0u8; 256];
    let sigma2 = sum_sq(x) / QK_K as f32;
    let (mut scales, mut mins, mut sw, mut w) = ([0f32; 16], [0f32; 16], [0f32; 16], [0f32; 256]);
    importance(x, qw, sigma2, &mut w);
    for (s, ws) in sw.iter_mut().zip(w.chunks_exact(16)) {
        let mut sumw = 0.0f32;
        for &v in ws {
            sumw += v;
        }
        *s = sumw;
    }
    sub_block_fits(x, &w, Search::WEIGHTED, &mut l, &mut scales, &mut mins);
    let (mut ls, mut lm) = ([0u8; 16], [0u8; 16]);
    let dm = make_qp_quants(15, &scales, &mut ls, &sw);
    let mm = make_qp_quants(15, &mins, &mut lm, &sw);
    let out = &mut out[..BYTES];
    out[80..82].copy_from_slice(&fp16_bytes(dm));
    out[82..84].copy_from_slice(&fp16_bytes(mm));
    for j in 0..16 {
        out[j] = ls[j] | (lm[j] << 4);
    }
    let (d_all, m_all) = (fp16_at(&out[80..82]), fp16_at(&out[82..84]));
    for j in 0..16 {
        let d = d_all * (out[j] & 0xF) as f32;
        if d == 0.0 {
            continue;
        }
        let m = m_all * (out[j] >> 4) as f32;
        for (li, &v) in l[16 * j..16 * j + 16].iter_mut().zip(&x[16 * j..16 * j + 16]) {
            *li = nearest_int((v + m) / d).clamp(0, 3) as u8;
        }
    }
    pack_2bit(&l, &mut out[16..80]);
}

/// `make_qkx2_quants(3, …, search)` of the 16 sub-blocks of 16: (scale, min) pairs, levels in
/// `l`; eight sub-blocks side by side ([`super::qkx2_lanes`]) unless the reference kernels
/// are asked for.
fn sub_block_fits(
    x: &[f32],
    w: &[f32; 256],
    search: Search,
    l: &mut [u8; 256],
    scales: &mut [f32; 16],
    mins: &mut [f32; 16],
) {
    if super::reference_kernels() {
        for j in 0..16 {
            let r = 16 * j..16 * j + 16;
            (scales[j], mins[j]) = make_qkx2_quants(3, &x[r.clone()], &w[r.clone()], &mut l[r], search);
        }
        return;
    }
    for half in 0..2 {
        let r = 128 * half..128 * half + 128;
        let fit = super::qkx2_lanes::make_qkx2_quants_x8::<16>(3, &x[r.clone()], &w[r.clone()], search, &mut l[r]);
        scales[8 * half..8 * half + 8].copy_from_slice(&fit.scales);
        mins[8 * half..8 * half + 8].copy_from_slice(&fit.mins);
    }
}

/// Q2_K/Q3_K's 2-bit levels: per 128, `qs[l]` = q[l] | q[l+32]<<2 | q[l+64]<<4 | q[l+96]<<6.
pub(crate) fn pack_2bit(l: &[u8; 256], qs: &mut [u8]) {
    for c in 0..2 {
        for i in 0..32 {
            let b = 128 * c + i;
            qs[32 * c + i] = l[b] | (l[b + 32] << 2) | (l[b + 64] << 4) | (l[b + 96] << 6);
        }
    }
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// ggml `dequantize_row_q2_K`: y = d·sc·q − dmin·m.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let (d, min) = (fp16_at(&b[80..82]), fp16_at(&b[82..84]));
        let mut is = 0;
        for c in 0..2 {
            let q = &b[16 + 32 * c..48 + 32 * c];
            for shift in [0, 2, 4, 6] {
                for half in 0..2 {
                    let sc = b[is];
                    is += 1;
                    let (dl, ml) = (d * (sc & 0xF) as f32, min * (sc >> 4) as f32);
                    for &qb in &q[16 * half..16 * half + 16] {
                        out.push(dl * ((qb >> shift) & 3) as f32 - ml);
                    }
                }
            }
        }
    }
}

/// A row with importance weights, block by block.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}
