//! 8-lane vectors for the side-by-side searches, over an instruction set chosen at run time.
//! A kernel is written once, generic over [`Isa`], and compiled twice on x86-64: for the
//! baseline ([`Portable`]: the `wide` crate's vectors, SSE2 there and NEON on arm64, both
//! 128-bit) and, called only after AVX2 is detected, for [`Avx2`] (one 256-bit register
//! per vector). `wide` alone picks its instruction set when the crate is compiled, so an
//! AVX2 copy of a kernel over `wide` still ran two SSE halves per vector (1.1–1.9× slower
//! than this, measured per encoder).
//!
//! Every operation means the same on both: IEEE single operations lane by lane, compares
//! giving −1 (all bits) or 0 masks, `fast_min(a, b)` = `a < b ? a : b` (x86's `minps`).
//! Tests run every kernel on both.

use std::marker::PhantomData;
use std::ops::{Add, AddAssign, BitAnd, BitAndAssign, BitOr, BitOrAssign, Div, Mul, Neg, Not, Sub};

/// One instruction set's 8-lane operations. Implementations are zero-sized markers.
pub(crate) trait Isa: Copy + 'static {
    type F: Copy;
    type I: Copy;
    fn splat(v: f32) -> Self::F;
    fn from_array(a: [f32; 8]) -> Self::F;
    fn to_array(v: Self::F) -> [f32; 8];
    fn add(a: Self::F, b: Self::F) -> Self::F;
    fn sub(a: Self::F, b: Self::F) -> Self::F;
    fn mul(a: Self::F, b: Self::F) -> Self::F;
    fn div(a: Self::F, b: Self::F) -> Self::F;
    fn and(a: Self::F, b: Self::F) -> Self::F;
    fn or(a: Self::F, b: Self::F) -> Self::F;
    fn xor(a: Self::F, b: Self::F) -> Self::F;
    /// `a < b ? a : b`.
    fn fast_min(a: Self::F, b: Self::F) -> Self::F;
    /// `a > b ? a : b`.
    fn fast_max(a: Self::F, b: Self::F) -> Self::F;
    fn gt(a: Self::F, b: Self::F) -> Self::F;
    fn ge(a: Self::F, b: Self::F) -> Self::F;
    fn lt(a: Self::F, b: Self::F) -> Self::F;
    fn eq(a: Self::F, b: Self::F) -> Self::F;
    /// `a != a`: true for NaN lanes.
    fn unordered(a: Self::F) -> Self::F;
    /// `mask ? yes : no`, the mask all ones or all zeros per lane.
    fn select(mask: Self::F, yes: Self::F, no: Self::F) -> Self::F;
    /// Bit k is lane k's sign bit.
    fn sign_bits(v: Self::F) -> u32;
    fn to_bits(v: Self::F) -> Self::I;
    fn from_bits(v: Self::I) -> Self::F;
    /// Truncation toward zero; lanes outside i32 (and NaN) give `i32::MIN`.
    fn trunc(v: Self::F) -> Self::I;
    fn to_f32(v: Self::I) -> Self::F;

    fn splat_i(v: i32) -> Self::I;
    fn from_array_i(a: [i32; 8]) -> Self::I;
    fn to_array_i(v: Self::I) -> [i32; 8];
    fn add_i(a: Self::I, b: Self::I) -> Self::I;
    fn sub_i(a: Self::I, b: Self::I) -> Self::I;
    fn and_i(a: Self::I, b: Self::I) -> Self::I;
    fn or_i(a: Self::I, b: Self::I) -> Self::I;
    fn shl_i<const N: i32>(a: Self::I) -> Self::I;
    fn max_i(a: Self::I, b: Self::I) -> Self::I;
    fn min_i(a: Self::I, b: Self::I) -> Self::I;
    fn eq_i(a: Self::I, b: Self::I) -> Self::I;
    /// The low bytes of `(a, b)`'s lanes (each 0..=255), a's first.
    fn low_bytes(a: Self::I, b: Self::I) -> [u8; 16];
    /// Lane k is byte k of `b` (zero-extended).
    fn from_bytes(b: [u8; 8]) -> Self::I;

    /// `v` rounded to IEEE half precision (nearest, ties to even), as bits.
    fn f16_bits(v: f32) -> u16;

    /// `D` consecutive values from each of 8 places of `base` (`starts`), as D vectors: lane k
    /// of vector i is `base[starts[k] + i]` (a transposition; panics when out of range).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn load_columns<const D: usize>(base: &[f32], starts: [usize; 8]) -> [Self::F; D];

    /// Whether [`Isa::permute`] is one instruction (else kernels pick another method).
    const FAST_PERMUTE: bool;
    /// Lane k is `table[idx[k] & 7]`.
    fn permute(table: Self::F, idx: Self::I) -> Self::F;
    /// Whether [`Isa::permute16`] is one lookup (else two permutes and a select).
    const FAST_PERMUTE16: bool = false;
    /// Lane k is entry `idx[k] & 15` of the 16 in `low` then `high`.
    #[inline(always)]
    fn permute16(low: Self::F, high: Self::F, idx: Self::I) -> Self::F {
        let eight = Self::splat_i(8);
        let upper = Self::from_bits(Self::eq_i(Self::and_i(idx, eight), eight));
        Self::select(upper, Self::permute(high, idx), Self::permute(low, idx))
    }
}

