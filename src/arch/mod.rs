//! Architectures: one file each, holding its declarative [`spec::ArchSpec`] (tensor table,
//! metadata keys, config quirks), registered by one line in [`REGISTRY`]. `plan` builds
//! the plan from the spec; `verify` checks files of the architecture against it.

pub mod decoder;
pub mod deepseek_v2;
pub mod deepseek_v3;
pub mod ernie4_5;
pub mod gemma2;
pub mod gemma3;
pub mod gemma4;
pub mod glm4_moe;
pub mod gpt_oss;
pub mod granite;
pub mod layers;
pub mod llama;
pub mod llama4;
pub mod mixtral;
pub mod olmo2;
pub mod phi3;
pub mod qwen2;
pub mod qwen2_moe;
pub mod qwen3;
pub mod qwen3_5;
pub mod qwen3_moe;
pub mod qwen3_next;
pub mod smollm3;
pub mod spec;

use crate::error::{Error, Result};
use crate::plan::{Plan, PlanOptions};
use crate::source::Checkpoint;

/// One supported architecture: the config.json `model_type` values it takes, its spec,
/// the file that states it, and any check of config.json a spec cannot express.
pub struct Entry {
    pub model_types: &'static [&'static str],
    pub spec: &'static spec::ArchSpec,
    pub file: &'static str,
    pub refuse: Option<fn(&Checkpoint) -> Result<()>>,
}

/// Every supported architecture, one line each.
pub const REGISTRY: &[Entry] = &[
    Entry { model_types: &["gpt_oss"], spec: &gpt_oss::SPEC, file: "gpt_oss.rs", refuse: None },
    Entry { model_types: &["llama", "mistral"], spec: &llama::SPEC, file: "llama.rs", refuse: None },
    Entry { model_types: &["mixtral"], spec: &mixtral::SPEC, file: "mixtral.rs", refuse: None },
    Entry { model_types: &["qwen2"], spec: &qwen2::SPEC, file: "qwen2.rs", refuse: None },
    Entry { model_types: &["qwen2_moe"], spec: &qwen2_moe::SPEC, file: "qwen2_moe.rs", refuse: None },
    Entry { model_types: &["qwen3"], spec: &qwen3::SPEC, file: "qwen3.rs", refuse: None },
    Entry {
        model_types: &["qwen3_moe"],
        spec: &qwen3_moe::SPEC,
        file: "qwen3_moe.rs",
        refuse: Some(qwen3_moe::refuse),
    },
    Entry { model_types: &["qwen3_5_text"], spec: &qwen3_5::SPEC, file: "qwen3_5.rs", refuse: Some(qwen3_5::refuse) },
    Entry {
        model_types: &["qwen3_5_moe_text"],
        spec: &qwen3_5::MOE_SPEC,
        file: "qwen3_5.rs",
        refuse: Some(qwen3_5::refuse_moe),
    },
    Entry {
        model_types: &["qwen3_next"],
        spec: &qwen3_next::SPEC,
        file: "qwen3_next.rs",
        refuse: Some(qwen3_next::refuse),
    },
    Entry { model_types: &["olmo2"], spec: &olmo2::SPEC, file: "olmo2.rs", refuse: None },
    Entry { model_types: &["granite"], spec: &granite::SPEC, file: "granite.rs", refuse: None },
    Entry { model_types: &["gemma2"], spec: &gemma2::SPEC, file: "gemma2.rs", refuse: None },
    Entry { model_types: &["smollm3"], spec: &smollm3::SPEC, file: "smollm3.rs", refuse: Some(smollm3::refuse) },
    Entry { model_types: &["ernie4_5"], spec: &ernie4_5::SPEC, file: "ernie4_5.rs", refuse: None },
    Entry { model_types: &["phi3"], spec: &phi3::SPEC, file: "phi3.rs", refuse: None },
    Entry { model_types: &["gemma3_text"], spec: &gemma3::SPEC, file: "gemma3.rs", refuse: Some(gemma3::refuse) },
    Entry {
        model_types: &["deepseek_v2"],
        spec: &deepseek_v2::SPEC,
        file: "deepseek_v2.rs",
        refuse: Some(deepseek_v2::refuse),
    },
    Entry {
        model_types: &["deepseek_v3", "kimi_k2"],
        spec: &deepseek_v3::SPEC,
        file: "deepseek_v3.rs",
        refuse: Some(deepseek_v3::refuse),
    },
    Entry { model_types: &["glm4_moe"], spec: &glm4_moe::SPEC, file: "glm4_moe.rs", refuse: Some(glm4_moe::refuse) },
    Entry { model_types: &["llama4_text"], spec: &llama4::SPEC, file: "llama4.rs", refuse: Some(llama4::refuse) },
    Entry { model_types: &["gemma4_text"], spec: &gemma4::SPEC, file: "gemma4.rs", refuse: Some(gemma4::refuse) },
];

