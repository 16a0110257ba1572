//! Multimodal folders (`gemma3`, `mistral3`, `qwen3_5`, `llama4`, …): config.json holds the
//! language model's settings under `text_config` and the weights hold it under
//! `language_model.` (as mlx-lm and mlx-vlm save it; `model.language_model.` in
//! transformers' layout), beside `vision_tower.` / `multi_modal_projector.` weights. As
//! mlx-lm's loader does, the language model is taken and the vision part left out.

use serde_json::{Map, Value};

/// Prefixes of the parts mlx-lm's loaders drop from a multimodal folder.
const OTHER_PARTS: &[&str] = &[
    "vision_tower.",
    "vision_model.",
    "multi_modal_projector.",
    "model.visual.",
    "visual.",
    "audio_tower.",
    // Gemma 4's vision and audio embedders (mlx_lm/models/gemma4.py `sanitize`), with the
    // `model.` prefix of transformers' layout too.
    "embed_vision.",
    "embed_audio.",
    "vision_embedder.",
    "model.vision_tower.",
    "model.audio_tower.",
    "model.multi_modal_projector.",
    "model.embed_vision.",
    "model.embed_audio.",
    "model.vision_embedder.",
];

/// The language model's name for a weight or module path of the whole model, or `None`
/// for the vision (or audio) part.
pub fn language_model_name(name: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("model.language_model.") {
        return Some(format!("model.{rest}"));
    }
    if let Some(rest) = name.strip_prefix("language_model.") {
        return Some(rest.to_string());
    }
    (!OTHER_PARTS.iter().any(|p| name.starts_with(p))).then(|| name.to_string())
}

/// What mlx-lm's wrapper classes set in the text config: defaults where it is silent, and
/// for Gemma 3 and 4 the top level's `vocab_size` (262208, 262144 by default), which always
/// wins.
fn wrapper_settings(wrapper: &str, raw: &Map<String, Value>, text: &mut Map<String, Value>) {
    let mut default = |k: &str, v: Value| {
        text.entry(k.to_string()).or_insert(v);
    };
    match wrapper {
        // mlx_lm/models/mistral3.py: untied unless the text config says otherwise.
        "mistral3" => default("tie_word_embeddings", Value::Bool(false)),
        // mlx_lm/models/gemma3.py `ModelArgs.__post_init__`.
        "gemma3" => {
            default("num_attention_heads", Value::from(8));
            default("num_key_value_heads", Value::from(4));
            let vocab = raw.get("vocab_size").cloned().unwrap_or(Value::from(262208));
            text.insert("vocab_size".into(), vocab);
        }
        // mlx_lm/models/gemma4.py `ModelArgs.__post_init__`.
        "gemma4" => {
            default("num_attention_heads", Value::from(8));
            default("num_key_value_heads", Value::from(1));
            let vocab = raw.get("vocab_size").cloned().unwrap_or(Value::from(262144));
            text.insert("vocab_size".into(), vocab);
        }
        _ => {}
    }
}

/// For a multimodal config: the language model's config (the top level overlaid by
/// `text_config`, whose `model_type` defaults to `<model_type>_text`, with the quantization
/// record's module paths renamed) and the wrapper's `model_type`.
pub fn text_config(raw: &Map<String, Value>) -> Option<(Map<String, Value>, String)> {
    let Some(Value::Object(text)) = raw.get("text_config") else { return None };
    let wrapper = raw.get("model_type")?.as_str()?.to_string();
    let mut merged: Map<String, Value> =
        raw.iter().filter(|(k, _)| !k.ends_with("_config") || k.starts_with("quantization")).map(clone_kv).collect();
    let mut text = text.clone();
    wrapper_settings(&wrapper, raw, &mut text);
    merged.extend(text.iter().map(clone_kv));
    let text_type = text.get("model_type").and_then(Value::as_str).map_or(format!("{wrapper}_text"), str::to_string);
    merged.insert("model_type".into(), Value::String(text_type));
    for key in ["quantization", "quantization_config"] {
        if let Some(Value::Object(q)) = raw.get(key) {
            merged.insert(key.into(), Value::Object(rename_modules(q)));
        }
    }
    Some((merged, wrapper))
}

fn clone_kv((k, v): (&String, &Value)) -> (String, Value) {
    (k.clone(), v.clone())
}

/// A quantization record with per-module entries of the language model renamed and those
/// of the vision part dropped (the scalar defaults stay).
fn rename_modules(q: &Map<String, Value>) -> Map<String, Value> {
    q.iter()
        .filter_map(|(k, v)| match v {
            Value::Object(_) | Value::Bool(_) => language_model_name(k).map(|n| (n, v.clone())),
            _ => Some((k.clone(), v.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_part_of_a_multimodal_config() {
        let raw = json!({"model_type": "mistral3", "eos_token_id": 2, "vision_config": {"hidden_size": 8},
            "text_config": {"model_type": "mistral", "hidden_size": 64},
            "quantization": {"group_size": 64, "bits": 4,
                "language_model.model.layers.0.mlp.up_proj": {"group_size": 32, "bits": 8},
                "vision_tower.layers.0.attn": false}});
        let (m, wrapper) = text_config(raw.as_object().unwrap()).unwrap();
        assert_eq!(wrapper, "mistral3");
        assert_eq!((m["model_type"].as_str(), m["hidden_size"].as_u64()), (Some("mistral"), Some(64)));
        assert_eq!((m["eos_token_id"].as_u64(), m["tie_word_embeddings"].as_bool()), (Some(2), Some(false)));
        assert!(!m.contains_key("vision_config") && !m.contains_key("text_config"));
        let q = m["quantization"].as_object().unwrap();
        assert!(q.contains_key("model.layers.0.mlp.up_proj") && q.len() == 3, "{q:?}");
        let gemma = json!({"model_type": "gemma3", "text_config": {"hidden_size": 64}});
        assert_eq!(text_config(gemma.as_object().unwrap()).unwrap().0["model_type"], "gemma3_text");
        assert_eq!(language_model_name("model.language_model.norm.weight").as_deref(), Some("model.norm.weight"));
        assert_eq!(language_model_name("vision_tower.patch_conv.weight"), None);
    }
}
