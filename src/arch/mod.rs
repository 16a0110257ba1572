//! Architectures: one file each, holding the name table, the metadata keys llama.cpp
//! reads for it, and any transforms. `plan` dispatches on config.json's `model_type`.

pub mod decoder;
pub mod gpt_oss;
pub mod llama;
pub mod mixtral;
pub mod qwen2;
pub mod qwen3;
pub mod qwen3_moe;

use crate::error::{Error, Result};
use crate::plan::{Plan, PlanOptions};
use crate::source::Checkpoint;

/// `model_type` values with a mapping.
pub const SUPPORTED: &[&str] = &["gpt_oss", "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe"];

pub fn plan(ckpt: &Checkpoint, opts: &PlanOptions) -> Result<Plan> {
    match ckpt.config.model_type.as_str() {
        "gpt_oss" => gpt_oss::plan(ckpt, opts),
        "llama" | "mistral" => decoder::plan(ckpt, &llama::SPEC, opts),
        "mixtral" => decoder::plan(ckpt, &mixtral::SPEC, opts),
        "qwen2" => decoder::plan(ckpt, &qwen2::SPEC, opts),
        "qwen3" => decoder::plan(ckpt, &qwen3::SPEC, opts),
        "qwen3_moe" => qwen3_moe::plan(ckpt, opts),
        other => match &ckpt.config.wrapper {
            Some(w) => Err(Error::config(
                &ckpt.config.path,
                "text_config.model_type",
                format!(
                    "the '{w}' folder's language model is '{other}', which is not supported (supported: {})",
                    SUPPORTED.join(", ")
                ),
            )),
            None => Err(Error::config(
                &ckpt.config.path,
                "model_type",
                format!("'{other}' is not supported (supported: {})", SUPPORTED.join(", ")),
            )),
        },
    }
}

/// Common `general.*` keys.
pub(crate) fn general_metadata(ckpt: &Checkpoint, arch: &str, opts: &PlanOptions) -> Vec<(String, crate::gguf::Value)> {
    use crate::gguf::Value;
    let name = opts.name.clone().or_else(|| ckpt.name()).unwrap_or_else(|| arch.to_string());
    vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.type".into(), Value::String("model".into())),
        ("general.name".into(), Value::String(name)),
    ]
}
