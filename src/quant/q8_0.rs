//! GGML_TYPE_Q8_0: blocks of 32 as `{ f16 d; i8 qs[32]; }` (34 bytes).
//! Reference: ggml `quantize_row_q8_0_ref`: d = amax/127, q = roundf(x/d) (half away
//! from zero), with the reciprocal taken from the unrounded f32 d.

use super::lanes::{Isa, Portable, F8};
use super::legacy_lanes::{magnitude_bits, reciprocals};
use half::f16;

use super::{c_cast_u8, round_away};

pub const BLOCK: usize = 32;
pub const BYTES: usize = 34;

/// ggml's `MAX(a, b)` macro (`a > b ? a : b`), which differs from `f32::max` on NaN.
#[inline]
pub(crate) fn c_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    quantize_block_on::<Portable>(x, out);
}

/// [`quantize_block`] with `S`'s half-precision conversion.
#[inline(always)]
fn quantize_block_on<S: Isa>(x: &[f32], out: &mut [u8]) {
    // |x| as bits orders like |x| as floats, so an integer max (which vectorizes, unlike
    // ggml's order-dependent float MAX) gives amax; any NaN shows as bits above +inf's.
    let max_bits = x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7FFF_FFFF));
    let no_nan = max_bits <= 0x7F80_0000;
    // With a NaN, ggml's MAX skips or keeps it depending on where it is: use its loop.
    let amax = if no_nan { f32::from_bits(max_bits) } else { x.iter().fold(0.0f32, |m, v| c_max(m, v.abs())) };
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&S::f16_bits(d).to_le_bytes());
    if no_nan && amax.is_finite() && id.is_finite() {
        codes_in_range(x, id, &mut out[2..BYTES]);
    } else {
        quantize_codes_ref(x, id, &mut out[2..BYTES]);
    }
}

/// The codes of a block whose every x·id lies within ±127.0001: truncation to i32 is in
/// range there and roundf is `trunc` plus a correction from the exact fraction (no libm
/// call, no branches: the loop vectorizes). Equal to the reference loop, tested below.
#[inline(always)]
fn codes_in_range(x: &[f32], id: f32, out: &mut [u8]) {
    let mut q = [0i32; BLOCK];
    for (qj, &v) in q.iter_mut().zip(x) {
        let s = v * id;
        // SAFETY: |s| <= 127.0001 here, well inside i32.
        let i: i32 = unsafe { s.to_int_unchecked() };
        let f = s - i as f32;
        *qj = i + (f >= 0.5) as i32 - (f <= -0.5) as i32;
    }
    for (o, &qj) in out.iter_mut().zip(&q) {
        *o = qj as i8 as u8;
    }
}

/// 8 blocks: their amax (as |x| bits, see [`quantize_block_on`]), d and 1/d side by side
/// (IEEE division lane by lane is the scalar one), then each block's codes; a block with a
/// NaN, an infinity or an overflowing reciprocal takes the one-block path.
#[inline(always)]
fn quantize_group_on<S: Isa>(x: &[f32], out: &mut [u8]) {
    let amax = magnitude_bits::<S>(x);
    let d = amax.bits_as_f32() / F8::splat(127.0);
    let (amax_bits, d, id) = (amax.to_array(), d.to_array(), reciprocals(d).to_array());
    for (k, (xb, o)) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BYTES)).enumerate() {
        // Below +inf's bits: no NaN, amax finite.
        if amax_bits[k] < 0x7F80_0000 && id[k].is_finite() {
            o[..2].copy_from_slice(&S::f16_bits(d[k]).to_le_bytes());
            codes_in_range(xb, id[k], &mut o[2..]);
        } else {
            quantize_block_on::<S>(xb, o);
        }
    }
}

/// The reference code loop (C's `roundf` then its implicit float → int8_t conversion,
/// which differs from Rust's saturating cast when 1/d overflows: amax below ~2^-120).
fn quantize_codes_ref(x: &[f32], id: f32, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = c_cast_u8(round_away(v * id));
    }
}
/// ggml's `q8_0` block: f16 d, 32 int8.
pub const INFO: super::TypeInfo = super::TypeInfo::known(8, "q8_0", BLOCK, BYTES).codec(encode, decode);
const _: () = assert!(BYTES == 2 + BLOCK);

