//! GGML_TYPE_IQ1_M: blocks of 256 values in 56 bytes (ggml-common.h `block_iq1_m`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 56;

pub const INFO: super::TypeInfo = super::TypeInfo::known(29, "iq1_m", BLOCK, BYTES);
