//! Vocabulary metadata (`tokenizer.ggml.*`) from a checkpoint's `tokenizer.json` (GPT-2-style
//! byte-level BPE) or `tokenizer.model` (SentencePiece, see `spm`), `tokenizer_config.json`,
//! `config.json` and `generation_config.json`, written as llama.cpp's converter writes it.
//!
//! llama.cpp takes n_vocab from the number of token strings, and the embedding and
//! output matrices must have exactly that many rows, so the vocabulary is padded with
//! unique `[PAD{i}]` tokens (type UNUSED) up to the embedding's row count.

pub mod gemma4;
pub mod pre;
mod pre_hashes;
mod pre_types;
pub mod spm;

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::gguf::{Array, Value};
use crate::source::Checkpoint;

/// `llama_token_type`.
pub const NORMAL: i32 = 1;
pub const CONTROL: i32 = 3;
pub const USER_DEFINED: i32 = 4;
pub const UNUSED: i32 = 5;

/// A vocabulary ready to be written.
pub struct Vocab {
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE) or `llama` (SentencePiece).
    pub model: &'static str,
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    /// Piece scores (SentencePiece only).
    pub scores: Option<Vec<f32>>,
    pub merges: Vec<String>,
    /// Number of real (unpadded) tokens.
    pub n_real: usize,
}

impl Vocab {
    pub fn new(
        model: &'static str,
        tokens: Vec<String>,
        types: Vec<i32>,
        scores: Option<Vec<f32>>,
        merges: Vec<String>,
        n_real: usize,
    ) -> Vocab {
        Vocab { model, tokens, types, scores, merges, n_real }
    }

    /// Whether [`Vocab::load`] would read `dir`'s tokenizer as SentencePiece.
    pub fn is_sentencepiece_dir(dir: &Path) -> bool {
        dir.join("tokenizer.model").exists()
            && crate::source::read_json(&dir.join("tokenizer.json")).map_or(true, |j| is_sentencepiece(&j))
    }

    /// The checkpoint's vocabulary: byte-level BPE from tokenizer.json, or SentencePiece
    /// from tokenizer.model when tokenizer.json is a converted SentencePiece model (or absent).
    pub fn load(dir: &Path, n_rows: usize) -> Result<Vocab> {
        let json_path = dir.join("tokenizer.json");
        let has_model = dir.join("tokenizer.model").exists();
        if !json_path.exists() {
            if has_model {
                return spm::load(dir, n_rows);
            }
            return Err(Error::input(&json_path, "missing: llama.cpp needs the tokenizer in the GGUF"));
        }
        let json = crate::source::read_json(&json_path)?;
        if has_model && is_sentencepiece(&json) {
            return spm::load(dir, n_rows);
        }
        Vocab::from_json(&json_path, &json, n_rows)
    }

    /// A BPE tokenizer.json's parsed value (`path` names it in errors), padded to `n_rows`.
    pub fn from_json(path: &Path, json: &Json, n_rows: usize) -> Result<Vocab> {
        let model = json.get("model").ok_or_else(|| Error::config(path, "model", "missing"))?;
        let ty = model.get("type").and_then(Json::as_str).unwrap_or("");
        if ty != "BPE" {
            return Err(Error::config(path, "model.type", format!("'{ty}' is not supported (only BPE tokenizers)")));
        }
        // A SentencePiece model converted to tokenizer.json (Llama 2, Mistral 7B, Mixtral
        // 8x7B) is BPE over `▁`-marked pieces with byte fallback: written as a GPT-2 vocabulary
        // it would load but tokenize wrongly, so refuse it.
        if is_sentencepiece(json) {
            return Err(Error::config(
                path,
                "model.byte_fallback",
                "a SentencePiece tokenizer (byte fallback / Metaspace): llama.cpp needs it as a 'llama' vocabulary, which is read from tokenizer.model; put the model's tokenizer.model beside it",
            ));
        }
        let vocab = model
            .get("vocab")
            .and_then(Json::as_object)
            .ok_or_else(|| Error::config(path, "model.vocab", "missing or not an object"))?;
        let mut ids = IdTable { path, n_rows, by_id: Vec::new() };
        for (tok, id) in vocab {
            let id =
                id.as_u64().ok_or_else(|| Error::config(path, format!("model.vocab.{tok}"), "id is not an integer"))?;
            ids.put(id, tok, NORMAL, "model.vocab")?;
        }
        let added = added_tokens(path, json)?;
        for (content, id, ty) in &added {
            ids.put(*id, content, *ty, "added_tokens")?;
        }
        // Tokens a fine-tune added beside tokenizer.json (transformers adds them on load).
        let known = |t: &str| vocab.contains_key(t) || added.iter().any(|(c, _, _)| c == t);
        for (content, id) in read_added_tokens_json(&path.with_file_name("added_tokens.json"))? {
            if !known(&content) {
                let ty = if looks_special(&content) { CONTROL } else { USER_DEFINED };
                ids.put(id, &content, ty, "added_tokens.json")?;
            }
        }
        let n_real = ids.by_id.len();
        let (tokens, types) = ids.padded();
        if let Some(t) = first_duplicate(&tokens) {
            return Err(Error::config(path, "model.vocab", duplicate_message(t)));
        }
        let merges = parse_merges(path, model.get("merges"))?;
        Ok(Vocab::new("gpt2", tokens, types, None, merges, n_real))
    }