/// [`quantize_block`] inlined into [`super::legacy_lanes`]' block loop, which has an AVX2
/// copy (its loops are written for the compiler to vectorize).
pub(crate) struct Fast;

impl super::legacy_lanes::FastBlock for Fast {
    const BYTES: usize = BYTES;

    #[inline(always)]
    fn quantize<S: Isa>(x: &[f32], out: &mut [u8]) {
        quantize_block_on::<S>(x, out);
    }

    #[inline(always)]
    fn quantize_group<S: Isa>(x: &[f32], out: &mut [u8]) {
        quantize_group_on::<S>(x, out);
    }
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    if super::reference_kernels() {
        super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
    } else {
        super::legacy_lanes::encode_blocks::<Fast>(src, out);
    }
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
        out.extend(b[2..].iter().map(|&q| q as i8 as f32 * d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_equals_reference_loop() {
        let mut seed = 0x1234_5678u32;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let (mut all_x, mut all_want) = (Vec::new(), Vec::new());
        for case in 0..20_000 {
            let scale = f32::from_bits(((rnd() % 60 + 97) << 23) | (rnd() & 0x7F_FFFF));
            let x: Vec<f32> = (0..32)
                .map(|j| match case % 4 {
                    // Exact half-step grids produce ties after scaling.
                    0 => ((rnd() % 255) as f32 - 127.0) * 0.5 * scale,
                    1 => (j as f32 - 15.5) * scale,
                    _ => (rnd() as f32 / u32::MAX as f32 - 0.5) * scale,
                })
                .collect();
            let mut x = x;
            // Non-finite values, zeros of both signs and tiny blocks, at random places.
            if case % 7 == 0 {
                let special = [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1e-40, -1e-39];
                for _ in 0..(1 + rnd() % 3) {
                    x[(rnd() % 32) as usize] = special[(rnd() % 8) as usize];
                }
            }
            let mut fast = [0u8; BYTES];
            quantize_block(&x, &mut fast);
            let amax = x.iter().fold(0.0f32, |m, v| c_max(m, v.abs()));
            let d = amax / 127.0;
            let mut want = [0u8; BYTES];
            want[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
            quantize_codes_ref(&x, if d != 0.0 { 1.0 / d } else { 0.0 }, &mut want[2..]);
            assert_eq!(fast, want, "case {case}: {x:?}");
            all_x.extend_from_slice(&x);
            all_want.extend_from_slice(&want);
        }
        // The same blocks 8 at a time (the group path, on every instruction set here).
        let mut got = Vec::new();
        encode(&all_x, &mut got);
        for (i, (g, w)) in got.chunks_exact(BYTES).zip(all_want.chunks_exact(BYTES)).enumerate() {
            assert_eq!(g, w, "block {i} in a group: {:?}", &all_x[BLOCK * i..BLOCK * (i + 1)]);
        }
    }

    #[test]
    fn zero_block_is_all_zero_bytes_and_ties_round_away() {
        let mut out = Vec::new();
        encode(&[0.0; 32], &mut out);
        assert_eq!(out, vec![0u8; 34]);
        // amax 127 → d = 1: 0.5 → 1, -2.5 → -3 (roundf), 126.5 → 127.
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = 0.5;
        x[2] = -2.5;
        x[3] = 126.5;
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(&out[..2], &f16::from_f32(1.0).to_bits().to_le_bytes());
        assert_eq!(out[2..6].iter().map(|&b| b as i8).collect::<Vec<_>>(), vec![127, 1, -3, 127]);
        let mut back = Vec::new();
        decode(&out, &mut back);
        assert_eq!(back[2], -3.0);
    }

    #[test]
    fn tiny_block_casts_infinite_codes_as_c() {
        // d = 1e-40 / 127 makes 1/d = inf: C's int8 conversion of ±inf / NaN is 0.
        let mut x = [0.0f32; 32];
        x[0] = 1e-40;
        x[1] = -1e-40;
        let mut out = Vec::new();
        encode(&x, &mut out);
        assert_eq!(out, vec![0u8; 34]);
    }
}
