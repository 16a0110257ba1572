//! Minifloat decoders used by MLX's fp quantization modes.

/// FP4 E2M1 code → value (bit 3 is the sign).
pub const E2M1: [f32; 16] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0];

/// A code's f32 bits by arithmetic, which the compiler vectorizes (a table lookup per
/// byte does not; with it MXFP4 decoding ran at about half the speed under AVX2). Codes
/// 2–7 are normal E2M1 numbers: their exponent and mantissa bits moved into f32's place,
/// rebiased by 126 (E2M1's bias is 1); code 1 is the subnormal 0.5; bit 3 is the sign.
#[inline(always)]
fn e2m1_bits(code: u32) -> u32 {
    let m = code & 7;
    let normal = (m << 22) + (126 << 23);
    let subnormal = if m == 1 { 0.5f32.to_bits() } else { 0 };
    let magnitude = if m >= 2 { normal } else { subnormal };
    magnitude | ((code & 8) << 28)
}

/// Each byte of `codes` as its two values (low nibble first) times `scale` (products
/// exact but for overflow). Inlined, so the callers' AVX2 copies vectorize it too.
#[inline(always)]
pub fn decode_e2m1(codes: &[u8], scale: f32, out: &mut [f32]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(codes) {
        let b = u32::from(b);
        pair[0] = f32::from_bits(e2m1_bits(b & 15)) * scale;
        pair[1] = f32::from_bits(e2m1_bits(b >> 4)) * scale;
    }
}

/// E8M0 scale byte → 2^(s-127), as MLX computes it in f32: byte 0 is 2^-127 (a
/// subnormal, not zero) and byte 255 is +inf (MLX does not treat it as NaN).
#[inline(always)]
pub fn e8m0(s: u8) -> f32 {
    match s {
        255 => f32::INFINITY,
        0 => f32::from_bits(0x0040_0000),
        _ => f32::from_bits((s as u32) << 23),
    }
}

/// FP8 E4M3FN byte → value: bias 7, no infinities, 0x7F/0xFF are NaN, max 448.
/// MLX honours the sign bit, also in nvfp4 scales.
#[inline(always)]
pub fn e4m3(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let e = ((b >> 3) & 0x0F) as i32;
    let m = (b & 0x07) as f32;
    if e == 15 && (b & 7) == 7 {
        return f32::NAN;
    }
    let mag = if e == 0 { m / 8.0 * 2f32.powi(-6) } else { (1.0 + m / 8.0) * 2f32.powi(e - 7) };
    sign * mag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_pairs_decode_both_nibbles() {
        let codes: Vec<u8> = (0..=255).collect();
        for scale in [1.0, e8m0(0), e8m0(200), e8m0(255), -3.5] {
            let mut out = vec![0f32; 512];
            decode_e2m1(&codes, scale, &mut out);
            for (b, pair) in codes.iter().zip(out.chunks_exact(2)) {
                let want = [E2M1[(b & 15) as usize] * scale, E2M1[(b >> 4) as usize] * scale];
                let got = [pair[0].to_bits(), pair[1].to_bits()];
                assert_eq!(got, want.map(f32::to_bits), "byte {b:#04x}, scale {scale}");
            }
        }
    }

    #[test]
    fn e8m0_values() {
        assert_eq!(e8m0(127), 1.0);
        assert_eq!(e8m0(128), 2.0);
        assert_eq!(e8m0(0), 2f32.powi(-127));
        assert_eq!(e8m0(1), 2f32.powi(-126));
        assert_eq!(e8m0(254), 2f32.powi(127));
        assert!(e8m0(255).is_infinite());
    }

    #[test]
    fn e4m3_values() {
        assert_eq!(e4m3(0x7E), 448.0);
        assert_eq!(e4m3(0x38), 1.0);
        assert_eq!(e4m3(0xB8), -1.0);
        assert_eq!(e4m3(0x01), 2f32.powi(-9));
        assert!(e4m3(0x7F).is_nan() && e4m3(0xFF).is_nan());
        assert_eq!(e4m3(0x00), 0.0);
    }
}
