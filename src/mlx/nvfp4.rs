//! nvfp4 mode: FP4 E2M1 codes × E4M3 scale per group of 16, times `g / 2688` when the
//! module has a per-expert global scale `g` (2688 = 448 · 6; mlx `dequantize`).

use super::fp::{decode_e2m1, e4m3};

pub fn dequantize_row(words: &[u8], scales: &[u8], global: Option<f32>, out: &mut [f32]) {
    let gmul = global.map(|g| g / 2688.0);
    for (g, chunk) in out.chunks_exact_mut(16).enumerate() {
        let mut s = e4m3(scales[g]);
        if let Some(m) = gmul {
            s *= m;
        }
        decode_e2m1(&words[g * 8..(g + 1) * 8], s, chunk);
    }
}
