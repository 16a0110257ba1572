//! GGML_TYPE_IQ2_XS: blocks of 256 values in 74 bytes (ggml-common.h `block_iq2_xs`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 74;

pub const INFO: super::TypeInfo = super::TypeInfo::known(17, "iq2_xs", BLOCK, BYTES);
