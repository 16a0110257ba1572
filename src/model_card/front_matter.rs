//! The YAML front matter of a model card (README.md), read as gguf-py's
//! `Metadata.load_model_card` reads it (gguf-py `gguf/metadata.py`): the lines between a
//! first line `---` and the next `---` (or the end), with its two repairs of common card
//! mistakes, as a JSON value so that card, config.json and `--metadata` values are handled
//! alike.
//!
//! gguf-py parses with PyYAML (YAML 1.1); this is YAML 1.2, so unquoted `yes`/`on`/`off` stay
//! strings (PyYAML makes them booleans) and dates stay strings. Numbers are kept as the text
//! the card wrote (`version: 1.0` is "1.0"): every card value written is a string, and
//! gguf-py's writer fails on a number where it expects one.

use std::path::Path;

use serde_json::{Map, Value as Json};
use yaml_rust2::{Yaml, YamlLoader};

use crate::error::{Error, Result};

/// The front matter of `path` as a JSON object: empty when the file is missing or has none,
/// or when the YAML is not a mapping.
pub fn read(path: &Path) -> Result<Map<String, Json>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| Error::input(path, "not UTF-8"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let Some(yaml) = front_matter(&text) else { return Ok(Map::new()) };
    let docs =
        YamlLoader::load_from_str(&yaml).map_err(|e| Error::input(path, format!("invalid YAML front matter: {e}")))?;
    Ok(match docs.into_iter().next().map(to_json) {
        Some(Json::Object(m)) => m,
        _ => Map::new(),
    })
}

/// The YAML text between the `---` lines, repaired as gguf-py repairs it.
fn front_matter(text: &str) -> Option<String> {
    let lines = python_lines(text);
    if lines.first() != Some(&"---") {
        return None;
    }
    let body: Vec<&str> = lines[1..].iter().take_while(|l| **l != "---").copied().collect();
    let yaml = body.join("\n") + "\n";
    // A language list's `- no` (Norwegian) would be a boolean; tabs are not YAML indentation.
    Some(yaml.replace("- no\n", "- \"no\"\n").replace('\t', "  "))
}

/// Lines as Python's `str.splitlines` cuts them (every Unicode line boundary).
fn python_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let breaks = matches!(
            c,
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if !breaks {
            continue;
        }
        lines.push(&text[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(j, '\n')) = chars.peek() {
                chars.next();
                end = j + 1;
            }
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn to_json(y: Yaml) -> Json {
    match y {
        Yaml::Real(s) | Yaml::String(s) => Json::String(s),
        Yaml::Integer(i) => Json::String(i.to_string()),
        Yaml::Boolean(b) => Json::Bool(b),
        Yaml::Array(a) => Json::Array(a.into_iter().map(to_json).collect()),
        Yaml::Hash(h) => Json::Object(h.into_iter().map(|(k, v)| (key_text(k), to_json(v))).collect()),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Json::Null,
    }
}

fn key_text(k: Yaml) -> String {
    match k {
        Yaml::String(s) | Yaml::Real(s) => s,
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_the_block_between_the_dashes() {
        let card = "---\nlicense: mit\nlanguage:\n- en\n- no\ntags:\n\t- mlx\n---\n# Title\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.md");
        std::fs::write(&path, card).unwrap();
        let m = read(&path).unwrap();
        assert_eq!(m["license"], "mit");
        assert_eq!(m["language"], serde_json::json!(["en", "no"]));
        assert_eq!(m["tags"], serde_json::json!(["mlx"]));
        std::fs::write(&path, "# Just text\n---\nlicense: mit\n---\n").unwrap();
        assert!(read(&path).unwrap().is_empty());
        std::fs::write(&path, "---\n- a list\n---\n").unwrap();
        assert!(read(&path).unwrap().is_empty());
        assert!(read(&dir.path().join("missing.md")).unwrap().is_empty());
        std::fs::write(&path, "---\nversion: 1.0\nbuild: 2\n---\n").unwrap();
        let m = read(&path).unwrap();
        assert_eq!((&m["version"], &m["build"]), (&serde_json::json!("1.0"), &serde_json::json!("2")));
        std::fs::write(&path, "---\nkey: [unclosed\n---\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("README.md: invalid YAML front matter"));
    }

    #[test]
    fn lines_split_as_python_splits_them() {
        assert_eq!(python_lines("a\r\nb\rc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(python_lines("a\n\nb\n"), ["a", "", "b"]);
        assert_eq!(python_lines("a\u{2028}b"), ["a", "b"]);
    }
}
