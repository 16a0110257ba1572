//! The model-card keys of a GGUF file (`general.name`, `general.basename`, `general.license`,
//! `general.base_model.*`, `general.sampling.*`, …) and its default file name, derived as
//! llama.cpp's converter derives them: gguf-py's `Metadata.load` (`gguf/metadata.py`) reads
//! the model card's YAML front matter (README.md), config.json's `_name_or_path`,
//! generation_config.json and the folder name, in that order of precedence, then a
//! `--metadata` override file; `convert_hf_to_gguf.py` (`ModelBase.prepare_metadata`) adds the
//! size label from the parameter counts and writes the keys in the order of
//! `Metadata.set_gguf_meta_model`.
//!
//! Values are kept as the JSON (or YAML) gave them and checked when written, so that a value
//! a later source replaces is never an error, as in gguf-py.

pub mod describe;
pub mod front_matter;
pub mod name;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::gguf::{Array, Value};
pub use name::{count_params, id_parts, id_to_title, size_label, FileName, IdParts, ParamCounts};

/// A value and where it came from (for errors).
#[derive(Clone, Debug)]
struct Given {
    value: Json,
    file: PathBuf,
    key: String,
}

impl Given {
    fn new(value: Json, file: &Path, key: &str) -> Given {
        Given { value, file: file.to_path_buf(), key: key.to_string() }
    }

    fn error(&self, msg: &str) -> Error {
        Error::config(&self.file, &self.key, msg)
    }

    fn as_text(&self) -> Result<String> {
        self.value.as_str().map(str::to_string).ok_or_else(|| self.error("expected a string"))
    }
}

/// The string keys, in the order gguf-py writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Text {
    Name,
    Author,
    Version,
    Organization,
    Finetune,
    Basename,
    Description,
    QuantizedBy,
    SizeLabel,
    License,
    LicenseName,
    LicenseLink,
    Url,
    Doi,
    Uuid,
    RepoUrl,
    SourceUrl,
    SourceDoi,
    SourceUuid,
    SourceRepoUrl,
}

use Text::*;

/// Each string key's GGUF name (gguf-py `constants.py`, `Keys.General`).
const TEXT_KEYS: [(Text, &str); 20] = [
    (Name, "general.name"),
    (Author, "general.author"),
    (Version, "general.version"),
    (Organization, "general.organization"),
    (Finetune, "general.finetune"),
    (Basename, "general.basename"),
    (Description, "general.description"),
    (QuantizedBy, "general.quantized_by"),
    (SizeLabel, "general.size_label"),
    (License, "general.license"),
    (LicenseName, "general.license.name"),
    (LicenseLink, "general.license.link"),
    (Url, "general.url"),
    (Doi, "general.doi"),
    (Uuid, "general.uuid"),
    (RepoUrl, "general.repo_url"),
    (SourceUrl, "general.source.url"),
    (SourceDoi, "general.source.doi"),
    (SourceUuid, "general.source.uuid"),
    (SourceRepoUrl, "general.source.repo_url"),
];

/// Model-card keys and the field each fills when still empty, in gguf-py's order of
/// precedence (its own names, then `model_*`, then names some uploaders use).
const CARD_TEXT: [(&str, Text); 27] = [
    ("name", Name),
    ("author", Author),
    ("version", Version),
    ("organization", Organization),
    ("description", Description),
    ("finetune", Finetune),
    ("basename", Basename),
    ("size_label", SizeLabel),
    ("url", SourceUrl),
    ("doi", SourceDoi),
    ("uuid", SourceUuid),
    ("repo_url", SourceRepoUrl),
    ("model_name", Name),
    ("model_author", Author),
    ("model_version", Version),
    ("model_organization", Organization),
    ("model_description", Description),
    ("model_finetune", Finetune),
    ("model_basename", Basename),
    ("model_size_label", SizeLabel),
    ("model_url", SourceUrl),
    ("model_doi", SourceDoi),
    ("model_uuid", SourceUuid),
    ("model_repo_url", SourceRepoUrl),
    ("model_creator", Author),
    ("model_type", Basename),
    ("license", License),
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    Text,
    I32,
    F32,
}

