//! The codes of the 32-value legacy blocks (Q4_0, Q5_0: [`Symmetric`]; Q4_1, Q5_1:
//! [`Offset`]), as ggml's `quantize_row_*_ref` computes them, and their fast path: a block as
//! four 8-lane vectors of [`super::lanes`] (the baseline's, or AVX2's when the CPU has it).
//! The scans keep ggml's "first element wins" results (the sign of a zero) by finding the
//! extreme value side by side, then taking the first element equal to it. The vectors run
//! only when every value, the scale and its reciprocal are finite: then every code lies in
//! the code range, where C's `(int8_t)` cast, the vector one and a clamp before truncating
//! all agree on every platform. Otherwise (NaN, inf, overflowing reciprocals) the scalar path
//! runs. Tests compare both paths on adversarial blocks.

use super::c_cast_u8;
use super::lanes::{Isa, Portable, F8, I8, M8};

/// d = max / −half (max: the first element of largest magnitude), codes
/// `MIN(top, (int8_t)(x/d + half + 0.5))`: Q4_0 (8, 15) and Q5_0 (16, 31).
pub(crate) struct Symmetric {
    pub half: f32,
    pub top: i8,
}

impl Symmetric {
    /// (d, codes) by ggml's scalar loops.
    pub(crate) fn reference(&self, x: &[f32]) -> (f32, [u8; BLOCK]) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in &x[..BLOCK] {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let (d, id) = reciprocal(max / -self.half);
        // C's (int8_t) cast, not Rust's saturating one: they differ when 1/d overflows.
        (d, std::array::from_fn(|j| (c_cast_u8(x[j] * id + (self.half + 0.5)) as i8).min(self.top) as u8))
    }

    /// [`Self::reference`]'s result through the vectors.
    #[inline(always)]
    pub(crate) fn fast<S: Isa>(&self, x: &[f32]) -> (f32, Packed) {
        let v = load::<S>(x);
        // (`if`, not `bool::then`: that closure was not inlined into the AVX2 copy.)
        let codes = if all_finite(&v) {
            let (d, id) = reciprocal(first_abs_max(x, &v) / -self.half);
            truncated_codes(&v, None, (d, id), self.half + 0.5, self.top).map(|q| (d, q))
        } else {
            None
        };
        match codes {
            Some((d, q)) => (d, Packed::of_lanes(&q)),
            None => {
                let (d, q) = self.reference(x);
                (d, Packed::of_codes(&q))
            }
        }
    }
}

impl Symmetric {
    /// [`Self::fast`] of the 8 blocks of `x` (256 values), into `block(k, d, codes)`: each
    /// block's extremes and finiteness by [`per_block`], d and 1/d as vector divisions (the
    /// scalar IEEE results); ties in magnitude and non-finite blocks take [`Self::fast`].
    #[inline(always)]
    pub(crate) fn fast_group<S: Isa>(&self, x: &[f32], mut block: impl FnMut(usize, f32, &Packed)) {
        let amax_bits = magnitude_bits::<S>(x).to_array();
        // As `extremes(v, 0, 0)`: from zero; exact for finite blocks in any order.
        let lo = per_block::<S>(x, |v| v.iter().fold(F8::zero(), |a, &vi| vi.fast_min(a)), F8::fast_min);
        let hi = per_block::<S>(x, |v| v.iter().fold(F8::zero(), |a, &vi| vi.fast_max(a)), F8::fast_max);
        let minus_lo = F8::zero() - lo;
        let max = hi.gt(minus_lo).select(hi, lo);
        let d = max / F8::splat(-self.half);
        let tie = hi.eq(minus_lo).bitmask();
        let (d, id) = (d.to_array(), reciprocals(d).to_array());
        for (k, xb) in x.chunks_exact(BLOCK).enumerate() {
            let simple = amax_bits[k] < 0x7F80_0000 && tie & (1 << k) == 0;
            let codes = if simple {
                truncated_codes(&load::<S>(xb), None, (d[k], id[k]), self.half + 0.5, self.top)
            } else {
                None
            };
            match codes {
                Some(q) => block(k, d[k], &Packed::of_lanes(&q)),
                None => {
                    let (d, p) = self.fast::<S>(xb);
                    block(k, d, &p);
                }
            }
        }
    }
}