/// The target's baseline: `wide`'s vectors (SSE2 on x86-64, NEON on arm64).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable;

/// AVX2, 256-bit. Only for code inside `#[target_feature(enable = "avx2,f16c")]` functions that
/// run after AVX2 and F16C were detected (each kernel's dispatcher checks
/// [`super::simd_level`]); anywhere else its instructions may not exist.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2;

/// 8 f32 lanes.
#[derive(Clone, Copy)]
pub(crate) struct F8<S: Isa>(S::F, PhantomData<S>);

/// 8 i32 lanes.
#[derive(Clone, Copy)]
pub(crate) struct I8<S: Isa>(S::I, PhantomData<S>);

/// 8 lane conditions: all bits set where true, none where false.
#[derive(Clone, Copy)]
pub(crate) struct M8<S: Isa>(S::F, PhantomData<S>);

impl<S: Isa> F8<S> {
    #[inline(always)]
    pub fn splat(v: f32) -> Self {
        F8(S::splat(v), PhantomData)
    }

    #[inline(always)]
    pub fn zero() -> Self {
        Self::splat(0.0)
    }

    #[inline(always)]
    pub fn new(a: [f32; 8]) -> Self {
        F8(S::from_array(a), PhantomData)
    }

    /// Lanes from the first 8 values of `x`.
    #[inline(always)]
    pub fn load(x: &[f32]) -> Self {
        Self::new(x[..8].try_into().expect("8 values"))
    }

    #[inline(always)]
    pub fn to_array(self) -> [f32; 8] {
        S::to_array(self.0)
    }

    #[inline(always)]
    pub fn abs(self) -> Self {
        F8(S::and(self.0, S::splat(f32::from_bits(0x7FFF_FFFF))), PhantomData)
    }

    /// `self < b ? self : b` per lane.
    #[inline(always)]
    pub fn fast_min(self, b: Self) -> Self {
        F8(S::fast_min(self.0, b.0), PhantomData)
    }

    /// `self > b ? self : b` per lane.
    #[inline(always)]
    pub fn fast_max(self, b: Self) -> Self {
        F8(S::fast_max(self.0, b.0), PhantomData)
    }

    #[inline(always)]
    pub fn gt(self, b: Self) -> M8<S> {
        M8(S::gt(self.0, b.0), PhantomData)
    }

    #[inline(always)]
    pub fn ge(self, b: Self) -> M8<S> {
        M8(S::ge(self.0, b.0), PhantomData)
    }

    #[inline(always)]
    pub fn lt(self, b: Self) -> M8<S> {
        M8(S::lt(self.0, b.0), PhantomData)
    }

    #[inline(always)]
    pub fn eq(self, b: Self) -> M8<S> {
        M8(S::eq(self.0, b.0), PhantomData)
    }

    #[inline(always)]
    pub fn is_nan(self) -> M8<S> {
        M8(S::unordered(self.0), PhantomData)
    }

    #[inline(always)]
    pub fn to_bits(self) -> I8<S> {
        I8(S::to_bits(self.0), PhantomData)
    }

