//! Choosing `tokenizer.ggml.pre` the way llama.cpp's converter does: run the checkpoint's
//! tokenizer.json (with the `tokenizers` crate, special tokens added as transformers'
//! `encode` does) on llama.cpp's check text, hash the ids printed as a Python list, and
//! look the hash up among the names llama.cpp knows.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::pre_hashes::{ACCEPTED, KNOWN_PRE};

/// llama.cpp's check text (`get_vocab_base_pre`), byte for byte.
pub const CHECK_TEXT: &str = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u{200d}🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL";

/// Whether llama.cpp's BPE loader accepts `name` (for `--tokenizer-pre`).
pub fn is_known_name(name: &str) -> bool {
    ACCEPTED.contains(&name)
}

/// sha256 of `str(ids)` in Python: `[1, 2, 3]`.
pub fn ids_hash(ids: &[u32]) -> String {
    let list = format!("[{}]", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "));
    Sha256::digest(list.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of a tokenizer.json's output on the check text.
pub fn tokenizer_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    tokenizer_bytes_hash(&bytes).map_err(|m| Error::input(path, m))
}

/// The check-text hash of tokenizer.json bytes. A tokenizer.json the `tokenizers` library
/// panics on (its own bug, reachable from input) is an error here, not a crash.
pub fn tokenizer_bytes_hash(bytes: &[u8]) -> std::result::Result<String, String> {
    // Keep the library's panic message off the terminal while it runs (planning is single
    // threaded): the caller reports one line instead.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| {
        let tok = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| format!("cannot load with the tokenizers library: {e}"))?;
        let enc = tok.encode(CHECK_TEXT, true).map_err(|e| format!("cannot tokenize llama.cpp's check text: {e}"))?;
        Ok(ids_hash(enc.get_ids()))
    })
    .unwrap_or_else(|_| Err("the tokenizers library failed on this file".into()));
    std::panic::set_hook(hook);
    r
}

/// The llama.cpp name for a check-text hash, if it knows one.
pub fn name_of_hash(hash: &str) -> Option<&'static str> {
    // The converter tests every hash with `if`, not `elif`: for a hash listed twice, the
    // last name wins.
    KNOWN_PRE.iter().rev().find(|(h, _)| *h == hash).map(|(_, n)| *n)
}

/// The llama.cpp name for a tokenizer, or an error saying how to choose one.
pub fn detect_pre(path: &Path) -> Result<&'static str> {
    let hash = tokenizer_hash(path)?;
    name_of_hash(&hash).ok_or_else(|| {
        Error::input(
            path,
            format!(
                "llama.cpp does not know this BPE pre-tokenizer (check-text hash {hash}); if it splits text like a known model's, pass --tokenizer-pre NAME (e.g. llama-bpe for Llama 3, qwen2 for Qwen2/3, gpt-4o)"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokenizers_library_panic_is_an_error() {
        // Found by the tokenizer_json fuzz target: tokenizers 0.22 `expect`s inside its
        // decoder deserializer, so a syntax error there panics instead of failing.
        let bad =
            br#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "ByteLevel", "x": tru}}"#;
        let r = tokenizer_bytes_hash(bad);
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn check_text_is_llama_cpps() {
        // sha256 of the UTF-8 text as extracted from conversion/base.py with Python's ast.
        let h: String = Sha256::digest(CHECK_TEXT.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(CHECK_TEXT.chars().count(), 350);
        assert_eq!(h, "a36179c1e2b1cfcfbfad1dc779addad2ffc778201e4cf0d538bddeafa2c526da");
    }

    #[test]
    fn ids_hash_formats_like_python() {
        // hashlib.sha256(str([1, 22, 333]).encode()).hexdigest()
        assert_eq!(ids_hash(&[1, 22, 333]), "276d8737d9d5a80805e0731e8d5ae18972a8e3ba721f4988f67151c6e9159068");
    }

    #[test]
    fn table_is_hex_hashes_of_names_llama_cpp_loads() {
        for (h, n) in KNOWN_PRE {
            assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()), "{h}");
            // WPM (BERT-style) names are loaded by another path; every BPE name must load.
            assert!(is_known_name(n) || n.starts_with("bert-") || *n == "jina-v2-en", "{n}");
        }
        assert!(is_known_name("llama-bpe") && is_known_name("qwen2") && !is_known_name("nope"));
    }
}
