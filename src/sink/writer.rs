//! Streaming GGUF writer.

use std::collections::HashSet;
use std::io::{self, Write};

use crate::gguf::{encode, pad, tensor_nbytes, Value, ALIGNMENT, MAGIC, MAX_DIMS, MAX_NAME_LEN, VERSION};
use crate::quant::GgmlType;

/// A tensor as the header describes it: `ne` in ggml order (innermost first).
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderTensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub ggml_type: GgmlType,
}

/// A plan that would produce a file llama.cpp refuses.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LayoutError {
    #[error("tensor name '{0}' is longer than 63 bytes")]
    NameTooLong(String),
    #[error("duplicate tensor name '{0}'")]
    DuplicateTensor(String),
    #[error("tensor '{0}': 0 or more than 4 dimensions")]
    BadDims(String),
    #[error("tensor '{name}': row of {ne0} elements cannot be stored as {ty}")]
    BadRowLength { name: String, ne0: u64, ty: GgmlType },
    #[error("duplicate metadata key '{0}'")]
    DuplicateKey(String),
    #[error("empty metadata key")]
    EmptyKey,
    #[error("general.alignment must be the u32 value 32 (the only alignment this writer uses)")]
    Alignment,
}

/// Encodes the whole header (through the padding before the data section) and returns
/// it with each tensor's data size. Checks every layout rule llama.cpp's reader enforces.
pub fn encode_header(kvs: &[(String, Value)], tensors: &[HeaderTensor]) -> Result<(Vec<u8>, Vec<u64>), LayoutError> {
    let mut keys = HashSet::new();
    for (k, v) in kvs {
        if k.is_empty() {
            return Err(LayoutError::EmptyKey);
        }
        if !keys.insert(k.as_str()) {
            return Err(LayoutError::DuplicateKey(k.clone()));
        }
        if k == "general.alignment" && *v != Value::U32(ALIGNMENT as u32) {
            return Err(LayoutError::Alignment);
        }
    }
    let mut names = HashSet::new();
    let mut sizes = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.name.len() > MAX_NAME_LEN {
            return Err(LayoutError::NameTooLong(t.name.clone()));
        }
        if !names.insert(t.name.as_str()) {
            return Err(LayoutError::DuplicateTensor(t.name.clone()));
        }
        if t.ne.is_empty() || t.ne.len() > MAX_DIMS {
            return Err(LayoutError::BadDims(t.name.clone()));
        }
        let n = tensor_nbytes(t.ggml_type, &t.ne)
            .filter(|n| pad(*n).is_some())
            .ok_or_else(|| LayoutError::BadRowLength { name: t.name.clone(), ne0: t.ne[0], ty: t.ggml_type })?;
        sizes.push(n);
    }

    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as i64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as i64).to_le_bytes());
    for (k, v) in kvs {
        encode::string(&mut out, k);
        out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
        encode::value(&mut out, v);
    }
    let mut offset = 0u64;
    for (t, n) in tensors.iter().zip(&sizes) {
        encode::string(&mut out, &t.name);
        out.extend_from_slice(&(ggml_n_dims(&t.ne) as u32).to_le_bytes());
        for d in &t.ne[..ggml_n_dims(&t.ne)] {
            out.extend_from_slice(&(*d as i64).to_le_bytes());
        }
        out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += pad(*n).unwrap_or(*n);
    }
    let header_len = pad(out.len() as u64).unwrap_or(0) as usize;
    out.resize(header_len, 0);
    Ok((out, sizes))
}

/// ggml writes `ggml_n_dims`: trailing dimensions of 1 dropped, at least one kept.
pub fn ggml_n_dims(ne: &[u64]) -> usize {
    let mut n = ne.len();
    while n > 1 && ne[n - 1] == 1 {
        n -= 1;
    }
    n
}

/// Writes a GGUF file to `out`: the header at construction, then tensor data in header
/// order through [`GgufWriter::write`], which may be called with any chunking.
pub struct GgufWriter<W: Write> {
    out: W,
    names: Vec<String>,
    sizes: Vec<u64>,
    current: usize,
    written: u64,
    total: u64,
}

impl<W: Write> GgufWriter<W> {
    pub fn new(mut out: W, kvs: &[(String, Value)], tensors: &[HeaderTensor]) -> io::Result<Self> {
        let (header, sizes) =
            encode_header(kvs, tensors).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        out.write_all(&header)?;
        let names = tensors.iter().map(|t| t.name.clone()).collect();
        let mut w = GgufWriter { out, names, sizes, current: 0, written: 0, total: header.len() as u64 };
        w.skip_empty();
        Ok(w)
    }

    /// The tensor whose bytes are expected next, if any.
    pub fn current_tensor(&self) -> Option<&str> {
        self.names.get(self.current).map(String::as_str)
    }

