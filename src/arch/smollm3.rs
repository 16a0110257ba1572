//! SmolLM3 (`model_type: smollm3`) → llama.cpp's `smollm3`: Llama's tensors and NORM rope
//! (Q/K rows permuted, as llama.cpp's converter, a LlamaModel, does), with every 4th layer
//! without rope. llama.cpp fixes that step at 4, so a `no_rope_layers` list (or
//! `no_rope_layer_interval`) that says otherwise is refused.

use super::spec::groups::*;
use super::spec::ArchSpec;
use crate::error::{Error, Result};
use crate::source::Checkpoint;

/// As Llama, without `rope_freqs` (llama.cpp's smollm3 has none).
pub const SPEC: ArchSpec =
    ArchSpec { arch: "smollm3", back: HEAD, scalings: &["linear", "yarn"], ..super::llama::SPEC };

/// llama.cpp's `n_no_rope_layer_step` (src/models/smollm3.cpp): layer `i` uses rope unless
/// `(i + 1) % 4 == 0`.
const NO_ROPE_STEP: u64 = 4;

/// A rope pattern llama.cpp cannot express.
pub fn refuse(ckpt: &Checkpoint) -> Result<()> {
    let c = &ckpt.config;
    let layers = c.u64("num_hidden_layers")?;
    let interval = c.opt_u64("no_rope_layer_interval")?.unwrap_or(NO_ROPE_STEP);
    let wanted: Vec<u64> = (0..layers).map(|i| u64::from((i + 1) % NO_ROPE_STEP != 0)).collect();
    let given: Vec<u64> = match c.get("no_rope_layers").and_then(|v| v.as_array()) {
        Some(list) => list.iter().map(|v| v.as_u64().unwrap_or(u64::MAX)).collect(),
        None if interval == 0 => vec![u64::MAX],
        None => (0..layers).map(|i| u64::from((i + 1) % interval != 0)).collect(),
    };
    if given != wanted {
        let key = if c.get("no_rope_layers").is_some() { "no_rope_layers" } else { "no_rope_layer_interval" };
        return Err(Error::config(
            &c.path,
            key,
            format!("llama.cpp's smollm3 leaves out rope on every {NO_ROPE_STEP}th layer exactly ({wanted:?})"),
        ));
    }
    Ok(())
}