    /// A token's id. A scan, not a map: a handful of special tokens are looked up, and
    /// hashing every token of a 200k vocabulary cost more than those scans.
    pub fn id_of(&self, token: &str) -> Option<u32> {
        self.tokens.iter().position(|t| t == token).map(|i| i as u32)
    }
}

/// Token strings and types by id, for ids below the embedding's row count.
struct IdTable<'a> {
    path: &'a Path,
    n_rows: usize,
    by_id: Vec<Option<(String, i32)>>,
}

impl IdTable<'_> {
    fn put(&mut self, id: u64, tok: &str, ty: i32, key: &str) -> Result<()> {
        let n_rows = self.n_rows;
        let id = usize::try_from(id).ok().filter(|&i| i < n_rows).ok_or_else(|| {
            Error::config(
                self.path,
                key,
                format!("token '{tok}' has id {id}, but the embedding has only {n_rows} rows"),
            )
        })?;
        if self.by_id.len() <= id {
            self.by_id.resize(id + 1, None);
        }
        // An added token may restate a vocab entry with the same id; it then decides the type.
        if let Some((prev, _)) = &self.by_id[id] {
            if prev != tok {
                return Err(Error::config(self.path, key, format!("id {id} is used by both '{prev}' and '{tok}'")));
            }
        }
        self.by_id[id] = Some((tok.to_string(), ty));
        Ok(())
    }

    /// Tokens and types for every row, unused ids as unique `[PAD{i}]` (type UNUSED).
    fn padded(self) -> (Vec<String>, Vec<i32>) {
        (0..self.n_rows)
            .map(|i| match self.by_id.get(i).cloned().flatten() {
                Some(entry) => entry,
                None => (format!("[PAD{i}]"), UNUSED),
            })
            .unzip()
    }
}

/// tokenizer.json's `added_tokens`: (content, id, type), CONTROL when special or looking
/// special (llama.cpp's converter), USER_DEFINED otherwise.
fn added_tokens(path: &Path, json: &Json) -> Result<Vec<(String, u64, i32)>> {
    let Some(added) = json.get("added_tokens").and_then(Json::as_array) else { return Ok(Vec::new()) };
    added
        .iter()
        .map(|t| {
            let content = t
                .get("content")
                .and_then(Json::as_str)
                .ok_or_else(|| Error::config(path, "added_tokens", "entry without content"))?;
            let id = t
                .get("id")
                .and_then(Json::as_u64)
                .ok_or_else(|| Error::config(path, "added_tokens", format!("'{content}' has no integer id")))?;
            let special = t.get("special").and_then(Json::as_bool).unwrap_or(false);
            let ty = if special || looks_special(content) { CONTROL } else { USER_DEFINED };
            Ok((content.to_string(), id, ty))
        })
        .collect()
}

/// `added_tokens.json` (`{"token": id, …}`), if present.
pub(crate) fn read_added_tokens_json(path: &Path) -> Result<Vec<(String, u64)>> {
    let Some(json) = crate::source::read_json_opt(path)? else { return Ok(Vec::new()) };
    let map = json.as_object().ok_or_else(|| Error::input(path, "must be a JSON object of token → id"))?;
    map.iter()
        .map(|(t, id)| {
            id.as_u64().map(|id| (t.clone(), id)).ok_or_else(|| Error::config(path, t, "id is not an integer"))
        })
        .collect()
}

