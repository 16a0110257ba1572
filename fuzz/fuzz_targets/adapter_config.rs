//! adapter_config.json bytes, then (after a NUL byte) adapter tensor names one per line:
//! settings parsing and LoRA/DoRA module pairing give an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mlx2gguf::source::adapter::{pair_modules, AdapterSettings};

fuzz_target!(|data: &[u8]| {
    let (json, names) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let path = std::path::Path::new("adapter_config.json");
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    if let Ok(s) = AdapterSettings::parse(path, &v) {
        let names = String::from_utf8_lossy(names);
        let _ = pair_modules(std::path::Path::new("adapters.safetensors"), names.lines(), s.fine_tune_type);
    }
});
