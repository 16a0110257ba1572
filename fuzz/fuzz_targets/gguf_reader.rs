//! The GGUF reader on arbitrary bytes: an error, never a panic or a huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = mlx2gguf::gguf::GgufFile::parse(data) {
        for t in &f.tensors {
            let _ = f.tensor_data(t).len();
        }
    }
});