/// `general.sampling.*` keys (after the prefix), the generation_config.json key they come
/// from, and their GGUF type (gguf-py `gguf_writer.py`, `add_sampling_*`).
const SAMPLING: [(&str, &str, Kind); 12] = [
    ("sequence", "sequence", Kind::Text),
    ("top_k", "top_k", Kind::I32),
    ("top_p", "top_p", Kind::F32),
    ("min_p", "min_p", Kind::F32),
    ("xtc_probability", "xtc_probability", Kind::F32),
    ("xtc_threshold", "xtc_threshold", Kind::F32),
    ("temp", "temperature", Kind::F32),
    ("penalty_last_n", "penalty_last_n", Kind::I32),
    ("penalty_repeat", "penalty_repeat", Kind::F32),
    ("mirostat", "mirostat", Kind::I32),
    ("mirostat_tau", "mirostat_tau", Kind::F32),
    ("mirostat_eta", "mirostat_eta", Kind::F32),
];

/// The keys of one base model or data set entry, in the order gguf-py writes them.
const ENTRY_KEYS: [&str; 9] =
    ["name", "author", "version", "organization", "description", "url", "doi", "uuid", "repo_url"];

/// Everything the model-card keys say, before it is written.
#[derive(Clone, Debug, Default)]
pub struct ModelCard {
    /// By index into [`SAMPLING`].
    sampling: BTreeMap<usize, Given>,
    text: BTreeMap<Text, Given>,
    base_models: Option<Vec<Given>>,
    datasets: Option<Vec<Given>>,
    tags: Option<Vec<Given>>,
    languages: Option<Vec<Given>>,
}

impl ModelCard {
    /// What gguf-py's `Metadata.load` derives from the folder `dir` (without an override):
    /// `folder_name` is the name its heuristics read (the folder's own, or a cached repo's);
    /// `total_params` as [`ParamCounts::total`].
    pub fn derive(dir: &Path, folder_name: &str, total_params: i64) -> Result<ModelCard> {
        let mut card = ModelCard::default();
        let readme = dir.join("README.md");
        card.read_card(&front_matter::read(&readme)?, &readme, total_params);
        let config = dir.join("config.json");
        if let Some(Json::String(id)) =
            crate::source::read_json_opt(&config)?.as_ref().and_then(|c| c.get("_name_or_path"))
        {
            // Only a Hub id, not a path on the machine that saved it.
            if id.matches('/').count() <= 1 {
                card.fill_from_id(id, total_params, &config, "_name_or_path");
            }
        }
        card.fill_from_id(folder_name, total_params, dir, "(folder name)");
        card.read_generation_config(&dir.join("generation_config.json"));
        Ok(card)
    }

    /// The value of a string key, when it is one.
    pub fn text(&self, t: Text) -> Option<&str> {
        self.text.get(&t).and_then(|g| g.value.as_str())
    }

    /// Whether a string key has a value (of any type: a wrong one fails when written).
    pub fn has(&self, t: Text) -> bool {
        self.text.contains_key(&t)
    }

    /// Sets a string key (replacing any value).
    pub fn set_text(&mut self, t: Text, value: &str, origin: &Path) {
        let key = TEXT_KEYS.iter().find(|(k, _)| *k == t).map_or("", |(_, n)| n);
        self.text.insert(t, Given::new(Json::String(value.into()), origin, key));
    }

    fn fill(&mut self, t: Text, value: &Json, file: &Path, key: &str) {
        if !value.is_null() && !self.text.contains_key(&t) {
            self.text.insert(t, Given::new(value.clone(), file, key));
        }
    }

    /// The model card's front matter.
    fn read_card(&mut self, card: &Map<String, Json>, path: &Path, total_params: i64) {
        for (key, t) in CARD_TEXT {
            if let Some(v) = card.get(key) {
                self.fill(t, v, path, key);
            }
        }
        for t in [LicenseName, LicenseLink] {
            let key = if t == LicenseName { "license_name" } else { "license_link" };
            if let Some(v) = card.get(key) {
                self.fill(t, v, path, key);
            }
        }
        if let Some(list) = references(card, ["base_model", "base_models", "base_model_sources"], path, total_params) {
            self.base_models.get_or_insert_with(Vec::new).extend(list);
        }
        if let Some(list) = references(card, ["datasets", "dataset", "dataset_sources"], path, total_params) {
            self.datasets.get_or_insert_with(Vec::new).extend(list);
        }
        for (field, key) in [(0, "tags"), (0, "pipeline_tag"), (1, "languages"), (1, "language")] {
            let list = if field == 0 { &mut self.tags } else { &mut self.languages };
            append_list(list, card.get(key), path, key);
        }
    }

