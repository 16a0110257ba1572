//! A GGUF reader that cannot be tricked: every count and length read from the file is
//! checked against the bytes that remain before anything is allocated, and every rule
//! llama.cpp's `gguf_init_from_reader` enforces is enforced here too.

use std::collections::HashSet;
use std::path::Path;

use memmap2::Mmap;

use super::{pad, tensor_nbytes, Array, Value, ValueType, ALIGNMENT, MAGIC, MAX_DIMS, MAX_NAME_LEN};
use crate::quant::GgmlType;

/// Why a byte string is not a valid GGUF file. Each variant names the violated rule.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GgufError {
    #[error("not a GGUF file (bad magic)")]
    BadMagic,
    #[error("unsupported GGUF version {0} (only 2 and 3 are read)")]
    UnsupportedVersion(u32),
    #[error("file ends early while reading {0}")]
    Truncated(&'static str),
    #[error("{what} count {n} is larger than the file could hold")]
    CountTooLarge { what: &'static str, n: i64 },
    #[error("string is not valid UTF-8 ({0})")]
    InvalidUtf8(&'static str),
    #[error("empty metadata key")]
    EmptyKey,
    #[error("duplicate metadata key '{0}'")]
    DuplicateKey(String),
    #[error("key '{key}': unknown value type {id}")]
    UnknownValueType { key: String, id: u32 },
    #[error("key '{0}': nested arrays are not allowed")]
    NestedArray(String),
    #[error("general.alignment must be a u32 power of two")]
    BadAlignment,
    #[error("tensor name '{0}' is longer than 63 bytes")]
    NameTooLong(String),
    #[error("duplicate tensor name '{0}'")]
    DuplicateTensor(String),
    #[error("tensor '{name}': {n_dims} dimensions (at most 4)")]
    TooManyDims { name: String, n_dims: u32 },
    #[error("tensor '{name}': negative dimension {ne}")]
    NegativeDim { name: String, ne: i64 },
    #[error("tensor '{name}': unknown ggml type {id}")]
    UnknownTensorType { name: String, id: u32 },
    #[error("tensor '{name}': row of {ne0} elements is not a multiple of the {ty} block size, or its size overflows")]
    BadRowLength { name: String, ne0: u64, ty: GgmlType },
    #[error("tensor '{name}' has offset {got}, expected {expected} (offsets must be contiguous)")]
    BadOffset { name: String, got: u64, expected: u64 },
    #[error("tensor data ends at byte {end}, beyond the file size {size}")]
    DataBeyondFile { end: u64, size: u64 },
}

/// One tensor's header entry. `ne` is ggml order (innermost first).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub ne: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Relative to the data section.
    pub offset: u64,
    pub nbytes: u64,
}

/// A parsed GGUF file (metadata, tensor infos), backed by the bytes it was read from.
pub struct GgufFile<B: AsRef<[u8]> = Mmap> {
    bytes: B,
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
}

impl GgufFile<Mmap> {
    /// Maps and parses a file. The mapping is read-only; the file must not change while open.
    pub fn open(path: &Path) -> std::io::Result<Result<GgufFile<Mmap>, GgufError>> {
        let file = std::fs::File::open(path)?;
        // SAFETY: read-only mapping; callers treat a concurrently modified file as corrupt input.
        let map = unsafe { Mmap::map(&file)? };
        Ok(GgufFile::parse(map))
    }
}

impl<B: AsRef<[u8]>> GgufFile<B> {
    pub fn parse(bytes: B) -> Result<GgufFile<B>, GgufError> {
        let (version, metadata, tensors, alignment, data_offset) = {
            let mut r = Cursor { buf: bytes.as_ref(), pos: 0 };
            if r.take(4, "magic")? != MAGIC {
                return Err(GgufError::BadMagic);
            }
            let version = r.u32("version")?;
            if version != 2 && version != 3 {
                return Err(GgufError::UnsupportedVersion(version));
            }
            let n_tensors = r.i64("tensor count")?;
            let n_kv = r.i64("metadata count")?;
            // Smallest encodings: a KV is key(8) + type(4) + 1 byte; a tensor info is
            // name(8) + n_dims(4) + type(4) + offset(8).
            let n_kv = r.bounded_count(n_kv, 13, "metadata")?;
            let n_tensors = r.bounded_count(n_tensors, 24, "tensor")?;
            let (metadata, alignment) = read_metadata(&mut r, n_kv)?;
            let tensors = read_tensor_infos(&mut r, n_tensors, alignment)?;
            let data_offset = pad_to(r.pos as u64, alignment).ok_or(GgufError::Truncated("padding"))?;
            let size = r.buf.len() as u64;
            if let Some(last) = tensors.last() {
                let end = data_offset.saturating_add(last.offset).saturating_add(last.nbytes);
                if end > size {
                    return Err(GgufError::DataBeyondFile { end, size });
                }
            }
            (version, metadata, tensors, alignment, data_offset)
        };
        Ok(GgufFile { bytes, version, metadata, tensors, alignment, data_offset })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor's bytes (bounds were checked when parsing).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + t.offset) as usize;
        &self.bytes.as_ref()[start..start + t.nbytes as usize]
    }

    pub fn file_size(&self) -> u64 {
        self.bytes.as_ref().len() as u64
    }
}

fn pad_to(x: u64, align: u64) -> Option<u64> {
    if align == ALIGNMENT {
        return pad(x);
    }
    x.checked_add(align - 1).map(|v| v / align * align)
}
/// The key/value section: unique, non-empty keys of known types, and the alignment.
fn read_metadata(r: &mut Cursor<'_>, n_kv: usize) -> Result<(Vec<(String, Value)>, u64), GgufError> {
    let mut metadata = Vec::with_capacity(n_kv);
    let mut keys = HashSet::with_capacity(n_kv);
    let mut alignment = ALIGNMENT;
    for _ in 0..n_kv {
        let key = r.string("metadata key")?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey);
        }
        if !keys.insert(key.clone()) {
            return Err(GgufError::DuplicateKey(key));
        }
        let id = r.u32("value type")?;
        let ty = ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType { key: key.clone(), id })?;
        let value = r.value(ty, &key)?;
        if key == "general.alignment" {
            alignment = match value {
                Value::U32(a) if a != 0 && a.is_power_of_two() => a as u64,
                _ => return Err(GgufError::BadAlignment),
            };
        }
        metadata.push((key, value));
    }
    Ok((metadata, alignment))
}

