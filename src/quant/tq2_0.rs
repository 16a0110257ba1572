//! GGML_TYPE_TQ2_0: blocks of 256 as `{ u8 qs[64]; f16 d; }` (66 bytes), ternary: x ≈ d·(q − 1)
//! with q in {0, 1, 2} stored 2 bits each. Byte `32·j + m` of qs holds elements
//! `128·j + m + 32·n` for n = 0..3 in bits 2n..2n+1. llama-quantize calls `quantize_tq2_0`,
//! which ignores importance weights and runs `quantize_row_tq2_0_ref`: d = max |x|,
//! q = lroundf(x/d) + 1.

use super::kquant::{fp16_at, fp16_bytes};
use super::q8_0::c_max;
use super::round_away;

pub const BLOCK: usize = 256;
pub const BYTES: usize = 66;

pub const INFO: super::TypeInfo = super::TypeInfo::known(35, "tq2_0", BLOCK, BYTES).codec(encode, decode);

/// A ternary block's scale d = max |x| and its levels `lroundf(x·(1/d)) + 1` (1/d taken as 0
/// when d is 0) as C's `int` holds them (`quantize_row_tq1_0_ref`, `quantize_row_tq2_0_ref`).
pub(crate) fn ternary_levels(x: &[f32], levels: &mut [i32; BLOCK]) -> f32 {
    // |x| as bits orders like |x|, and an integer max vectorizes; with a NaN, ggml's MAX
    // keeps or drops it depending on its place: take its loop.
    let max_bits = x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7FFF_FFFF));
    let no_nan = max_bits <= 0x7F80_0000;
    let amax = if no_nan { f32::from_bits(max_bits) } else { x.iter().fold(0.0f32, |m, v| c_max(m, v.abs())) };
    let id = if amax != 0.0 { 1.0 / amax } else { 0.0 };
    if no_nan && amax.is_finite() && id.is_finite() {
        // Every x·id lies within ±1.0001: roundf is truncation plus a correction from the
        // exact fraction (no libm call; the loop vectorizes).
        for (l, &v) in levels.iter_mut().zip(x) {
            let s = v * id;
            // SAFETY: |s| is at most a little over 1.
            let i: i32 = unsafe { s.to_int_unchecked() };
            let f = s - i as f32;
            *l = i + (f >= 0.5) as i32 - (f <= -0.5) as i32 + 1;
        }
    } else {
        for (l, &v) in levels.iter_mut().zip(x) {
            *l = lroundf_level(v * id);
        }
    }
    amax
}

/// `lroundf(v) + 1` stored in an `int`, as x86-64 glibc computes it: half away from zero,
/// and LONG_MIN (low 32 bits 0) for ±inf and NaN, which `x·(1/d)` gives when 1/d overflows
/// (largest |x| a denormal).
fn lroundf_level(v: f32) -> i32 {
    let r = if v.abs() < 9223372036854775808.0 { round_away(v) as i64 } else { i64::MIN };
    (r as i32).wrapping_add(1)
}

/// ggml `quantize_row_tq2_0_ref` for one block.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut levels = [0i32; BLOCK];
    let d = ternary_levels(x, &mut levels);
    for (j, ls) in levels.chunks_exact(128).enumerate() {
        for m in 0..32 {
            let mut q = 0u8;
            for n in 0..4 {
                q = q.wrapping_add(((ls[m + 32 * n] & 3) << (2 * n)) as u8);
            }
            out[32 * j + m] = q;
        }
    }
    out[64..66].copy_from_slice(&fp16_bytes(d));
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// ggml `dequantize_row_tq2_0`: y = (q − 1)·d.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[64..66]);
        for qs in b[..64].chunks_exact(32) {
            for n in 0..4 {
                out.extend(qs.iter().map(|&q| (((q >> (2 * n)) & 3) as i32 - 1) as f32 * d));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_levels_equal_lroundf() {
        // 2 as the block max: x/2 lands on ±0.5 exactly, and its neighbours just off it.
        let mut x = [0f32; BLOCK];
        for (i, v) in x.iter_mut().enumerate() {
            *v = match i % 6 {
                0 => 1.0,
                1 => -1.0,
                2 => 1.0f32.next_up(),
                3 => (-1.0f32).next_down(),
                4 => 1.0f32.next_down(),
                _ => -0.0,
            };
        }
        x[7] = 2.0;
        let mut fast = [0i32; BLOCK];
        let d = ternary_levels(&x, &mut fast);
        let id = 1.0 / d;
        for (i, &v) in x.iter().enumerate() {
            assert_eq!(fast[i], lroundf_level(v * id), "{v}");
        }
        assert_eq!(&fast[..6], &[2, 0, 2, 0, 1, 1]);
    }

    #[test]
    fn overflowing_reciprocal_gives_the_zero_level() {
        // 1/d overflows: x·inf is ±inf (NaN for 0), and glibc's lroundf gives LONG_MIN.
        let mut x = [0f32; BLOCK];
        x[3] = 1e-45;
        x[4] = -1e-45;
        let mut l = [0i32; BLOCK];
        assert_eq!(ternary_levels(&x, &mut l), 1e-45);
        assert!(l.iter().all(|&v| v == 1));
    }
}
