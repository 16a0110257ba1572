//! `config.json`: the architecture's hyperparameters and MLX's quantization record.
//!
//! Quantization (mlx-lm `save_config`): a top-level `quantization` dict with the default
//! `group_size`, `bits` and `mode` (absent mode = affine), plus per-module overrides keyed
//! by module path. An override without `mode` is affine (it is kwargs for `to_quantized`,
//! not a patch of the default), `group_size: null` means the mode's default, and `false`
//! means the module is dense. `quantization_config` is read only when `quantization` is
//! absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::mlx::{QuantMode, QuantParams};

/// What config.json says about one module's quantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleQuant {
    /// No per-module entry: the top-level default applies (if any).
    Default(Option<QuantParams>),
    /// An explicit per-module entry.
    Explicit(QuantParams),
    /// An explicit `false`: dense.
    Dense,
}

#[derive(Clone, Debug, Default)]
pub struct QuantConfig {
    pub default: Option<QuantParams>,
    pub modules: BTreeMap<String, Option<QuantParams>>,
}

impl QuantConfig {
    pub fn for_module(&self, path: &str) -> ModuleQuant {
        match self.modules.get(path) {
            Some(Some(p)) => ModuleQuant::Explicit(*p),
            Some(None) => ModuleQuant::Dense,
            None => ModuleQuant::Default(self.default),
        }
    }
}

/// A parsed config.json.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub path: PathBuf,
    /// The (language model's) settings.
    pub raw: Map<String, Value>,
    /// The (language model's) `model_type`.
    pub model_type: String,
    pub quant: QuantConfig,
    /// A multimodal folder's own `model_type` (the language model is in `text_config`).
    pub wrapper: Option<String>,
}

impl ModelConfig {
    pub fn load(path: &Path) -> Result<ModelConfig> {
        if !path.exists() {
            return Err(Error::input(path, "missing (an MLX model folder needs config.json)"));
        }
        let value = super::read_json(path)?;
        ModelConfig::from_value(path, value)
    }

    pub fn from_value(path: &Path, value: Value) -> Result<ModelConfig> {
        let Value::Object(raw) = value else {
            return Err(Error::input(path, "config.json must be a JSON object"));
        };
        let (raw, wrapper) = match super::multimodal::text_config(&raw) {
            Some((text, wrapper)) => (text, Some(wrapper)),
            None => (raw, None),
        };
        let model_type = match raw.get("model_type") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::config(path, "model_type", "must be a string")),
            None => return Err(Error::config(path, "model_type", "missing")),
        };
        let quant = match raw.get("quantization").or_else(|| raw.get("quantization_config")) {
            None | Some(Value::Null) => QuantConfig::default(),
            Some(q) => parse_quant(path, q)?,
        };
        Ok(ModelConfig { path: path.to_path_buf(), raw, model_type, quant, wrapper })
    }

    /// Whether config.json states `key` as null (mlx-lm then has no value, not its default).
    pub fn is_null(&self, key: &str) -> bool {
        matches!(self.raw.get(key), Some(Value::Null))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.raw.get(key).filter(|v| !v.is_null())
    }

    pub fn u64(&self, key: &str) -> Result<u64> {
        self.opt_u64(key)?.ok_or_else(|| Error::config(&self.path, key, "missing"))
    }

    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| Error::config(&self.path, key, format!("expected a non-negative integer, found {v}"))),
        }
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        self.opt_f64(key)?.ok_or_else(|| Error::config(&self.path, key, "missing"))
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::config(&self.path, key, format!("expected a number, found {v}"))),
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| Error::config(&self.path, key, format!("expected true or false, found {v}"))),
        }
    }
}

fn parse_quant(path: &Path, q: &Value) -> Result<QuantConfig> {
    let Value::Object(map) = q else {
        return Err(Error::config(path, "quantization", "must be an object"));
    };
    // An HF-style `quantization_config` (quant_method …) is not an MLX record.
    if map.contains_key("quant_method") {
        let method = map.get("quant_method").map(|v| v.to_string()).unwrap_or_default();
        return Err(Error::config(
            path,
            "quantization_config.quant_method",
            format!(
                "{method}: this is a Hugging Face checkpoint, not an MLX one; convert it with mlx_lm.convert first"
            ),
        ));
    }
    let has_default = map.contains_key("bits") || map.contains_key("group_size") || map.contains_key("mode");
    let default = if has_default { Some(parse_params(path, "quantization", map)?) } else { None };
    let mut modules = BTreeMap::new();
    for (k, v) in map {
        match v {
            Value::Object(m) => {
                let key = format!("quantization.{k}");
                modules.insert(k.clone(), Some(parse_params(path, &key, m)?));
            }
            Value::Bool(false) => {
                modules.insert(k.clone(), None);
            }
            // Scalars are the top-level default (or keys of other tools): not modules.
            _ => {}
        }
    }
    Ok(QuantConfig { default, modules })
}