/// The first token string that appears twice (llama.cpp aborts on such a vocabulary).
pub(crate) fn first_duplicate(tokens: &[String]) -> Option<&str> {
    let mut seen = HashSet::with_capacity(tokens.len());
    tokens.iter().map(String::as_str).find(|t| !seen.insert(*t))
}

pub(crate) fn duplicate_message(t: &str) -> String {
    format!("token '{t}' appears twice (llama.cpp requires unique token strings)")
}

/// A SentencePiece model converted to tokenizer.json (byte fallback, `▁` pieces): written
/// as a GPT-2 vocabulary it would load but tokenize wrongly.
pub(crate) fn is_sentencepiece(json: &Json) -> bool {
    let byte_fallback = json.get("model").and_then(|m| m.get("byte_fallback")).and_then(Json::as_bool) == Some(true);
    byte_fallback || json.get("pre_tokenizer").is_some_and(|v| v.to_string().contains("Metaspace"))
}

/// Added tokens llama.cpp's converter makes CONTROL even when not marked special
/// (`does_token_look_special` in conversion/base.py).
pub(crate) fn looks_special(s: &str) -> bool {
    (s.starts_with("<|") && s.ends_with("|>"))
        || (s.starts_with("<｜") && s.ends_with("｜>"))
        || (s.starts_with("<unused") && s.ends_with('>'))
        || matches!(s, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
}

/// Merges as llama.cpp stores them: `"a b"`. tokenizers ≥ 0.20 writes `[a, b]` pairs,
/// whose parts may contain spaces; those become U+0120 as in the byte-level alphabet.
fn parse_merges(path: &Path, merges: Option<&Json>) -> Result<Vec<String>> {
    let Some(arr) = merges.and_then(Json::as_array) else {
        return Err(Error::config(path, "model.merges", "missing (a BPE tokenizer needs merges)"));
    };
    arr.iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(p) if p.len() == 2 => {
                let part = |v: &Json| v.as_str().map(|s| s.replace(' ', "\u{0120}"));
                match (part(&p[0]), part(&p[1])) {
                    (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                    _ => Err(Error::config(path, "model.merges", "a merge pair must hold two strings")),
                }
            }
            other => Err(Error::config(path, "model.merges", format!("unexpected entry {other}"))),
        })
        .collect()
}

/// The token a `tokenizer_config.json` special-token entry names (a string or `{content}`).
fn token_content(v: &Json) -> Option<&str> {
    match v {
        Json::String(s) => Some(s),
        Json::Object(m) => m.get("content").and_then(Json::as_str),
        _ => None,
    }
}

/// First integer of an id or list of ids (`eos_token_id` may be a list).
fn first_id(v: &Json) -> Option<u64> {
    match v {
        Json::Array(a) => a.first().and_then(Json::as_u64),
        v => v.as_u64(),
    }
}

/// Whether tokenizer.json's post-processor adds BOS and EOS, read as gguf-py does: a
/// RobertaProcessing adds both; a TemplateProcessing's single-sequence template adds BOS
/// if it starts with the BOS (or, without tokenizer_config.json, any) special token, and
/// EOS likewise at its end.
fn post_processor_adds(tok: Option<&Json>, bos: Option<&str>, eos: Option<&str>, have_cfg: bool) -> [Option<bool>; 2] {
    let mut add = [None, None];
    let Some(pp) = tok.and_then(|t| t.get("post_processor")).filter(|p| !p.is_null()) else { return add };
    let list = pp.get("processors").and_then(Json::as_array).map(|a| a.iter().collect()).unwrap_or_else(|| vec![pp]);
    for p in list {
        match p.get("type").and_then(Json::as_str) {
            Some("RobertaProcessing") => add = [Some(true), Some(true)],
            Some("TemplateProcessing") => {
                let Some(single) = p.get("single").and_then(Json::as_array).filter(|s| s.len() > 1) else { continue };
                fn special(v: &Json) -> Option<&str> {
                    v.get("SpecialToken").and_then(|t| t.get("id")).and_then(Json::as_str)
                }
                if let Some(first) = single.first().and_then(special) {
                    add[0] = Some(!have_cfg || Some(first) == bos);
                }
                if let Some(last) = single.last().and_then(special) {
                    add[1] = Some(!have_cfg || Some(last) == eos);
                }
            }
            _ => {}
        }
    }
    add
}

