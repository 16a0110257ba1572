//! llama.cpp importance matrices (what `llama-imatrix` writes), read as llama-quantize reads
//! them (`tools/quantize/quantize.cpp` `load_imatrix`, `common/imatrix-loader.cpp`):
//! - GGUF: per tensor `<name>.in_sum2` (Σ activation² per column, per expert) and
//!   `<name>.counts` (tokens seen, per expert; f32, rounded to an integer); the weights are
//!   in_sum2 / count, or 1 where an expert saw no token. The `imatrix.datasets`,
//!   `imatrix.chunk_count` and `imatrix.chunk_size` keys are required.
//! - legacy `.dat`: i32 entry count; per entry i32 name length, the name, i32 ncall, i32
//!   value count, the f32 values; then optionally i32 chunk count, i32 length and the
//!   dataset name. The weights are values / ncall.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, Value};
use crate::quant::GgmlType;

/// An importance matrix: per tensor name, one weight per column (per expert, one after the
/// other for stacked experts).
#[derive(Clone, Debug, Default)]
pub struct Imatrix {
    pub path: PathBuf,
    pub entries: HashMap<String, Vec<f32>>,
    pub datasets: Vec<String>,
    pub chunks: u32,
}

impl Imatrix {
    pub fn load(path: &Path) -> Result<Imatrix> {
        let parsed = GgufFile::open(path).map_err(|e| Error::io(path, e))?;
        let mut m = match parsed {
            Ok(f) => from_gguf(path, &f)?,
            Err(crate::gguf::reader::GgufError::BadMagic) => from_legacy(path)?,
            Err(e) => return Err(Error::input(path, format!("not a readable imatrix GGUF: {e}"))),
        };
        m.path = path.to_path_buf();
        if let Some((name, _)) = m.entries.iter().find(|(_, v)| v.iter().any(|x| !x.is_finite())) {
            return Err(Error::input(path, format!("the weights of {name} are not all finite")));
        }
        Ok(m)
    }

    /// Keeps the entries whose names contain one of `include` (when given) and none of
    /// `exclude`, as llama-quantize's `--include-weights` / `--exclude-weights`.
    pub fn select(&mut self, include: &[String], exclude: &[String]) {
        self.entries.retain(|name, _| {
            (include.is_empty() || include.iter().any(|s| name.contains(s.as_str())))
                && !exclude.iter().any(|s| name.contains(s.as_str()))
        });
    }

    /// The weights for a tensor of `row_len` columns and `n_expert` stacked matrices, if the
    /// matrix has them; an entry of another size is an error (llama-quantize's), except for
    /// the token embeddings, for which it is ignored.
    pub fn for_tensor(&self, name: &str, row_len: usize, n_expert: usize) -> Result<Option<&[f32]>> {
        let Some(w) = self.entries.get(name) else { return Ok(None) };
        if w.len() == row_len * n_expert {
            return Ok(Some(w));
        }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            return Ok(None);
        }
        let msg = format!("has {} weights for {name}, which has {row_len} columns × {n_expert} experts", w.len());
        Err(Error::input(&self.path, msg))
    }
}

