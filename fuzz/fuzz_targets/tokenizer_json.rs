//! tokenizer.json bytes: our BPE vocabulary reader (padded to a row count taken from the
//! input's length) and the pre-tokenizer hash through the `tokenizers` library give an
//! error, never a panic or an allocation sized by the input's numbers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let rows = 1 + data.len() % 4096;
        let _ = mlx2gguf::tokenizer::Vocab::from_json(std::path::Path::new("tokenizer.json"), &v, rows);
    }
    let _ = mlx2gguf::tokenizer::pre::tokenizer_bytes_hash(data);
});