/// The tensor infos: unique names, known types, whole blocks per row, contiguous padded
/// offsets.
fn read_tensor_infos(r: &mut Cursor<'_>, n_tensors: usize, alignment: u64) -> Result<Vec<TensorInfo>, GgufError> {
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors);
    let mut names = HashSet::with_capacity(n_tensors);
    let mut expected: u64 = 0;
    for _ in 0..n_tensors {
        let t = read_tensor_info(r)?;
        if !names.insert(t.name.clone()) {
            return Err(GgufError::DuplicateTensor(t.name));
        }
        if t.offset != expected {
            return Err(GgufError::BadOffset { name: t.name, got: t.offset, expected });
        }
        let ne0 = t.ne.first().copied().unwrap_or(1);
        expected = pad_to(t.nbytes, alignment)
            .and_then(|p| expected.checked_add(p))
            .ok_or(GgufError::BadRowLength { name: t.name.clone(), ne0, ty: t.ggml_type })?;
        tensors.push(t);
    }
    Ok(tensors)
}

fn read_tensor_info(r: &mut Cursor<'_>) -> Result<TensorInfo, GgufError> {
    let name = r.string("tensor name")?;
    if name.len() > MAX_NAME_LEN {
        return Err(GgufError::NameTooLong(name));
    }
    let n_dims = r.u32("tensor dims")?;
    if n_dims as usize > MAX_DIMS {
        return Err(GgufError::TooManyDims { name, n_dims });
    }
    let mut ne = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        let d = r.i64("tensor shape")?;
        if d < 0 {
            return Err(GgufError::NegativeDim { name, ne: d });
        }
        ne.push(d as u64);
    }
    let id = r.u32("tensor type")?;
    let ggml_type = GgmlType::from_id(id).ok_or_else(|| GgufError::UnknownTensorType { name: name.clone(), id })?;
    let offset = r.u64("tensor offset")?;
    let ne0 = ne.first().copied().unwrap_or(1);
    let elems_ok = ne.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).is_some_and(|n| n <= i64::MAX as u64);
    let nbytes = if ne.is_empty() { Some(ggml_type.type_size() as u64) } else { tensor_nbytes(ggml_type, &ne) };
    let nbytes = match (elems_ok, nbytes) {
        (true, Some(n)) if ne.is_empty() || ne0 % ggml_type.block_size() as u64 == 0 => n,
        _ => return Err(GgufError::BadRowLength { name, ne0, ty: ggml_type }),
    };
    Ok(TensorInfo { name, ne, ggml_type, offset, nbytes })
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, GgufError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// A count whose items need at least `min_item` bytes each.
    fn bounded_count(&self, n: i64, min_item: usize, what: &'static str) -> Result<usize, GgufError> {
        if n < 0 || (n as u64) > (self.remaining() / min_item) as u64 {
            return Err(GgufError::CountTooLarge { what, n });
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        if len > self.remaining() as u64 {
            return Err(GgufError::Truncated(what));
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8(what))
    }

    fn value(&mut self, ty: ValueType, key: &str) -> Result<Value, GgufError> {
        const W: &str = "metadata value";
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(W)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(W)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(W)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(W)?)),
            ValueType::U32 => Value::U32(self.u32(W)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(W)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(W)?)),
            ValueType::Bool => Value::Bool(self.array::<1>(W)?[0] != 0),
            ValueType::String => Value::String(self.string(W)?),
            ValueType::U64 => Value::U64(self.u64(W)?),
            ValueType::I64 => Value::I64(self.i64(W)?),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(W)?)),
            ValueType::Array => {
                let id = self.u32("array type")?;
                let elem =
                    ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType { key: key.to_string(), id })?;
                if elem == ValueType::Array {
                    return Err(GgufError::NestedArray(key.to_string()));
                }
                let n = self.u64("array length")?;
                let n = self.bounded_count(i64::try_from(n).unwrap_or(-1), elem.min_size(), "array element")?;
                Value::Array(self.array_items(elem, n, key)?)
            }
        })
    }

    fn array_items(&mut self, elem: ValueType, n: usize, key: &str) -> Result<Array, GgufError> {
        macro_rules! items {
            ($variant:ident, $ty:ident) => {{
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    match self.value(ValueType::$ty, key)? {
                        Value::$ty(x) => v.push(x),
                        _ => unreachable!("value() returns the requested type"),
                    }
                }
                Array::$variant(v)
            }};
        }
        Ok(match elem {
            ValueType::U8 => items!(U8, U8),
            ValueType::I8 => items!(I8, I8),
            ValueType::U16 => items!(U16, U16),
            ValueType::I16 => items!(I16, I16),
            ValueType::U32 => items!(U32, U32),
            ValueType::I32 => items!(I32, I32),
            ValueType::F32 => items!(F32, F32),
            ValueType::Bool => items!(Bool, Bool),
            ValueType::String => items!(String, String),
            ValueType::U64 => items!(U64, U64),
            ValueType::I64 => items!(I64, I64),
            ValueType::F64 => items!(F64, F64),
            ValueType::Array => return Err(GgufError::NestedArray(key.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{GgufWriter, HeaderTensor};

    fn kv(k: &str, v: Value) -> (String, Value) {
        (k.to_string(), v)
    }

    fn sample() -> Vec<u8> {
        let kvs = vec![
            kv("general.architecture", Value::String("gpt-oss".into())),
            kv("a.u64", Value::U64(u64::MAX)),
            kv("a.arr", Value::Array(Array::String(vec!["x".into(), "".into()]))),
            kv("a.bools", Value::Array(Array::Bool(vec![true, false]))),
            kv("a.f64", Value::F64(-0.25)),
        ];
        let tensors = vec![
            HeaderTensor { name: "t0".into(), ne: vec![5], ggml_type: GgmlType::F32 },
            HeaderTensor { name: "t1".into(), ne: vec![32, 3], ggml_type: GgmlType::Q8_0 },
        ];
        let mut w = GgufWriter::new(Vec::new(), &kvs, &tensors).unwrap();
        w.write(&[7u8; 20]).unwrap();
        w.write(&[9u8; 102]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_what_the_writer_writes() {
        let f = GgufFile::parse(sample()).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(f.get("a.u64"), Some(&Value::U64(u64::MAX)));
        assert_eq!(f.get("a.arr"), Some(&Value::Array(Array::String(vec!["x".into(), "".into()]))));
        assert_eq!(f.get("a.bools"), Some(&Value::Array(Array::Bool(vec![true, false]))));
        assert_eq!(f.tensors[1].ne, vec![32, 3]);
        assert_eq!(f.tensor_data(&f.tensors[1]), &[9u8; 102][..]);
        assert_eq!(f.data_offset % 32, 0);
    }

    /// Every strict prefix of a valid file is rejected without panicking.
    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for n in 0..bytes.len() - 1 {
            // The last tensor's padding is not data; a cut inside it is still valid.
            let r = GgufFile::parse(bytes[..n].to_vec());
            if n < bytes.len() - 26 {
                assert!(r.is_err(), "prefix {n} accepted");
            }
        }
    }

    fn header(n_tensors: i64, n_kv: i64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&n_tensors.to_le_bytes());
        b.extend_from_slice(&n_kv.to_le_bytes());
        b
    }

    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend_from_slice(&(s.len() as u64).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    }

    fn err(b: Vec<u8>) -> GgufError {
        GgufFile::parse(b).err().expect("must be rejected")
    }

    #[test]
    fn one_rejection_per_header_and_metadata_rule() {
        assert_eq!(err(b"GGUX\x03\0\0\0".to_vec()), GgufError::BadMagic);
        let mut b = header(0, 0);
        b[4] = 1;
        assert_eq!(err(b), GgufError::UnsupportedVersion(1));
        assert!(matches!(err(header(0, 1 << 40)), GgufError::CountTooLarge { .. }));
        assert!(matches!(err(header(-1, 0)), GgufError::CountTooLarge { .. }));

        let mut b = header(0, 1);
        string(&mut b, "");
        b.extend_from_slice(&[4, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(err(b), GgufError::EmptyKey);

        let mut b = header(0, 2);
        for _ in 0..2 {
            string(&mut b, "k");
            b.extend_from_slice(&[4, 0, 0, 0, 1, 0, 0, 0]);
        }
        assert_eq!(err(b), GgufError::DuplicateKey("k".into()));

        let mut b = header(0, 1);
        string(&mut b, "k");
        b.extend_from_slice(&[13, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(err(b), GgufError::UnknownValueType { id: 13, .. }));

        let mut b = header(0, 1);
        string(&mut b, "k");
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        assert_eq!(err(b), GgufError::NestedArray("k".into()));

        // An array length that would need more bytes than remain: no allocation, an error.
        let mut b = header(0, 1);
        string(&mut b, "k");
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(matches!(err(b), GgufError::CountTooLarge { .. }));

        // A string length beyond the file.
        let mut b = header(0, 1);
        b.extend_from_slice(&(1u64 << 62).to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        assert!(matches!(err(b), GgufError::Truncated(_)));

        let mut b = header(0, 1);
        string(&mut b, "general.alignment");
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&48u32.to_le_bytes());
        assert_eq!(err(b), GgufError::BadAlignment);

        let mut b = header(0, 1);
        string(&mut b, "k");
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&[0xFF, 0xFE]);
        assert!(matches!(err(b), GgufError::InvalidUtf8(_)));
    }

    #[test]
    fn one_rejection_per_tensor_info_rule() {
        let tensor = |name: &str, dims: &[i64], ty: u32, off: u64| {
            let mut b = Vec::new();
            string(&mut b, name);
            b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&off.to_le_bytes());
            b
        };
        let file = |infos: &[Vec<u8>], data: usize| {
            let mut b = header(infos.len() as i64, 0);
            for i in infos {
                b.extend_from_slice(i);
            }
            b.resize(b.len().div_ceil(32) * 32 + data, 0);
            b
        };
        assert!(matches!(err(file(&[tensor(&"n".repeat(64), &[1], 0, 0)], 32)), GgufError::NameTooLong(_)));
        assert!(matches!(
            err(file(&[tensor("a", &[1], 0, 0), tensor("a", &[1], 0, 32)], 64)),
            GgufError::DuplicateTensor(_)
        ));
        assert!(matches!(err(file(&[tensor("a", &[1, 1, 1, 1, 1], 0, 0)], 32)), GgufError::TooManyDims { .. }));
        assert!(matches!(err(file(&[tensor("a", &[-1], 0, 0)], 32)), GgufError::NegativeDim { .. }));
        assert!(matches!(err(file(&[tensor("a", &[1], 4, 0)], 32)), GgufError::UnknownTensorType { id: 4, .. }));
        assert!(matches!(err(file(&[tensor("a", &[33], 8, 0)], 64)), GgufError::BadRowLength { .. }));
        assert!(matches!(err(file(&[tensor("a", &[1 << 40, 1 << 40], 0, 0)], 32)), GgufError::BadRowLength { .. }));
        assert!(matches!(
            err(file(&[tensor("a", &[1], 0, 0), tensor("b", &[1], 0, 64)], 128)),
            GgufError::BadOffset { expected: 32, .. }
        ));
        assert!(matches!(err(file(&[tensor("a", &[1], 0, 32)], 64)), GgufError::BadOffset { expected: 0, .. }));
        assert!(matches!(err(file(&[tensor("a", &[1000], 0, 0)], 32)), GgufError::DataBeyondFile { .. }));
        assert!(GgufFile::parse(file(&[tensor("a", &[8], 0, 0)], 32)).is_ok());
    }
}
