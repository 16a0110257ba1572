//! `inspect`: a GGUF file's metadata and tensor table, as text or JSON.

use std::fmt::Write;
use std::path::Path;

use serde_json::{json, Value as Json};

use crate::error::{Error, Result};
use crate::gguf::{Array, GgufFile, Value};

pub fn inspect_gguf(path: &Path, as_json: bool) -> Result<String> {
    let f = GgufFile::open(path)
        .map_err(|e| Error::io(path, e))?
        .map_err(|e| Error::Gguf { path: path.into(), source: e })?;
    if as_json {
        let metadata: serde_json::Map<String, Json> =
            f.metadata.iter().map(|(k, v)| (k.clone(), value_json(v))).collect();
        let tensors: Vec<Json> = f
            .tensors
            .iter()
            .map(|t| {
                json!({
                    "name": t.name, "type": t.ggml_type.name(), "ne": t.ne, "offset": t.offset,
                    "nbytes": t.nbytes, "crc32": crc32fast::hash(f.tensor_data(t)),
                })
            })
            .collect();
        let doc = json!({"version": f.version, "alignment": f.alignment, "data_offset": f.data_offset, "metadata": metadata, "tensors": tensors});
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "GGUF v{}, {} metadata keys, {} tensors, {} bytes",
        f.version,
        f.metadata.len(),
        f.tensors.len(),
        f.file_size()
    );
    for (k, v) in &f.metadata {
        let _ = writeln!(s, "  {k:<48} {:<8} {}", v.value_type().name(), v.display(8));
    }
    let _ = writeln!(s, "tensors:");
    for t in &f.tensors {
        let _ =
            writeln!(s, "  {:<40} {:<6} {:<24} {:>12}", t.name, t.ggml_type.name(), format!("{:?}", t.ne), t.nbytes);
    }
    Ok(s)
}

fn value_json(v: &Value) -> Json {
    let scalar = match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::String(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Array(a) => return json!({"type": "array", "elem_type": a.elem_type().name(), "items": array_json(a)}),
    };
    json!({"type": v.value_type().name(), "value": scalar})
}

fn array_json(a: &Array) -> Json {
    match a {
        Array::U8(v) => json!(v),
        Array::I8(v) => json!(v),
        Array::U16(v) => json!(v),
        Array::I16(v) => json!(v),
        Array::U32(v) => json!(v),
        Array::I32(v) => json!(v),
        Array::F32(v) => json!(v),
        Array::Bool(v) => json!(v),
        Array::String(v) => json!(v),
        Array::U64(v) => json!(v),
        Array::I64(v) => json!(v),
        Array::F64(v) => json!(v),
    }
}
