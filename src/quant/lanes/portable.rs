//! [`Portable`]: each operation is the `wide` crate's (SSE2 on x86-64, NEON on arm64), except
//! the lane permutes, which are NEON's `tbl` byte lookups on arm64.

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
        permute(table: f32x8, idx: i32x8) -> f32x8 = permute8(table, idx);
    }

    // NEON's byte table lookup reads two registers at once; SSE2 has no lane permute.
    const FAST_PERMUTE: bool = cfg!(target_arch = "aarch64");
    const FAST_PERMUTE16: bool = cfg!(target_arch = "aarch64");

    #[inline(always)]
    fn load_columns<const D: usize>(base: &[f32], starts: [usize; 8]) -> [f32x8; D] {
        super::columns_by_lane::<Self, D>(base, starts)
    }

    #[inline(always)]
    fn shl_i<const N: i32>(a: i32x8) -> i32x8 {
        a << N
    }

    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    fn permute16(low: f32x8, high: f32x8, idx: i32x8) -> f32x8 {
        permute16_neon(low, high, idx)
    }
}

/// Lane k is `table[idx[k] & 7]`, one lane at a time (no lane permute on SSE2).
#[cfg(not(target_arch = "aarch64"))]
#[inline(always)]
fn permute8(table: f32x8, idx: i32x8) -> f32x8 {
    let (t, i) = (table.to_array(), idx.to_array());
    let mut out = [0f32; 8];
    for (o, &k) in out.iter_mut().zip(&i) {
        *o = t[(k & 7) as usize];
    }
    f32x8::new(out)
}

/// Lane k is `table[idx[k] & 7]`: per half, one `tbl` over the table's 32 bytes.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn permute8(table: f32x8, idx: i32x8) -> f32x8 {
    use std::arch::aarch64::{uint8x16x2_t, vld1q_u8, vqtbl2q_u8};
    let t: [u8; 32] = wide::bytemuck::cast(table);
    // SAFETY: NEON is part of arm64's baseline; each load covers 16 bytes inside the array.
    lookup_neon(idx, 7, |picks| unsafe {
        vqtbl2q_u8(uint8x16x2_t(vld1q_u8(t.as_ptr()), vld1q_u8(t.as_ptr().add(16))), picks)
    })
}

/// Lane k is entry `idx[k] & 15` of `low` then `high`: per half, one `tbl` over 64 bytes.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn permute16_neon(low: f32x8, high: f32x8, idx: i32x8) -> f32x8 {
    use std::arch::aarch64::{uint8x16x4_t, vld1q_u8, vqtbl4q_u8};
    let (l, h): ([u8; 32], [u8; 32]) = (wide::bytemuck::cast(low), wide::bytemuck::cast(high));
    // SAFETY: as in `permute8`.
    lookup_neon(idx, 15, |picks| unsafe {
        let table = uint8x16x4_t(
            vld1q_u8(l.as_ptr()),
            vld1q_u8(l.as_ptr().add(16)),
            vld1q_u8(h.as_ptr()),
            vld1q_u8(h.as_ptr().add(16)),
        );
        vqtbl4q_u8(table, picks)
    })
}

/// Per half of `idx`, `tbl` applied to the byte indices 4·i, …, 4·i + 3 of each lane's
/// `i = idx & mask` (one multiply-add makes them).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn lookup_neon(
    idx: i32x8,
    mask: u32,
    tbl: impl Fn(std::arch::aarch64::uint8x16_t) -> std::arch::aarch64::uint8x16_t,
) -> f32x8 {
    use std::arch::aarch64::{vandq_u32, vdupq_n_u32, vld1q_u32, vmlaq_u32, vreinterpretq_u8_u32, vst1q_u8};
    let i: [u32; 8] = wide::bytemuck::cast(idx);
    let mut out = [0u8; 32];
    for half in 0..2 {
        // SAFETY: NEON is part of arm64's baseline; each load and store covers 16 bytes
        // inside its 32-byte array.
        unsafe {
            let lane = vandq_u32(vld1q_u32(i.as_ptr().add(4 * half)), vdupq_n_u32(mask));
            let picks = vmlaq_u32(vdupq_n_u32(0x0302_0100), lane, vdupq_n_u32(0x0404_0404));
            vst1q_u8(out.as_mut_ptr().add(16 * half), tbl(vreinterpretq_u8_u32(picks)));
        }
    }
    wide::bytemuck::cast(out)
}
