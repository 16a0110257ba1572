//! A model folder whose model.safetensors and index are arbitrary bytes: opening and
//! planning fail with an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("mlx2gguf-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let (a, b) = data.split_at(data.len() / 2);
    let _ = std::fs::write(dir.join("model.safetensors"), a);
    if b.first().is_some_and(|c| c % 2 == 0) {
        let _ = std::fs::write(dir.join("model.safetensors.index.json"), &b[1..]);
    } else {
        let _ = std::fs::remove_file(dir.join("model.safetensors.index.json"));
    }
    let _ = mlx2gguf::source::TensorStore::open_dir(&dir);
});
