//! MLX bit packing: element j of a row occupies bits `[j*bits, (j+1)*bits)` of the row's
//! little-endian bit stream, LSB first. For 3, 5 and 6 bits an element can straddle two
//! u32 words (mlx `extract_bits`); rows start on a word boundary.

/// Unpacks `out.len()` codes of `bits` bits from a row's little-endian bytes.
#[inline(always)]
pub fn unpack_row(bytes: &[u8], bits: u32, out: &mut [u8]) {
    match bits {
        8 => out.copy_from_slice(&bytes[..out.len()]),
        4 => {
            for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
                pair[0] = b & 0x0F;
                pair[1] = b >> 4;
            }
        }
        _ => {
            let mask = (1u32 << bits) - 1;
            let bits = bits as usize;
            for (j, o) in out.iter_mut().enumerate() {
                let bit = j * bits;
                let k = bit / 8;
                // Up to 6 bits starting anywhere in a byte fit within two bytes.
                let lo = bytes[k] as u32;
                let hi = bytes.get(k + 1).copied().unwrap_or(0) as u32;
                *o = (((lo | (hi << 8)) >> (bit % 8)) & mask) as u8;
            }
        }
    }
}

/// Packs codes into a row's bytes (the inverse of [`unpack_row`]; used by tests and fixtures).
pub fn pack_row(codes: &[u8], bits: u32, out: &mut [u8]) {
    out.iter_mut().for_each(|b| *b = 0);
    for (j, &c) in codes.iter().enumerate() {
        let bit = j * bits as usize;
        let v = (c as u32) << (bit % 8);
        out[bit / 8] |= v as u8;
        if (bit % 8) + bits as usize > 8 {
            out[bit / 8 + 1] |= (v >> 8) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Raw words mx.quantize produced for the code ramp c_j = j mod 2^bits (reference doc §1.3).
    #[test]
    fn matches_mlx_ramp_words() {
        for (bits, ws) in [
            (2u32, vec![0xE4E4E4E4u32]),
            (4, vec![0x76543210, 0xFEDCBA98]),
            (8, vec![0x03020100, 0x07060504]),
            (3, vec![0x88FAC688, 0xC688FAC6]),
            (5, vec![0x8A418820, 0xC5A92839]),
            (6, vec![0x440C2040, 0xA2481C61]),
        ] {
            let bytes = words(&ws);
            let n = ws.len() * 32 / bits as usize;
            let mut out = vec![0u8; n];
            unpack_row(&bytes, bits, &mut out);
            let want: Vec<u8> = (0..n).map(|j| (j % (1 << bits)) as u8).collect();
            assert_eq!(out, want, "bits {bits}");
            let mut repacked = vec![0u8; bytes.len()];
            pack_row(&want, bits, &mut repacked);
            let mut again = vec![0u8; n];
            unpack_row(&repacked, bits, &mut again);
            assert_eq!(again, want, "bits {bits}");
            if 64 % bits == 0 {
                assert_eq!(repacked, bytes, "bits {bits}");
            }
        }
    }

    #[test]
    fn three_bit_element_straddles_words() {
        let bytes = words(&[0xC000_0038, 0x0000_0001]);
        let mut out = vec![0u8; 21];
        unpack_row(&bytes, 3, &mut out);
        assert_eq!(out[1], 7);
        assert_eq!(out[10], 7);
        assert_eq!(out.iter().filter(|&&c| c != 0).count(), 2);
    }

    #[test]
    fn one_bit() {
        let bytes = words(&[0x8000_0001]);
        let mut out = vec![0u8; 32];
        unpack_row(&bytes, 1, &mut out);
        assert_eq!(out[0], 1);
        assert_eq!(out[31], 1);
        assert_eq!(out.iter().map(|&c| c as u32).sum::<u32>(), 2);
    }
}