    /// `D` consecutive values from each of 8 places of `base`, as D vectors: lane k of
    /// vector i is `base[starts[k] + i]` (panics when out of range). AVX2 transposes 8 × 8
    /// and 8 × 4 blocks in registers; the baseline gathers lane by lane (a NEON transposition
    /// measured no better: its stores and reloads cost what the lane loads did). The IQ
    /// neighbour scans use it on AVX2 only (with scalar loads they are faster one candidate
    /// at a time), hence the `dead_code` allowances for other targets.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    pub fn columns<const D: usize>(base: &[f32], starts: [usize; 8]) -> [Self; D] {
        let columns = S::load_columns::<D>(base, starts);
        let mut out = [Self::zero(); D];
        for (o, &c) in out.iter_mut().zip(&columns) {
            *o = F8(c, PhantomData);
        }
        out
    }

    /// Lane k is `self[idx[k] & 7]` (one instruction where [`Isa::FAST_PERMUTE`]).
    #[inline(always)]
    pub fn permute(self, idx: I8<S>) -> Self {
        F8(S::permute(self.0, idx.0), PhantomData)
    }

    /// Lane k is entry `idx[k] & 15` of the 16 in `low` then `high`.
    #[inline(always)]
    pub fn permute16(low: Self, high: Self, idx: I8<S>) -> Self {
        F8(S::permute16(low.0, high.0, idx.0), PhantomData)
    }

    /// Truncation toward zero; lanes outside i32 (and NaN) give `i32::MIN`, as x86's
    /// `cvttps2dq` (callers keep lanes in range, where every platform agrees).
    #[inline(always)]
    pub fn trunc(self) -> I8<S> {
        I8(S::trunc(self.0), PhantomData)
    }
}

impl<S: Isa> I8<S> {
    #[inline(always)]
    pub fn splat(v: i32) -> Self {
        I8(S::splat_i(v), PhantomData)
    }

    #[inline(always)]
    pub fn zero() -> Self {
        Self::splat(0)
    }

    #[inline(always)]
    pub fn new(a: [i32; 8]) -> Self {
        I8(S::from_array_i(a), PhantomData)
    }

    #[inline(always)]
    pub fn to_array(self) -> [i32; 8] {
        S::to_array_i(self.0)
    }

    /// Lane k is byte k of `b`.
    #[inline(always)]
    pub fn from_bytes(b: [u8; 8]) -> Self {
        I8(S::from_bytes(b), PhantomData)
    }

    /// The lanes' bits read as f32 (no conversion).
    #[inline(always)]
    pub fn bits_as_f32(self) -> F8<S> {
        F8(S::from_bits(self.0), PhantomData)
    }

    #[inline(always)]
    pub fn to_f32(self) -> F8<S> {
        F8(S::to_f32(self.0), PhantomData)
    }

    #[inline(always)]
    pub fn shl<const N: i32>(self) -> Self {
        I8(S::shl_i::<N>(self.0), PhantomData)
    }

    #[inline(always)]
    pub fn max(self, b: Self) -> Self {
        I8(S::max_i(self.0, b.0), PhantomData)
    }

    #[inline(always)]
    pub fn min(self, b: Self) -> Self {
        I8(S::min_i(self.0, b.0), PhantomData)
    }

    #[inline(always)]
    pub fn eq(self, b: Self) -> M8<S> {
        M8(S::from_bits(S::eq_i(self.0, b.0)), PhantomData)
    }

    /// Bit k set where lane k is negative.
    #[inline(always)]
    pub fn sign_bits(self) -> u32 {
        S::sign_bits(S::from_bits(self.0))
    }

    /// The low bytes of `self`'s then `b`'s lanes, each in 0..=255.
    #[inline(always)]
    pub fn low_bytes(self, b: Self) -> [u8; 16] {
        S::low_bytes(self.0, b.0)
    }
}

impl<S: Isa> M8<S> {
    #[inline(always)]
    pub fn all_true() -> Self {
        M8(S::from_bits(S::splat_i(-1)), PhantomData)
    }

    #[inline(always)]
    pub fn none() -> Self {
        M8(S::splat(0.0), PhantomData)
    }

    #[inline(always)]
    pub fn select(self, yes: F8<S>, no: F8<S>) -> F8<S> {
        F8(S::select(self.0, yes.0, no.0), PhantomData)
    }

    #[inline(always)]
    pub fn select_i(self, yes: I8<S>, no: I8<S>) -> I8<S> {
        I8(S::to_bits(S::select(self.0, S::from_bits(yes.0), S::from_bits(no.0))), PhantomData)
    }

