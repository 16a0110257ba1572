//! GGML_TYPE_Q3_K: superblocks of 256 as `{ u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d; }`
//! (110 bytes): sixteen sub-blocks of 16, each x ≈ d·(sc − 32)·(q − 4) with 6-bit sc and 3-bit
//! q (2 bits in qs as Q2_K, the third in hmask: bit `j/32` of hmask[j % 32]). Reference: ggml
//! `quantize_row_q3_K_ref`: per sub-block `make_q3_quants(16, 4, do_rmse)`; max_scale = the
//! scale of largest magnitude; iscale = −32/max_scale, sc = clamp(nearest_int(iscale·scale),
//! −32, 31) + 32 (low nibbles in scales[0..8], high pairs in scales[8..12]), d = fp16(1/iscale);
//! levels re-derived as clamp(nearest_int(x/(d·(sc − 32))), −4, 3) + 4 where that is ≠ 0.

use super::kquant::{fp16_at, fp16_bytes, nearest_int, GROUP_MAX_EPS, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 110;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(11, "q3_K", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == BLOCK / 8 + BLOCK / 4 + 12 + 2);

/// ggml `make_q3_quants(n, nmax, x, L, do_rmse = true)`: symmetric levels −nmax..nmax−1
/// weighted by x², refined by up to five passes of single-level changes; `l` gets them offset
/// by nmax. Returns the scale.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32], l: &mut [u8]) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l[..x.len()].fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut li = [0i32; 16];
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (q, &v) in li.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        let w = v * v;
        sumlx += w * v * *q as f32;
        suml2 += w * *q as f32 * *q as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for (q, &v) in li.iter_mut().zip(x) {
            let w = v * v;
            let mut slx = sumlx - w * v * *q as f32;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * *q as f32 * *q as f32;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != *q {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        (*q, sumlx, suml2) = (new_l, slx, sl2);
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for (o, q) in l.iter_mut().zip(li) {
        *o = (q + nmax) as u8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Sub-block `j`'s 6-bit scale from the packed 12 bytes (as the C encoder re-reads it).
fn packed_scale(sc: &[u8], j: usize) -> i8 {
    let low = if j < 8 { sc[j] & 0xF } else { sc[j - 8] >> 4 };
    ((low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8).wrapping_sub(32)
}

/// With an importance matrix (ggml `quantize_row_q3_K_impl`): per sub-block
/// `make_qx_quants(16, 4)` weighted by qw·sqrt(σ² + x²), then the sixteen scales to 6 bits
/// by `make_qx_quants(16, 32)` weighted by the sub-blocks' weight sums.
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    use super::kquant::{importance, make_qx_quants, sum_sq};
    let mut l = [0u8; 256];
    let sigma2 = 2.0 * sum_sq(x) / QK_K as f32;
    let (mut scales, mut sw, mut w) = ([0f32; 16], [0f32; 16], [0f32; 16]);
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        importance(xs, &qw[16 * j..16 * j + 16], sigma2, &mut w);
        let mut sumw = 0.0f32;
        for &v in &w {
            sumw += v;
        }
        sw[j] = sumw;
        scales[j] = make_qx_quants(4, xs, &mut l[16 * j..16 * j + 16], Some(&w));
    }
    let mut ls = [0u8; 16];
    let d_block = make_qx_quants(32, &scales, &mut ls, Some(&sw));
    let out = &mut out[..BYTES];
    let sc = &mut out[96..108];
    sc.fill(0);
    for (j, &q) in ls.iter().enumerate() {
        if j < 8 {
            sc[j] = q & 0xF;
        } else {
            sc[j - 8] |= (q & 0xF) << 4;
        }
        sc[8 + j % 4] |= (q >> 4) << (2 * (j / 4));
    }
    out[108..110].copy_from_slice(&fp16_bytes(d_block));
    finish(x, &mut l, out);
}

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
    if super::reference_kernels() {
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        }
    } else {
        scales = super::q3_lanes::make_q3_quants_x16(x[..256].try_into().expect("a super-block"), &mut l);
    }
    for &s in &scales {
        if s.abs() > amax {
            amax = s.abs();
            max_scale = s;
        }
    }
    let out = &mut out[..BYTES];
    let sc = &mut out[96..108];
    sc.fill(0);
    if max_scale != 0.0 {
        let iscale = -32.0f32 / max_scale;
        for (j, &s) in scales.iter().enumerate() {
            // C: an int8_t from nearest_int, clamped to −32..31, then + 32.
            let q = ((nearest_int(iscale * s) as i8).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                sc[j] = q & 0xF;
            } else {
                sc[j - 8] |= (q & 0xF) << 4;
            }
            sc[8 + j % 4] |= (q >> 4) << (2 * (j / 4));
        }
        out[108..110].copy_from_slice(&fp16_bytes(1.0 / iscale));
    } else {
        out[108..110].copy_from_slice(&fp16_bytes(0.0));
    }
    finish(x, &mut l, out);
}

/// Re-derives the levels from the stored d and 6-bit scales (where their product is not 0)
/// and packs them: low 2 bits as Q2_K, the third in hmask.
fn finish(x: &[f32], l: &mut [u8; 256], out: &mut [u8]) {
    let d_all = fp16_at(&out[108..110]);
    for j in 0..16 {
        let d = d_all * packed_scale(&out[96..108], j) as f32;
        if d == 0.0 {
            continue;
        }
        for (li, &v) in l[16 * j..16 * j + 16].iter_mut().zip(&x[16 * j..16 * j + 16]) {
            *li = (nearest_int(v / d).clamp(-4, 3) + 4) as u8;
        }
    }
    let hmask = &mut out[..32];
    hmask.fill(0);
    // Level j's third bit goes to bit j/32 of hmask[j % 32]. Without a branch (for typical
    // weights it is a coin flip), 32 levels at a time.
    for (c, ls) in l.chunks_exact_mut(32).enumerate() {
        for (h, q) in hmask.iter_mut().zip(ls) {
            let high = (*q > 3) as u8;
            *h |= high << c;
            *q -= 4 * high;
        }
    }
    super::q2_k::pack_2bit(l, &mut out[32..96]);
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// ggml `dequantize_row_q3_K`: y = d·(sc − 32)·(q − 4 if the high bit is clear, else q).
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let (hm, d) = (&b[..32], fp16_at(&b[108..110]));
        let mut is = 0;
        let mut m = 1u8;
        for c in 0..2 {
            let q = &b[32 + 32 * c..64 + 32 * c];
            for shift in [0, 2, 4, 6] {
                for half in 0..2 {
                    let dl = d * packed_scale(&b[96..108], is) as f32;
                    is += 1;
                    for l in 16 * half..16 * half + 16 {
                        let low = ((q[l] >> shift) & 3) as i32;
                        out.push(dl * (low - if hm[l] & m != 0 { 0 } else { 4 }) as f32);
                    }
                }
                m <<= 1;
            }
        }
    }
}

/// A row with importance weights, block by block.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted);
}
