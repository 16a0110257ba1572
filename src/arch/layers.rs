//! Per-layer shapes. Most architectures repeat one layer; Gemma 4 varies head size, KV
//! heads, KV sharing and MLP width by layer, as [`MixedLayers`] says, and gives its
//! full-attention and sliding-window layers rope settings of their own.

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::source::Checkpoint;

use super::spec::MixedLayers;

/// One layer's attention and MLP shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    pub sliding: bool,
    pub head_dim: usize,
    pub kv_heads: usize,
    pub ff: usize,
    /// K and V projections of its own (else it reuses an earlier layer's KV cache).
    pub has_kv: bool,
    /// A V projection (else its keys are its values).
    pub has_v: bool,
    /// Experts (else a dense MLP, in a model with experts).
    pub moe: bool,
    /// Linear attention (a recurrent layer) instead of full attention.
    pub linear: bool,
}

impl LayerShape {
    pub fn uniform(sliding: &[bool], head_dim: usize, kv_heads: usize, ff: usize) -> Vec<LayerShape> {
        sliding
            .iter()
            .map(|&sliding| LayerShape {
                sliding,
                head_dim,
                kv_heads,
                ff,
                has_kv: true,
                has_v: true,
                moe: false,
                linear: false,
            })
            .collect()
    }
}

/// What Gemma 4's config.json says beyond a uniform decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixed {
    pub layers: Vec<LayerShape>,
    /// Head size of full-attention and of sliding-window layers.
    pub full_head_dim: usize,
    pub swa_head_dim: usize,
    pub full_rope_theta: f64,
    pub swa_rope_theta: f64,
    /// Full-attention rope: per frequency pair, the divisor of its angle (mlx-lm's
    /// ProportionalRoPE: the factor for rotated pairs, none turning for the others).
    pub full_rope_freqs: Vec<f32>,
    pub kv_shared: usize,
    pub per_layer_embd: usize,
}

/// A frequency factor so large that ggml's rope leaves the pair unrotated (as llama.cpp's
/// converter writes for Gemma 4's unrotated dimensions).
const NOT_ROTATED: f32 = 1e30;

/// Reads Gemma 4's per-layer shapes. `sliding` flags each layer; `head_dim`, `kv_heads`
/// and `ff` are config.json's (sliding-window) values.
pub fn read_mixed(
    ckpt: &Checkpoint,
    m: &MixedLayers,
    sliding: &[bool],
    head_dim: usize,
    kv_heads: usize,
    ff: usize,
) -> Result<Mixed> {
    let c = &ckpt.config;
    let n = sliding.len();
    let full_head_dim = c.opt_u64(m.global_head_dim)?.filter(|&v| v > 0).map_or(head_dim, |v| v as usize);
    let k_eq_v = c.opt_bool(m.k_eq_v)?.unwrap_or(false);
    let global_kv = c.opt_u64(m.global_kv_heads)?.map(|v| v as usize);
    // mlx-lm's defaults (its Gemma 4 E2B values) apply when a key is absent, not when null.
    let default_or = |key: &str, default: u64| -> Result<u64> {
        Ok(if c.is_null(key) { 0 } else { c.opt_u64(key)?.unwrap_or(default) })
    };
    let kv_shared = default_or(m.kv_shared, 20)? as usize;
    let per_layer_embd = default_or(m.per_layer_input, 256)? as usize;
    let double_wide = c.opt_bool(m.double_wide_mlp)?.unwrap_or(true);
    if kv_shared >= n && kv_shared > 0 {
        let msg = format!("{kv_shared} of {n} layers: at least one layer must compute its own keys and values");
        return Err(Error::config(&c.path, m.kv_shared, msg));
    }
    let first_shared = n - kv_shared;
    check_kv_sources(ckpt, m, sliding, first_shared)?;
    let layers = (0..n)
        .map(|i| {
            let full = !sliding[i];
            let shared = kv_shared > 0 && i >= first_shared;
            let keys_are_values = full && k_eq_v;
            LayerShape {
                sliding: sliding[i],
                head_dim: if full { full_head_dim } else { head_dim },
                kv_heads: if keys_are_values { global_kv.unwrap_or(kv_heads) } else { kv_heads },
                ff: if double_wide && shared { 2 * ff } else { ff },
                has_kv: !shared,
                has_v: !shared && !keys_are_values,
                moe: false,
                linear: false,
            }
        })
        .collect::<Vec<_>>();
    if let Some(l) = layers.iter().find(|l| l.kv_heads == 0 || l.head_dim % 2 != 0) {
        let msg = format!("gives a layer {} KV heads of size {}: rope needs an even size", l.kv_heads, l.head_dim);
        return Err(Error::config(&c.path, m.global_head_dim, msg));
    }
    let (full_rope_theta, full_rope_freqs) = full_rope(ckpt, m, full_head_dim)?;
    let swa_rope_theta = sliding_rope(ckpt, m)?;
    Ok(Mixed {
        layers,
        full_head_dim,
        swa_head_dim: head_dim,
        full_rope_theta,
        swa_rope_theta,
        full_rope_freqs,
        kv_shared,
        per_layer_embd,
    })
}

