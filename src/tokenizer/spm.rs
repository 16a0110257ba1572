//! SentencePiece vocabularies (`tokenizer.model`: Llama 2, Mistral 7B, Mixtral 8x7B) as
//! llama.cpp's `llama` tokenizer model, built the way its converter does
//! (`conversion/base.py` `_create_vocab_sentencepiece`): pieces with their scores and
//! types from the model, then `added_tokens.json` and tokenizer_config.json's
//! `added_tokens_decoder` (score −1000; CONTROL if special, else USER_DEFINED with `▁` as
//! a space), unused ids as `[PAD{i}]` with score −10000.

use std::path::Path;

use serde_json::Value as Json;

use super::{looks_special, Vocab, CONTROL, NORMAL, UNUSED, USER_DEFINED};
use crate::error::{Error, Result};

/// `llama_token_type` values that only SentencePiece vocabularies use.
const UNKNOWN: i32 = 2;
const BYTE: i32 = 6;

/// One `ModelProto.pieces` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    /// `SentencePiece.Type` (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6).
    pub kind: i32,
}

/// A protobuf reader over a byte slice; every length is checked against what is left.
struct Wire<'a> {
    b: &'a [u8],
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.b.split_first()?;
            self.b = rest;
            v |= ((byte & 0x7f) as u64) << (7 * i);
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok().filter(|&n| n <= self.b.len())?;
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    /// The next (field number, wire type, payload) with varints as their value bytes.
    fn field(&mut self) -> Option<(u64, Field<'a>)> {
        let key = self.varint()?;
        let f = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Bytes(self.take(8)?),
            2 => {
                let n = self.varint()?;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(self.take(4)?),
            _ => return None,
        };
        Some((key >> 3, f))
    }
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(&'a [u8]),
}

/// The pieces of a serialized `sentencepiece.ModelProto`.
pub fn parse_model(bytes: &[u8]) -> std::result::Result<Vec<Piece>, String> {
    let mut w = Wire { b: bytes };
    let mut pieces = Vec::new();
    while !w.b.is_empty() {
        let (num, f) = w.field().ok_or_else(|| format!("malformed protobuf after {} pieces", pieces.len()))?;
        let (1, Field::Bytes(msg)) = (num, f) else { continue };
        let mut p = Piece { piece: String::new(), score: 0.0, kind: NORMAL };
        let mut m = Wire { b: msg };
        while !m.b.is_empty() {
            match m.field().ok_or_else(|| format!("malformed piece {}", pieces.len()))? {
                (1, Field::Bytes(s)) => {
                    p.piece =
                        String::from_utf8(s.to_vec()).map_err(|_| format!("piece {} is not UTF-8", pieces.len()))?
                }
                (2, Field::Fixed32(f)) => p.score = f32::from_le_bytes([f[0], f[1], f[2], f[3]]),
                (3, Field::Varint(k)) => p.kind = i32::try_from(k).unwrap_or(0),
                _ => {}
            }
        }
        pieces.push(p);
    }
    if pieces.is_empty() {
        return Err("no pieces: not a SentencePiece model".into());
    }
    Ok(pieces)
}

/// The checkpoint's SentencePiece vocabulary padded to `n_rows` entries.
pub fn load(dir: &Path, n_rows: usize) -> Result<Vocab> {
    let path = dir.join("tokenizer.model");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let pieces = parse_model(&bytes).map_err(|m| Error::input(&path, m))?;
    let mut tokens: Vec<String> = (0..n_rows).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n_rows];
    let mut types = vec![UNUSED; n_rows];
    for (i, p) in pieces.iter().enumerate().take(n_rows) {
        // SentencePieceProcessor's IsUnknown/IsControl/IsUnused/IsByte, else NORMAL
        // (its USER_DEFINED pieces become NORMAL, as in llama.cpp's converter).
        types[i] = match p.kind {
            2 => UNKNOWN,
            3 => CONTROL,
            5 => UNUSED,
            6 => BYTE,
            _ => NORMAL,
        };
        tokens[i] = p.piece.clone();
        scores[i] = p.score;
    }
    let mut set = |id: u64, text: String, ty: i32| {
        if let Some(i) = usize::try_from(id).ok().filter(|&i| i < n_rows) {
            tokens[i] = text;
            scores[i] = -1000.0;
            types[i] = ty;
        }
    };
    for (text, id) in super::read_added_tokens_json(&dir.join("added_tokens.json"))? {
        set(id, text, USER_DEFINED);
    }
    let cfg_path = dir.join("tokenizer_config.json");
    if cfg_path.exists() {
        let cfg = crate::source::read_json(&cfg_path)?;
        if let Some(map) = cfg.get("added_tokens_decoder").and_then(Json::as_object) {
            for (id, data) in map {
                let key = format!("added_tokens_decoder.{id}");
                let id: u64 = id.parse().map_err(|_| Error::config(&cfg_path, &key, "id is not an integer"))?;
                let text = data
                    .get("content")
                    .and_then(Json::as_str)
                    .ok_or_else(|| Error::config(&cfg_path, &key, "no content"))?;
                if data.get("special").and_then(Json::as_bool) == Some(true) || looks_special(text) {
                    set(id, text.to_string(), CONTROL);
                } else {
                    set(id, text.replace('\u{2581}', " "), USER_DEFINED);
                }
            }
        }
    }
    if let Some(t) = super::first_duplicate(&tokens) {
        return Err(Error::input(&path, super::duplicate_message(t)));
    }
    Ok(Vocab::new("llama", tokens, types, Some(scores), Vec::new(), pieces.len().min(n_rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(text: &str, score: f32, kind: Option<u8>) -> Vec<u8> {
        let mut m = vec![0x0a, text.len() as u8];
        m.extend_from_slice(text.as_bytes());
        m.push(0x15);
        m.extend_from_slice(&score.to_le_bytes());
        if let Some(k) = kind {
            m.extend_from_slice(&[0x18, k]);
        }
        let mut out = vec![0x0a, m.len() as u8];
        out.extend(m);
        out
    }

    #[test]
    fn parses_pieces_and_skips_other_fields() {
        let mut b = piece("<unk>", 0.0, Some(2));
        b.extend(piece("▁the", -1.5, None));
        b.extend([0x12, 0x02, 0x08, 0x01]); // trainer_spec { model_type: 1 }
        b.extend(piece("<0x41>", 0.0, Some(6)));
        let p = parse_model(&b).expect("parses");
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], Piece { piece: "▁the".into(), score: -1.5, kind: NORMAL });
        assert_eq!((p[0].kind, p[2].kind), (2, 6));
    }

    #[test]
    fn truncated_or_bogus_input_is_an_error() {
        let b = piece("▁the", -1.5, None);
        for n in 1..b.len() {
            assert!(parse_model(&b[..n]).is_err(), "prefix {n}");
        }
        assert!(parse_model(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(parse_model(&[]).is_err());
    }
}
