//! GGML_TYPE_BF16: the top 16 bits of binary32 with ggml's rounding
//! (`ggml_compute_fp32_to_bf16`): NaN → quieted `(u >> 16) | 0x40`, otherwise
//! round-to-nearest-even on the dropped half, no flush to zero.

pub fn from_f32(v: f32) -> u16 {
    let u = v.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 0x40) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

pub fn to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}
/// ggml's `bf16`: one bf16 per element.
pub const INFO: super::TypeInfo = super::TypeInfo::known(30, "bf16", 1, 2).codec(encode, decode);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    out.reserve(src.len() * 2);
    for &v in src {
        out.extend_from_slice(&from_f32(v).to_le_bytes());
    }
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    out.extend(src.chunks_exact(2).map(|b| to_f32(u16::from_le_bytes([b[0], b[1]]))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ggml_rounding() {
        assert_eq!(from_f32(1.0), 0x3F80);
        // Tie below an even mantissa rounds down, above an odd one rounds up.
        assert_eq!(from_f32(f32::from_bits(0x3F80_8000)), 0x3F80);
        assert_eq!(from_f32(f32::from_bits(0x3F81_8000)), 0x3F82);
        assert_eq!(from_f32(f32::from_bits(0x7F7F_FFFF)), 0x7F80); // overflow → inf
        assert_eq!(from_f32(f32::from_bits(0x7F80_0001)), 0x7FC0); // NaN quieted
        assert_eq!(from_f32(f32::from_bits(0x0000_0001)), 0x0000); // subnormal kept, rounds
        for b in [0u16, 0x8000, 0x3F80, 0x0001, 0x7F80] {
            assert_eq!(from_f32(to_f32(b)), b);
        }
    }
}
