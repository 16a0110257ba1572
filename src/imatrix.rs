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
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::gguf::reader::TensorInfo;
use crate::gguf::{GgufFile, Value};
use crate::quant::GgmlType;

/// An importance matrix: per tensor name, one weight per column (per expert, one after the
/// other for stacked experts). The weights stay in the mapped file until a tensor needs
/// them: a large MoE's matrix runs to hundreds of MB (gpt-oss-120b's 108 expert tensors
/// alone hold 128 × 2880 f32 each), and memory must stay flat in model size.
pub struct Imatrix {
    pub path: PathBuf,
    entries: HashMap<String, Entry>,
    bytes: Bytes,
    pub datasets: Vec<String>,
    pub chunks: u32,
}

/// The file's bytes.
enum Bytes {
    Gguf(GgufFile),
    Legacy(Mmap),
}

/// Where one tensor's weights lie in the file.
enum Entry {
    /// `<name>.in_sum2` and `<name>.counts` (both F32): the weights are their quotient.
    Gguf { sums: TensorInfo, counts: TensorInfo },
    /// A legacy entry's values (bytes) and the call count dividing them.
    Legacy { values: Range<usize>, ncall: i32 },
}

impl Entry {
    fn len(&self) -> usize {
        match self {
            Entry::Gguf { sums, .. } => sums.nbytes as usize / 4,
            Entry::Legacy { values, .. } => values.len() / 4,
        }
    }
}

impl std::fmt::Debug for Imatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Imatrix({}, {} entries)", self.path.display(), self.entries.len())
    }
}

impl Imatrix {
    pub fn load(path: &Path) -> Result<Imatrix> {
        let parsed = GgufFile::open(path).map_err(|e| Error::io(path, e))?;
        let mut m = match parsed {
            Ok(f) => from_gguf(path, f)?,
            Err(crate::gguf::reader::GgufError::BadMagic) => from_legacy(path)?,
            Err(e) => return Err(Error::input(path, format!("not a readable imatrix GGUF: {e}"))),
        };
        m.path = path.to_path_buf();
        // Checked once here, each entry decoded and dropped in turn.
        let mut names: Vec<&String> = m.entries.keys().collect();
        names.sort();
        if let Some(name) = names.into_iter().find(|n| m.weights(n).is_some_and(|w| w.iter().any(|x| !x.is_finite()))) {
            return Err(Error::input(path, format!("the weights of {name} are not all finite")));
        }
        Ok(m)
    }

    /// Entries (after [`Self::select`]).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps the entries whose names contain one of `include` (when given) and none of
    /// `exclude`, as llama-quantize's `--include-weights` / `--exclude-weights`.
    pub fn select(&mut self, include: &[String], exclude: &[String]) {
        self.entries.retain(|name, _| {
            (include.is_empty() || include.iter().any(|s| name.contains(s.as_str())))
                && !exclude.iter().any(|s| name.contains(s.as_str()))
        });
    }

    /// Whether a tensor of `row_len` columns and `n_expert` stacked matrices has weights
    /// here; an entry of another size is an error (llama-quantize's), except for the token
    /// embeddings, for which it is ignored.
    pub fn applies_to(&self, name: &str, row_len: usize, n_expert: usize) -> Result<bool> {
        let Some(e) = self.entries.get(name) else { return Ok(false) };
        if e.len() == row_len * n_expert {
            return Ok(true);
        }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            return Ok(false);
        }
        let msg = format!("has {} weights for {name}, which has {row_len} columns × {n_expert} experts", e.len());
        Err(Error::input(&self.path, msg))
    }

    /// The weights of `name`, decoded from the file.
    pub fn weights(&self, name: &str) -> Option<Vec<f32>> {
        Some(match (self.entries.get(name)?, &self.bytes) {
            (Entry::Gguf { sums, counts }, Bytes::Gguf(f)) => {
                let (sums, counts) = (f32s(f.tensor_data(sums)), f32s(f.tensor_data(counts)));
                let per = sums.len() / counts.len();
                let mut w = Vec::with_capacity(sums.len());
                for (s, &c) in sums.chunks_exact(per).zip(&counts) {
                    // common_imatrix_load rounds the count (std::lround), quantize.cpp divides by it.
                    let count = c.round() as i64 as f32;
                    w.extend(s.iter().map(|&v| if count > 0.0 { v / count } else { 1.0 }));
                }
                w
            }
            (Entry::Legacy { values, ncall }, Bytes::Legacy(map)) => {
                let w = f32s(&map[values.clone()]);
                if *ncall > 0 {
                    w.into_iter().map(|v| v / *ncall as i64 as f32).collect()
                } else {
                    w
                }
            }
            _ => unreachable!("an entry is read from the file it was found in"),
        })
    }
}

