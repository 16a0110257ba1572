//! `inspect`: a GGUF file's metadata and tensor table, as text or JSON.

use std::fmt::Write;
use std::path::Path;

use serde_json::{json, Value as Json};

use crate::arch::spec::VocabKind;
use crate::error::{Error, Result};
use crate::gguf::{Array, GgufFile, Value};

/// `inspect` of a path: an MLX model folder or a GGUF file.
pub fn inspect(path: &Path, as_json: bool) -> Result<String> {
    if path.is_file() {
        inspect_gguf(path, as_json)
    } else {
        inspect_mlx(path, as_json)
    }
}

/// An MLX checkpoint: architecture, parameters, quantization per tensor class, adapters
/// found beside it, and size on disk.
pub fn inspect_mlx(dir: &Path, as_json: bool) -> Result<String> {
    use crate::plan::{OutType, PlanOptions, TypeOverrides};
    let ckpt = crate::source::Checkpoint::open(dir)?;
    let dir = ckpt.dir.as_path();
    // The pre-tokenizer is reported below, so an unknown tokenizer hash must not stop inspect.
    let opts = PlanOptions {
        outtype: OutType::Auto,
        name: None,
        overrides: TypeOverrides::default(),
        tokenizer_pre: Some("default".into()),
        imatrix: None,
    };
    // The plan convert makes (types and how each tensor is made).
    let plan = crate::convert::build_plan(&ckpt, None, &opts)?;
    let params: u64 = plan.tensors.iter().map(|t| t.shape.iter().product::<usize>() as u64).sum();
    let rows = crate::report::summarize(&plan);
    let adapters = adapters_beside(dir)?;
    let size = ckpt.tensors.total_bytes();
    let (sentencepiece, pre) = tokenizer_pre(plan.arch, dir);
    let (tok_pre, tok_source, tok_hash) = match &pre {
        Some(Ok(c)) => (Some(c.name.clone()), Some(c.source.describe()), c.hash.clone()),
        _ => (None, None, None),
    };
    if as_json {
        let doc = json!({
            "path": dir, "model_type": ckpt.config.model_type, "multimodal": ckpt.multimodal_note(),
            "chat_template_from": ckpt.chat_template_source()?, "architecture": plan.arch, "parameters": params,
            "bytes": size, "classes": crate::report::rows_json(&rows), "adapters": adapters,
            "tokenizer_pre": tok_pre, "tokenizer_pre_source": tok_source, "tokenizer_hash": tok_hash,
            "sentencepiece": sentencepiece,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()));
    }
    let mut s = String::new();
    let _ = writeln!(s, "MLX checkpoint {} ({} → GGUF {})", dir.display(), ckpt.config.model_type, plan.arch);
    if let Some(m) = ckpt.multimodal_note() {
        let _ = writeln!(s, "  {m}");
    }
    let _ = writeln!(s, "  parameters: {:.3} B; files: {}", params as f64 / 1e9, crate::report::human_bytes(size));
    let _ = writeln!(s, "  tensors by class (source format → the default `auto` output type):");
    s += &crate::report::render_table(&rows);
    match &pre {
        None => {
            let _ = writeln!(s, "  tokenizer: SentencePiece (tokenizer.model → llama.cpp's llama vocabulary)");
        }
        Some(Ok(c)) => {
            let _ = writeln!(s, "  tokenizer pre-tokenizer: {} ({})", c.name, c.source.describe());
        }
        Some(Err(e)) => {
            let _ = writeln!(s, "  tokenizer pre-tokenizer: not recognised; convert needs --tokenizer-pre NAME ({e})");
        }
    }
    match ckpt.chat_template_source()? {
        Some(t) => {
            let _ = writeln!(s, "  chat template: from {t}");
        }
        None => {
            let _ = writeln!(s, "  chat template: none");
        }
    }
    if adapters.is_empty() {
        let _ = writeln!(s, "  adapters: none found beside the model");
    } else {
        for a in adapters {
            let _ = writeln!(s, "  adapter: {a}");
        }
    }
    Ok(s)
}

/// Adapter folders in or beside a model folder (any with an adapter_config.json).
fn adapters_beside(dir: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("adapter_config.json").exists())
        .chain(dir.join("adapter_config.json").exists().then(|| dir.to_path_buf()))
        .map(|p| p.display().to_string())
        .collect())
}

/// tokenizer.ggml.pre as convert chooses it, or why it cannot; `None` for SentencePiece.
type PreChoice = Option<Result<crate::tokenizer::pre::PreChoice>>;

/// Whether the vocabulary is SentencePiece, and the pre-tokenizer choice.
fn tokenizer_pre(arch: &str, dir: &Path) -> (bool, PreChoice) {
    let gemma4 = crate::arch::spec_for_file(arch, None).is_some_and(|s| s.vocab == VocabKind::Gemma4);
    let sentencepiece = !gemma4 && crate::tokenizer::Vocab::is_sentencepiece_dir(dir);
    let pre = match () {
        _ if gemma4 => Some(Ok(crate::tokenizer::gemma4::pre_choice())),
        _ if sentencepiece => None,
        _ => Some(crate::tokenizer::pre::choose_pre(&dir.join("tokenizer.json"), None)),
    };
    (sentencepiece, pre)
}

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
    let mut by_type = std::collections::BTreeMap::new();
    for t in &f.tensors {
        let e = by_type.entry(t.ggml_type.name()).or_insert((0usize, 0u64));
        e.0 += 1;
        e.1 += t.nbytes;
    }
    let _ = writeln!(s, "by type:");
    for (ty, (n, b)) in by_type {
        let _ = writeln!(s, "  {ty:<8} {n:>6} tensors {:>12}", crate::report::human_bytes(b));
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
