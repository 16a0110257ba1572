//! Builds the o200k_harmony tokenizer (gpt-oss) as a Hugging Face `tokenizer.json` from the
//! o200k_base ranks that the `tiktoken-rs` crate ships, plus the harmony special tokens at
//! their real ids (199998..=200018), and writes tiktoken's own token ids for a set of test
//! strings to `expected.json`. Used by tests/oracle/test_o200k_tokenizer.py.
//!
//! Usage: cargo run --example o200k_fixture -- OUT_DIR

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::json;

const SPECIALS: [&str; 21] = [
    "<|startoftext|>",
    "<|endoftext|>",
    "<|reserved_200000|>",
    "<|reserved_200001|>",
    "<|return|>",
    "<|constrain|>",
    "<|reserved_200004|>",
    "<|channel|>",
    "<|start|>",
    "<|end|>",
    "<|message|>",
    "<|reserved_200009|>",
    "<|reserved_200010|>",
    "<|reserved_200011|>",
    "<|call|>",
    "<|reserved_200013|>",
    "<|reserved_200014|>",
    "<|reserved_200015|>",
    "<|reserved_200016|>",
    "<|reserved_200017|>",
    "<|reserved_200018|>",
];
const N_BASE: u32 = 199998;

/// The o200k pre-tokenizer pattern (tiktoken's O200K_BASE_PAT_STR).
const PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|",
    r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
);

pub const TEST_STRINGS: &[&str] = &[
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "def convert(model_dir: Path) -> int:\n    return 42  # answer\n",
    "fn main() { println!(\"{}\", 1_000_000u64 >> 3); }",
    "Numbers: 1234567890 3.14159 -273.15 1e-9 0x7fff",
    "Whitespace   runs\t\ttabs\n\n\nnewlines     end   ",
    "Unicode: café naïve résumé Straße Ελληνικά русский 日本語 中文 한국어 العربية עברית",
    "Combining marks: हिन्दी विकिपीडिया ไทย עִבְרִית",
    "Emoji 🚀🔥👍🏽 and symbols ∑∫√∞ ≤≥ ©®™",
    "I'm sure they'll say it's THE best; we've seen 'em DON'T.",
    "<|start|>user<|message|>What is 2+2?<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>",
    "  leading spaces and trailing  ",
    "URLs https://example.com/a/b?c=d&e=f#g and emails x@y.z",
];

fn bytes_to_unicode() -> HashMap<u8, char> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter().zip(cs).map(|(b, c)| (b as u8, char::from_u32(c).unwrap())).collect()
}

/// Every split of `token` into two tokens: tiktoken merges any adjacent pair whose
/// concatenation is a token, lowest resulting rank first, so each such split is a merge
/// ranked with the token it produces (as Hugging Face's tiktoken converter does).
fn splits(ranks: &HashMap<Vec<u8>, u32>, token: &[u8]) -> Vec<(u32, u32, usize)> {
    let mut out = Vec::new();
    for i in 1..token.len() {
        if let (Some(&l), Some(&r)) = (ranks.get(&token[..i]), ranks.get(&token[i..])) {
            out.push((l, r, i));
        }
    }
    out.sort();
    out
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: o200k_fixture OUT_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    let enc = tiktoken_rs::o200k_harmony().unwrap();
    let mut ranks: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut by_rank: Vec<Vec<u8>> = Vec::with_capacity(N_BASE as usize);
    for r in 0..N_BASE {
        let b = enc.decode_bytes(&[r]).unwrap();
        ranks.insert(b.clone(), r);
        by_rank.push(b);
    }
    let u = bytes_to_unicode();
    let show = |b: &[u8]| b.iter().map(|x| u[x]).collect::<String>();
    let mut vocab = serde_json::Map::new();
    let mut merges = Vec::new();
    for (r, tok) in by_rank.iter().enumerate() {
        vocab.insert(show(tok), json!(r));
        for (_, _, i) in splits(&ranks, tok) {
            merges.push(json!([show(&tok[..i]), show(&tok[i..])]));
        }
    }
    let added: Vec<_> = SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": N_BASE + i as u32, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": true,
                  "vocab": vocab, "merges": merges}
    });
    std::fs::write(out.join("tokenizer.json"), serde_json::to_string(&tokenizer).unwrap()).unwrap();
    let expected: Vec<_> =
        TEST_STRINGS.iter().map(|s| json!({"text": s, "ids": enc.encode_with_special_tokens(s)})).collect();
    std::fs::write(out.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap()).unwrap();
    eprintln!("wrote {} tokens, {} merges to {}", vocab.len() + SPECIALS.len(), merges.len(), out.display());
}
