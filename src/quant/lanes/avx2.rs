//! [`Avx2`]: one 256-bit register per vector. Every function here runs only inlined into
//! `#[target_feature(enable = "avx2,f16c")]` code called after AVX2 and F16C were detected
//! (see [`Avx2`]); that is the safety argument of each `unsafe` block below.

use std::arch::x86_64::*;

use super::{Avx2, Isa};

macro_rules! avx {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty = $body:expr;)*) => {$(
        #[inline(always)]
        fn $name($($a: $t),*) -> $r {
            // SAFETY: see the module documentation: this runs only where AVX2 is present.
            #[allow(unused_unsafe)]
            unsafe { $body }
        }
    )*};
}

impl Isa for Avx2 {
    type F = __m256;
    type I = __m256i;

    avx! {
        splat(v: f32) -> __m256 = _mm256_set1_ps(v);
        from_array(a: [f32; 8]) -> __m256 = _mm256_loadu_ps(a.as_ptr());
        to_array(v: __m256) -> [f32; 8] = {
            let mut a = [0f32; 8];
            _mm256_storeu_ps(a.as_mut_ptr(), v);
            a
        };
        add(a: __m256, b: __m256) -> __m256 = _mm256_add_ps(a, b);
        sub(a: __m256, b: __m256) -> __m256 = _mm256_sub_ps(a, b);
        mul(a: __m256, b: __m256) -> __m256 = _mm256_mul_ps(a, b);
        div(a: __m256, b: __m256) -> __m256 = _mm256_div_ps(a, b);
        and(a: __m256, b: __m256) -> __m256 = _mm256_and_ps(a, b);
        or(a: __m256, b: __m256) -> __m256 = _mm256_or_ps(a, b);
        xor(a: __m256, b: __m256) -> __m256 = _mm256_xor_ps(a, b);
        // vminps/vmaxps return the second operand unless the first is strictly smaller/larger.
        fast_min(a: __m256, b: __m256) -> __m256 = _mm256_min_ps(a, b);
        fast_max(a: __m256, b: __m256) -> __m256 = _mm256_max_ps(a, b);
        gt(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_GT_OQ>(a, b);
        ge(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_GE_OQ>(a, b);
        lt(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_LT_OQ>(a, b);
        eq(a: __m256, b: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b);
        unordered(a: __m256) -> __m256 = _mm256_cmp_ps::<_CMP_UNORD_Q>(a, a);
        // blendv reads each lane's sign bit; masks have all bits or none.
        select(mask: __m256, yes: __m256, no: __m256) -> __m256 = _mm256_blendv_ps(no, yes, mask);
        sign_bits(v: __m256) -> u32 = _mm256_movemask_ps(v) as u32;
        to_bits(v: __m256) -> __m256i = _mm256_castps_si256(v);
        from_bits(v: __m256i) -> __m256 = _mm256_castsi256_ps(v);
        trunc(v: __m256) -> __m256i = _mm256_cvttps_epi32(v);
        to_f32(v: __m256i) -> __m256 = _mm256_cvtepi32_ps(v);

        splat_i(v: i32) -> __m256i = _mm256_set1_epi32(v);
        from_array_i(a: [i32; 8]) -> __m256i = _mm256_loadu_si256(a.as_ptr().cast());
        to_array_i(v: __m256i) -> [i32; 8] = {
            let mut a = [0i32; 8];
            _mm256_storeu_si256(a.as_mut_ptr().cast(), v);
            a
        };
        add_i(a: __m256i, b: __m256i) -> __m256i = _mm256_add_epi32(a, b);
        sub_i(a: __m256i, b: __m256i) -> __m256i = _mm256_sub_epi32(a, b);
        and_i(a: __m256i, b: __m256i) -> __m256i = _mm256_and_si256(a, b);
        or_i(a: __m256i, b: __m256i) -> __m256i = _mm256_or_si256(a, b);
        max_i(a: __m256i, b: __m256i) -> __m256i = _mm256_max_epi32(a, b);
        min_i(a: __m256i, b: __m256i) -> __m256i = _mm256_min_epi32(a, b);
        eq_i(a: __m256i, b: __m256i) -> __m256i = _mm256_cmpeq_epi32(a, b);
        f16_bits(v: f32) -> u16 = _mm_extract_epi16::<0>(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v))) as u16;
        // vpermps reads the low 3 bits of each index.
        permute(table: __m256, idx: __m256i) -> __m256 = _mm256_permutevar8x32_ps(table, idx);
        from_bytes(b: [u8; 8]) -> __m256i = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(i64::from_le_bytes(b)));
        low_bytes(a: __m256i, b: __m256i) -> [u8; 16] = {
            // packs works within 128-bit halves: [a0..3 b0..3 | a4..7 b4..7] → reorder quarters.
            let words = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
            let bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256::<1>(words));
            let mut out = [0u8; 16];
            _mm_storeu_si128(out.as_mut_ptr().cast(), bytes);
            out
        };
    }

    const FAST_PERMUTE: bool = true;

    #[inline(always)]
    fn load_columns<const D: usize>(base: &[f32], starts: [usize; 8]) -> [__m256; D] {
        if D != 8 && D != 4 {
            return super::columns_by_lane::<Self, D>(base, starts);
        }
        // Loops, not `array::map`: its closures are not inlined into AVX2 code.
        let mut rows = [&base[..0]; 8];
        for (r, &s) in rows.iter_mut().zip(&starts) {
            *r = &base[s..s + D];
        }
        let mut out = [Self::splat(0.0); D];
        // SAFETY: each row is a checked slice of D values; AVX2 as in the module documentation.
        unsafe {
            if D == 8 {
                let mut v = [_mm256_setzero_ps(); 8];
                for (vk, r) in v.iter_mut().zip(&rows) {
                    *vk = _mm256_loadu_ps(r.as_ptr());
                }
                out.copy_from_slice(&transpose8(v));
            } else {
                let mut v = [_mm_setzero_ps(); 8];
                for (vk, r) in v.iter_mut().zip(&rows) {
                    *vk = _mm_loadu_ps(r.as_ptr());
                }
                out.copy_from_slice(&transpose4(v));
            }
        }
        out
    }

    #[inline(always)]
    fn shl_i<const N: i32>(a: __m256i) -> __m256i {
        // SAFETY: see the module documentation.
        unsafe { _mm256_slli_epi32::<N>(a) }
    }
}

