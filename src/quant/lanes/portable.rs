//! [`Portable`]: each operation is the `wide` crate's (SSE2 on x86-64, NEON on arm64).

use wide::{f32x8, i16x8, i32x8, u8x16};

use super::{Isa, Portable};

#[inline(always)]
fn cast_f(v: i32x8) -> f32x8 {
    wide::bytemuck::cast(v)
}

#[inline(always)]
fn cast_i(v: f32x8) -> i32x8 {
    wide::bytemuck::cast(v)
}

impl Isa for Portable {
    type F = f32x8;
    type I = i32x8;

    #[inline(always)]
    fn splat(v: f32) -> f32x8 {
        f32x8::splat(v)
    }
    #[inline(always)]
    fn from_array(a: [f32; 8]) -> f32x8 {
        f32x8::new(a)
    }
    #[inline(always)]
    fn to_array(v: f32x8) -> [f32; 8] {
        v.to_array()
    }
    #[inline(always)]
    fn add(a: f32x8, b: f32x8) -> f32x8 {
        a + b
    }
    #[inline(always)]
    fn sub(a: f32x8, b: f32x8) -> f32x8 {
        a - b
    }
    #[inline(always)]
    fn mul(a: f32x8, b: f32x8) -> f32x8 {
        a * b
    }
    #[inline(always)]
    fn div(a: f32x8, b: f32x8) -> f32x8 {
        a / b
    }
    #[inline(always)]
    fn and(a: f32x8, b: f32x8) -> f32x8 {
        a & b
    }
    #[inline(always)]
    fn or(a: f32x8, b: f32x8) -> f32x8 {
        a | b
    }
    #[inline(always)]
    fn xor(a: f32x8, b: f32x8) -> f32x8 {
        a ^ b
    }
    #[inline(always)]
    fn fast_min(a: f32x8, b: f32x8) -> f32x8 {
        a.fast_min(b)
    }
    #[inline(always)]
    fn fast_max(a: f32x8, b: f32x8) -> f32x8 {
        a.fast_max(b)
    }
    #[inline(always)]
    fn gt(a: f32x8, b: f32x8) -> f32x8 {
        a.simd_gt(b)
    }
    #[inline(always)]
    fn ge(a: f32x8, b: f32x8) -> f32x8 {
        a.simd_ge(b)
    }
    #[inline(always)]
    fn lt(a: f32x8, b: f32x8) -> f32x8 {
        a.simd_lt(b)
    }
    #[inline(always)]
    fn eq(a: f32x8, b: f32x8) -> f32x8 {
        a.simd_eq(b)
    }
    #[inline(always)]
    fn unordered(a: f32x8) -> f32x8 {
        a.simd_ne(a)
    }
    #[inline(always)]
    fn select(mask: f32x8, yes: f32x8, no: f32x8) -> f32x8 {
        mask.select(yes, no)
    }
    #[inline(always)]
    fn sign_bits(v: f32x8) -> u32 {
        v.to_bitmask()
    }
    #[inline(always)]
    fn to_bits(v: f32x8) -> i32x8 {
        cast_i(v)
    }
    #[inline(always)]
    fn from_bits(v: i32x8) -> f32x8 {
        cast_f(v)
    }
    #[inline(always)]
    fn trunc(v: f32x8) -> i32x8 {
        v.fast_trunc_int()
    }
    #[inline(always)]
    fn to_f32(v: i32x8) -> f32x8 {
        f32x8::from_i32x8(v)
    }

    #[inline(always)]
    fn splat_i(v: i32) -> i32x8 {
        i32x8::splat(v)
    }
    #[inline(always)]
    fn from_array_i(a: [i32; 8]) -> i32x8 {
        i32x8::new(a)
    }
    #[inline(always)]
    fn to_array_i(v: i32x8) -> [i32; 8] {
        v.to_array()
    }
    #[inline(always)]
    fn add_i(a: i32x8, b: i32x8) -> i32x8 {
        a + b
    }
    #[inline(always)]
    fn sub_i(a: i32x8, b: i32x8) -> i32x8 {
        a - b
    }
    #[inline(always)]
    fn and_i(a: i32x8, b: i32x8) -> i32x8 {
        a & b
    }
    #[inline(always)]
    fn or_i(a: i32x8, b: i32x8) -> i32x8 {
        a | b
    }
    #[inline(always)]
    fn shl_i<const N: i32>(a: i32x8) -> i32x8 {
        a << N
    }
    #[inline(always)]
    fn max_i(a: i32x8, b: i32x8) -> i32x8 {
        a.max(b)
    }
    #[inline(always)]
    fn min_i(a: i32x8, b: i32x8) -> i32x8 {
        a.min(b)
    }
    #[inline(always)]
    fn eq_i(a: i32x8, b: i32x8) -> i32x8 {
        a.simd_eq(b)
    }
    #[inline(always)]
    fn low_bytes(a: i32x8, b: i32x8) -> [u8; 16] {
        u8x16::narrow_i16x8(i16x8::from_i32x8_saturate(a), i16x8::from_i32x8_saturate(b)).to_array()
    }

    #[inline(always)]
    fn f16_bits(v: f32) -> u16 {
        half::f16::from_f32(v).to_bits()
    }

    const FAST_PERMUTE: bool = false;
    #[inline(always)]
    fn permute(table: f32x8, idx: i32x8) -> f32x8 {
        let (t, i) = (table.to_array(), idx.to_array());
        let mut out = [0f32; 8];
        for (o, &k) in out.iter_mut().zip(&i) {
            *o = t[(k & 7) as usize];
        }
        f32x8::new(out)
    }
}
