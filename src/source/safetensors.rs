//! Safetensors shards as validated, zero-copy views over mmap'd files.
//!
//! Header parsing and validation (offsets contiguous, sizes consistent with shape and
//! dtype, buffer fully covered) are the `safetensors` crate's; this module adds sharding
//! (`model.safetensors.index.json`), containment of shard paths inside the model folder,
//! and duplicate detection across shards.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Element types of safetensors tensors this tool understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    U32,
    U8,
    Other,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::U32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::U8 => 1,
            Dtype::Other => 0,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F16 | Dtype::BF16)
    }
}

/// Where one tensor lives.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    shard: usize,
    pub dtype: Dtype,
    pub dtype_name: String,
    pub shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A borrowed tensor: dtype, shape and its little-endian bytes.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub name: &'a str,
    pub dtype: Dtype,
    pub shape: &'a [usize],
    pub data: &'a [u8],
    pub file: &'a Path,
}

struct Shard {
    path: PathBuf,
    map: Mmap,
}

/// All tensors of a checkpoint, across its shards.
pub struct TensorStore {
    shards: Vec<Shard>,
    entries: BTreeMap<String, TensorEntry>,
}

impl TensorStore {
    /// Opens every shard of a model folder: the files named by
    /// `model.safetensors.index.json` when present, else `model*.safetensors` (as mlx-lm).
    pub fn open_dir(dir: &Path) -> Result<TensorStore> {
        let index_path = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index_path.exists() {
            index_files(dir, &index_path)?
        } else {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| Error::io(dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    n.starts_with("model") && n.ends_with(".safetensors")
                })
                .collect();
            v.sort();
            v
        };
        if files.is_empty() {
            return Err(Error::input(dir, "no model*.safetensors files found"));
        }
        let mut store = TensorStore { shards: Vec::new(), entries: BTreeMap::new() };
        for f in files {
            store.add_file(&f)?;
        }
        if index_path.exists() {
            store.check_index(&index_path)?;
        }
        Ok(store)
    }

    /// Opens a single safetensors file (adapters).
    pub fn open_file(path: &Path) -> Result<TensorStore> {
        let mut store = TensorStore { shards: Vec::new(), entries: BTreeMap::new() };
        store.add_file(path)?;
        Ok(store)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only mapping. A file truncated underneath us can fault; the
        // conversion re-checks the shard size before finishing (see `check_unchanged`).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let (header_len, meta) = ::safetensors::SafeTensors::read_metadata(&map)
            .map_err(|e| Error::input(path, format!("invalid safetensors file: {e}")))?;
        let base = 8 + header_len;
        let shard = self.shards.len();
        for (name, info) in meta.tensors() {
            let dtype_name = format!("{:?}", info.dtype);
            let dtype = match info.dtype {
                ::safetensors::Dtype::F32 => Dtype::F32,
                ::safetensors::Dtype::F16 => Dtype::F16,
                ::safetensors::Dtype::BF16 => Dtype::BF16,
                ::safetensors::Dtype::U32 => Dtype::U32,
                ::safetensors::Dtype::U8 => Dtype::U8,
                _ => Dtype::Other,
            };
            let (s, e) = info.data_offsets;
            let entry =
                TensorEntry { shard, dtype, dtype_name, shape: info.shape.clone(), start: base + s, end: base + e };
            if let Some(prev) = self.entries.insert(name.clone(), entry) {
                let other = &self.shards.get(prev.shard).map(|s| s.path.clone()).unwrap_or_else(|| path.to_path_buf());
                return Err(Error::tensor(
                    path,
                    name,
                    format!("listed twice (also in {})", other.file_name().unwrap_or_default().to_string_lossy()),
                ));
            }
        }
        self.shards.push(Shard { path: path.to_path_buf(), map });
        Ok(())
    }

    fn check_index(&self, index_path: &Path) -> Result<()> {
        let index = super::read_json(index_path)?;
        let Some(map) = index.get("weight_map").and_then(|m| m.as_object()) else {
            return Err(Error::config(index_path, "weight_map", "missing or not an object"));
        };
        for (name, file) in map {
            let Some(entry) = self.entries.get(name) else {
                return Err(Error::tensor(index_path, name, "listed in weight_map but not present in any shard"));
            };
            let actual = self.shards[entry.shard].path.file_name().map(|n| n.to_string_lossy().into_owned());
            if file.as_str() != actual.as_deref() {
                return Err(Error::tensor(
                    index_path,
                    name,
                    format!("weight_map says {file}, but the tensor is in {}", actual.unwrap_or_default()),
                ));
            }
        }
        Ok(())
    }

    /// Renames every tensor by `f`, dropping those it maps to `None`; returns how many
    /// were dropped.
    pub fn rename(&mut self, f: impl Fn(&str) -> Option<String>) -> usize {
        let before = self.entries.len();
        let entries = std::mem::take(&mut self.entries);
        self.entries = entries.into_iter().filter_map(|(k, e)| f(&k).map(|n| (n, e))).collect();
        before - self.entries.len()
    }

    pub fn get(&self, name: &str) -> Option<TensorView<'_>> {
        let (key, e) = self.entries.get_key_value(name)?;
        let shard = &self.shards[e.shard];
        Some(TensorView {
            name: key,
            dtype: e.dtype,
            shape: &e.shape,
            data: &shard.map[e.start..e.end],
            file: &shard.path,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn dtype_name(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|e| e.dtype_name.as_str())
    }

    /// The file holding a tensor (for error messages).
    pub fn file_of(&self, name: &str) -> Option<&Path> {
        self.entries.get(name).map(|e| self.shards[e.shard].path.as_path())
    }

    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.shards.iter().map(|s| s.path.as_path())
    }

    /// Total bytes of all shards.
    pub fn total_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.map.len() as u64).sum()
    }

    /// Fails if a shard's size changed since it was opened (a truncated input).
    pub fn check_unchanged(&self) -> Result<()> {
        for s in &self.shards {
            let len = std::fs::metadata(&s.path).map_err(|e| Error::io(&s.path, e))?.len();
            if len != s.map.len() as u64 {
                return Err(Error::input(&s.path, "the file changed size during the conversion"));
            }
        }
        Ok(())
    }
}

/// The shard files named by an index. A name read from a file must be a plain file name
/// (no separator, `..`, absolute path or NUL): the folder's own symlinks are followed, as
/// in a Hugging Face cache snapshot, whose files all link into `../../blobs/`.
fn index_files(dir: &Path, index_path: &Path) -> Result<Vec<PathBuf>> {
    let index = super::read_json(index_path)?;
    let Some(map) = index.get("weight_map").and_then(|m| m.as_object()) else {
        return Err(Error::config(index_path, "weight_map", "missing or not an object"));
    };
    let mut names = BTreeSet::new();
    for (tensor, file) in map {
        let Some(f) = file.as_str() else {
            return Err(Error::config(index_path, format!("weight_map.{tensor}"), "not a string"));
        };
        names.insert(f.to_string());
    }
    let mut files = Vec::new();
    for name in names {
        if !is_plain_file_name(&name) {
            return Err(Error::input(
                index_path,
                format!("shard path '{name}' must be a plain file name inside the model folder"),
            ));
        }
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(Error::input(
                index_path,
                format!("shard '{name}' named by the index is not a file in the folder"),
            ));
        }
        files.push(path);
    }
    Ok(files)
}

/// A single normal path component: no separator of any platform, not `.`/`..`, no NUL.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0', ':'])
}
