//! Gemma 4's vocabulary: tokenizer.json's BPE over text whose spaces the normalizer turns
//! into `▁`, with byte fallback (`<0xXX>` pieces), written as llama.cpp's `gemma4`
//! tokenizer model: tokens by id, every score -1000, merges as `a b`, and types as
//! llama.cpp's converter gives them (byte pieces BYTE, special tokens CONTROL, other added
//! tokens and the chat format's visible markers USER_DEFINED).

use std::path::Path;

use serde_json::Value as Json;

use super::{added_tokens, duplicate_message, first_duplicate, parse_merges, IdTable, Vocab, CONTROL, NORMAL};
use crate::error::{Error, Result};

/// `LLAMA_TOKEN_TYPE_BYTE`.
pub const BYTE: i32 = 6;
pub const USER_DEFINED: i32 = super::USER_DEFINED;

/// Markers llama.cpp's converter keeps visible (USER_DEFINED) so that chat parsers see them.
const VISIBLE: &[&str] =
    &["<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>"];

/// The score llama.cpp's converter gives every token of such a vocabulary.
const SCORE: f32 = -1000.0;

fn is_byte_piece(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 6 && t.starts_with("<0x") && t.ends_with('>') && b[3..5].iter().all(u8::is_ascii_hexdigit)
}

/// The vocabulary of `dir`'s tokenizer.json, padded to `n_rows` tokens.
pub fn load(dir: &Path, n_rows: usize) -> Result<Vocab> {
    let path = dir.join("tokenizer.json");
    if !path.exists() {
        return Err(Error::input(&path, "missing: Gemma 4's vocabulary is read from tokenizer.json"));
    }
    let json = crate::source::read_json(&path)?;
    let model = json.get("model").ok_or_else(|| Error::config(&path, "model", "missing"))?;
    let ty = model.get("type").and_then(Json::as_str).unwrap_or("");
    let byte_fallback = model.get("byte_fallback").and_then(Json::as_bool) == Some(true);
    if ty != "BPE" || !byte_fallback {
        let msg = format!("'{ty}' without byte fallback: llama.cpp's gemma4 tokenizer is BPE with byte fallback");
        return Err(Error::config(&path, "model.type", msg));
    }
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| Error::config(&path, "model.vocab", "missing or not an object"))?;
    let mut ids = IdTable { path: &path, n_rows, by_id: Vec::new() };
    for (tok, id) in vocab {
        let id =
            id.as_u64().ok_or_else(|| Error::config(&path, format!("model.vocab.{tok}"), "id is not an integer"))?;
        ids.put(id, tok, if is_byte_piece(tok) { BYTE } else { NORMAL }, "model.vocab")?;
    }
    for (content, id, _) in added_tokens(&path, &json)? {
        let special = added_is_special(&json, &content);
        let ty = if VISIBLE.contains(&content.as_str()) {
            USER_DEFINED
        } else if special {
            CONTROL
        } else if is_byte_piece(&content) {
            BYTE
        } else {
            USER_DEFINED
        };
        ids.put(id, &content, ty, "added_tokens")?;
    }
    let n_real = ids.by_id.len();
    let (tokens, types) = ids.padded();
    if let Some(t) = first_duplicate(&tokens) {
        return Err(Error::config(&path, "model.vocab", duplicate_message(t)));
    }
    let merges = parse_merges(&path, model.get("merges"))?;
    let scores = vec![SCORE; tokens.len()];
    Ok(Vocab::new("gemma4", tokens, types, Some(scores), merges, n_real))
}

/// llama.cpp's gemma4 tokenizer model fixes its own pre-tokenizer (lines, then BPE).
pub fn pre_choice() -> super::pre::PreChoice {
    super::pre::PreChoice { name: "gemma4".into(), source: super::pre::PreSource::TokenizerModel, hash: None }
}

/// Whether tokenizer.json marks an added token special (the converter takes specials only;
/// a token that merely looks special stays USER_DEFINED).
fn added_is_special(json: &Json, content: &str) -> bool {
    json.get("added_tokens").and_then(Json::as_array).is_some_and(|a| {
        a.iter().any(|t| {
            t.get("content").and_then(Json::as_str) == Some(content)
                && t.get("special").and_then(Json::as_bool) == Some(true)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_pieces_are_recognised() {
        assert!(is_byte_piece("<0x0A>") && is_byte_piece("<0xff>"));
        assert!(!is_byte_piece("<0x0G>") && !is_byte_piece("<0x0A>>") && !is_byte_piece("0x0A"));
    }
}
