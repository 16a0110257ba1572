//! nvfp4 mode: FP4 E2M1 codes × E4M3 scale per group of 16, times `g / 2688` when the
//! module has a per-expert global scale `g` (2688 = 448 · 6; mlx `dequantize`).

use super::fp::{e4m3, E2M1};

pub fn dequantize_row(words: &[u8], scales: &[u8], global: Option<f32>, out: &mut [f32]) {
    let gmul = global.map(|g| g / 2688.0);
    for (g, chunk) in out.chunks_exact_mut(16).enumerate() {
        let mut s = e4m3(scales[g]);
        if let Some(m) = gmul {
            s *= m;
        }
        for (pair, &b) in chunk.chunks_exact_mut(2).zip(&words[g * 8..(g + 1) * 8]) {
            pair[0] = E2M1[(b & 15) as usize] * s;
            pair[1] = E2M1[(b >> 4) as usize] * s;
        }
    }
}