/// One tensor's weights in an importance matrix, decoded when the tensor is converted.
#[derive(Clone)]
pub struct TensorWeights {
    matrix: Arc<Imatrix>,
    name: String,
}

impl TensorWeights {
    pub fn new(matrix: &Arc<Imatrix>, name: &str) -> TensorWeights {
        TensorWeights { matrix: matrix.clone(), name: name.to_string() }
    }

    pub fn decode(&self) -> Vec<f32> {
        self.matrix.weights(&self.name).unwrap_or_default()
    }
}

impl std::fmt::Debug for TensorWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorWeights({})", self.name)
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    let mut v = Vec::with_capacity(b.len() / 4);
    crate::quant::f32::decode(b, &mut v);
    v
}

fn from_gguf(path: &Path, f: GgufFile) -> Result<Imatrix> {
    let has = |k: &str| f.get(k).is_some();
    if !(has("imatrix.datasets") && has("imatrix.chunk_count") && has("imatrix.chunk_size")) {
        return Err(Error::input(path, "missing imatrix metadata (imatrix.datasets, chunk_count, chunk_size)"));
    }
    let datasets = match f.get("imatrix.datasets") {
        Some(Value::Array(crate::gguf::Array::String(d))) => d.clone(),
        _ => Vec::new(),
    };
    let chunks = f.get("imatrix.chunk_count").and_then(Value::as_u64).unwrap_or(0) as u32;
    let f32_info = |name: &str| -> Result<Option<TensorInfo>> {
        let Some(t) = f.tensor(name) else { return Ok(None) };
        if t.ggml_type != GgmlType::F32 {
            return Err(Error::input(path, format!("{name} is {}, not F32", t.ggml_type)));
        }
        Ok(Some(t.clone()))
    };
    let mut entries = HashMap::new();
    for t in &f.tensors {
        let Some(name) = t.name.strip_suffix(".in_sum2") else { continue };
        let sums = f32_info(&t.name)?.expect("listed");
        let counts = f32_info(&format!("{name}.counts"))?
            .ok_or_else(|| Error::input(path, format!("{name}.in_sum2 has no {name}.counts")))?;
        let (n_sums, n_counts) = (sums.nbytes / 4, counts.nbytes / 4);
        if n_counts == 0 || n_sums % n_counts != 0 {
            return Err(Error::input(path, format!("mismatched sums and counts for {name}")));
        }
        entries.insert(name.to_string(), Entry::Gguf { sums, counts });
    }
    if entries.is_empty() {
        return Err(Error::input(path, "no data in the imatrix file"));
    }
    Ok(Imatrix { path: PathBuf::new(), entries, bytes: Bytes::Gguf(f), datasets, chunks })
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
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: read-only mapping; a file changed while it is read is corrupt input.
    let bytes = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
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
        let start = c.pos;
        c.take(nval as usize * 4).ok_or_else(|| bad(&format!("{name}: values")))?;
        entries.insert(name, Entry::Legacy { values: start..c.pos, ncall });
    }
    let chunks = c.i32().unwrap_or(0).max(0) as u32;
    let datasets = match c.i32() {
        Some(len) if len > 0 => {
            c.take(len as usize).map(|d| String::from_utf8_lossy(d).to_string()).into_iter().collect()
        }
        _ => Vec::new(),
    };
    Ok(Imatrix { path: PathBuf::new(), entries, bytes: Bytes::Legacy(bytes), datasets, chunks })
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
        assert_eq!(m.weights("w.bin"), Some(vec![0.5, 1.5]));
        assert_eq!((m.chunks, m.datasets.clone()), (7, vec!["abc".to_string()]));
        assert!(m.applies_to("w.bin", 2, 1).unwrap());
        assert!(!m.applies_to("other", 2, 1).unwrap());
        assert!(m.applies_to("w.bin", 3, 1).is_err());
        std::fs::write(&p, &b[..10]).unwrap();
        assert!(Imatrix::load(&p).is_err(), "truncated");
    }
}
