//! GGML_TYPE_IQ2_S: blocks of 256 values in 82 bytes (ggml-common.h `block_iq2_s`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 82;

pub const INFO: super::TypeInfo = super::TypeInfo::known(22, "iq2_s", BLOCK, BYTES);
