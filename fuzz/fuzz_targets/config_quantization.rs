//! config.json (with its quantization record) from arbitrary bytes: an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(c) = mlx2gguf::source::ModelConfig::from_value(std::path::Path::new("config.json"), v) {
            let _ = c.quant.for_module("model.layers.0.mlp.router");
        }
    }
});
