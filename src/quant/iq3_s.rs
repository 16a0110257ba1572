//! GGML_TYPE_IQ3_S: blocks of 256 values in 110 bytes (ggml-common.h `block_iq3_s`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 110;

pub const INFO: super::TypeInfo = super::TypeInfo::known(21, "iq3_s", BLOCK, BYTES);
