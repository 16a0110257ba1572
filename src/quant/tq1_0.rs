//! GGML_TYPE_TQ1_0: blocks of 256 values in 54 bytes (ggml-common.h `block_tq1_0`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 54;

pub const INFO: super::TypeInfo = super::TypeInfo::known(34, "tq1_0", BLOCK, BYTES);
