//! GGML_TYPE_NVFP4: blocks of 64 as `{ u8 d[4]; u8 qs[32]; }` (36 bytes): four 16-element
//! sub-blocks, each with an unsigned E4M3 scale and E2M1 codes, element j of a sub-block in
//! the low nibble of qs[8s + j], element j+8 in the high nibble.
//! Reference: ggml `quantize_row_nvfp4_ref` with `ggml_fp32_to_ue4m3` / `ggml_ue4m3_to_fp32`
//! (which returns the scale halved, to pair with the doubled `kvalues_mxfp4`).

use super::mxfp4::{best_index, KVALUES};

pub const BLOCK: usize = 64;
pub const BYTES: usize = 36;

/// `ggml_ue4m3_to_fp32`: half the UE4M3 value; bytes 0 and 0x7F are 0, the sign bit is ignored.
pub fn ue4m3_half(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let (e, m) = (((x >> 3) & 0xF) as i32, (x & 7) as f32);
    let raw = if e == 0 { m * 2f32.powi(-9) } else { (1.0 + m / 8.0) * 2f32.powi(e - 7) };
    raw * 0.5
}

/// `ggml_fp32_to_ue4m3`: round-half-up on the dropped mantissa bits, saturating at 448.
pub fn to_ue4m3(x: f32) -> u8 {
    // NaN and non-positive values both give 0, as in ggml.
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    let x = x.min(448.0);
    let bits = x.to_bits();
    let exp = ((bits >> 23) & 0xFF) as i32 - 127 + 7;
    if exp <= 0 {
        let man = (x * 512.0 + 0.5) as i32;
        return if man < 1 { 0 } else { man.min(7) as u8 };
    }
    if exp >= 15 {
        return 0x7E;
    }
    let mut man = ((bits >> 20) & 7) as i32 + ((bits >> 19) & 1) as i32;
    let mut exp = exp;
    if man > 7 {
        man = 0;
        exp += 1;
        if exp >= 15 {
            return 0x7E;
        }
    }
    ((exp << 3) | man) as u8
}

pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    for s in 0..4 {
        let xb = &x[s * 16..(s + 1) * 16];
        let amax = xb.iter().fold(0f32, |m, v| if m < v.abs() { v.abs() } else { m });
        let ue = to_ue4m3(amax / 6.0);
        out[s] = ue;
        let d = ue4m3_half(ue);
        for j in 0..8 {
            out[4 + s * 8 + j] = best_index(xb[j], d) | (best_index(xb[j + 8], d) << 4);
        }
    }
}
/// ggml's `nvfp4` block: 4 UE4M3 scale bytes (one per 16), 64 FP4 codes.
pub const INFO: super::TypeInfo = super::TypeInfo::known(40, "nvfp4", BLOCK, BYTES).codec(encode, decode);
const _: () = assert!(BYTES == BLOCK / 16 + BLOCK / 2);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    super::encode_blocks(src, out, BLOCK, BYTES, quantize_block);
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    for b in src.chunks_exact(BYTES) {
        for s in 0..4 {
            let d = ue4m3_half(b[s]);
            let mut v = [0f32; 16];
            for j in 0..8 {
                let q = b[4 + s * 8 + j];
                v[j] = KVALUES[(q & 15) as usize] as f32 * d;
                v[j + 8] = KVALUES[(q >> 4) as usize] as f32 * d;
            }
            out.extend_from_slice(&v);
        }
    }
}

/// Lossless repack of one row of MLX nvfp4 data (no global scale) into ggml blocks, or
/// false when a scale byte has no ggml equivalent (sign bit set, or 0x7F, which MLX reads
/// as NaN and ggml as 0).
pub fn repack_mlx_row(words: &[u8], scales: &[u8], out: &mut Vec<u8>) -> bool {
    if scales.iter().any(|&s| s & 0x80 != 0 || s == 0x7F) {
        return false;
    }
    let code = |j: usize| (words[j / 2] >> ((j % 2) * 4)) & 15;
    for (b, sc) in scales.chunks_exact(4).enumerate() {
        out.extend_from_slice(sc);
        for s in 0..4 {
            let base = b * 64 + s * 16;
            for j in 0..8 {
                out.push(code(base + j) | (code(base + j + 8) << 4));
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repack_decodes_to_mlx_values() {
        let codes: Vec<u8> = (0..64).map(|i| ((i * 5 + 1) % 16) as u8).collect();
        let words: Vec<u8> = codes.chunks(2).map(|p| p[0] | (p[1] << 4)).collect();
        let scales = [0x38u8, 0x01, 0x7E, 0x00];
        let mut out = Vec::new();
        assert!(repack_mlx_row(&words, &scales, &mut out));
        let mut got = Vec::new();
        decode(&out, &mut got);
        let mut want = vec![0f32; 64];
        crate::mlx::nvfp4::dequantize_row(&words, &scales, None, &mut want);
        assert_eq!(got, want);
        assert!(!repack_mlx_row(&words, &[0xB8, 0, 0, 0], &mut Vec::new()));
    }

    #[test]
    fn ue4m3_round_trips_its_codes() {
        for b in 1u8..0x78 {
            assert_eq!(to_ue4m3(ue4m3_half(b) * 2.0), b, "{b:#x}");
        }
        // ggml saturates every exponent-15 value (256 and up) to 0x7E (448).
        assert_eq!(to_ue4m3(256.0), 0x7E);
        assert_eq!(to_ue4m3(1e9), 0x7E);
        assert_eq!(to_ue4m3(0.0), 0);
    }
}