/// mlx-lm lets a KV-sharing layer reuse the last earlier layer of its type; llama.cpp the
/// last full-attention or the one before it for a sliding layer. They agree when the last
/// two layers with KV of their own are sliding then full.
fn check_kv_sources(ckpt: &Checkpoint, m: &MixedLayers, sliding: &[bool], first_shared: usize) -> Result<()> {
    if first_shared == sliding.len() {
        return Ok(());
    }
    if first_shared < 2 || !sliding[first_shared - 2] || sliding[first_shared - 1] {
        let msg = format!(
            "{}: llama.cpp lets shared layers reuse layers {} (sliding) and {} (full), which this layer pattern does not have",
            sliding.len() - first_shared,
            first_shared.saturating_sub(2),
            first_shared.saturating_sub(1)
        );
        return Err(Error::config(&ckpt.config.path, m.kv_shared, msg));
    }
    Ok(())
}

/// `rope_parameters.<kind>`, or mlx-lm's default when config.json has none.
fn rope_params<'a>(ckpt: &'a Checkpoint, m: &MixedLayers, kind: &str) -> Option<&'a Json> {
    ckpt.config.get(m.rope_parameters).and_then(|p| p.get(kind))
}

/// Full-attention layers: rope base and per-pair factors. mlx-lm's defaults: base 1e6,
/// proportional rope on a quarter of each head.
fn full_rope(ckpt: &Checkpoint, m: &MixedLayers, head_dim: usize) -> Result<(f64, Vec<f32>)> {
    let key = format!("{}.full_attention", m.rope_parameters);
    let p = rope_params(ckpt, m, "full_attention");
    let num = |k: &str, default: f64| p.and_then(|p| p.get(k)).and_then(Json::as_f64).unwrap_or(default);
    let ty = match p {
        Some(p) => p.get("rope_type").and_then(Json::as_str).unwrap_or("default"),
        None => "proportional",
    };
    let theta = num("rope_theta", 1_000_000.0);
    let pairs = head_dim / 2;
    let rotated = match ty {
        // mlx-lm's plain RoPE turns the whole head whatever partial_rotary_factor says.
        "default" => pairs,
        "proportional" => ((head_dim as f64 * num("partial_rotary_factor", 1.0)) as usize) / 2,
        other => {
            let msg = format!("'{other}': mlx-lm's Gemma 4 full-attention layers take default or proportional rope");
            return Err(Error::config(&ckpt.config.path, format!("{key}.rope_type"), msg));
        }
    };
    if rotated > pairs {
        return Err(Error::config(&ckpt.config.path, format!("{key}.partial_rotary_factor"), "above 1"));
    }
    let factor = if ty == "proportional" { num("factor", 1.0) as f32 } else { 1.0 };
    let freqs = (0..pairs).map(|i| if i < rotated { factor } else { NOT_ROTATED }).collect();
    Ok((theta, freqs))
}

/// Sliding-window layers: plain rope over the whole head (base 1e4 by default).
fn sliding_rope(ckpt: &Checkpoint, m: &MixedLayers) -> Result<f64> {
    let p = rope_params(ckpt, m, "sliding_attention");
    let ty = p.and_then(|p| p.get("rope_type")).and_then(Json::as_str).unwrap_or("default");
    if ty != "default" {
        let key = format!("{}.sliding_attention.rope_type", m.rope_parameters);
        let msg = format!("'{ty}': llama.cpp's gemma4 has no rope scaling for sliding-window layers");
        return Err(Error::config(&ckpt.config.path, key, msg));
    }
    Ok(p.and_then(|p| p.get("rope_theta")).and_then(Json::as_f64).unwrap_or(10_000.0))
}