    /// Fills the empty fields from what a model id says (`ORG/NAME` or a folder name).
    pub fn fill_from_id(&mut self, id: &str, total_params: i64, file: &Path, key: &str) {
        let p = id_parts(id, total_params);
        let text = |s: Option<String>| s.map(Json::String).unwrap_or(Json::Null);
        self.fill(Name, &text(p.full_name.as_deref().map(id_to_title)), file, key);
        self.fill(Organization, &text(p.organization.as_deref().map(id_to_title)), file, key);
        self.fill(Basename, &text(p.basename), file, key);
        self.fill(Finetune, &text(p.finetune), file, key);
        self.fill(Version, &text(p.version), file, key);
        self.fill(SizeLabel, &text(p.size_label), file, key);
    }

    /// Recommended sampling settings. gguf-py ignores a generation_config.json it cannot read.
    fn read_generation_config(&mut self, path: &Path) {
        let Ok(Some(Json::Object(gen))) = crate::source::read_json_opt(path) else { return };
        for (i, (_, key, _)) in SAMPLING.iter().enumerate() {
            // llama.cpp's gguf-py (not yet the PyPI release 0.19) also takes transformers' name.
            let found = match (*key, gen.get(*key)) {
                ("penalty_repeat", None) => gen.get("repetition_penalty").map(|v| (v, "repetition_penalty")),
                (_, v) => v.map(|v| (v, *key)),
            };
            if let Some((v, k)) = found {
                self.set_sampling(i, v, path, k);
            }
        }
    }

    fn set_sampling(&mut self, i: usize, v: &Json, file: &Path, key: &str) {
        if v.is_null() {
            self.sampling.remove(&i);
        } else {
            self.sampling.insert(i, Given::new(v.clone(), file, key));
        }
    }

    /// The model's base models (replacing any the card named).
    pub fn set_base_models(&mut self, ids: &[String], total_params: i64, origin: &Path, key: &str) {
        let list = ids.iter().map(|id| Given::new(Json::Object(reference(id, total_params)), origin, key)).collect();
        self.base_models = Some(list);
    }

    pub fn has_base_models(&self) -> bool {
        self.base_models.is_some()
    }

    /// Applies a `--metadata` file: a JSON object of GGUF keys, as llama.cpp's converter takes
    /// it. Unlike gguf-py (which ignores them), a missing file and an unknown key are errors.
    pub fn apply_override(&mut self, path: &Path) -> Result<()> {
        let json = crate::source::read_json(path)?;
        let Json::Object(map) = json else {
            return Err(Error::input(path, "expected a JSON object of GGUF keys (e.g. {\"general.name\": \"…\"})"));
        };
        for (key, v) in &map {
            self.override_key(path, key, v)?;
        }
        Ok(())
    }

    fn override_key(&mut self, path: &Path, key: &str, v: &Json) -> Result<()> {
        if let Some(i) = SAMPLING.iter().position(|(k, _, _)| key.strip_prefix("general.sampling.") == Some(k)) {
            self.set_sampling(i, v, path, key);
            return Ok(());
        }
        // gguf-py takes every string key but the licence itself from an override.
        if let Some((t, _)) = TEXT_KEYS.iter().find(|(t, k)| *k == key && *t != License) {
            match v {
                Json::Null => self.text.remove(t),
                _ => self.text.insert(*t, Given::new(v.clone(), path, key)),
            };
            return Ok(());
        }
        let list = match key {
            "general.base_models" => &mut self.base_models,
            "general.datasets" => &mut self.datasets,
            "general.tags" => &mut self.tags,
            "general.languages" => &mut self.languages,
            _ => {
                return Err(Error::config(path, key, "not a key llama.cpp's --metadata takes (e.g. general.name, general.base_models: a list of objects, general.tags)"));
            }
        };
        *list = match v {
            Json::Null => None,
            Json::Array(a) => {
                Some(a.iter().enumerate().map(|(i, x)| Given::new(x.clone(), path, &format!("{key}[{i}]"))).collect())
            }
            _ => return Err(Error::config(path, key, "expected a list")),
        };
        Ok(())
    }

    /// The GGUF keys, in gguf-py's order and with its types.
    pub fn metadata(&self) -> Result<Vec<(String, Value)>> {
        let mut md = Vec::new();
        for (i, g) in &self.sampling {
            let (name, _, kind) = SAMPLING[*i];
            md.push((format!("general.sampling.{name}"), sampling_value(g, kind)?));
        }
        for (t, key) in TEXT_KEYS {
            let Some(g) = self.text.get(&t) else { continue };
            let value = match (&g.value, t) {
                // A list of licences is written comma-separated.
                (Json::Array(a), License) => {
                    let names: Result<Vec<String>> =
                        a.iter().map(|x| Given { value: x.clone(), ..g.clone() }.as_text()).collect();
                    names?.join(",")
                }
                _ => g.as_text()?,
            };
            md.push((key.to_string(), Value::String(value)));
        }
        for (list, prefix) in [(&self.base_models, "general.base_model"), (&self.datasets, "general.dataset")] {
            if let Some(list) = list {
                md.extend(entries(list, prefix)?);
            }
        }
        for (list, key) in [(&self.tags, "general.tags"), (&self.languages, "general.languages")] {
            let items = list.iter().flatten().map(Given::as_text).collect::<Result<Vec<_>>>()?;
            // An empty array is not written.
            if !items.is_empty() {
                md.push((key.to_string(), Value::Array(Array::String(items))));
            }
        }
        Ok(md)
    }