    /// `v` where true, +0.0 where false.
    #[inline(always)]
    pub fn and(self, v: F8<S>) -> F8<S> {
        F8(S::and(self.0, v.0), PhantomData)
    }

    /// −1 where true, 0 where false.
    #[inline(always)]
    pub fn to_i32(self) -> I8<S> {
        I8(S::to_bits(self.0), PhantomData)
    }

    /// Bit k set where lane k is true.
    #[inline(always)]
    pub fn bitmask(self) -> u32 {
        S::sign_bits(self.0)
    }

    #[inline(always)]
    pub fn any(self) -> bool {
        self.bitmask() != 0
    }

    #[inline(always)]
    pub fn all(self) -> bool {
        self.bitmask() == 0xFF
    }
}

macro_rules! operators {
    ($ty:ident: $($tr:ident $f:ident $isa:ident),*) => {$(
        impl<S: Isa> $tr for $ty<S> {
            type Output = Self;
            #[inline(always)]
            fn $f(self, b: Self) -> Self {
                $ty(S::$isa(self.0, b.0), PhantomData)
            }
        }
    )*};
}
operators!(F8: Add add add, Sub sub sub, Mul mul mul, Div div div);
operators!(I8: Add add add_i, Sub sub sub_i, BitAnd bitand and_i, BitOr bitor or_i);
operators!(M8: BitAnd bitand and, BitOr bitor or);

macro_rules! assignments {
    ($($ty:ident: $tr:ident $f:ident $op:tt;)*) => {$(
        impl<S: Isa> $tr for $ty<S> {
            #[inline(always)]
            fn $f(&mut self, b: Self) {
                *self = *self $op b;
            }
        }
    )*};
}
assignments! {
    F8: AddAssign add_assign +;
    I8: AddAssign add_assign +;
    M8: BitAndAssign bitand_assign &;
    M8: BitOrAssign bitor_assign |;
}

impl<S: Isa> Neg for I8<S> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Self::zero() - self
    }
}

impl<S: Isa> Not for M8<S> {
    type Output = Self;
    #[inline(always)]
    fn not(self) -> Self {
        M8(S::xor(self.0, Self::all_true().0), PhantomData)
    }
}

/// [`Isa::load_columns`] one lane at a time (for an instruction set, or a width, without a
/// transposition). Loops, not `array::map`: its closures are not inlined into AVX2 code.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn columns_by_lane<S: Isa, const D: usize>(base: &[f32], starts: [usize; 8]) -> [S::F; D] {
    let mut rows = [&base[..0]; 8];
    for (r, &s) in rows.iter_mut().zip(&starts) {
        *r = &base[s..s + D];
    }
    let mut out = [S::splat(0.0); D];
    for (i, o) in out.iter_mut().enumerate() {
        let mut lane = [0f32; 8];
        for (l, r) in lane.iter_mut().zip(&rows) {
            *l = r[i];
        }
        *o = S::from_array(lane);
    }
    out
}

/// [`super::kquant::first_max_per_group`] with the groups in lanes (`columns[j]` holds value
/// j of each group): per lane the first value of largest magnitude, or 1 where the group is
/// flat (largest |x| below `eps`), and the flat lanes.
#[inline(always)]
pub(crate) fn first_max<S: Isa>(columns: &[F8<S>], eps: f32) -> (F8<S>, M8<S>) {
    let (mut amax, mut max) = (F8::zero(), F8::zero());
    for &v in columns {
        let larger = v.abs().gt(amax);
        amax = larger.select(v.abs(), amax);
        max = larger.select(v, max);
    }
    let flat = amax.lt(F8::splat(eps));
    (flat.select(F8::splat(1.0), max), flat)
}

/// ggml's `nearest_int` of every lane (the bit trick of [`super::kquant::nearest_int`], so
/// the same bits for every input).
#[inline(always)]
pub(crate) fn nearest_int<S: Isa>(f: F8<S>) -> I8<S> {
    ((f + F8::splat(12582912.0)).to_bits() & I8::splat(0x007f_ffff)) - I8::splat(0x0040_0000)
}

#[cfg(target_arch = "x86_64")]
mod avx2;
mod portable;

#[cfg(test)]
mod tests;