/// d = (max − min) / levels, m = min, codes `MIN(top, (int8_t)((x − min)/d + 0.5))`: Q4_1
/// (15, 15) and Q5_1 (31; C's `(uint8_t)` cast has no clamp, and `i8::MAX` leaves every
/// code as it is).
pub(crate) struct Offset {
    pub levels: f32,
    pub top: i8,
}

impl Offset {
    /// (d, min, codes) by ggml's scalar loops.
    pub(crate) fn reference(&self, x: &[f32]) -> (f32, f32, [u8; BLOCK]) {
        let (mut min, mut max) = (f32::MAX, -f32::MAX);
        for &v in &x[..BLOCK] {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let (d, id) = reciprocal((max - min) / self.levels);
        (d, min, std::array::from_fn(|j| (c_cast_u8((x[j] - min) * id + 0.5) as i8).min(self.top) as u8))
    }

    /// [`Self::reference`]'s result through the vectors.
    #[inline(always)]
    pub(crate) fn fast<S: Isa>(&self, x: &[f32]) -> (f32, f32, Packed) {
        let v = load::<S>(x);
        let codes = if all_finite(&v) {
            let (min, max) = first_min_max(x, &v);
            let (d, id) = reciprocal((max - min) / self.levels);
            truncated_codes(&v, Some(min), (d, id), 0.5, self.top).map(|q| (d, min, q))
        } else {
            None
        };
        match codes {
            Some((d, min, q)) => (d, min, Packed::of_lanes(&q)),
            None => {
                let (d, m, q) = self.reference(x);
                (d, m, Packed::of_codes(&q))
            }
        }
    }
}

impl Offset {
    /// [`Self::fast`] of the 8 blocks of `x` (256 values), into `block(k, d, min, codes)`:
    /// extremes and finiteness by [`per_block`], d and 1/d as vector operations (the scalar
    /// IEEE results); blocks with a zero extreme (its sign comes from the block) or a
    /// non-finite value take [`Self::fast`].
    #[inline(always)]
    pub(crate) fn fast_group<S: Isa>(&self, x: &[f32], mut block: impl FnMut(usize, f32, f32, &Packed)) {
        let amax_bits = magnitude_bits::<S>(x).to_array();
        // As `extremes(v, f32::MAX, -f32::MAX)`; exact for finite blocks in any order.
        let fold_lo = |v: &Block<S>| v.iter().fold(F8::splat(f32::MAX), |a, &vi| vi.fast_min(a));
        let fold_hi = |v: &Block<S>| v.iter().fold(F8::splat(-f32::MAX), |a, &vi| vi.fast_max(a));
        let lo = per_block::<S>(x, fold_lo, F8::fast_min);
        let hi = per_block::<S>(x, fold_hi, F8::fast_max);
        let zero = (lo.eq(F8::zero()) | hi.eq(F8::zero())).bitmask();
        let d = (hi - lo) / F8::splat(self.levels);
        let (lo, d, id) = (lo.to_array(), d.to_array(), reciprocals(d).to_array());
        for (k, xb) in x.chunks_exact(BLOCK).enumerate() {
            let simple = amax_bits[k] < 0x7F80_0000 && zero & (1 << k) == 0;
            let codes =
                if simple { truncated_codes(&load::<S>(xb), Some(lo[k]), (d[k], id[k]), 0.5, self.top) } else { None };
            match codes {
                Some(q) => block(k, d[k], lo[k], &Packed::of_lanes(&q)),
                None => {
                    let (d, m, p) = self.fast::<S>(xb);
                    block(k, d, m, &p);
                }
            }
        }
    }
}

/// d and the reciprocal the codes use (0 for d = 0).
#[inline(always)]
fn reciprocal(d: f32) -> (f32, f32) {
    (d, if d != 0.0 { 1.0 / d } else { 0.0 })
}

/// Values per block.
pub(crate) const BLOCK: usize = 32;

/// One block as four vectors: lane k of vector i is element 8i + k.
pub(crate) type Block<S> = [F8<S>; 4];

#[inline(always)]
fn load<S: Isa>(x: &[f32]) -> Block<S> {
    // Loops, not `array::from_fn`: its closure is not inlined into the AVX2 copy.
    let mut v = [F8::zero(); 4];
    for (i, vi) in v.iter_mut().enumerate() {
        *vi = F8::load(&x[8 * i..]);
    }
    v
}

/// The first element whose `key` equals `m` (the lanes' equality masks as one bit mask).
#[inline(always)]
fn first_equal<S: Isa>(x: &[f32], v: &Block<S>, m: f32, key: impl Fn(F8<S>) -> F8<S>) -> Option<f32> {
    let m = F8::splat(m);
    let mask = v.iter().enumerate().fold(0u32, |acc, (i, &vi)| acc | key(vi).eq(m).bitmask() << (8 * i));
    (mask != 0).then(|| x[mask.trailing_zeros() as usize])
}

/// `max` of ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` scan from 0: the
/// largest or the smallest element, whichever is larger in magnitude; when both are
/// (`a` and `-a`), the first of them.
#[inline(always)]
fn first_abs_max<S: Isa>(x: &[f32], v: &Block<S>) -> f32 {
    let (lo, hi) = extremes(v, 0.0, 0.0);
    if hi == -lo {
        // Rare (a tie, or an all-zero block): worth a branch.
        return if hi == 0.0 { 0.0 } else { first_equal(x, v, hi, F8::abs).unwrap_or(0.0) };
    }
    // Which side wins is data-dependent: a select, not a branch.
    let hi_wins = hi > -lo;
    f32::from_bits(if hi_wins { hi.to_bits() } else { lo.to_bits() })
}

/// `(min, max)` of ggml's `if (v < min) min = v; if (v > max) max = v;` scan from
/// `(FLT_MAX, -FLT_MAX)`. Only a zero can compare equal to another element of other bits,
/// so only then is the first one looked up.
#[inline(always)]
fn first_min_max<S: Isa>(x: &[f32], v: &Block<S>) -> (f32, f32) {
    let (min, max) = extremes(v, f32::MAX, -f32::MAX);
    let first = |m: f32| if m == 0.0 { first_equal(x, v, m, |vi| vi).unwrap_or(m) } else { m };
    (first(min), first(max))
}

/// Whether every element is finite (|x| < inf fails for inf and NaN); the fast paths leave
/// other blocks to the scalar code.
#[inline(always)]
fn all_finite<S: Isa>(v: &Block<S>) -> bool {
    let inf = F8::splat(f32::INFINITY);
    v.iter().fold(M8::all_true(), |all, &vi| all & vi.abs().lt(inf)).all()
}

/// The smallest and largest values of a NaN-free block and of the starting values. The
/// platforms' min/max instructions agree there except on the sign of a zero, which the
/// callers take from the block itself.
#[inline(always)]
fn extremes<S: Isa>(v: &Block<S>, lo0: f32, hi0: f32) -> (f32, f32) {
    let (mut lo, mut hi) = (F8::splat(lo0), F8::splat(hi0));
    for &vi in v {
        lo = vi.fast_min(lo);
        hi = vi.fast_max(hi);
    }
    let min = lo.to_array().into_iter().fold(lo0, |a, b| if b < a { b } else { a });
    let max = hi.to_array().into_iter().fold(hi0, |a, b| if b > a { b } else { a });
    (min, max)
}

/// C's `MIN(top, (int8_t)((x - offset) * id + add))` for a block of finite values, lane k
/// of vector i the code of element 8i + k, or `None` when the scale or its reciprocal is not
/// finite (the scalar path handles the NaN codes and C's overflowing casts there).
#[inline(always)]
fn truncated_codes<S: Isa>(
    v: &Block<S>,
    offset: Option<f32>,
    (d, id): (f32, f32),
    add: f32,
    top: i8,
) -> Option<[I8<S>; 4]> {
    if !d.is_finite() || !id.is_finite() {
        return None;
    }
    let (idv, addv, topv) = (F8::splat(id), F8::splat(add), F8::splat(top as f32));
    let mut codes = [I8::zero(); 4];
    for (c, &vi) in codes.iter_mut().zip(v) {
        let shifted = match offset {
            Some(m) => vi - F8::splat(m),
            None => vi,
        };
        // With finite values, scale and reciprocal every value lies in [0, 2·top], so C's
        // `(int8_t)` of the i32 is the i32 itself, and clamping to the integer `top` before
        // truncating is the same as after.
        *c = (shifted * idv + addv).fast_min(topv).trunc();
    }
    Some(codes)
}

/// A block's codes as the legacy types store them: the low nibbles of codes j and j + 16
/// in byte j (low, high), bit 4 of code j in bit j of `high` (Q5_0/Q5_1's `qh`).
pub(crate) struct Packed {
    pub nibbles: [u8; BLOCK / 2],
    pub high: u32,
}

impl Packed {
    /// From codes, one loop per field.
    pub(crate) fn of_codes(q: &[u8; BLOCK]) -> Packed {
        let nibbles = std::array::from_fn(|j| (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
        let high = q.iter().enumerate().fold(0u32, |h, (j, &c)| h | (((c >> 4) & 1) as u32) << j);
        Packed { nibbles, high }
    }

    /// From codes in 0..=255 as [`truncated_codes`] leaves them: nibble pairs narrowed to
    /// bytes, bit 4 of each lane moved to the sign bit and gathered as a mask.
    #[inline(always)]
    fn of_lanes<S: Isa>(c: &[I8<S>; 4]) -> Packed {
        let low = I8::splat(0x0F);
        let pair = |a: I8<S>, b: I8<S>| (a & low) | (b & low).shl::<4>();
        let nibbles = pair(c[0], c[2]).low_bytes(pair(c[1], c[3]));
        let high = c.iter().enumerate().fold(0u32, |h, (i, &ci)| h | ci.shl::<27>().sign_bits() << (8 * i));
        Packed { nibbles, high }
    }
}

/// Q4_1/Q5_1 with importance weights: per block of 32, `make_qkx3_quants(nmax)` weighted
/// by `w`; calls `block(i, d, offset, codes)` for each block i in order. Eight blocks run
/// side by side ([`super::qkx2_lanes`]) unless the reference kernels are asked for.
pub(crate) fn weighted_offset_blocks(
    nmax: i32,
    row: &[f32],
    w: &[f32],
    mut block: impl FnMut(usize, f32, f32, &[u8; BLOCK]),
) {
    use super::kquant::{make_qkx2_quants, Search};
    let search = Search::WEIGHTED;
    let lanes = if super::reference_kernels() { 0 } else { row.len() / (8 * BLOCK) * 8 * BLOCK };
    for (g, (x, wg)) in row[..lanes].chunks_exact(8 * BLOCK).zip(w.chunks_exact(8 * BLOCK)).enumerate() {
        let mut l = [0u8; 8 * BLOCK];
        let fit = super::qkx2_lanes::make_qkx2_quants_x8::<BLOCK>(nmax, x, wg, search, &mut l);
        for (k, codes) in l.chunks_exact(BLOCK).enumerate() {
            block(8 * g + k, fit.scales[k], -fit.mins[k], codes.try_into().expect("a block"));
        }
    }
    for (i, (x, wb)) in row.chunks_exact(BLOCK).zip(w.chunks_exact(BLOCK)).enumerate().skip(lanes / BLOCK) {
        let mut l = [0u8; BLOCK];
        let (d, the_min) = make_qkx2_quants(nmax, x, wb, &mut l, search);
        block(i, d, -the_min, &l);
    }
}

/// Blocks a [`FastBlock::quantize_group`] call encodes.
pub(crate) const GROUP: usize = 8;

/// A block type with a fast block quantizer (a trait, so the AVX2 copy of the loop inlines it).
pub(crate) trait FastBlock {
    const BYTES: usize;
    fn quantize<S: Isa>(x: &[f32], out: &mut [u8]);

    /// [`GROUP`] consecutive blocks (`x`: 256 values), as [`Self::quantize`] encodes each.
    #[inline(always)]
    fn quantize_group<S: Isa>(x: &[f32], out: &mut [u8]) {
        for (xb, o) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(Self::BYTES)) {
            Self::quantize::<S>(xb, o);
        }
    }
}

/// Per block of a group, lane k: the largest |x| of block k as bits (|x| as bits orders
/// like |x|; any NaN shows as bits above +inf's).
#[inline(always)]
pub(crate) fn magnitude_bits<S: Isa>(x: &[f32]) -> I8<S> {
    let magnitude = I8::<S>::splat(0x7FFF_FFFF);
    per_block::<S>(
        x,
        |v| {
            let m = (v[0].to_bits() & magnitude).max(v[1].to_bits() & magnitude);
            m.max((v[2].to_bits() & magnitude).max(v[3].to_bits() & magnitude)).bits_as_f32()
        },
        |a, b| a.to_bits().max(b.to_bits()).bits_as_f32(),
    )
    .to_bits()
}

/// Lane by lane, [`reciprocal`]'s 1/d (0 for d = 0).
#[inline(always)]
pub(crate) fn reciprocals<S: Isa>(d: F8<S>) -> F8<S> {
    d.eq(F8::zero()).select(F8::zero(), F8::splat(1.0) / d)
}

/// A reduction over each block of a group, side by side: lane k is `fold` over the lanes of
/// `part(block k)` (the block's 32 values reduced to 8 lanes), the lanes taken in order. One
/// transposition of the 8 partial vectors instead of 8 reductions across lanes.
#[inline(always)]
pub(crate) fn per_block<S: Isa>(
    x: &[f32],
    part: impl Fn(&Block<S>) -> F8<S>,
    fold: impl Fn(F8<S>, F8<S>) -> F8<S>,
) -> F8<S> {
    let mut parts = [0f32; 8 * GROUP];
    for (k, p) in parts.chunks_exact_mut(8).enumerate() {
        p.copy_from_slice(&part(&load::<S>(&x[BLOCK * k..])).to_array());
    }
    let mut starts = [0; GROUP];
    for (k, s) in starts.iter_mut().enumerate() {
        *s = 8 * k;
    }
    let lanes = F8::<S>::columns::<8>(&parts, starts);
    let mut acc = lanes[0];
    for &l in &lanes[1..] {
        acc = fold(acc, l);
    }
    acc
}

/// The largest block of these types.
const MAX_BYTES: usize = super::q8_0::BYTES;

/// Encodes whole blocks of `src` with `T`'s fast quantizer, appending to `out`; compiled for
/// AVX2, and for AVX2 with AVX-512's registers, when the CPU has them (the latter measured
/// 10–30 % faster per thread on an AMD EPYC, Q8_0 the most).
pub(crate) fn encode_blocks<T: FastBlock>(src: &[f32], out: &mut Vec<u8>) {
    out.reserve(src.len() / BLOCK * T::BYTES);
    #[cfg(target_arch = "x86_64")]
    match super::simd_level() {
        // SAFETY: the CPU has the features of the level (runtime-detected).
        super::SimdLevel::Avx512 => return unsafe { blocks_avx512::<T>(src, out) },
        super::SimdLevel::Avx2 => return unsafe { blocks_avx2::<T>(src, out) },
        super::SimdLevel::Baseline => {}
    }
    blocks::<Portable, T>(src, out)
}

/// The AVX2 kernel with AVX-512 enabled: the same 256-bit operations, 32 registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c,avx512f,avx512vl,avx512bw,avx512dq")]
unsafe fn blocks_avx512<T: FastBlock>(src: &[f32], out: &mut Vec<u8>) {
    blocks::<super::lanes::Avx2, T>(src, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn blocks_avx2<T: FastBlock>(src: &[f32], out: &mut Vec<u8>) {
    blocks::<super::lanes::Avx2, T>(src, out)
}

/// Each group is encoded on the stack and appended: the output is written once, not
/// zeroed first (zeroing was 3–4 % of a q4_k_m conversion's CPU time).
#[inline(always)]
fn blocks<S: Isa, T: FastBlock>(src: &[f32], out: &mut Vec<u8>) {
    const { assert!(T::BYTES <= MAX_BYTES) };
    let mut stage = [0u8; GROUP * MAX_BYTES];
    let groups = src.len() / (GROUP * BLOCK);
    let (src_g, src_t) = src.split_at(groups * GROUP * BLOCK);
    let group_bytes = &mut stage[..GROUP * T::BYTES];
    for x in src_g.chunks_exact(GROUP * BLOCK) {
        T::quantize_group::<S>(x, group_bytes);
        out.extend_from_slice(group_bytes);
    }
    let block_bytes = &mut stage[..T::BYTES];
    for x in src_t.chunks_exact(BLOCK) {
        T::quantize::<S>(x, block_bytes);
        out.extend_from_slice(block_bytes);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// Blocks that probe the scans and the casts: zeros of both signs, ties in magnitude,
    /// NaN and inf, denormals (whose scale's reciprocal overflows), huge ranges.
    pub(crate) fn adversarial_blocks() -> Vec<[f32; 32]> {
        let mut blocks = vec![[0.0f32; 32], [-0.0; 32], [1.0; 32], [-3.5; 32]];
        let mut values = crate::quant::test_values(0x2545_f491_4f6c_dd1d);
        let mut next = move || 2.0 * values();
        for scale in [1.0f32, 1e-3, 3e4, 1e-39, 1e-44, 1e38] {
            blocks.push(std::array::from_fn(|_| next() * scale));
        }
        let mut b = [0.0f32; 32];
        b[5] = -0.0;
        b[20] = 0.0;
        blocks.push(b);
        let mut b: [f32; 32] = std::array::from_fn(|_| next());
        b[3] = 2.0;
        b[17] = -2.0;
        b[30] = 2.0;
        blocks.push(b);
        for special in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -f32::MAX] {
            let mut b: [f32; 32] = std::array::from_fn(|_| next());
            b[9] = special;
            blocks.push(b);
            blocks.push([special; 32]);
        }
        // A zero as the min (or max) of the block, its two signs in either order: the
        // first one's sign is the block's.
        for (sign, (i, j)) in [(1.0f32, (0, 31)), (1.0, (31, 0)), (-1.0, (2, 30)), (-1.0, (30, 2))] {
            let mut b: [f32; 32] = std::array::from_fn(|_| sign * next().abs());
            b[i] = -0.0;
            b[j] = 0.0;
            blocks.push(b);
        }
        let mut b = [-0.0f32; 32];
        b[11] = f32::NAN;
        blocks.push(b);
        let mut b = [1e-40f32; 32];
        b[0] = -1e-40;
        blocks.push(b);
        // Finite values whose range overflows: Q4_1's d is inf, its reciprocal 0.
        let mut b: [f32; 32] = std::array::from_fn(|_| next());
        b[3] = f32::MAX;
        b[20] = -f32::MAX;
        blocks.push(b);
        blocks
    }

    use super::super::{q4_0, q4_1, q5_0, q5_1, q8_0};
    use super::FastBlock;

    /// The fast paths (baseline and, where the CPU has them, AVX2 and AVX-512) against
    /// `reference`.
    fn check<T: FastBlock>(name: &str, reference: fn(&[f32], &mut [u8])) {
        // Every block in every lane of a group: the list rotated by 0..8.
        let base = adversarial_blocks();
        for r in 0..super::GROUP {
            let mut blocks = base.clone();
            blocks.rotate_left(r);
            check_blocks::<T>(&format!("{name} (rotated {r})"), reference, &blocks);
        }
    }

    fn check_blocks<T: FastBlock>(name: &str, reference: fn(&[f32], &mut [u8]), blocks: &[[f32; 32]]) {
        let src: Vec<f32> = blocks.iter().flatten().copied().collect();
        let mut want = vec![0u8; blocks.len() * T::BYTES];
        for (x, o) in src.chunks_exact(super::BLOCK).zip(want.chunks_exact_mut(T::BYTES)) {
            reference(x, o);
        }
        // Appended after what the output already holds.
        let prefix = [0xA5u8; 3];
        let mut got = prefix.to_vec();
        super::blocks::<super::Portable, T>(&src, &mut got);
        assert_eq!(got.len(), prefix.len() + want.len(), "{name}: baseline path's length");
        assert_eq!(got[..3], prefix, "{name}: baseline path");
        for (i, (g, w)) in got[3..].chunks_exact(T::BYTES).zip(want.chunks_exact(T::BYTES)).enumerate() {
            assert_eq!(g, w, "{name}: baseline path, block {i} {:?}", blocks[i]);
        }
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx2() {
            got.truncate(prefix.len());
            // SAFETY: the CPU has AVX2 and F16C.
            unsafe { super::blocks_avx2::<T>(&src, &mut got) };
            assert_eq!(got[3..], want, "{name}: AVX2 path");
        }
        #[cfg(target_arch = "x86_64")]
        if crate::quant::cpu_has_avx512() {
            got.truncate(prefix.len());
            // SAFETY: the CPU has AVX2, F16C and AVX-512 F/VL/BW/DQ.
            unsafe { super::blocks_avx512::<T>(&src, &mut got) };
            assert_eq!(got[3..], want, "{name}: AVX-512 path");
        }
    }

    /// A row of 11 blocks: 8 side by side, 3 one at a time, each as the scalar fit.
    #[test]
    fn weighted_offset_blocks_are_the_scalar_fits_on_a_ragged_row() {
        use crate::quant::kquant::{make_qkx2_quants, Search};
        let mut next = crate::quant::test_values(9);
        let row: Vec<f32> = (0..32 * 11).map(|_| next()).collect();
        let w: Vec<f32> = (0..row.len()).map(|i| if i % 5 == 0 { 0.0 } else { next().abs() }).collect();
        for nmax in [15, 31] {
            let mut got = Vec::new();
            super::weighted_offset_blocks(nmax, &row, &w, |i, d, m, l| got.push((i, d.to_bits(), m.to_bits(), *l)));
            let want: Vec<_> = (0..11)
                .map(|i| {
                    let (r, mut l) = (32 * i..32 * i + 32, [0u8; 32]);
                    let (d, the_min) = make_qkx2_quants(nmax, &row[r.clone()], &w[r], &mut l, Search::WEIGHTED);
                    (i, d.to_bits(), (-the_min).to_bits(), l)
                })
                .collect();
            assert_eq!(got, want, "nmax {nmax}");
        }
    }

    #[test]
    fn every_path_writes_the_reference_bytes() {
        check::<q4_0::Fast>("q4_0", q4_0::quantize_block);
        check::<q4_1::Fast>("q4_1", q4_1::quantize_block);
        check::<q5_0::Fast>("q5_0", q5_0::quantize_block);
        check::<q5_1::Fast>("q5_1", q5_1::quantize_block);
        check::<q8_0::Fast>("q8_0", q8_0::quantize_block);
    }
}
