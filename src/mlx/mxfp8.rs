//! mxfp8 mode: FP8 E4M3FN elements × E8M0 scale per group of 32.

use super::fp::{e4m3, e8m0};

pub fn dequantize_row(words: &[u8], scales: &[u8], out: &mut [f32]) {
    for (g, chunk) in out.chunks_exact_mut(32).enumerate() {
        let s = e8m0(scales[g]);
        for (o, &b) in chunk.iter_mut().zip(&words[g * 32..(g + 1) * 32]) {
            *o = e4m3(b) * s;
        }
    }
}
