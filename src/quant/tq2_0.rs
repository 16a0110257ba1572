//! GGML_TYPE_TQ2_0: blocks of 256 values in 66 bytes (ggml-common.h `block_tq2_0`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 66;

pub const INFO: super::TypeInfo = super::TypeInfo::known(35, "tq2_0", BLOCK, BYTES);
