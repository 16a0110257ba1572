//! [`Portable`]: each operation is the `wide` crate's (SSE2 on x86-64, NEON on arm64).

use wide::{f32x8, i16x8, i32x8, u8x16};

use super::{Isa, Portable};

/// One always-inlined function per line.
macro_rules! ops {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty = $body:expr;)*) => {$(
        #[inline(always)]
        fn $name($($a: $t),*) -> $r {
            $body
        }
    )*};
}

impl Isa for Portable {
    type F = f32x8;
    type I = i32x8;

    ops! {
        splat(v: f32) -> f32x8 = f32x8::splat(v);
        from_array(a: [f32; 8]) -> f32x8 = f32x8::new(a);
        to_array(v: f32x8) -> [f32; 8] = v.to_array();
        add(a: f32x8, b: f32x8) -> f32x8 = a + b;
        sub(a: f32x8, b: f32x8) -> f32x8 = a - b;
        mul(a: f32x8, b: f32x8) -> f32x8 = a * b;
        div(a: f32x8, b: f32x8) -> f32x8 = a / b;
        and(a: f32x8, b: f32x8) -> f32x8 = a & b;
        or(a: f32x8, b: f32x8) -> f32x8 = a | b;
        xor(a: f32x8, b: f32x8) -> f32x8 = a ^ b;
        fast_min(a: f32x8, b: f32x8) -> f32x8 = a.fast_min(b);
        fast_max(a: f32x8, b: f32x8) -> f32x8 = a.fast_max(b);
        gt(a: f32x8, b: f32x8) -> f32x8 = a.simd_gt(b);
        ge(a: f32x8, b: f32x8) -> f32x8 = a.simd_ge(b);
        lt(a: f32x8, b: f32x8) -> f32x8 = a.simd_lt(b);
        eq(a: f32x8, b: f32x8) -> f32x8 = a.simd_eq(b);
        unordered(a: f32x8) -> f32x8 = a.simd_ne(a);
        select(mask: f32x8, yes: f32x8, no: f32x8) -> f32x8 = mask.select(yes, no);
        sign_bits(v: f32x8) -> u32 = v.to_bitmask();
        to_bits(v: f32x8) -> i32x8 = wide::bytemuck::cast(v);
        from_bits(v: i32x8) -> f32x8 = wide::bytemuck::cast(v);
        trunc(v: f32x8) -> i32x8 = v.fast_trunc_int();
        to_f32(v: i32x8) -> f32x8 = f32x8::from_i32x8(v);

        splat_i(v: i32) -> i32x8 = i32x8::splat(v);
        from_array_i(a: [i32; 8]) -> i32x8 = i32x8::new(a);
        to_array_i(v: i32x8) -> [i32; 8] = v.to_array();
        add_i(a: i32x8, b: i32x8) -> i32x8 = a + b;
        sub_i(a: i32x8, b: i32x8) -> i32x8 = a - b;
        and_i(a: i32x8, b: i32x8) -> i32x8 = a & b;
        or_i(a: i32x8, b: i32x8) -> i32x8 = a | b;
        max_i(a: i32x8, b: i32x8) -> i32x8 = a.max(b);
        min_i(a: i32x8, b: i32x8) -> i32x8 = a.min(b);
        eq_i(a: i32x8, b: i32x8) -> i32x8 = a.simd_eq(b);
        from_bytes(b: [u8; 8]) -> i32x8 = i32x8::new(b.map(i32::from));
        low_bytes(a: i32x8, b: i32x8) -> [u8; 16] =
            u8x16::narrow_i16x8(i16x8::from_i32x8_saturate(a), i16x8::from_i32x8_saturate(b)).to_array();
        f16_bits(v: f32) -> u16 = half::f16::from_f32(v).to_bits();
        // No one-instruction lane permute on SSE2: kernels take another method (FAST_PERMUTE).
        permute(table: f32x8, idx: i32x8) -> f32x8 = {
            let (t, i) = (table.to_array(), idx.to_array());
            let mut out = [0f32; 8];
            for (o, &k) in out.iter_mut().zip(&i) {
                *o = t[(k & 7) as usize];
            }
            f32x8::new(out)
        };
    }

    const FAST_PERMUTE: bool = false;

    #[inline(always)]
    fn load_columns<const D: usize>(base: &[f32], starts: [usize; 8]) -> [f32x8; D] {
        super::columns_by_lane::<Self, D>(base, starts)
    }

    #[inline(always)]
    fn shl_i<const N: i32>(a: i32x8) -> i32x8 {
        a << N
    }
}