/// `tokenizer.ggml.pre` for a checkpoint's vocabulary: `--tokenizer-pre` when given,
/// `default` for SentencePiece, else found from tokenizer.json ([`pre::choose_pre`]).
pub fn pre_for(dir: &Path, vocab: &Vocab, flag: Option<&str>) -> Result<pre::PreChoice> {
    if vocab.model == "gemma4" {
        return Ok(gemma4::pre_choice());
    }
    if vocab.model == "llama" && flag.is_none() {
        let source = pre::PreSource::SentencePiece;
        return Ok(pre::PreChoice { name: "default".into(), source, hash: None });
    }
    pre::choose_pre(&dir.join("tokenizer.json"), flag)
}

/// A chat template: one, or several by name (`default` among them, as tokenizer_config.json
/// and chat_template.json may list them).
#[derive(Clone, Debug, PartialEq)]
pub enum ChatTemplate {
    One(String),
    Named(Vec<(String, String)>),
}

impl ChatTemplate {
    fn parse(path: &Path, v: &Json) -> Result<Option<ChatTemplate>> {
        match v {
            Json::Null => Ok(None),
            Json::String(t) => Ok(Some(ChatTemplate::One(t.clone()))),
            Json::Array(list) => {
                let entry =
                    |e: &Json| Some((e.get("name")?.as_str()?.to_string(), e.get("template")?.as_str()?.to_string()));
                let named = list.iter().map(entry).collect::<Option<Vec<_>>>().ok_or_else(|| {
                    Error::config(
                        path,
                        "chat_template",
                        "a list of templates needs a name and a template in each entry",
                    )
                })?;
                Ok(Some(ChatTemplate::Named(named)))
            }
            _ => Err(Error::config(path, "chat_template", "must be a string or a list of {name, template}")),
        }
    }

    /// As gguf-py writes it: `tokenizer.chat_template` (the default), and for named ones
    /// `tokenizer.chat_template.<name>` (name reduced to letters, digits and `_`) and
    /// `tokenizer.chat_templates`.
    fn metadata(self) -> Vec<(String, Value)> {
        let named = match self {
            ChatTemplate::One(t) => return vec![("tokenizer.chat_template".into(), Value::String(t))],
            ChatTemplate::Named(n) => n,
        };
        let mut md = Vec::new();
        let mut names = Vec::new();
        let mut default = None;
        for (name, template) in named {
            let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            if name == "default" {
                default = Some(template);
            } else if !name.is_empty() {
                md.push((format!("tokenizer.chat_template.{name}"), Value::String(template)));
                names.push(name);
            }
        }
        if !names.is_empty() {
            md.push(("tokenizer.chat_templates".into(), Value::Array(Array::String(names))));
        }
        md.extend(default.map(|t| ("tokenizer.chat_template".to_string(), Value::String(t))));
        md
    }
}

/// The checkpoint's chat template and the file it came from: `chat_template.jinja`, else
/// `chat_template.json`, else tokenizer_config.json's `chat_template` (transformers' order).
pub fn chat_template(dir: &Path, tok_cfg: Option<&Json>) -> Result<Option<(ChatTemplate, &'static str)>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        let t = std::fs::read_to_string(&jinja).map_err(|e| Error::io(&jinja, e))?;
        return Ok(Some((ChatTemplate::One(t), "chat_template.jinja")));
    }
    let json_path = dir.join("chat_template.json");
    if let Some(j) = crate::source::read_json_opt(&json_path)? {
        let t = ChatTemplate::parse(&json_path, j.get("chat_template").unwrap_or(&Json::Null))?;
        return Ok(t.map(|t| (t, "chat_template.json")));
    }
    let cfg_path = dir.join("tokenizer_config.json");
    let t = tok_cfg.and_then(|c| c.get("chat_template")).map(|v| ChatTemplate::parse(&cfg_path, v)).transpose()?;
    Ok(t.flatten().map(|t| (t, "tokenizer_config.json")))
}

