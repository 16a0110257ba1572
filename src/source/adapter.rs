//! mlx-lm adapters (`mlx_lm.lora --adapter-path DIR`): `adapter_config.json` (the run's
//! arguments: `fine_tune_type`, `num_layers`, `lora_parameters {rank, scale, dropout,
//! keys}`) and `adapters.safetensors` (F32 `<module>.lora_a`, `.lora_b`, DoRA `.m`; for
//! `full`, whole parameters under their model names).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::source::TensorStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FineTuneType {
    Lora,
    Dora,
    Full,
}

/// The tensors of one adapted module.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraTensors {
    pub a: String,
    pub b: String,
    /// DoRA magnitude.
    pub m: Option<String>,
}

pub struct Adapter {
    pub dir: PathBuf,
    /// `ORG/NAME` when opened by repo id.
    pub repo: Option<String>,
    /// adapter_config.json's `model`: what mlx_lm.lora was given as the base model (a repo id
    /// or a path on the machine that trained it).
    pub base_model: Option<String>,
    pub config_path: PathBuf,
    pub weights_path: PathBuf,
    pub fine_tune_type: FineTuneType,
    /// The multiplier of `B·A` (mlx-lm's `scale`; there is no alpha/rank division).
    pub scale: f32,
    pub rank: Option<usize>,
    pub keys: Option<Vec<String>>,
    pub tensors: TensorStore,
    /// LoRA/DoRA modules by module path.
    pub modules: BTreeMap<String, LoraTensors>,
}

impl Adapter {
    /// Opens an adapter folder, or a repo id's snapshot in the local Hugging Face cache.
    pub fn open(arg: &Path) -> Result<Adapter> {
        let resolved = super::hub::resolve(arg)?;
        let dir = &resolved.dir;
        let config_path = dir.join("adapter_config.json");
        if !config_path.exists() {
            return Err(Error::input(
                &config_path,
                "missing (an mlx-lm adapter folder has adapter_config.json and adapters.safetensors)",
            ));
        }
        let cfg = super::read_json(&config_path)?;
        let AdapterSettings { fine_tune_type, scale, rank, keys } = AdapterSettings::parse(&config_path, &cfg)?;
        let weights_path = dir.join("adapters.safetensors");
        if !weights_path.exists() {
            return Err(Error::input(&weights_path, "missing"));
        }
        let tensors = TensorStore::open_file(&weights_path)?;
        let modules = if fine_tune_type == FineTuneType::Full {
            BTreeMap::new()
        } else {
            pair_modules(&weights_path, tensors.names(), fine_tune_type)?
        };
        Ok(Adapter {
            dir: dir.to_path_buf(),
            repo: resolved.repo.map(|(id, _)| id),
            base_model: cfg.get("model").and_then(Json::as_str).map(str::to_string),
            config_path,
            weights_path,
            fine_tune_type,
            scale,
            rank,
            keys,
            tensors,
            modules,
        })
    }
}

impl Adapter {
    /// Renames the adapted modules (and a full fine-tune's tensors) as the model's were
    /// renamed (a multimodal folder's language model), dropping those of other parts.
    pub fn rename(&mut self, f: impl Fn(&str) -> Option<String>) {
        let modules = std::mem::take(&mut self.modules);
        self.modules = modules.into_iter().filter_map(|(k, m)| f(&k).map(|n| (n, m))).collect();
        if self.fine_tune_type == FineTuneType::Full {
            self.tensors.rename(f);
        }
    }
}

/// What adapter_config.json says about how the adapter applies.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterSettings {
    pub fine_tune_type: FineTuneType,
    pub scale: f32,
    pub rank: Option<usize>,
    pub keys: Option<Vec<String>>,
}

impl AdapterSettings {
    /// Reads the settings from adapter_config.json's parsed value.
    pub fn parse(config_path: &Path, cfg: &Json) -> Result<AdapterSettings> {
        let fine_tune_type = match cfg.get("fine_tune_type").and_then(Json::as_str).unwrap_or("lora") {
            "lora" => FineTuneType::Lora,
            "dora" => FineTuneType::Dora,
            "full" => FineTuneType::Full,
            other => {
                return Err(Error::config(
                    config_path,
                    "fine_tune_type",
                    format!("'{other}' is not one of lora, dora, full"),
                ));
            }
        };
        let params = cfg.get("lora_parameters").filter(|v| !v.is_null());
        let get = |k: &str| params.and_then(|p| p.get(k)).filter(|v| !v.is_null());
        let scale = match get("scale") {
            None => 20.0, // mlx-lm's default
            Some(v) => {
                v.as_f64().ok_or_else(|| Error::config(config_path, "lora_parameters.scale", "not a number"))? as f32
            }
        };
        let rank = match get("rank") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| Error::config(config_path, "lora_parameters.rank", "not a positive integer"))?
                    as usize,
            ),
        };
        let keys = match get("keys") {
            None => None,
            Some(Json::Array(a)) => Some(
                a.iter()
                    .map(|k| {
                        k.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| Error::config(config_path, "lora_parameters.keys", "must be strings"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(_) => return Err(Error::config(config_path, "lora_parameters.keys", "must be a list")),
        };
        Ok(AdapterSettings { fine_tune_type, scale, rank, keys })
    }
}

/// Groups LoRA/DoRA tensor names into modules (`<module>.lora_a`, `.lora_b`, DoRA `.m`).
pub fn pair_modules<'a>(
    weights_path: &Path,
    names: impl Iterator<Item = &'a str>,
    fine_tune_type: FineTuneType,
) -> Result<BTreeMap<String, LoraTensors>> {
    let mut modules = BTreeMap::new();
    let mut parts: BTreeMap<String, [Option<String>; 3]> = BTreeMap::new();
    for name in names {
        let (module, slot) = match name.rsplit_once('.') {
            Some((m, "lora_a")) => (m, 0),
            Some((m, "lora_b")) => (m, 1),
            Some((m, "m")) if fine_tune_type == FineTuneType::Dora => (m, 2),
            _ => {
                return Err(Error::tensor(
                    weights_path,
                    name,
                    "is not a LoRA tensor (.lora_a, .lora_b or, for DoRA, .m)",
                ));
            }
        };
        parts.entry(module.to_string()).or_default()[slot] = Some(name.to_string());
    }
    for (module, [a, b, m]) in parts {
        let (Some(a), Some(b)) = (a.clone(), b.clone()) else {
            let (have, missing) = if a.is_some() { ("lora_a", "lora_b") } else { ("lora_b", "lora_a") };
            return Err(Error::tensor(
                weights_path,
                format!("{module}.{have}"),
                format!("module '{module}' has no {missing}"),
            ));
        };
        if fine_tune_type == FineTuneType::Dora && m.is_none() {
            return Err(Error::tensor(
                weights_path,
                &a,
                format!("DoRA module '{module}' has no magnitude '{module}.m'"),
            ));
        }
        modules.insert(module, LoraTensors { a, b, m });
    }
    Ok(modules)
}