    /// The default file name (without `.gguf`) for output type `output_type` (`Q8_0`).
    pub fn file_stem(&self, output_type: &str, lora: bool) -> String {
        let stem = FileName {
            name: self.text(Name),
            basename: self.text(Basename),
            finetune: self.text(Finetune),
            version: self.text(Version),
            size_label: self.text(SizeLabel),
            output_type: Some(output_type),
            kind: lora.then_some("LoRA"),
        }
        .stem();
        // The file goes in the current folder, whatever a card's fine-tune holds.
        stem.replace(['/', '\\'], "-")
    }
}

fn sampling_value(g: &Given, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Text => Value::String(g.as_text()?),
        Kind::I32 => Value::I32(
            g.value.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| g.error("expected a 32-bit integer"))?,
        ),
        Kind::F32 => Value::F32(g.value.as_f64().ok_or_else(|| g.error("expected a number"))? as f32),
    })
}

/// `PREFIX.count` and each entry's keys.
fn entries(list: &[Given], prefix: &str) -> Result<Vec<(String, Value)>> {
    let mut md = vec![(format!("{prefix}.count"), Value::U32(list.len() as u32))];
    for (i, g) in list.iter().enumerate() {
        let Json::Object(m) = &g.value else {
            return Err(g.error("expected an object (name, organization, repo_url, …)"));
        };
        for key in ENTRY_KEYS {
            if let Some(v) = m.get(key) {
                let text =
                    Given { value: v.clone(), file: g.file.clone(), key: format!("{}.{key}", g.key) }.as_text()?;
                md.push((format!("{prefix}.{i}.{key}"), Value::String(text)));
            }
        }
    }
    Ok(md)
}

/// Appends a card's string or list value to a list field (gguf-py appends tags from both
/// `tags` and `pipeline_tag`, languages from `languages` and `language`).
fn append_list(list: &mut Option<Vec<Given>>, v: Option<&Json>, path: &Path, key: &str) {
    let Some(v) = v.filter(|v| !v.is_null()) else { return };
    let items = list.get_or_insert_with(Vec::new);
    match v {
        Json::Array(a) => items.extend(a.iter().map(|x| Given::new(x.clone(), path, key))),
        Json::String(_) => items.push(Given::new(v.clone(), path, key)),
        _ => {}
    }
}

/// The card's base models (or data sets) under the first of `keys` present, each made an
/// entry; `None` when the card names none of the keys.
fn references(card: &Map<String, Json>, keys: [&str; 3], path: &Path, total_params: i64) -> Option<Vec<Given>> {
    let key = keys.iter().find(|k| card.contains_key(**k))?;
    // gguf-py takes the first key's value even when it is null.
    let ids = match &card[*key] {
        Json::Array(a) => a.clone(),
        Json::Null => Vec::new(),
        other @ Json::String(_) => vec![other.clone()],
        _ => Vec::new(),
    };
    let list = ids
        .iter()
        .map(|id| {
            let entry = match id {
                Json::String(s) => Json::Object(reference(s, total_params)),
                Json::Object(_) => id.clone(),
                // gguf-py logs an entry it cannot read and keeps an empty one.
                _ => Json::Object(Map::new()),
            };
            Given::new(entry, path, key)
        })
        .collect();
    Some(list)
}

