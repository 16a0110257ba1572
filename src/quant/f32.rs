//! GGML_TYPE_F32: little-endian IEEE binary32.
/// ggml's `f32`: one f32 per element.
pub const INFO: super::TypeInfo = super::TypeInfo::known(0, "f32", 1, 4).codec(encode, decode);

pub fn encode(src: &[f32], out: &mut Vec<u8>) {
    out.reserve(src.len() * 4);
    for v in src {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

pub fn decode(src: &[u8], out: &mut Vec<f32>) {
    out.extend(src.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
}