fn parse_params(path: &Path, key: &str, m: &Map<String, Value>) -> Result<QuantParams> {
    let mode = match m.get("mode") {
        None | Some(Value::Null) => QuantMode::Affine,
        Some(Value::String(s)) => QuantMode::parse(s).ok_or_else(|| {
            Error::config(
                path,
                format!("{key}.mode"),
                format!("unknown quantization mode '{s}' (mlx has affine, mxfp4, nvfp4, mxfp8)"),
            )
        })?,
        Some(v) => return Err(Error::config(path, format!("{key}.mode"), format!("expected a string, found {v}"))),
    };
    let (dg, db) = mode.defaults();
    let num = |name: &str, default: u32| -> Result<u32> {
        match m.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().and_then(|x| u32::try_from(x).ok()).ok_or_else(|| {
                Error::config(path, format!("{key}.{name}"), format!("expected a small positive integer, found {v}"))
            }),
        }
    };
    let params = QuantParams { mode, group_size: num("group_size", dg)?, bits: num("bits", db)? };
    params.validate().map_err(|msg| Error::config(path, key, msg))?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Result<ModelConfig> {
        ModelConfig::from_value(Path::new("config.json"), v)
    }

    #[test]
    fn per_module_entries_without_mode_are_affine() {
        let c = cfg(json!({"model_type": "gpt_oss", "quantization": {
            "group_size": 32, "bits": 4, "mode": "mxfp4",
            "model.layers.0.mlp.router": {"group_size": 64, "bits": 8},
            "model.layers.0.self_attn.q_proj": {"group_size": null, "bits": 3, "mode": "affine"},
            "model.layers.0.self_attn.k_proj": false
        }}))
        .unwrap();
        let q = &c.quant;
        assert_eq!(q.default, Some(QuantParams { mode: QuantMode::Mxfp4, group_size: 32, bits: 4 }));
        assert_eq!(
            q.for_module("model.layers.0.mlp.router"),
            ModuleQuant::Explicit(QuantParams { mode: QuantMode::Affine, group_size: 64, bits: 8 })
        );
        assert_eq!(
            q.for_module("model.layers.0.self_attn.q_proj"),
            ModuleQuant::Explicit(QuantParams { mode: QuantMode::Affine, group_size: 64, bits: 3 })
        );
        assert_eq!(q.for_module("model.layers.0.self_attn.k_proj"), ModuleQuant::Dense);
        assert!(matches!(q.for_module("model.layers.0.self_attn.v_proj"), ModuleQuant::Default(Some(_))));
    }

    #[test]
    fn top_level_without_mode_is_affine_and_quantization_config_is_a_fallback() {
        let c = cfg(json!({"model_type": "llama", "quantization_config": {"group_size": 64, "bits": 4}})).unwrap();
        assert_eq!(c.quant.default, Some(QuantParams { mode: QuantMode::Affine, group_size: 64, bits: 4 }));
    }

    #[test]
    fn rejects_what_mlx_rejects() {
        for q in [
            json!({"group_size": 64, "bits": 7}),
            json!({"group_size": 16, "bits": 4}),
            json!({"group_size": 64, "bits": 4, "mode": "mxfp4"}),
            json!({"group_size": 32, "bits": 4, "mode": "fp8"}),
        ] {
            let e = cfg(json!({"model_type": "x", "quantization": q})).unwrap_err().to_string();
            assert!(e.contains("quantization"), "{e}");
        }
        assert!(cfg(json!({"quantization": {}})).unwrap_err().to_string().contains("model_type"));
        let e = cfg(json!({"model_type": "gpt_oss", "quantization_config": {"quant_method": "mxfp4"}})).unwrap_err();
        assert!(e.to_string().contains("mlx_lm.convert"));
    }
}
