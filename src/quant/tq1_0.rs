//! GGML_TYPE_TQ1_0: blocks of 256 as `{ u8 qs[48]; u8 qh[4]; f16 d; }` (54 bytes), ternary:
//! x ≈ d·(t − 1) with trits t in {0, 1, 2} packed base 3, five per byte (four in qh), the
//! number scaled to a byte as ⌈n·256/243⌉ so that the decoder reads each trit as the top of
//! a multiply by 3. qs[0..32] hold elements m + 32n (n = 0..4, first trit most significant),
//! qs[32..48] elements 160 + m + 16n, qh elements 240 + j + 4m. llama-quantize calls
//! `quantize_tq1_0`, which ignores importance weights and runs `quantize_row_tq1_0_ref`:
//! d = max |x|, t = lroundf(x/d) + 1.

use super::kquant::{fp16_at, fp16_bytes};
use super::tq2_0::ternary_levels;

pub const BLOCK: usize = 256;
pub const BYTES: usize = 54;

pub const INFO: super::TypeInfo = super::TypeInfo::known(34, "tq1_0", BLOCK, BYTES).codec(encode, decode);

/// The trits `l[0], l[stride], ..` (`count` of them) as one base-3 number in a byte, scaled
/// by 256/243 and rounded up (C's `uint8_t` arithmetic, wrapping as it does).
fn pack_trits(l: &[i32], stride: usize, count: usize) -> u8 {
    let mut q = 0u8;
    for n in 0..count {
        q = q.wrapping_mul(3).wrapping_add(l[n * stride] as u8);
    }
    if count == 4 {
        // The first trit goes to the most significant place of five.
        q = q.wrapping_mul(3);
    }
    (q as u32 * 256).div_ceil(243) as u8
}

/// ggml `quantize_row_tq1_0_ref` for one block.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0i32; BLOCK];
    let d = ternary_levels(x, &mut l);
    for m in 0..32 {
        out[m] = pack_trits(&l[m..], 32, 5);
    }
    for m in 0..16 {
        out[32 + m] = pack_trits(&l[160 + m..], 16, 5);
    }
    for j in 0..4 {
        out[48 + j] = pack_trits(&l[240 + j..], 4, 4);
    }
    out[52..54].copy_from_slice(&fp16_bytes(d));
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

/// Trit `n` (0 = most significant) of a packed byte, minus 1, times d.
#[inline]
fn trit(q: u8, n: usize, d: f32) -> f32 {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let shifted = q.wrapping_mul(POW3[n]);
    ((((shifted as u16) * 3) >> 8) as i32 - 1) as f32 * d
}

/// ggml `dequantize_row_tq1_0`.
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[52..54]);
        for qs in [&b[..32], &b[32..48]] {
            for n in 0..5 {
                out.extend(qs.iter().map(|&q| trit(q, n, d)));
            }
        }
        for n in 0..4 {
            out.extend(b[48..52].iter().map(|&q| trit(q, n, d)));
        }
    }
}
