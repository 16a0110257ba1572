//! Affine mode: `w = q * scale + bias` per group of `group_size` elements.
//!
//! Computed in f32 with one rounding. MLX's CPU path instead rounds `q*scale` to the scale
//! dtype before adding the bias; for bf16/f16 scales `q*scale` is exact in f32, so this is
//! the true value of the quantized weight (reference doc §1.4).

use super::pack::unpack_row;
use super::ScaleFloat;

pub fn dequantize_row(
    words: &[u8],
    bits: u32,
    group_size: usize,
    scales: &[u8],
    biases: &[u8],
    sf: ScaleFloat,
    out: &mut [f32],
) {
    let mut codes = [0u8; 128];
    let group_bytes = group_size * bits as usize / 8;
    for (g, chunk) in out.chunks_exact_mut(group_size).enumerate() {
        let s = sf.read(scales, g);
        let b = sf.read(biases, g);
        let codes = &mut codes[..group_size];
        unpack_row(&words[g * group_bytes..(g + 1) * group_bytes], bits, codes);
        for (o, &q) in chunk.iter_mut().zip(codes.iter()) {
            *o = q as f32 * s + b;
        }
    }
}
