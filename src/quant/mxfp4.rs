//! GGML_TYPE_MXFP4: blocks of 32 as `{ u8 e; u8 qs[16]; }` (17 bytes), E2M1 codes with an
//! E8M0 exponent; element j in the low nibble of qs[j], element j+16 in the high nibble.
//! Reference: ggml `quantize_row_mxfp4_ref`: e = floor(log2f(amax)) - 2 + 127 (log2f, not
//! the exponent bits: they differ just below powers of two), d = 2^(e-128), and each code
//! is the first index minimising |kvalues[i]·d − x|.

use super::lanes::{Isa, Portable, F8, I8};

pub const BLOCK: usize = 32;
pub const BYTES: usize = 17;

/// ggml's `kvalues_mxfp4`: E2M1 values doubled.
pub const KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// `GGML_E8M0_TO_FP32_HALF`: 2^(e-128) (byte 255 is not special).
pub fn e8m0_half(e: u8) -> f32 {
    if e < 2 {
        f32::from_bits(0x0020_0000 << e)
    } else {
        f32::from_bits(((e as u32) - 1) << 23)
    }
}

/// The first index minimising `|kvalues[i]·d − x|` (ggml `best_index_mxfp4`, also used by NVFP4).
pub(crate) fn best_index(x: f32, d: f32) -> u8 {
    let mut best = 0u8;
    let mut best_err = (KVALUES[0] as f32 * d - x).abs();
    for (i, &k) in KVALUES.iter().enumerate().skip(1) {
        let err = (k as f32 * d - x).abs();
        if err < best_err {
            best = i as u8;
            best_err = err;
        }
    }
    best
}

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let d = exponent(x, out);
    if super::reference_kernels() {
        for j in 0..16 {
            out[1 + j] = best_index(x[j], d) | (best_index(x[j + 16], d) << 4);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd_level() >= super::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and F16C (runtime-detected).
        return unsafe { codes_avx2(x, d, out) };
    }
    codes::<Portable>(x, d, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn codes_avx2(x: &[f32], d: f32, out: &mut [u8]) {
    codes::<super::lanes::Avx2>(x, d, out)
}

/// The packed codes of a block, 8 values per vector, each lane running [`best_index`]'s loop.
#[inline(always)]
fn codes<S: Isa>(x: &[f32], d: f32, out: &mut [u8]) {
    let d = F8::<S>::splat(d);
    let mut idx = [I8::<S>::zero(); 4];
    for (i, xc) in idx.iter_mut().zip(x.chunks_exact(8)) {
        let x = F8::load(xc);
        let mut best_err = (F8::splat(KVALUES[0] as f32) * d - x).abs();
        for (k, &v) in KVALUES.iter().enumerate().skip(1) {
            let err = (F8::splat(v as f32) * d - x).abs();
            let better = err.lt(best_err);
            best_err = better.select(err, best_err);
            *i = better.select_i(I8::splat(k as i32), *i);
        }
    }
    let (low, high) = (idx[0].low_bytes(idx[1]), idx[2].low_bytes(idx[3]));
    for j in 0..16 {
        out[1 + j] = low[j] | (high[j] << 4);
    }
}

/// Writes the block's E8M0 byte and returns its d.
fn exponent(x: &[f32], out: &mut [u8]) -> f32 {
    let mut amax = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
        }
    }
    // C converts the float to uint8_t; below amax = 2^-125 it is negative, and x86 keeps
    // the low byte of the int32 (Rust's `as u8` would saturate to 0).
    let e = if amax > 0.0 { super::c_cast_u8(amax.log2().floor() - 2.0 + 127.0) } else { 0 };
    out[0] = e;
    e8m0_half(e)
}
/// ggml's `mxfp4` block: E8M0 scale byte, 32 FP4 codes.
pub const INFO: super::TypeInfo = super::TypeInfo::known(39, "mxfp4", BLOCK, BYTES).codec(encode, decode);
const _: () = assert!(BYTES == 1 + BLOCK / 2);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = e8m0_half(b[0]);
        let mut vals = [0f32; 32];
        for j in 0..16 {
            vals[j] = KVALUES[(b[1 + j] & 15) as usize] as f32 * d;
            vals[j + 16] = KVALUES[(b[1 + j] >> 4) as usize] as f32 * d;
        }
        out.extend_from_slice(&vals);
    }
}

