//! Affine mode: `w = q * scale + bias` per group of `group_size` elements.
//!
//! Computed in f32 with one rounding. MLX's CPU path instead rounds `q*scale` to the scale
//! dtype before adding the bias; for bf16/f16 scales `q*scale` is exact in f32, so this is
//! the true value of the quantized weight (reference doc §1.4).

use super::pack::unpack_row;
use super::ScaleFloat;

#[inline(always)]
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
        let group = &words[g * group_bytes..(g + 1) * group_bytes];
        // 8-bit codes are the bytes themselves: copying them first was a library call per
        // group (3 % of a gpt-oss conversion's CPU time).
        let codes = if bits == 8 {
            group
        } else {
            unpack_row(group, bits, &mut codes[..group_size]);
            &codes[..group_size]
        };
        for (o, &q) in chunk.iter_mut().zip(codes) {
            *o = q as f32 * s + b;
        }
    }
}

/// Lossless repack of one row of affine 4- or 5-bit data into ggml Q4_1 / Q5_1 blocks of
/// 32 (`d = scale`, `m = bias`, repeated across a larger MLX group). ggml computes
/// `q·d + m` in f32, exactly MLX's value, provided the scale and bias are f16 values.
/// Returns false (and leaves `out` unspecified) when some scale or bias is not.
pub fn repack_row_q4_1_q5_1(
    words: &[u8],
    bits: u32,
    group_size: usize,
    scales: &[u8],
    biases: &[u8],
    sf: ScaleFloat,
    out: &mut Vec<u8>,
) -> bool {
    let n = words.len() * 8 / bits as usize;
    let mut codes = vec![0u8; n];
    unpack_row(words, bits, &mut codes);
    for (b, block) in codes.chunks_exact(32).enumerate() {
        let g = b * 32 / group_size;
        let (s, m) = (sf.read(scales, g), sf.read(biases, g));
        let (hs, hm) = (half::f16::from_f32(s), half::f16::from_f32(m));
        if hs.to_f32() != s || hm.to_f32() != m || !s.is_finite() || !m.is_finite() {
            return false;
        }
        out.extend_from_slice(&hs.to_bits().to_le_bytes());
        out.extend_from_slice(&hm.to_bits().to_le_bytes());
        if bits == 5 {
            let qh = (0..32).fold(0u32, |acc, j| acc | (((block[j] >> 4) as u32 & 1) << j));
            out.extend_from_slice(&qh.to_le_bytes());
        }
        for j in 0..16 {
            out.push((block[j] & 15) | ((block[j + 16] & 15) << 4));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlx::pack::pack_row;

    /// Decodes Q4_1/Q5_1 blocks as ggml does: `q·d + m`.
    fn ggml_decode(bytes: &[u8], bits: u32) -> Vec<f32> {
        let bs = if bits == 4 { 20 } else { 24 };
        let mut out = Vec::new();
        for b in bytes.chunks_exact(bs) {
            let d = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            let m = half::f16::from_bits(u16::from_le_bytes([b[2], b[3]])).to_f32();
            let (qh, qs) =
                if bits == 5 { (u32::from_le_bytes([b[4], b[5], b[6], b[7]]), &b[8..]) } else { (0, &b[4..]) };
            let mut v = [0f32; 32];
            for j in 0..16 {
                let lo = (qs[j] & 15) as u32 | ((qh >> j) & 1) << 4;
                let hi = (qs[j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
                v[j] = lo as f32 * d + m;
                v[j + 16] = hi as f32 * d + m;
            }
            out.extend_from_slice(&v);
        }
        out
    }

    #[test]
    fn repack_is_exact_for_f16_representable_scales() {
        for bits in [4u32, 5] {
            let codes: Vec<u8> = (0..128).map(|i| ((i * 7 + 3) % (1 << bits)) as u8).collect();
            let mut words = vec![0u8; 128 * bits as usize / 8];
            pack_row(&codes, bits, &mut words);
            // Two groups of 64, bf16 scales/biases (exactly representable in f16), one negative.
            let sb: Vec<u8> = [-0.0390625f32, 0.125, 1.5, -3.0]
                .iter()
                .flat_map(|v| crate::quant::bf16::from_f32(*v).to_le_bytes())
                .collect();
            let (scales, biases) = sb.split_at(4);
            let mut out = Vec::new();
            assert!(repack_row_q4_1_q5_1(&words, bits, 64, scales, biases, ScaleFloat::BF16, &mut out));
            let mut want = vec![0f32; 128];
            dequantize_row(&words, bits, 64, scales, biases, ScaleFloat::BF16, &mut want);
            assert_eq!(ggml_decode(&out, bits), want);
        }
    }

    #[test]
    fn repack_refuses_scales_f16_cannot_hold() {
        let words = vec![0u8; 16];
        let sb: Vec<u8> = [1e-30f32, 0.0].iter().flat_map(|v| crate::quant::bf16::from_f32(*v).to_le_bytes()).collect();
        let (scales, biases) = sb.split_at(2);
        assert!(!repack_row_q4_1_q5_1(&words, 4, 32, scales, biases, ScaleFloat::BF16, &mut Vec::new()));
    }
}
