//! GGML_TYPE_F16: IEEE binary16, round-to-nearest-even as ggml's `ggml_compute_fp32_to_fp16`
//! (overflow → ±inf, NaN stays NaN). The `half` crate rounds the same way.

use half::f16;
use half::slice::HalfFloatSliceExt;
/// ggml's `f16`: one f16 per element.
pub const INFO: super::TypeInfo = super::TypeInfo::known(1, "f16", 1, 2).codec(encode, decode);

/// Values converted per step (a stack buffer of f16).
const STEP: usize = 1024;

/// The `half` crate's slice conversion: the CPU's instructions (F16C on x86-64, FP16 on
/// arm64) several values at a time where it has them, else its software rounding (the same
/// bits); per value in software when the reference kernels are asked for.
pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 2 * src.len(), 0);
    let mut buf = [f16::ZERO; STEP];
    let reference = super::reference_kernels();
    for (x, o) in src.chunks(STEP).zip(out[start..].chunks_mut(2 * STEP)) {
        let h = &mut buf[..x.len()];
        if reference {
            for (hi, &v) in h.iter_mut().zip(x) {
                *hi = f16::from_f32_const(v);
            }
        } else {
            h.convert_from_f32_slice(x);
        }
        for (ob, hv) in o.chunks_exact_mut(2).zip(h.iter()) {
            ob.copy_from_slice(&hv.to_bits().to_le_bytes());
        }
    }
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    let start = out.len();
    out.resize(start + src.len() / 2, 0.0);
    decode_into(src, &mut out[start..]);
}

/// Little-endian f16 bytes (any alignment) → f32, exactly: through a stack buffer and
/// half's slice conversion (the CPU's instructions where it has them).
pub(crate) fn decode_into(src: &[u8], out: &mut [f32]) {
    let mut buf = [f16::ZERO; STEP];
    for (b, o) in src.chunks(2 * STEP).zip(out.chunks_mut(STEP)) {
        let n = o.len().min(b.len() / 2);
        let h = &mut buf[..n];
        for (hi, c) in h.iter_mut().zip(b.chunks_exact(2)) {
            *hi = f16::from_bits(u16::from_le_bytes([c[0], c[1]]));
        }
        h.convert_to_f32_slice(&mut o[..n]);
    }
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

    /// The slice conversion (hardware where the CPU has it) against the software rounding,
    /// value by value, on ties, subnormals, overflow and NaNs with payloads.
    #[test]
    fn slice_conversion_is_the_software_rounding() {
        let mut x: Vec<f32> = [0x7FC0_0001u32, 0x7F80_0001, 0xFFBF_FFFF, 0x7F80_0000, 0x0000_0001, 0x8000_0000]
            .iter()
            .map(|&b| f32::from_bits(b))
            .collect();
        for e in 100u32..=150 {
            for m in [0u32, 0x1000, 0x2000, 0x3000, 0x0FFF, 0x1001, 0x7F_FFFF, 0x40_1000] {
                x.push(f32::from_bits(e << 23 | m));
                x.push(-f32::from_bits(e << 23 | m));
            }
        }
        let mut next = crate::quant::test_values(77);
        x.extend((0..3000).map(|_| next()));
        let mut got = Vec::new();
        encode(&x, &mut got);
        for (i, (&v, b)) in x.iter().zip(got.chunks_exact(2)).enumerate() {
            let want = f16::from_f32_const(v).to_bits();
            assert_eq!(u16::from_le_bytes([b[0], b[1]]), want, "value {i}: {v:e} ({:#x})", v.to_bits());
        }
        // And back, from an odd address: every f16 bit pattern, exactly.
        let all: Vec<u8> = std::iter::once(0u8).chain((0..=u16::MAX).flat_map(|b| b.to_le_bytes())).collect();
        let mut back = Vec::new();
        decode(&all[1..], &mut back);
        for (b, &v) in (0..=u16::MAX).zip(&back) {
            assert_eq!(v.to_bits(), f16::from_bits(b).to_f32_const().to_bits(), "f16 {b:#x}");
        }
    }
}
