//! tokenizer.model bytes (a sentencepiece ModelProto): the protobuf reader gives pieces or
//! an error, never a panic or an allocation sized by a length it has not checked.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mlx2gguf::tokenizer::spm::parse_model(data);
});
