//! Choosing `tokenizer.ggml.pre`. First as llama.cpp's converter does: run the checkpoint's
//! tokenizer.json (with the `tokenizers` crate, special tokens added as transformers'
//! `encode` does) on llama.cpp's check text, hash the ids printed as a Python list, and
//! look the hash up among the names llama.cpp knows. A fine-tune that adds tokens or
//! merges changes that hash, so second by structure: the tokenizer's own pre-tokenizer and
//! each llama.cpp type's regexes (`pre_types`) split a set of probe texts, and a type
//! that splits every text alike is chosen. `--tokenizer-pre` always wins.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::pre_hashes::{ACCEPTED, KNOWN_PRE};
use super::pre_types::{PreType, PRE_TYPES};

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

/// The check-text hash of tokenizer.json bytes.
pub fn tokenizer_bytes_hash(bytes: &[u8]) -> std::result::Result<String, String> {
    check_text_hash(&load_tokenizer(bytes)?)
}

fn check_text_hash(tok: &tokenizers::Tokenizer) -> std::result::Result<String, String> {
    let enc = tok.encode(CHECK_TEXT, true).map_err(|e| format!("cannot tokenize llama.cpp's check text: {e}"))?;
    Ok(ids_hash(enc.get_ids()))
}

thread_local! {
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is inside a call whose panics the library catches and
/// reports as errors: a front end's panic hook can stay silent then (the library itself
/// never replaces the process-wide hook).
pub fn panic_is_caught() -> bool {
    CATCHING.with(|c| c.get())
}

/// Runs `f` with the `tokenizers` library's panics (its own bugs, reachable from input)
/// turned into errors.
fn without_panics<T>(f: impl FnOnce() -> std::result::Result<T, String>) -> std::result::Result<T, String> {
    let was = CATCHING.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the tokenizers library failed on this file".into()));
    CATCHING.with(|c| c.set(was));
    r
}

fn load_tokenizer(bytes: &[u8]) -> std::result::Result<tokenizers::Tokenizer, String> {
    without_panics(|| {
        tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| format!("cannot load with the tokenizers library: {e}"))
    })
}

/// The llama.cpp name for a check-text hash, if it knows one.
pub fn name_of_hash(hash: &str) -> Option<&'static str> {
    // The converter tests every hash with `if`, not `elif`: for a hash listed twice, the
    // last name wins.
    KNOWN_PRE.iter().rev().find(|(h, _)| *h == hash).map(|(_, n)| *n)
}

/// What decided `tokenizer.ggml.pre`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreSource {
    /// `--tokenizer-pre`.
    Flag,
    /// llama.cpp's check-text hash.
    Hash,
    /// The tokenizer's pre-tokenizer splits like this llama.cpp type.
    Structure,
    /// A SentencePiece vocabulary, which has none (llama.cpp's converter writes `default`).
    SentencePiece,
    /// Fixed by llama.cpp's tokenizer model (`gemma4`).
    TokenizerModel,
}

impl PreSource {
    pub fn describe(self) -> &'static str {
        match self {
            PreSource::Flag => "given by --tokenizer-pre",
            PreSource::Hash => "by llama.cpp's check-text hash",
            PreSource::Structure => "by the tokenizer's pre-tokenizer structure",
            PreSource::SentencePiece => "SentencePiece has no pre-tokenizer",
            PreSource::TokenizerModel => "fixed by llama.cpp's gemma4 tokenizer model",
        }
    }
}

/// The pre-tokenizer name written for a BPE tokenizer.json, and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreChoice {
    pub name: String,
    pub source: PreSource,
    pub hash: Option<String>,
}

/// `--tokenizer-pre` if given, else the check-text hash, else the structure; an error
/// saying how to choose one when neither recognises the tokenizer.
pub fn choose_pre(path: &Path, flag: Option<&str>) -> Result<PreChoice> {
    if let Some(name) = flag {
        return Ok(PreChoice { name: name.to_string(), source: PreSource::Flag, hash: None });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let tok = load_tokenizer(&bytes).map_err(|m| Error::input(path, m))?;
    let hash = without_panics(|| check_text_hash(&tok)).map_err(|m| Error::input(path, m))?;
    if let Some(name) = name_of_hash(&hash) {
        return Ok(PreChoice { name: name.to_string(), source: PreSource::Hash, hash: Some(hash) });
    }
    let ignore_merges = matches!(tok.get_model(), tokenizers::ModelWrapper::BPE(b) if b.ignore_merges);
    match without_panics(|| Ok(type_by_structure(&tok, ignore_merges))).ok().flatten() {
        Some(t) => Ok(PreChoice { name: t.name.to_string(), source: PreSource::Structure, hash: Some(hash) }),
        None => Err(Error::input(
            path,
            format!(
                "llama.cpp does not know this BPE pre-tokenizer: neither its check-text hash ({hash}) nor its pre_tokenizer's splitting matches one of llama.cpp's types; if it splits text like a known model's, pass --tokenizer-pre NAME (e.g. llama-bpe for Llama 3, qwen2 for Qwen2/3, gpt-4o)"
            ),
        )),
    }
}

/// Texts on which a tokenizer's pre-tokenizer and a llama.cpp type must split alike:
/// llama.cpp's check text and what it does not cover (contractions in capitals, long
/// digit runs, scripts, code, every kind of whitespace run).
const PROBE_TEXTS: &[&str] = &[
    CHECK_TEXT,
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "I'M sure YOU'LL see THEY'VE done it; we'D go. He's, she'd, it'll, 'tis, o'clock",
    "1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 0x1F 2026-05-17T12:00:00Z",
    "日本語のテキスト、カタカナ、中文文本和한국어 텍스트。東京 北京 서울 ไทย العربية עברית",
    "def f(x):\n    return [i ** 2 for i in range(x) if i % 3 == 0]  # squares\n",
    "if (a != b && c <= d) { x->y = z[0]; } // C; path/to/file.rs:12 <tag attr=\"v\">",
    "   leading\ttabs\t\tand  double  spaces\r\nwindows\r\n\n\nblank lines   \n trailing ",
    "Émile Zürich naïve café CamelCaseWord HTTPServer iPhone McDonald's ÀÉÎ ǅungla",
    "🚀🦙✅ 😀 👍🏽 🏳️‍🌈 → ≤ ≥ ∑ π ∞ © ® ™ … «quotes» “curly” ‘single’ ---=== ...!!! ???",
];

/// The pieces a pre-tokenizer cuts `text` into, or `None` if it fails on it.
fn pieces(pre: &impl tokenizers::PreTokenizer, text: &str) -> Option<Vec<String>> {
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString};
    let mut pts = PreTokenizedString::from(text);
    pre.pre_tokenize(&mut pts).ok()?;
    let splits = pts.get_splits(OffsetReferential::Original, OffsetType::Byte);
    Some(splits.into_iter().map(|(s, _, _)| s.to_string()).collect())
}

