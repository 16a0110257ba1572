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

/// [`from_f32`] over a slice, into a buffer sized first: the loop is branch-free and the
/// compiler vectorizes it (AVX2 copy on x86-64 when the CPU has it); the reference kernels
/// take one value at a time.
pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 2 * src.len(), 0);
    let dst = &mut out[start..];
    if super::reference_kernels() {
        for (o, &v) in dst.chunks_exact_mut(2).zip(src) {
            o.copy_from_slice(&from_f32(v).to_le_bytes());
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 (runtime-detected).
        return unsafe { encode_avx2(src, dst) };
    }
    encode_lanes(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn encode_avx2(src: &[f32], dst: &mut [u8]) {
    encode_lanes(src, dst)
}

#[inline(always)]
fn encode_lanes(src: &[f32], dst: &mut [u8]) {
    const STEP: usize = 64;
    for (x, o) in src.chunks(STEP).zip(dst.chunks_mut(2 * STEP)) {
        let mut h = [0u16; STEP];
        for (hi, &v) in h.iter_mut().zip(x) {
            let u = v.to_bits();
            let rounded = (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16;
            let quiet = ((u >> 16) | 0x40) as u16;
            *hi = if (u & 0x7fff_ffff) > 0x7f80_0000 { quiet } else { rounded };
        }
        for (ob, &hv) in o.chunks_exact_mut(2).zip(&h) {
            ob.copy_from_slice(&hv.to_le_bytes());
        }
    }
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    out.extend(src.chunks_exact(2).map(|b| to_f32(u16::from_le_bytes([b[0], b[1]]))));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorized loop (every path this CPU runs) against [`from_f32`], value by value.
    #[test]
    fn slice_encoder_is_from_f32() {
        let mut x: Vec<f32> = [0x7FC0_0001u32, 0x7F80_0001, 0xFFBF_FFFF, 0x7F80_0000, 0x7F7F_FFFF, 0x8000_0001]
            .iter()
            .map(|&b| f32::from_bits(b))
            .collect();
        for m in [0x7FFFu32, 0x8000, 0x8001, 0x1_8000, 0x1_7FFF, 0xFFFF] {
            x.push(f32::from_bits(0x3F80_0000 | m));
            x.push(f32::from_bits(0xBF80_0000 | m));
        }
        let mut next = crate::quant::test_values(78);
        x.extend((0..3001).map(|_| next()));
        let want: Vec<u8> = x.iter().flat_map(|&v| from_f32(v).to_le_bytes()).collect();
        let mut got = vec![1u8];
        encode(&x, &mut got);
        assert_eq!(got[0], 1);
        assert_eq!(&got[1..], &want[..]);
        let mut base = vec![0u8; want.len()];
        encode_lanes(&x, &mut base);
        assert_eq!(base, want, "baseline path");
    }

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