/// Lossless repack of one row of MLX mxfp4 data (byte k = code 2k | code 2k+1 << 4, one
/// E8M0 byte per 32) into ggml blocks: only the nibble order changes, the scale byte is
/// copied (ggml's 2^(e-128) times doubled values equals MLX's 2^(e-127) times E2M1).
pub fn repack_mlx_row(words: &[u8], scales: &[u8], out: &mut Vec<u8>) {
    for (g, &e) in scales.iter().enumerate() {
        let src = &words[g * 16..(g + 1) * 16];
        let code = |j: usize| (src[j / 2] >> ((j % 2) * 4)) & 15;
        out.push(e);
        for j in 0..16 {
            out.push(code(j) | (code(j + 16) << 4));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector codes are the scalar search's on every instruction set: random blocks,
    /// ties between two values, NaN, inf, and values past the largest.
    #[test]
    fn vector_codes_are_the_scalar_searchs() {
        let mut next = crate::quant::test_values(3);
        let mut blocks: Vec<[f32; 32]> = (0..64).map(|_| std::array::from_fn(|_| next())).collect();
        let d = 0.25f32;
        // Midpoints between neighbouring values (exact ties), and specials.
        blocks.push(std::array::from_fn(|j| (KVALUES[j % 8] as f32 + 0.5) * d * if j < 16 { 1.0 } else { -1.0 }));
        blocks.push(std::array::from_fn(|j| [f32::NAN, f32::INFINITY, -f32::INFINITY, 1e30, -0.0, 5.0][j % 6]));
        for x in &blocks {
            for d in [d, e8m0_half(0), e8m0_half(255), 1.0] {
                let mut want = [0u8; 17];
                for j in 0..16 {
                    want[1 + j] = best_index(x[j], d) | (best_index(x[j + 16], d) << 4);
                }
                let mut got = [0u8; 17];
                codes::<Portable>(x, d, &mut got);
                assert_eq!(got, want, "baseline on {x:?}, d = {d}");
                #[cfg(target_arch = "x86_64")]
                if crate::quant::cpu_has_avx2() {
                    let mut got = [0u8; 17];
                    // SAFETY: the CPU has AVX2 and F16C.
                    unsafe { codes_avx2(x, d, &mut got) };
                    assert_eq!(got, want, "AVX2 on {x:?}, d = {d}");
                }
            }
        }
    }

    #[test]
    fn zero_block_is_zero_bytes() {
        let mut out = Vec::new();
        encode(&[0.0; 32], &mut out);
        assert_eq!(out, vec![0u8; 17]);
    }

    #[test]
    fn repack_decodes_to_mlx_values() {
        // Codes 0..16 then 15..0, scale byte 130 (×8).
        let codes: Vec<u8> = (0..16).chain((0..16).rev()).collect();
        let words: Vec<u8> = codes.chunks(2).map(|p| p[0] | (p[1] << 4)).collect();
        let mut out = Vec::new();
        repack_mlx_row(&words, &[130], &mut out);
        let mut got = Vec::new();
        decode(&out, &mut got);
        let mut want = vec![0f32; 32];
        crate::mlx::mxfp4::dequantize_row(&words, &[130], &mut want);
        assert_eq!(got, want);
    }

    #[test]
    fn exponent_uses_log2f_rounding() {
        // Just below 8.0, log2f rounds to exactly 3.0 (the C reference does the same).
        let mut x = [0f32; 32];
        x[0] = f32::from_bits(8.0f32.to_bits() - 1);
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(out[0], (x[0].log2().floor() - 2.0 + 127.0) as u8);
    }

    #[test]
    fn exponent_below_2_pow_minus_125_wraps_as_in_c() {
        // floor(log2(1e-40)) = -133 → -8.0, which C's uint8_t conversion turns into 0xF8.
        let mut x = [0f32; 32];
        x[0] = 1e-40;
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(out[0], 0xF8);
    }
}
