//! GGML_TYPE_IQ4_XS: superblocks of 256 as `{ f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]; }`
//! (136 bytes): eight sub-blocks of 32, x ≈ d·(ls − 32)·v[q] with 6-bit ls (low nibbles in
//! scales_l, high pairs in scales_h) and IQ4_NL's table. ggml `quantize_iq4_xs`: IQ4_NL's scale
//! search per sub-block, then d = −max_scale/32 and ls = clamp(nearest_int(scale/d), −32, 31)
//! + 32, the levels re-derived against d·(ls − 32).

use super::iq4_nl::{Layout, VALUES};
use super::kquant::{fp16_at, fp16_bytes, QK_K};

pub const BLOCK: usize = QK_K;
pub const BYTES: usize = 136;

pub const INFO: super::TypeInfo =
    super::TypeInfo::known(23, "iq4_xs", BLOCK, BYTES).codec(encode, decode).weighted(encode_row_weighted);
const _: () = assert!(BYTES == 2 + 2 + BLOCK / 64 + BLOCK / 2);

const LAYOUT: Layout = Layout { sb: BLOCK, bytes: BYTES, head: write_head };

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    LAYOUT.quantize_one(x, None, out);
}

/// With an importance matrix (ggml `quantize_iq4_xs` given weights).
pub fn quantize_block_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    LAYOUT.quantize_one(x, Some(qw), out);
}

/// d, then the sub-block scales: high bit pairs in a u16, low nibbles in 4 bytes.
fn write_head(d: f32, ls: [u8; 8], out: &mut [u8]) {
    out[..2].copy_from_slice(&fp16_bytes(d));
    let mut scales_h = 0u16;
    out[4..8].fill(0);
    for (ib, &l) in ls.iter().enumerate() {
        out[4 + ib / 2] |= (l & 0xF) << (4 * (ib % 2));
        scales_h |= ((l >> 4) as u16) << (2 * ib);
    }
    out[2..4].copy_from_slice(&scales_h.to_le_bytes());
}

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    LAYOUT.encode(src, out);
}

/// ggml `dequantize_row_iq4_xs`: y = d·(ls − 32)·v[q].
pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        let d = fp16_at(&b[..2]);
        let scales_h = u16::from_le_bytes([b[2], b[3]]);
        for ib in 0..8 {
            let ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) as i32 | ((((scales_h >> (2 * ib)) & 3) as i32) << 4);
            let dl = d * (ls - 32) as f32;
            let qs = &b[8 + 16 * ib..24 + 16 * ib];
            out.extend(qs.iter().map(|&q| dl * VALUES[(q & 0xF) as usize] as f32));
            out.extend(qs.iter().map(|&q| dl * VALUES[(q >> 4) as usize] as f32));
        }
    }
}

/// A row with importance weights.
fn encode_row_weighted(row: &[f32], qw: &[f32], out: &mut [u8]) {
    LAYOUT.encode_row_weighted(row, qw, out);
}

#[cfg(test)]
mod tests {
    use super::super::{encode_blocks, encode_weighted, weighted_blocks, GgmlType};
    use super::super::{iq4_nl, iq4_xs};

    type Block = fn(&[f32], &mut [u8]);
    type WeightedBlock = fn(&[f32], &[f32], &mut [u8]);
    /// A type, its row length, (block, bytes) and its one-block encoders.
    type Case = (GgmlType, usize, (usize, usize), Block, WeightedBlock);

    /// Both types' batched encoders write what their one-block-at-a-time search writes, with
    /// and without weights, over rows of several batches; IQ4_NL's rows end in blocks after
    /// the last group of 8.
    #[test]
    fn batches_write_what_one_block_at_a_time_writes() {
        let cases: [Case; 2] = [
            (GgmlType::Iq4Nl, 4 * 1024 + 5 * 32, (32, 18), iq4_nl::quantize_block, iq4_nl::quantize_block_weighted),
            (GgmlType::Iq4Xs, 4 * 1024 + 3 * 256, (256, 136), iq4_xs::quantize_block, iq4_xs::quantize_block_weighted),
        ];
        let mut next = crate::quant::test_values(5);
        for (t, row, (block, bytes), one, one_weighted) in cases {
            let x: Vec<f32> = (0..2 * row).map(|i| next() * if i % 97 == 0 { 40.0 } else { 1.0 }).collect();
            let qw: Vec<f32> = (0..row).map(|_| next().abs() * 3.0).collect();
            let (mut got, mut want) = (Vec::new(), Vec::new());
            (t.info().encode.unwrap())(&x, &mut got);
            encode_blocks(&x, &mut want, block, bytes, one);
            assert!(got == want, "{t} without weights");
            got.clear();
            encode_weighted(t, &x, &qw, &mut got).unwrap();
            want.resize(2 * row / block * bytes, 0);
            for (xr, o) in x.chunks_exact(row).zip(want.chunks_exact_mut(row / block * bytes)) {
                weighted_blocks(xr, &qw, o, block, bytes, one_weighted);
            }
            assert!(got == want, "{t} with weights");
        }
    }
}