/// A base model or data set named by a Hub id or URL, described as gguf-py describes it.
fn reference(id: &str, total_params: i64) -> Map<String, Json> {
    static HUB_URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^https?://huggingface.co/([^/]+/[^/]+)$").unwrap());
    let mut m = Map::new();
    let url = ["http://", "https://", "ssh://"].iter().any(|p| id.starts_with(p));
    let hub_id = if url {
        m.insert("repo_url".into(), Json::String(id.into()));
        HUB_URL.captures(id).filter(|_| id.contains("huggingface.co")).map(|c| c[1].to_string())
    } else {
        Some(id.to_string())
    };
    let Some(hub_id) = hub_id else { return m };
    let p = id_parts(&hub_id, total_params);
    if let Some(n) = &p.full_name {
        m.insert("name".into(), Json::String(id_to_title(n)));
    }
    if let Some(o) = &p.organization {
        m.insert("organization".into(), Json::String(id_to_title(o)));
    }
    if let Some(v) = p.version {
        m.insert("version".into(), Json::String(v));
    }
    if let (false, Some(o), Some(n)) = (url, &p.organization, &p.full_name) {
        m.insert("repo_url".into(), Json::String(format!("https://huggingface.co/{o}/{n}")));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card_in(dir: &Path, readme: &str, config: &str) {
        std::fs::write(dir.join("README.md"), readme).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
    }

    fn keys(md: &[(String, Value)]) -> Vec<(&str, String)> {
        md.iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(Array::String(a)) => a.join("|"),
                    other => format!("{other:?}"),
                };
                (k.as_str(), s)
            })
            .collect()
    }

    #[test]
    fn card_config_and_folder_name_in_gguf_py_order() {
        let dir = tempfile::tempdir().unwrap();
        let readme = "---\nlicense: apache-2.0\nbase_model: Qwen/Qwen3-4B-Instruct-2507\ntags:\n- mlx\nlibrary_name: mlx\npipeline_tag: text-generation\nlanguage: en\ndatasets: https://huggingface.co/org/data-v2\n---\n# x\n";
        card_in(dir.path(), readme, r#"{"_name_or_path": "./runs/me/Qwen3"}"#);
        std::fs::write(dir.path().join("generation_config.json"), r#"{"temperature": 0.6, "top_k": 20}"#).unwrap();
        let card = ModelCard::derive(dir.path(), "Qwen3-4B-Instruct-2507-4bit", 0).unwrap();
        let md = card.metadata().unwrap();
        let want: Vec<(&str, String)> = vec![
            ("general.sampling.top_k", "I32(20)".into()),
            ("general.sampling.temp", "F32(0.6)".into()),
            ("general.name", "Qwen3 4B Instruct 2507 4bit".into()),
            ("general.version", "2507".into()),
            ("general.finetune", "Instruct-4bit".into()),
            ("general.basename", "Qwen3".into()),
            ("general.size_label", "4B".into()),
            ("general.license", "apache-2.0".into()),
            ("general.base_model.count", "U32(1)".into()),
            ("general.base_model.0.name", "Qwen3 4B Instruct 2507".into()),
            ("general.base_model.0.version", "2507".into()),
            ("general.base_model.0.organization", "Qwen".into()),
            ("general.base_model.0.repo_url", "https://huggingface.co/Qwen/Qwen3-4B-Instruct-2507".into()),
            ("general.dataset.count", "U32(1)".into()),
            ("general.dataset.0.name", "Data v2".into()),
            ("general.dataset.0.version", "v2".into()),
            ("general.dataset.0.organization", "Org".into()),
            ("general.dataset.0.repo_url", "https://huggingface.co/org/data-v2".into()),
            ("general.tags", "mlx|text-generation".into()),
            ("general.languages", "en".into()),
        ];
        assert_eq!(keys(&md), want);
        assert_eq!(card.file_stem("Q8_0", false), "Qwen3-4B-Instruct-4bit-2507-Q8_0");
    }

    #[test]
    fn override_replaces_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        card_in(dir.path(), "no front matter\n", "{}");
        let mut card = ModelCard::derive(dir.path(), "Mistral-7B-v0.3", 0).unwrap();
        let o = dir.path().join("o.json");
        std::fs::write(
            &o,
            r#"{"general.name": "Mine", "general.version": null, "general.base_models": [{"name": "B"}]}"#,
        )
        .unwrap();
        card.apply_override(&o).unwrap();
        let md = card.metadata().unwrap();
        let md = keys(&md);
        assert_eq!(md[0], ("general.name", "Mine".to_string()));
        assert!(!md.iter().any(|(k, _)| *k == "general.version"));
        assert!(md.contains(&("general.base_model.0.name", "B".to_string())));
        std::fs::write(&o, r#"{"general.base_model.0.name": "B"}"#).unwrap();
        let e = card.apply_override(&o).unwrap_err().to_string();
        assert!(e.contains("o.json: key 'general.base_model.0.name'"), "{e}");
        std::fs::write(&o, "{not json").unwrap();
        assert!(card.apply_override(&o).unwrap_err().to_string().contains("o.json: invalid JSON"));
        std::fs::write(&o, r#"{"general.author": 5}"#).unwrap();
        card.apply_override(&o).unwrap();
        assert!(card.metadata().unwrap_err().to_string().contains("key 'general.author': expected a string"));
    }
}
