//! The GGUF v3 container, as llama.cpp's reader (`ggml/src/gguf.cpp`) enforces it.
//!
//! ```text
//! "GGUF" u32:version i64:n_tensors i64:n_kv
//! kv*:     string:key i32:type value          (arrays: i32:elem_type u64:n elems; no nested arrays)
//! tensor*: string:name u32:n_dims i64:ne[n_dims] i32:ggml_type u64:offset
//! zero padding to ALIGNMENT (from file start), then tensor data, each tensor padded to ALIGNMENT
//! string := u64:len bytes (UTF-8, no NUL)
//! ```
//! All little-endian. Offsets are relative to the data section and must be exactly
//! contiguous in tensor-info order (`offset[i] = Σ pad(nbytes[j<i])`). Tensor names are
//! at most 63 bytes. KV value types are checked exactly by llama.cpp's loader (u32 ≠ u64).

pub mod reader;

pub use reader::{GgufError, GgufFile, TensorInfo};

use crate::quant::GgmlType;

pub const MAGIC: &[u8; 4] = b"GGUF";
pub const VERSION: u32 = 3;
pub const ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_NAME is 64 including the NUL terminator.
pub const MAX_NAME_LEN: usize = 63;
pub const MAX_DIMS: usize = 4;

/// `gguf_type` ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Encoded size of one scalar of this type (strings: the minimum, an empty string).
    pub fn min_size(self) -> usize {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }

    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// A metadata value. Arrays hold scalars of one type; nesting is not representable.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(Array),
}

/// A homogeneous array of scalars.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
            Value::Array(_) => ValueType::Array,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Human-readable rendering; arrays longer than `max_items` are abbreviated.
    pub fn display(&self, max_items: usize) -> String {
        match self {
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) => a.display(max_items),
            Value::F32(v) => format!("{v}"),
            Value::F64(v) => format!("{v}"),
            Value::Bool(v) => format!("{v}"),
            other => other.as_i128().map(|v| v.to_string()).unwrap_or_default(),
        }
    }

    fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v as i128,
            Value::I8(v) => v as i128,
            Value::U16(v) => v as i128,
            Value::I16(v) => v as i128,
            Value::U32(v) => v as i128,
            Value::I32(v) => v as i128,
            Value::U64(v) => v as i128,
            Value::I64(v) => v as i128,
            _ => return None,
        })
    }
}

macro_rules! array_dispatch {
    ($a:expr, $v:ident => $body:expr) => {
        match $a {
            Array::U8($v) => $body,
            Array::I8($v) => $body,
            Array::U16($v) => $body,
            Array::I16($v) => $body,
            Array::U32($v) => $body,
            Array::I32($v) => $body,
            Array::F32($v) => $body,
            Array::Bool($v) => $body,
            Array::String($v) => $body,
            Array::U64($v) => $body,
            Array::I64($v) => $body,
            Array::F64($v) => $body,
        }
    };
}

impl Array {
    pub fn elem_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    pub fn len(&self) -> usize {
        array_dispatch!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn display(&self, max_items: usize) -> String {
        let n = self.len();
        let shown: Vec<String> =
            array_dispatch!(self, v => v.iter().take(max_items).map(|x| format!("{x:?}")).collect());
        let more = if n > max_items { format!(", … ({n} items)") } else { String::new() };
        format!("[{}{}]", shown.join(", "), more)
    }
}

/// Little-endian encoding of values and strings (shared by the writer and tests).
pub(crate) mod encode {
    use super::{Array, Value};

    pub fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    /// The value's bytes without its type tag.
    pub fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(*x as u8),
            Value::String(s) => string(out, s),
            Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Array(a) => array(out, a),
        }
    }

    fn array(out: &mut Vec<u8>, a: &Array) {
        out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
        out.extend_from_slice(&(a.len() as u64).to_le_bytes());
        match a {
            Array::U8(v) => out.extend_from_slice(v),
            Array::I8(v) => out.extend(v.iter().map(|x| *x as u8)),
            Array::U16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::I16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::U32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::Bool(v) => out.extend(v.iter().map(|x| *x as u8)),
            Array::String(v) => v.iter().for_each(|s| string(out, s)),
            Array::U64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

/// `GGML_PAD(x, ALIGNMENT)`.
pub fn pad(x: u64) -> Option<u64> {
    x.checked_add(ALIGNMENT - 1).map(|v| v & !(ALIGNMENT - 1))
}

/// Bytes of a tensor of type `t` with ggml dims `ne` (innermost first), if valid.
pub fn tensor_nbytes(t: GgmlType, ne: &[u64]) -> Option<u64> {
    let (first, rest) = ne.split_first()?;
    let mut n = t.row_bytes(*first)?;
    for d in rest {
        n = n.checked_mul(*d)?;
    }
    Some(n)
}