/// All `tokenizer.*` metadata for a vocabulary.
/// Takes the vocabulary: its token lists move into the metadata instead of being copied.
pub fn vocab_metadata(ckpt: &Checkpoint, vocab: Vocab, pre: &str) -> Result<Vec<(String, Value)>> {
    let mut md = vec![
        ("tokenizer.ggml.model".to_string(), Value::String(vocab.model.into())),
        ("tokenizer.ggml.pre".to_string(), Value::String(pre.into())),
    ];
    let n = vocab.tokens.len() as u64;
    let tok_cfg = ckpt.read_json("tokenizer_config.json")?;
    let gen_cfg = ckpt.read_json("generation_config.json")?;
    for (kind, key) in
        [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"), ("pad", "padding_token_id")]
    {
        let from_tok_cfg = tok_cfg
            .as_ref()
            .and_then(|c| c.get(format!("{kind}_token")))
            .and_then(token_content)
            .and_then(|t| vocab.id_of(t))
            .map(u64::from);
        let id_key = format!("{kind}_token_id");
        let from_json = |j: &Option<Json>| j.as_ref().and_then(|c| c.get(&id_key)).and_then(first_id);
        let id = from_tok_cfg.or_else(|| from_json(&gen_cfg)).or_else(|| ckpt.config.get(&id_key).and_then(first_id));
        if let Some(id) = id.filter(|&i| i < n) {
            md.push((format!("tokenizer.ggml.{key}"), Value::U32(id as u32)));
        }
    }
    // add_bos/add_eos: from tokenizer.json's post-processor, then tokenizer_config.json
    // (gguf-py's SpecialVocab order; Llama 3 says it only in its TemplateProcessing).
    let tok_json = ckpt.read_json("tokenizer.json")?;
    let content = |kind: &str| tok_cfg.as_ref().and_then(|c| c.get(format!("{kind}_token"))).and_then(token_content);
    let mut add = post_processor_adds(tok_json.as_ref(), content("bos"), content("eos"), tok_cfg.is_some());
    if let Some(c) = &tok_cfg {
        for (i, kind) in ["bos", "eos"].into_iter().enumerate() {
            if let Some(b) = c.get(format!("add_{kind}_token")).and_then(Json::as_bool) {
                add[i] = Some(b);
            }
        }
    }
    // llama.cpp's converter always states BOS for Gemma 4 (and llama.cpp forces it).
    if vocab.model == "gemma4" {
        add[0] = Some(true);
    }
    for (flag, kind) in add.into_iter().zip(["bos", "eos"]) {
        if let Some(b) = flag {
            md.push((format!("tokenizer.ggml.add_{kind}_token"), Value::Bool(b)));
        }
    }
    if let Some((template, _)) = chat_template(&ckpt.dir, tok_cfg.as_ref())? {
        md.extend(template.metadata());
    }
    let has_merges = vocab.model == "gpt2" || vocab.model == "gemma4";
    let mut lists = vec![("tokenizer.ggml.tokens", Value::Array(Array::String(vocab.tokens)))];
    if let Some(scores) = vocab.scores {
        lists.push(("tokenizer.ggml.scores", Value::Array(Array::F32(scores))));
    }
    lists.push(("tokenizer.ggml.token_type", Value::Array(Array::I32(vocab.types))));
    if has_merges {
        lists.push(("tokenizer.ggml.merges", Value::Array(Array::String(vocab.merges))));
    }
    // In the order llama.cpp's converter writes them: the lists right after `pre`.
    md.splice(2..2, lists.into_iter().map(|(k, v)| (k.to_string(), v)));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentencepiece_style_tokenizers_are_refused() {
        let p = Path::new("tokenizer.json");
        let spm =
            serde_json::json!({"model": {"type": "BPE", "byte_fallback": true, "vocab": {"▁a": 0}, "merges": []}});
        let err = Vocab::from_json(p, &spm, 4).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("SentencePiece"), "{err}");
        let meta = serde_json::json!({"pre_tokenizer": {"type": "Metaspace", "replacement": "▁"},
            "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}});
        assert!(Vocab::from_json(p, &meta, 4).is_err());
        let gpt2 = serde_json::json!({"model": {"type": "BPE", "byte_fallback": false, "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}});
        let v = Vocab::from_json(p, &gpt2, 4).expect("byte-level BPE loads");
        assert_eq!(v.tokens, ["a", "b", "[PAD2]", "[PAD3]"]);
    }
}