fn from_gguf(path: &Path, f: &GgufFile) -> Result<Imatrix> {
    let has = |k: &str| f.get(k).is_some();
    if !(has("imatrix.datasets") && has("imatrix.chunk_count") && has("imatrix.chunk_size")) {
        return Err(Error::input(path, "missing imatrix metadata (imatrix.datasets, chunk_count, chunk_size)"));
    }
    let datasets = match f.get("imatrix.datasets") {
        Some(Value::Array(crate::gguf::Array::String(d))) => d.clone(),
        _ => Vec::new(),
    };
    let chunks = f.get("imatrix.chunk_count").and_then(Value::as_u64).unwrap_or(0) as u32;
    let f32s = |name: &str| -> Result<Option<Vec<f32>>> {
        let Some(t) = f.tensor(name) else { return Ok(None) };
        if t.ggml_type != GgmlType::F32 {
            return Err(Error::input(path, format!("{name} is {}, not F32", t.ggml_type)));
        }
        let data = f.tensor_data(t);
        Ok(Some(data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
    };
    let mut entries = HashMap::new();
    for t in &f.tensors {
        let Some(name) = t.name.strip_suffix(".in_sum2") else { continue };
        let sums = f32s(&t.name)?.unwrap_or_default();
        let counts = f32s(&format!("{name}.counts"))?
            .ok_or_else(|| Error::input(path, format!("{name}.in_sum2 has no {name}.counts")))?;
        if counts.is_empty() || sums.len() % counts.len() != 0 {
            return Err(Error::input(path, format!("mismatched sums and counts for {name}")));
        }
        let per = sums.len() / counts.len();
        let mut w = Vec::with_capacity(sums.len());
        for (s, &c) in sums.chunks_exact(per).zip(&counts) {
            // common_imatrix_load rounds the count (std::lround), quantize.cpp divides by it.
            let count = c.round() as i64 as f32;
            w.extend(s.iter().map(|&v| if count > 0.0 { v / count } else { 1.0 }));
        }
        entries.insert(name.to_string(), w);
    }
    if entries.is_empty() {
        return Err(Error::input(path, "no data in the imatrix file"));
    }
    Ok(Imatrix { path: PathBuf::new(), entries, datasets, chunks })
}

/// Reads `n` little-endian i32s/f32s from `b` at `*pos`.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

fn from_legacy(path: &Path) -> Result<Imatrix> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |what: &str| Error::input(path, format!("not an imatrix file (legacy .dat): {what}"));
    let mut c = Cursor { b: &bytes, pos: 0 };
    let n = c.i32().filter(|&n| n >= 1).ok_or_else(|| bad("no entries"))?;
    let mut entries = HashMap::new();
    for i in 0..n {
        let len = c.i32().filter(|&l| l >= 0).ok_or_else(|| bad(&format!("entry {i} name")))?;
        let name = c.take(len as usize).ok_or_else(|| bad(&format!("entry {i} name")))?;
        let name = String::from_utf8_lossy(name).trim_end_matches('\0').to_string();
        let ncall = c.i32().ok_or_else(|| bad(&format!("{name}: call count")))?;
        let nval = c.i32().filter(|&v| v >= 1).ok_or_else(|| bad(&format!("{name}: value count")))?;
        let vals = c.take(nval as usize * 4).ok_or_else(|| bad(&format!("{name}: values")))?;
        let w = vals.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let w: Vec<f32> = if ncall > 0 { w.map(|v| v / ncall as i64 as f32).collect() } else { w.collect() };
        entries.insert(name, w);
    }
    let chunks = c.i32().unwrap_or(0).max(0) as u32;
    let datasets = match c.i32() {
        Some(len) if len > 0 => {
            c.take(len as usize).map(|d| String::from_utf8_lossy(d).to_string()).into_iter().collect()
        }
        _ => Vec::new(),
    };
    Ok(Imatrix { path: PathBuf::new(), entries, datasets, chunks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_files_divide_by_the_call_count() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.dat");
        let mut b = Vec::new();
        b.extend(1i32.to_le_bytes());
        b.extend(5i32.to_le_bytes());
        b.extend(b"w.bin");
        b.extend(4i32.to_le_bytes());
        b.extend(2i32.to_le_bytes());
        b.extend(2.0f32.to_le_bytes());
        b.extend(6.0f32.to_le_bytes());
        b.extend(7i32.to_le_bytes());
        b.extend(3i32.to_le_bytes());
        b.extend(b"abc");
        std::fs::write(&p, &b).unwrap();
        let m = Imatrix::load(&p).unwrap();
        assert_eq!(m.entries["w.bin"], vec![0.5, 1.5]);
        assert_eq!((m.chunks, m.datasets.clone()), (7, vec!["abc".to_string()]));
        assert_eq!(m.for_tensor("w.bin", 2, 1).unwrap(), Some(&[0.5f32, 1.5][..]));
        assert!(m.for_tensor("w.bin", 3, 1).is_err());
        std::fs::write(&p, &b[..10]).unwrap();
        assert!(Imatrix::load(&p).is_err(), "truncated");
    }
}
