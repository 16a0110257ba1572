//! GGML_TYPE_IQ3_XXS: blocks of 256 values in 98 bytes (ggml-common.h `block_iq3_xxs`).

pub const BLOCK: usize = 256;
pub const BYTES: usize = 98;

pub const INFO: super::TypeInfo = super::TypeInfo::known(18, "iq3_xxs", BLOCK, BYTES);
