//! Minifloat decoders used by MLX's fp quantization modes.

/// FP4 E2M1 code → value (bit 3 is the sign).
pub const E2M1: [f32; 16] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0];

/// A byte's two codes (low nibble first) decoded with one load: a byte at a time through
/// [`E2M1`] was ~9 % of an MXFP4 → IQ4_XS conversion.
pub static E2M1_PAIRS: [[f32; 2]; 256] = e2m1_pairs();

const fn e2m1_pairs() -> [[f32; 2]; 256] {
    let mut t = [[0.0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [E2M1[b & 15], E2M1[b >> 4]];
        b += 1;
    }
    t
}

/// Each byte of `codes` as its two values times `scale` (products exact but for overflow).
/// Scaled as they are stored: reading back values just stored as pairs stalls on every
/// wider load (store forwarding fails), which was most of the MXFP4 decoding time.
#[inline]
pub fn decode_e2m1(codes: &[u8], scale: f32, out: &mut [f32]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(codes) {
        let [lo, hi] = E2M1_PAIRS[b as usize];
        pair[0] = lo * scale;
        pair[1] = hi * scale;
    }
}

/// E8M0 scale byte → 2^(s-127), as MLX computes it in f32: byte 0 is 2^-127 (a
/// subnormal, not zero) and byte 255 is +inf (MLX does not treat it as NaN).
#[inline]
pub fn e8m0(s: u8) -> f32 {
    match s {
        255 => f32::INFINITY,
        0 => f32::from_bits(0x0040_0000),
        _ => f32::from_bits((s as u32) << 23),
    }
}

/// FP8 E4M3FN byte → value: bias 7, no infinities, 0x7F/0xFF are NaN, max 448.
/// MLX honours the sign bit, also in nvfp4 scales.
#[inline]
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
