//! GGML_TYPE_Q6_K: superblocks of 256 as `{ u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }`
//! (210 bytes, d last): sixteen sub-blocks of 16, each x ≈ d·sc·(q − 32) with 8-bit signed sc
//! and 6-bit q. Reference: ggml `quantize_row_q6_K_ref`: per sub-block
//! `make_qx_quants(16, 32, rmse_type 1)`; max_scale = the scale of largest magnitude (first on
//! ties); all-zero bytes if |max_scale| < 1e-15; iscale = −128 / max_scale, d = fp16(1/iscale),
//! sc = min(127, nearest_int(iscale·scale)); then levels are re-derived as
//! nearest_int(x / (d·sc)) except in sub-blocks whose d·sc is 0 (they keep make_qx_quants'
//! levels). Per 128-element chunk: ql[l] = q[l] | q[l+64] << 4, ql[l+32] = q[l+32] | q[l+96] << 4
//! (low nibbles), qh[l] = the top 2 bits of q[l], q[l+32], q[l+64], q[l+96] at bits 0, 2, 4, 6.

use super::kquant::{fp16_at, fp16_bytes, make_qx_quants, nearest_int, GROUP_MAX_EPS};

pub const BLOCK: usize = super::kquant::QK_K;
pub const BYTES: usize = 210;

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_block_weighted(x, None, out);
}

fn quantize_block_weighted_slice(x: &[f32], qw: &[f32], out: &mut [u8]) {
    quantize_block_weighted(x, Some(qw), out);
}

/// With an importance matrix (ggml `quantize_row_q6_K_impl`): the same, `make_qx_quants`
/// weighted by the matrix's values alone.
pub fn quantize_block_weighted(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let mut l = [0u8; 256];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        let qw = qw.map(|q| &q[16 * ib..16 * ib + 16]);
        let scale = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16], qw);
        scales[ib] = scale;
        if scale.abs() > max_abs_scale {
            max_abs_scale = scale.abs();
            max_scale = scale;
        }
    }
    let out = &mut out[..BYTES];
    if max_abs_scale < GROUP_MAX_EPS {
        out.fill(0);
        return;
    }
    let iscale = -128.0f32 / max_scale;
    out[208..210].copy_from_slice(&fp16_bytes(1.0 / iscale));
    let d_all = fp16_at(&out[208..210]);
    for j in 0..16 {
        // C stores min(127, int) into an int8_t (wrapping).
        let sc = nearest_int(iscale * scales[j]).min(127) as i8;
        out[192 + j] = sc as u8;
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        for (li, &v) in l[16 * j..16 * j + 16].iter_mut().zip(&x[16 * j..16 * j + 16]) {
            *li = (nearest_int(v / d).clamp(-32, 31) + 32) as u8;
        }
    }
    let (ql, qh) = out[..192].split_at_mut(128);
    for c in 0..2 {
        let l = &l[128 * c..128 * c + 128];
        for i in 0..32 {
            ql[64 * c + i] = (l[i] & 0xF) | ((l[i + 64] & 0xF) << 4);
            ql[64 * c + 32 + i] = (l[i + 32] & 0xF) | ((l[i + 96] & 0xF) << 4);
            qh[32 * c + i] = (l[i] >> 4) | ((l[i + 32] >> 4) << 2) | ((l[i + 64] >> 4) << 4) | ((l[i + 96] >> 4) << 6);
        }
    }
}
/// ggml's `q6_K` block: 256 low nibbles, 256 high 2-bit pairs, 16 int8 scales, f16 d.
pub const INFO: super::TypeInfo =
    super::TypeInfo::known(14, "q6_K", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == BLOCK / 2 + BLOCK / 4 + BLOCK / 16 + 2);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// ggml `dequantize_row_q6_K`: y = (d·sc)·(q − 32).
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[208..210]);
        let mut vals = [0f32; 256];
        for c in 0..2 {
            let (ql, qh, sc) = (&b[64 * c..64 * c + 64], &b[128 + 32 * c..160 + 32 * c], &b[192 + 8 * c..200 + 8 * c]);
            let y = &mut vals[128 * c..128 * c + 128];
            for i in 0..32 {
                let is = i / 16;
                let q1 = ((ql[i] & 0xF) | ((qh[i] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[i + 32] & 0xF) | (((qh[i] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[i + 32] >> 4) | (((qh[i] >> 6) & 3) << 4)) as i32 - 32;
                y[i] = d * sc[is] as i8 as f32 * q1 as f32;
                y[i + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
                y[i + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
                y[i + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
            }
        }
        out.extend_from_slice(&vals);
    }
}

/// A row with importance weights, block by block.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    super::weighted_blocks(row, qw, out, BLOCK, BYTES, quantize_block_weighted_slice);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_is_zero_bytes() {
        let mut out = Vec::new();
        encode(&[0.0; 256], &mut out);
        assert_eq!(out, vec![0u8; BYTES]);
    }

    #[test]
    fn round_trip_of_an_exact_grid() {
        // Sub-blocks alternate k/4 (max −8: scale ¼, sc −128) and −k/8 (max 4: scale −⅛,
        // sc 64), k = −32..−16, so d = fp16(−¼/128) = −2^-9 is exact and so is every value.
        let x: Vec<f32> =
            (0..256).map(|i| ((i % 16) as f32 - 32.0) * if (i / 16) % 2 == 0 { 0.25 } else { -0.125 }).collect();
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(fp16_at(&out[208..210]), -1.0 / 512.0);
        assert_eq!(&out[192..196], &[0x80, 64, 0x80, 64]);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn ties_round_half_to_even_and_zero_scales_are_skipped() {
        // Sub-block 0 (k/4) fixes d = −2^-9 (sc −128); sub-block 1 is k/8 with three ties: its
        // scale stays near ⅛, so sc = −64, d·sc = ⅛ and the levels are nearest_int(8x):
        // −20.5 → −20, −18.5 → −18, −17.5 → −18. Sub-blocks 2..16 are zero: sc 0, so they are
        // skipped and keep make_qx_quants' all-zero levels 0 (not 32, the level of 0).
        let mut x = [0f32; 256];
        for i in 0..16 {
            x[i] = (i as f32 - 32.0) / 4.0;
            x[16 + i] = (i as f32 - 32.0) / 8.0;
        }
        x[28..31].copy_from_slice(&[-20.5 / 8.0, -18.5 / 8.0, -17.5 / 8.0]);
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(fp16_at(&out[208..210]), -1.0 / 512.0);
        assert_eq!(&out[192..195], &[0x80, (-64i8) as u8, 0]);
        // Sub-block 2 = elements 32..48: low nibbles of ql[32..48], bits 2..4 of qh[0..16].
        assert!(out[32..48].iter().all(|&b| b & 0xF == 0));
        assert!(out[128..144].iter().all(|&b| (b >> 2) & 3 == 0));
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(&back[..16], &x[..16]);
        assert_eq!(&back[28..31], &[-20.0 / 8.0, -18.0 / 8.0, -18.0 / 8.0]);
        assert!(back[32..].iter().all(|&v| v == 0.0));
    }
}