/// `model_type` values with a mapping.
pub fn supported() -> Vec<&'static str> {
    REGISTRY.iter().flat_map(|e| e.model_types.iter().copied()).collect()
}

pub fn plan(ckpt: &Checkpoint, opts: &PlanOptions) -> Result<Plan> {
    let model_type = ckpt.config.model_type.as_str();
    let Some(entry) = REGISTRY.iter().find(|e| e.model_types.contains(&model_type)) else {
        let supported = supported().join(", ");
        return Err(match &ckpt.config.wrapper {
            Some(w) => Error::config(
                &ckpt.config.path,
                "text_config.model_type",
                format!("the '{w}' folder's language model is '{model_type}', which is not supported (supported: {supported})"),
            ),
            None => Error::config(
                &ckpt.config.path,
                "model_type",
                format!("'{model_type}' is not supported (supported: {supported})"),
            ),
        });
    };
    if let Some(refuse) = entry.refuse {
        refuse(ckpt)?;
    }
    decoder::plan(ckpt, entry.spec, opts)
}

/// The spec `verify` checks a file of GGUF architecture `arch` against: llama files with
/// experts are Mixtral's.
pub fn spec_for_file(arch: &str, expert_count: Option<u64>) -> Option<&'static spec::ArchSpec> {
    Some(match arch {
        "llama" if expert_count.unwrap_or(0) > 0 => &mixtral::SPEC,
        "llama" => &llama::SPEC,
        "qwen2" => &qwen2::SPEC,
        "qwen2moe" => &qwen2_moe::SPEC,
        "qwen3" => &qwen3::SPEC,
        "qwen3moe" => &qwen3_moe::SPEC,
        "qwen3next" => &qwen3_next::SPEC,
        "qwen35" => &qwen3_5::SPEC,
        "qwen35moe" => &qwen3_5::MOE_SPEC,
        "gpt-oss" => &gpt_oss::SPEC,
        "olmo2" => &olmo2::SPEC,
        "granite" => &granite::SPEC,
        "gemma2" => &gemma2::SPEC,
        "smollm3" => &smollm3::SPEC,
        "ernie4_5" => &ernie4_5::SPEC,
        "phi3" => &phi3::SPEC,
        "gemma3" => &gemma3::SPEC,
        "gemma4" => &gemma4::SPEC,
        "deepseek2" => &deepseek_v3::SPEC,
        "glm4moe" => &glm4_moe::SPEC,
        "llama4" => &llama4::SPEC,
        _ => return None,
    })
}

/// The `general.*` keys every model file starts with. The model-card keys (`general.name`,
/// …) follow `general.type`; they need the parameter count, so [`crate::model_card`] adds
/// them once the plan is made.
pub(crate) fn general_metadata(arch: &str) -> Vec<(String, crate::gguf::Value)> {
    use crate::gguf::Value;
    vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.type".into(), Value::String("model".into())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_table_lists_the_registry() {
        let doc = include_str!("../../docs/architectures.md");
        for e in REGISTRY {
            let types: Vec<String> = e.model_types.iter().map(|t| format!("`{t}`")).collect();
            let row = format!("| {} | `{}` | `{}` |", types.join(", "), e.file, e.spec.arch);
            assert!(doc.contains(&row), "docs/architectures.md has no row {row}");
            assert_eq!(spec_for_file(e.spec.arch, e.spec.moe.map(|_| 1)).map(|s| s.arch), Some(e.spec.arch));
        }
        let rows = doc.lines().filter(|l| l.starts_with("| `") && !l.starts_with("| `model_type`")).count();
        assert_eq!(rows, REGISTRY.len(), "a row for an architecture that is not registered");
    }
}