/// Rows of 8 → columns: lane k of the result's vector i is `r[k][i]`.
#[inline(always)]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: AVX as in the module documentation.
    unsafe {
        // Pairs of rows interleaved, then quads, within each 128-bit half…
        let pair = |k: usize| (_mm256_unpacklo_ps(r[k], r[k + 1]), _mm256_unpackhi_ps(r[k], r[k + 1]));
        let quads = |a: (__m256, __m256), b: (__m256, __m256)| {
            [
                _mm256_shuffle_ps::<0x44>(a.0, b.0),
                _mm256_shuffle_ps::<0xEE>(a.0, b.0),
                _mm256_shuffle_ps::<0x44>(a.1, b.1),
                _mm256_shuffle_ps::<0xEE>(a.1, b.1),
            ]
        };
        let (low, high) = (quads(pair(0), pair(2)), quads(pair(4), pair(6)));
        // …then rows 0–3 and 4–7 joined: low halves give columns 0–3, high halves 4–7.
        let mut out = [_mm256_setzero_ps(); 8];
        for i in 0..4 {
            out[i] = _mm256_permute2f128_ps::<0x20>(low[i], high[i]);
            out[i + 4] = _mm256_permute2f128_ps::<0x31>(low[i], high[i]);
        }
        out
    }
}

/// Rows of 4 → columns: lane k of the result's vector i is `r[k][i]`.
#[inline(always)]
fn transpose4(r: [__m128; 8]) -> [__m256; 4] {
    // SAFETY: AVX as in the module documentation.
    unsafe {
        // Rows k and k + 4 share a register, so one 4×4 transposition per half does it.
        let a = [
            _mm256_set_m128(r[4], r[0]),
            _mm256_set_m128(r[5], r[1]),
            _mm256_set_m128(r[6], r[2]),
            _mm256_set_m128(r[7], r[3]),
        ];
        let (t0, t1) = (_mm256_unpacklo_ps(a[0], a[1]), _mm256_unpackhi_ps(a[0], a[1]));
        let (t2, t3) = (_mm256_unpacklo_ps(a[2], a[3]), _mm256_unpackhi_ps(a[2], a[3]));
        [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ]
    }
}
