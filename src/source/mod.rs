//! Reading an MLX checkpoint folder: `config.json`, the safetensors shards (mmap'd and
//! validated), the quantization config, tokenizer files and an optional adapter.

pub mod adapter;
pub mod config;
pub mod safetensors;

pub use self::config::ModelConfig;
pub use self::safetensors::{Dtype, TensorStore, TensorView};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A checkpoint folder opened for conversion.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub tensors: TensorStore,
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        if !dir.is_dir() {
            return Err(Error::input(dir, "not a directory (expected an MLX model folder with config.json)"));
        }
        let config = ModelConfig::load(&dir.join("config.json"))?;
        let tensors = TensorStore::open_dir(dir)?;
        Ok(Checkpoint { dir: dir.to_path_buf(), config, tensors })
    }

    /// Reads an optional JSON file of the checkpoint (tokenizer_config.json, …).
    pub fn read_json(&self, name: &str) -> Result<Option<serde_json::Value>> {
        read_json_opt(&self.dir.join(name))
    }
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
