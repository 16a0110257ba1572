//! GGML_TYPE_F16: IEEE binary16, round-to-nearest-even as ggml's `ggml_compute_fp32_to_fp16`
//! (overflow → ±inf, NaN stays NaN). The `half` crate rounds the same way.

use half::f16;
/// ggml's `f16`: one f16 per element.
pub const INFO: super::TypeInfo = super::TypeInfo::known(1, "f16", 1, 2).codec(encode, decode);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    out.reserve(src.len() * 2);
    for &v in src {
        out.extend_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
    }
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    out.extend(src.chunks_exact(2).map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_even_and_overflows_to_inf() {
        let mut out = Vec::new();
        // 1 + 2^-11 is a tie between 1.0 and 1+2^-10: even mantissa (1.0) wins.
        encode(&[1.0 + 2f32.powi(-11), 65520.0, -1e9, 2f32.powi(-25) * 1.5], &mut out);
        let bits: Vec<u16> = out.chunks(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
        assert_eq!(bits, vec![0x3C00, 0x7C00, 0xFC00, 0x0001]);
    }
}
