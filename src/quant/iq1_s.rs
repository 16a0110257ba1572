//! GGML_TYPE_IQ1_S: blocks of 256 values in 50 bytes (ggml-common.h `block_iq1_s`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 50;

pub const INFO: super::TypeInfo = super::TypeInfo::known(19, "iq1_s", BLOCK, BYTES);