    /// Appends data for the current tensor; crossing into the next tensor is an error,
    /// so a producer that writes the wrong number of bytes is caught.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let Some(&size) = self.sizes.get(self.current) else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "more tensor data than the header declares"));
            };
            let n = (size - self.written).min(data.len() as u64) as usize;
            self.out.write_all(&data[..n])?;
            self.written += n as u64;
            data = &data[n..];
            if self.written == size {
                self.end_tensor()?;
            }
        }
        Ok(())
    }

    fn end_tensor(&mut self) -> io::Result<()> {
        let size = self.sizes[self.current];
        let padded = pad(size).unwrap_or(size);
        self.out.write_all(&[0u8; ALIGNMENT as usize][..(padded - size) as usize])?;
        self.total += padded;
        self.current += 1;
        self.written = 0;
        self.skip_empty();
        Ok(())
    }

    fn skip_empty(&mut self) {
        while self.sizes.get(self.current) == Some(&0) {
            self.current += 1;
        }
    }

    /// Total bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.total + self.written
    }

    /// Checks every tensor was written and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(name) = self.current_tensor() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("tensor '{name}' is incomplete")));
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: super::TakeWrite> GgufWriter<W> {
    /// [`Self::write`], taking the buffer (`buf[start..]` is the data) when the data lies
    /// within the current tensor.
    pub fn write_taken(&mut self, buf: Vec<u8>, start: usize) -> io::Result<()> {
        let n = (buf.len() - start) as u64;
        let fits = self.sizes.get(self.current).is_some_and(|&size| n > 0 && n <= size - self.written);
        if !fits {
            return self.write(&buf[start..]);
        }
        self.out.write_taken(buf, start)?;
        self.written += n;
        if self.written == self.sizes[self.current] {
            self.end_tensor()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{Array, GgufFile};

    fn t(name: &str, ne: &[u64], ty: GgmlType) -> HeaderTensor {
        HeaderTensor { name: name.into(), ne: ne.to_vec(), ggml_type: ty }
    }

    #[test]
    fn golden_header_bytes() {
        let kvs =
            vec![("a".to_string(), Value::U32(7)), ("s".to_string(), Value::Array(Array::String(vec!["xy".into()])))];
        let (h, sizes) = encode_header(&kvs, &[t("w", &[4, 1], GgmlType::F32)]).unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(b"GGUF");
        want.extend_from_slice(&3u32.to_le_bytes());
        want.extend_from_slice(&1i64.to_le_bytes());
        want.extend_from_slice(&2i64.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(b'a');
        want.extend_from_slice(&4u32.to_le_bytes());
        want.extend_from_slice(&7u32.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(b's');
        want.extend_from_slice(&9u32.to_le_bytes());
        want.extend_from_slice(&8u32.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(b"xy");
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(b'w');
        want.extend_from_slice(&1u32.to_le_bytes()); // trailing 1 dropped
        want.extend_from_slice(&4i64.to_le_bytes());
        want.extend_from_slice(&0u32.to_le_bytes());
        want.extend_from_slice(&0u64.to_le_bytes());
        while want.len() % 32 != 0 {
            want.push(0);
        }
        assert_eq!(h, want);
        assert_eq!(sizes, vec![16]);
    }

    #[test]
    fn offsets_are_contiguous_and_padded() {
        let tensors = vec![t("a", &[3], GgmlType::F32), t("b", &[64, 2], GgmlType::Q8_0), t("c", &[5], GgmlType::F16)];
        let mut w = GgufWriter::new(Vec::new(), &[], &tensors).unwrap();
        w.write(&[1u8; 12]).unwrap();
        w.write(&[2u8; 100]).unwrap();
        w.write(&[2u8; 36]).unwrap();
        w.write(&[3u8; 10]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 32, 0);
        let f = GgufFile::parse(bytes).unwrap();
        let offs: Vec<u64> = f.tensors.iter().map(|t| t.offset).collect();
        assert_eq!(offs, vec![0, 32, 32 + 160]);
        assert_eq!(f.tensor_data(&f.tensors[1]), &[2u8; 136][..]);
        assert_eq!(f.tensor_data(&f.tensors[2]), &[3u8; 10][..]);
    }

    #[test]
    fn refuses_layouts_llama_cpp_rejects() {
        let long = "x".repeat(64);
        assert!(matches!(encode_header(&[], &[t(&long, &[1], GgmlType::F32)]), Err(LayoutError::NameTooLong(_))));
        assert!(encode_header(&[], &[t(&"x".repeat(63), &[1], GgmlType::F32)]).is_ok());
        assert!(matches!(
            encode_header(&[], &[t("a", &[1], GgmlType::F32), t("a", &[1], GgmlType::F32)]),
            Err(LayoutError::DuplicateTensor(_))
        ));
        assert!(matches!(encode_header(&[], &[t("a", &[2880], GgmlType::Q4K)]), Err(LayoutError::BadRowLength { .. })));
        assert!(matches!(encode_header(&[], &[t("a", &[1, 1, 1, 1, 1], GgmlType::F32)]), Err(LayoutError::BadDims(_))));
        let kv = |k: &str, v| (k.to_string(), v);
        assert!(matches!(
            encode_header(&[kv("k", Value::U8(1)), kv("k", Value::U8(2))], &[]),
            Err(LayoutError::DuplicateKey(_))
        ));
        assert!(matches!(encode_header(&[kv("general.alignment", Value::U64(32))], &[]), Err(LayoutError::Alignment)));
    }

    #[test]
    fn writer_rejects_wrong_amounts_of_data() {
        let tensors = vec![t("a", &[2], GgmlType::F32)];
        let mut w = GgufWriter::new(Vec::new(), &[], &tensors).unwrap();
        assert!(w.write(&[0u8; 9]).is_err());
        let w = GgufWriter::new(Vec::new(), &[], &tensors).unwrap();
        assert!(w.finish().is_err());
    }
}
