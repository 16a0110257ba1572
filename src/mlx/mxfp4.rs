//! mxfp4 mode: FP4 E2M1 codes × E8M0 scale per group of 32. Every product is exact in f32
//! except overflow; scale byte 255 decodes to +inf (codes ±0 then give NaN), as in MLX.

use super::fp::{decode_e2m1, e8m0};

pub fn dequantize_row(words: &[u8], scales: &[u8], out: &mut [f32]) {
    for (g, chunk) in out.chunks_exact_mut(32).enumerate() {
        decode_e2m1(&words[g * 16..(g + 1) * 16], e8m0(scales[g]), chunk);
    }
}