/// llama.cpp's splitting for a type: each regex in turn, matches and gaps kept, then the
/// byte-level alphabet (as the tokenizer's own ByteLevel step produces). `None` if the
/// regex engine does not take one of its patterns.
fn reference(t: &PreType) -> Option<tokenizers::pre_tokenizers::sequence::Sequence> {
    use tokenizers::pre_tokenizers::{byte_level::ByteLevel, sequence::Sequence, split::Split, split::SplitPattern};
    use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};
    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    for r in t.regexes {
        let split = Split::new(SplitPattern::Regex(r.to_string()), SplitDelimiterBehavior::Isolated, false).ok()?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, true, false).into());
    Some(Sequence::new(steps))
}

/// The first llama.cpp type (in the table's order) that splits every probe text as the
/// tokenizer's pre-tokenizer does; among types with that same regex list, one whose
/// `ignore_merges` agrees with the tokenizer's.
fn type_by_structure(tok: &tokenizers::Tokenizer, ignore_merges: bool) -> Option<&'static PreType> {
    let pre = tok.get_pre_tokenizer()?;
    let own: Vec<Vec<String>> = PROBE_TEXTS.iter().map(|t| pieces(pre, t)).collect::<Option<_>>()?;
    let alike = |t: &&PreType| {
        reference(t).is_some_and(|r| PROBE_TEXTS.iter().zip(&own).all(|(text, p)| pieces(&r, text).as_ref() == Some(p)))
    };
    let first = PRE_TYPES.iter().find(alike)?;
    let same_regexes =
        |t: &&PreType| t.regexes.iter().map(|r| canonical(r)).eq(first.regexes.iter().map(|r| canonical(r)));
    let mut aliases = PRE_TYPES.iter().filter(same_regexes);
    Some(aliases.find(|t| t.ignore_merges == ignore_merges).unwrap_or(first))
}

/// A regex with llama.cpp's spelled-out contraction group written back as the
/// case-insensitive group it stands for, so that types sharing one regex compare equal.
fn canonical(r: &str) -> String {
    r.replace("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])", "(?i:'s|'t|'re|'ve|'m|'ll|'d)")
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

    fn tokenizer_with(pre_tokenizer: serde_json::Value) -> tokenizers::Tokenizer {
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": pre_tokenizer, "post_processor": null, "decoder": null,
            "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
        });
        load_tokenizer(json.to_string().as_bytes()).expect("loads")
    }

    fn split_then_bytes(regex: &str) -> serde_json::Value {
        serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})
    }

    const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    #[test]
    fn table_names_load_and_their_regexes_compile() {
        for t in PRE_TYPES {
            assert!(is_known_name(t.name), "{}", t.name);
            assert!(reference(t).is_some(), "{}: a regex the engine does not take", t.name);
        }
    }

    #[test]
    fn structure_recognises_the_common_families() {
        let name = |pre: serde_json::Value, ignore_merges: bool| {
            type_by_structure(&tokenizer_with(pre), ignore_merges).map(|t| t.name)
        };
        // Llama 3's regex as its tokenizer.json has it; without ignore_merges, the same
        // splitting under a name that does not set it.
        assert_eq!(name(split_then_bytes(LLAMA3_REGEX), true), Some("llama-bpe"));
        assert_eq!(name(split_then_bytes(LLAMA3_REGEX), false), Some("smaug-bpe"));
        let qwen2 = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}");
        assert_eq!(name(split_then_bytes(&qwen2), false), Some("qwen2"));
        // GPT-2: a plain ByteLevel with its built-in regex.
        let gpt2 = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        assert_eq!(name(gpt2, false), Some("gpt-2"));
        // StarCoder: every digit alone, then GPT-2's splitting.
        let digits = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]});
        assert_eq!(name(digits, false), Some("starcoder"));
        // Splitting that no llama.cpp type implements, and no pre-tokenizer at all.
        assert_eq!(name(split_then_bytes(r"\w+|[^\w\s]+"), false), None);
        assert_eq!(name(serde_json::Value::Null, false), None);
    }
}
