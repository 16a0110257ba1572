//! Reading an MLX checkpoint folder: `config.json`, the safetensors shards (mmap'd and
//! validated), the quantization config, tokenizer files and an optional adapter.

pub mod adapter;
pub mod config;
pub mod hub;
pub mod multimodal;
pub mod readahead;
pub mod safetensors;

pub use self::config::ModelConfig;
pub use self::safetensors::{Dtype, TensorStore, TensorView};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A checkpoint folder opened for conversion.
pub struct Checkpoint {
    /// The folder read (for a repo id, its snapshot in the Hugging Face cache).
    pub dir: PathBuf,
    /// `ORG/NAME` and commit when opened by repo id.
    pub repo: Option<(String, String)>,
    pub config: ModelConfig,
    pub tensors: TensorStore,
    /// Weights of a multimodal folder's vision part, left out.
    pub left_out: usize,
}

impl Checkpoint {
    /// Opens a model folder, or a repo id's snapshot in the local Hugging Face cache.
    pub fn open(arg: &Path) -> Result<Checkpoint> {
        Checkpoint::open_resolved(hub::resolve(arg)?)
    }

    /// Opens a folder already resolved by [`hub::resolve`].
    pub fn open_resolved(resolved: hub::Resolved) -> Result<Checkpoint> {
        let hub::Resolved { dir, repo } = resolved;
        if !dir.is_dir() {
            return Err(Error::input(&dir, "not a directory (expected an MLX model folder with config.json)"));
        }
        let config = ModelConfig::load(&dir.join("config.json"))?;
        let mut tensors = TensorStore::open_dir(&dir)?;
        let left_out = if config.wrapper.is_some() { tensors.rename(multimodal::language_model_name) } else { 0 };
        Ok(Checkpoint { dir, repo, config, tensors, left_out })
    }

    /// The model's name: the repository's for a cached snapshot, else the folder's.
    pub fn name(&self) -> Option<String> {
        folder_name(&self.dir, self.repo.as_ref().map(|(id, _)| id.as_str()))
    }

    /// For a multimodal folder, what was converted and what left out (for the summary).
    pub fn multimodal_note(&self) -> Option<String> {
        let wrapper = self.config.wrapper.as_ref()?;
        Some(format!(
            "multimodal '{wrapper}' folder: its language model ('{}') is converted; the vision part ({} tensors) is left out",
            self.config.model_type, self.left_out
        ))
    }

    /// The file the chat template is taken from, if there is one.
    pub fn chat_template_source(&self) -> Result<Option<&'static str>> {
        let tok_cfg = self.read_json("tokenizer_config.json")?;
        Ok(crate::tokenizer::chat_template(&self.dir, tok_cfg.as_ref())?.map(|(_, source)| source))
    }

    /// Reads an optional JSON file of the checkpoint (tokenizer_config.json, …).
    pub fn read_json(&self, name: &str) -> Result<Option<serde_json::Value>> {
        read_json_opt(&self.dir.join(name))
    }
}

/// The name a folder goes by: the repository's (`NAME` of `ORG/NAME`) when it was opened by
/// repo id or is a cache snapshot, else its own (canonical, so `.` has one).
pub fn folder_name(dir: &Path, repo: Option<&str>) -> Option<String> {
    if let Some(id) = repo {
        return id.rsplit('/').next().map(str::to_string);
    }
    hub::cached_repo_name(dir)
        .or_else(|| dir.canonicalize().ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())))
}

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::input(path, format!("invalid JSON: {e}")))
}

pub(crate) fn read_json_opt(path: &Path) -> Result<Option<serde_json::Value>> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}
