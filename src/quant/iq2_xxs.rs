//! GGML_TYPE_IQ2_XXS: blocks of 256 values in 66 bytes (ggml-common.h `block_iq2_xxs`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 66;

pub const INFO: super::TypeInfo = super::TypeInfo::known(16, "iq2_xxs", BLOCK, BYTES);
