//! The one builder for decoder architectures: it reads config.json as the architecture's
//! [`ArchSpec`] says, then walks the spec's tensor table (resolving each MLX tensor with
//! its shape in model dimensions) and its metadata list. An architecture file states its
//! names and quirks as data; this file has no per-architecture branches.

use crate::error::{Error, Result};
use crate::gguf::Value;
use crate::plan::{
    resolve_param, resolve_weight, Encoding, ModelShape, ModuleRef, Plan, PlanOptions, PlannedTensor, TensorClass,
};
use crate::source::Checkpoint;
use crate::tokenizer::{vocab_metadata, Vocab};

use super::layers::{LayerShape, Mixed};
use super::spec::{ArchSpec, Dims, LayerTypes, Meta, RopeKind, Source, SpacePrefix, TensorSpec, VocabKind, When};

/// Rope scaling as llama.cpp expresses it.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    Linear {
        factor: f64,
    },
    Yarn {
        factor: f64,
        original_context: u64,
        extra: Vec<(&'static str, f64)>,
    },
    /// Llama 3.1: per-frequency factors in a `rope_freqs` tensor.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_context: f64,
    },
    /// LongRoPE (Phi-3): per-frequency factors for long and short contexts, as tensors.
    LongRope {
        long: Vec<f64>,
        short: Vec<f64>,
    },
}

/// The hyperparameters read from config.json.
#[derive(Clone, Debug)]
pub struct DecoderConfig {
    pub hidden: usize,
    pub layers: usize,
    pub intermediate: Option<usize>,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub head_dim_given: bool,
    /// Rotated dimensions per head (head_dim, or a part of it with `partial_rotary_factor`).
    pub rope_dims: usize,
    /// `original_max_position_embeddings` (mlx-lm's default 4096 where it reads one).
    pub original_context: u64,
    pub vocab: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    pub context_length: Option<u64>,
    pub scaling: RopeScaling,
    pub tied: bool,
    /// The config.json flags the spec's tensors depend on (`When::Flag`).
    pub flags: Vec<(&'static str, bool)>,
    /// Whether MLX applies rope to adjacent pairs already (`rope_traditional`).
    pub rope_traditional: bool,
    pub experts: usize,
    pub experts_used: usize,
    pub expert_ff: usize,
    /// The shared experts' hidden size (0: none).
    pub shared_ff: usize,
    pub sliding_window: u64,
    /// Per layer: sliding-window attention (only for `LayerTypes::AlternatingSliding`).
    pub sliding_layers: Vec<bool>,
    /// config.json numbers the spec copies into f32 keys (`Meta::ConfigF32`), by config key.
    pub extra_f32: Vec<(&'static str, f64)>,
    /// And into u32 keys (`Meta::ConfigU32`).
    pub extra_u32: Vec<(&'static str, u64)>,
    /// Each layer's shape.
    pub layer: Vec<LayerShape>,
    /// Gemma 4's per-layer shapes and rope settings.
    pub mixed: Option<Mixed>,
    /// The config.json integers behind `Dim::Config` / `Meta::ConfigSum`, by key.
    pub config_ints: Vec<(&'static str, u64)>,
    /// `rope_scaling.mscale_all_dim` (DeepSeek's yarn).
    pub mscale_all_dim: Option<f64>,
    /// The scoring function behind `Meta::GatingFunc`.
    pub gating: Option<String>,
    /// M-RoPE sections (`rope_parameters.mrope_section`).
    pub mrope_sections: Option<Vec<u32>>,
}

impl DecoderConfig {
    pub fn read(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<DecoderConfig> {
        let c = &ckpt.config;
        let us = |k: &str| c.u64(k).map(|v| v as usize);
        let cfg_err = |k: &str, m: String| Error::config(&c.path, k, m);
        let Heads { hidden, heads, kv_heads, given, head_dim } = Heads::read(ckpt, spec)?;
        let layers = us("num_hidden_layers")?;
        check_query_scalar(ckpt, spec, layers, hidden / heads, head_dim)?;
        let (rope_theta, scaling) = read_rope(ckpt, spec)?;
        let (experts, experts_used, expert_ff) = read_moe(ckpt, spec)?;
        let intermediate = c.opt_u64("intermediate_size")?.map(|v| v as usize);
        if spec.moe.is_none() && intermediate.is_none() {
            return Err(cfg_err("intermediate_size", "missing".into()));
        }
        let ff = intermediate.unwrap_or(0);
        let (sliding_layers, layer, mixed) = read_layers(ckpt, spec, layers, head_dim, kv_heads, ff, experts)?;
        // Outside the layers (and in key_length), a mixed model's head is the full-attention one.
        let head_dim = mixed.as_ref().map_or(head_dim, |m| m.full_head_dim);
        let rope_traditional = c.opt_bool("rope_traditional")?.unwrap_or(false);
        if rope_traditional && spec.rope == RopeKind::Neox {
            return Err(cfg_err(
                "rope_traditional",
                format!("true, but llama.cpp's {} applies rotate-half rope; the model would not match", spec.arch),
            ));
        }
        Ok(DecoderConfig {
            hidden,
            layers,
            intermediate,
            heads,
            kv_heads,
            head_dim,
            head_dim_given: given.is_some(),
            rope_dims: rope_dims(ckpt, spec, head_dim)?,
            original_context: c.opt_u64("original_max_position_embeddings")?.unwrap_or(4096),
            vocab: us("vocab_size")?,
            rms_eps: c.opt_f64("rms_norm_eps")?.unwrap_or(1e-5),
            rope_theta: mixed.as_ref().map_or(rope_theta, |m| m.full_rope_theta),
            context_length: context_length(ckpt, spec, &scaling)?,
            scaling,
            tied: match spec.tie_from_weights {
                true => !ckpt.tensors.contains("lm_head.weight"),
                false => c.opt_bool("tie_word_embeddings")?.unwrap_or(spec.default_tie),
            },
            flags: read_flags(ckpt, spec, layers)?,
            rope_traditional,
            experts,
            experts_used,
            expert_ff,
            shared_ff: shared_ff(ckpt, spec, expert_ff)?,
            sliding_window: c.opt_u64("sliding_window")?.unwrap_or(spec.default_sliding_window),
            sliding_layers,
            extra_f32: read_extra_f32(ckpt, spec)?,
            extra_u32: read_extra_u32(ckpt, spec)?,
            layer,
            mixed,
            config_ints: read_config_ints(ckpt, spec)?,
            mscale_all_dim: c.get("rope_scaling").and_then(|r| r.get("mscale_all_dim")).and_then(|v| v.as_f64()),
            gating: read_gating(ckpt, spec)?,
            mrope_sections: rope_params_of(c)
                .and_then(|p| p.get("mrope_section"))
                .and_then(|v| v.as_array())
                .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0) as u32).collect()),
        })
    }

    /// Whether Q/K rows are permuted into llama.cpp's adjacent-pair layout.
    fn permute(&self, spec: &ArchSpec) -> bool {
        spec.rope == RopeKind::Norm && !self.rope_traditional
    }

    /// The model dimensions the spec's shapes are written in: those of layer `layer`, or
    /// (`None`) those outside the layers.
    pub fn dims_at(&self, layer: Option<usize>) -> Dims {
        let mut d = self.dims();
        if let Some(l) = layer.and_then(|i| self.layer.get(i)) {
            d.head_dim = l.head_dim as u64;
            d.kv_heads = l.kv_heads as u64;
            d.ff = l.ff as u64;
        }
        d
    }

    /// The model dimensions outside the layers.
    pub fn dims(&self) -> Dims {
        let u = |v: usize| v as u64;
        Dims {
            embd: u(self.hidden),
            vocab: Some(u(self.vocab)),
            heads: u(self.heads),
            kv_heads: u(self.kv_heads),
            head_dim: u(self.head_dim),
            rot: u(self.rope_dims),
            ff: u(self.intermediate.unwrap_or(0)),
            experts: u(self.experts),
            exp_ff: u(self.expert_ff),
            shexp_ff: u(self.shared_ff),
            n_layer: u(self.layers),
            per_layer_embd: u(self.mixed.as_ref().map_or(0, |m| m.per_layer_embd)),
        }
    }

    /// A config.json integer read for `Dim::Config` and `Meta::ConfigSum`.
    pub fn config_int(&self, key: &str) -> u64 {
        self.config_ints.iter().find(|(k, _)| *k == key).map_or(0, |(_, v)| *v)
    }

    /// A sum of products of config.json integers.
    pub fn terms(&self, terms: &[&[&str]]) -> u64 {
        terms.iter().map(|t| t.iter().map(|k| self.config_int(k)).product::<u64>()).sum()
    }

    /// A spec shape in model dimensions, as sizes.
    pub fn shape(&self, dims: &Dims, shape: &[super::spec::Dim]) -> Vec<usize> {
        use super::spec::Dim;
        let sum = |ks: &[&str]| ks.iter().map(|k| self.config_int(k)).sum::<u64>();
        shape
            .iter()
            .map(|d| match d {
                Dim::Config(ks) => sum(ks),
                Dim::HeadsTimes(ks) => dims.heads * sum(ks),
                Dim::Terms(ts) => self.terms(ts),
                d => dims.of(*d).unwrap_or(0),
            } as usize)
            .collect()
    }

    /// Whether a tensor whose presence depends on the configuration exists (in layer
    /// `layer`, for per-layer ones).
    fn has(&self, when: When, layer: Option<usize>) -> bool {
        let shape = layer.and_then(|i| self.layer.get(i));
        match when {
            When::Always => true,
            When::Flag(key) | When::Positive(key) => self.flags.iter().any(|(k, v)| *k == key && *v),
            When::NotPositive(key) => !self.flags.iter().any(|(k, v)| *k == key && *v),
            When::DenseLayer => shape.is_none_or(|l| !l.moe),
            When::MoeLayer => shape.is_none_or(|l| l.moe),
            When::LinearLayer => shape.is_none_or(|l| l.linear),
            When::FullAttnLayer => shape.is_none_or(|l| !l.linear),
            When::HasKv => shape.is_none_or(|l| l.has_kv),
            When::HasV => shape.is_none_or(|l| l.has_v),
            When::Untied => !self.tied,
            When::Llama3Rope => matches!(self.scaling, RopeScaling::Llama3 { .. }),
            When::LongRope => matches!(self.scaling, RopeScaling::LongRope { .. }),
        }
    }
}

/// `rope_parameters` (transformers ≥ 5 nests rope settings there), if an object.
fn rope_params_of(c: &crate::source::ModelConfig) -> Option<&serde_json::Value> {
    c.get("rope_parameters").filter(|v| v.is_object())
}

/// The rotated dimensions: `partial_rotary_factor · head_dim` (top level, else in
/// `rope_parameters`) where the spec reads it.
fn rope_dims(ckpt: &Checkpoint, spec: &ArchSpec, head_dim: usize) -> Result<usize> {
    if !spec.partial_rotary {
        return Ok(head_dim);
    }
    let nested = rope_params_of(&ckpt.config).and_then(|p| p.get("partial_rotary_factor")).and_then(|v| v.as_f64());
    let factor = ckpt.config.opt_f64("partial_rotary_factor")?.or(nested).unwrap_or(1.0);
    let dims = (head_dim as f64 * factor) as usize;
    if dims == 0 || !dims.is_multiple_of(2) || dims > head_dim {
        let msg = format!("{factor} gives {dims} rotated dimensions of {head_dim}: rope needs an even number");
        return Err(Error::config(&ckpt.config.path, "partial_rotary_factor", msg));
    }
    Ok(dims)
}

/// rope_theta and rope scaling; transformers ≥ 5 nests both under `rope_parameters`.
fn read_rope(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<(f64, RopeScaling)> {
    let c = &ckpt.config;
    let rope_params = c.get("rope_parameters").filter(|v| v.is_object());
    let rope_theta = match c.opt_f64("rope_theta")? {
        Some(t) => t,
        None => {
            rope_params.and_then(|p| p.get("rope_theta")).and_then(|v| v.as_f64()).unwrap_or(spec.default_rope_theta)
        }
    };
    let scaling_json = c.get("rope_scaling").filter(|v| !v.is_null()).or(rope_params);
    Ok((rope_theta, parse_scaling(&c.path, scaling_json, spec)?))
}

/// Gemma scales queries by `query_pre_attn_scalar^-½` in mlx-lm; llama.cpp has no key for it
/// and uses the head size (or n_embd / n_head at its 27B layer count).
fn check_query_scalar(
    ckpt: &Checkpoint,
    spec: &ArchSpec,
    layers: usize,
    per_head: usize,
    head_dim: usize,
) -> Result<()> {
    let Some(q) = spec.query_scalar else { return Ok(()) };
    let value = ckpt.config.opt_f64("query_pre_attn_scalar")?.unwrap_or(q.default);
    let llama_cpp = if layers == q.n_layer_27b { per_head } else { head_dim };
    if value != llama_cpp as f64 {
        return Err(Error::config(
            &ckpt.config.path,
            "query_pre_attn_scalar",
            format!(
                "{value}: llama.cpp's {} scales queries by {llama_cpp}^-1/2 for this model and has no key to change it",
                spec.arch
            ),
        ));
    }
    Ok(())
}

/// The config.json flags behind the spec's `When::Flag` tensors.
fn read_flags(ckpt: &Checkpoint, spec: &ArchSpec, layers: usize) -> Result<Vec<(&'static str, bool)>> {
    let mut flags: Vec<(&'static str, bool)> = Vec::new();
    for (_, t) in spec.tensors(layers.min(1)) {
        let (key, on) = match t.when {
            When::Flag(key) => (key, ckpt.config.opt_bool(key)?.unwrap_or(false)),
            When::Positive(key) | When::NotPositive(key) => (key, positive(ckpt, spec, key)?),
            _ => continue,
        };
        if !flags.iter().any(|(k, _)| *k == key) {
            flags.push((key, on));
        }
    }
    for m in spec.metadata {
        if let Meta::ConfigTrue { config, default, .. } = m {
            flags.push((config, ckpt.config.opt_bool(config)?.unwrap_or(*default)));
        }
    }
    Ok(flags)
}

/// Whether a `When::Positive` key holds a number above zero or true; a mixed-layer
/// model's per-layer input size takes mlx-lm's default when absent.
fn positive(ckpt: &Checkpoint, spec: &ArchSpec, key: &str) -> Result<bool> {
    let c = &ckpt.config;
    if spec.mixed_layers.is_some_and(|m| m.per_layer_input == key) {
        return Ok(!c.is_null(key) && c.opt_u64(key)?.unwrap_or(256) > 0);
    }
    let default = spec.config_defaults.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    Ok(match c.get(key) {
        None => !c.is_null(key) && default.is_some_and(|v| v > 0),
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => c.opt_f64(key)?.is_some_and(|v| v > 0.0),
    })
}

/// The shared experts' size: a config key of its own (Qwen2-MoE) or a number of experts of
/// the routed ones' size (DeepSeek).
fn shared_ff(ckpt: &Checkpoint, spec: &ArchSpec, expert_ff: usize) -> Result<usize> {
    let Some(m) = spec.moe else { return Ok(0) };
    Ok(match (m.shared_ff, m.shared_count) {
        (Some(k), _) => ckpt.config.u64(k)? as usize,
        (None, Some(k)) => ckpt.config.opt_u64(k)?.unwrap_or(0) as usize * expert_ff,
        (None, None) => 0,
    })
}

/// Every config.json integer a `Dim::Config`, `Dim::HeadsTimes` or `Meta::ConfigSum` of the
/// spec names: its value, else mlx-lm's default.
fn read_config_ints(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<Vec<(&'static str, u64)>> {
    let mut keys: Vec<&'static str> = Vec::new();
    for (_, t) in spec.tensors(1) {
        for d in t.shape {
            match d {
                super::spec::Dim::Config(ks) | super::spec::Dim::HeadsTimes(ks) => keys.extend(ks.iter()),
                super::spec::Dim::Terms(ts) => keys.extend(ts.iter().flat_map(|t| t.iter())),
                _ => {}
            }
        }
    }
    for m in spec.metadata {
        match m {
            Meta::ConfigSum { configs, .. } => keys.extend(configs.iter()),
            Meta::ConfigTerms { terms, .. } => keys.extend(terms.iter().flat_map(|t| t.iter())),
            _ => {}
        }
    }
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for k in keys {
        if out.iter().any(|(o, _)| *o == k) {
            continue;
        }
        let default = spec.config_defaults.iter().find(|(d, _)| *d == k).map(|(_, v)| *v);
        // null: none (a q LoRA rank of null means no q LoRA); absent: mlx-lm's default.
        let v = match ckpt.config.opt_u64(k)?.or(default) {
            _ if ckpt.config.is_null(k) => 0,
            Some(v) => v,
            None => return Err(Error::config(&ckpt.config.path, k, "missing")),
        };
        out.push((k, v));
    }
    Ok(out)
}

/// The scoring function a `Meta::GatingFunc` reads, if config.json states one.
fn read_gating(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<Option<String>> {
    for m in spec.metadata {
        if let Meta::GatingFunc { config } = m {
            return match ckpt.config.get(config) {
                None => Ok(None),
                Some(v) => match v.as_str() {
                    Some("softmax" | "sigmoid") => Ok(v.as_str().map(str::to_string)),
                    _ => Err(Error::config(
                        &ckpt.config.path,
                        *config,
                        format!("{v}: llama.cpp takes softmax or sigmoid"),
                    )),
                },
            };
        }
    }
    Ok(None)
}

/// The config.json numbers behind the spec's `Meta::ConfigF32` keys: the value, mlx-lm's
/// default when absent, none when null.
fn read_extra_f32(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<Vec<(&'static str, f64)>> {
    let mut out = Vec::new();
    for m in spec.metadata {
        if let Meta::ConfigF32 { config, default, .. } = m {
            if ckpt.config.is_null(config) {
                continue;
            }
            if let Some(v) = ckpt.config.opt_f64(config)?.or(*default) {
                out.push((*config, v));
            }
        }
    }
    Ok(out)
}

/// The same for `Meta::ConfigU32` keys.
fn read_extra_u32(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<Vec<(&'static str, u64)>> {
    let mut out = Vec::new();
    for m in spec.metadata {
        if let Meta::ConfigU32 { config, default, .. } = m {
            if ckpt.config.is_null(config) {
                continue;
            }
            if let Some(v) = ckpt.config.opt_u64(config)?.or(*default) {
                out.push((*config, v));
            }
        }
    }
    Ok(out)
}

/// Expert count, experts per token and expert size, for an MoE architecture.
fn read_moe(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<(usize, usize, usize)> {
    let Some(m) = spec.moe else { return Ok((0, 0, 0)) };
    let c = &ckpt.config;
    if let Some(flag) = m.enabled_by {
        if !c.opt_bool(flag)?.unwrap_or(false) {
            return Ok((0, 0, 0));
        }
    }
    let e = c.u64(m.count)? as usize;
    let mut used = None;
    for k in m.used {
        used = used.or(c.opt_u64(k)?);
    }
    let k = used.ok_or_else(|| Error::config(&c.path, m.used[0], "missing"))? as usize;
    if k == 0 || k > e {
        return Err(Error::config(&c.path, m.used[0], format!("{k} is not between 1 and {e} experts")));
    }
    Ok((e, k, c.u64(m.ff)? as usize))
}

/// `max_position_embeddings`; for an architecture that needs it, derived from yarn's
/// original context or `initial_context_length` when absent.
fn context_length(ckpt: &Checkpoint, spec: &ArchSpec, scaling: &RopeScaling) -> Result<Option<u64>> {
    let c = &ckpt.config;
    if let Some(n) = c.opt_u64("max_position_embeddings")? {
        return Ok(Some(n));
    }
    if spec.layer_types != LayerTypes::AlternatingSliding {
        return Ok(None);
    }
    if let RopeScaling::Yarn { factor, original_context, .. } = scaling {
        return Ok(Some((*original_context as f64 * factor) as u64));
    }
    let n = c.opt_u64("initial_context_length")?;
    n.map(Some).ok_or_else(|| Error::config(&c.path, "max_position_embeddings", "missing"))
}

/// Per layer, whether it uses sliding-window attention. A full-attention-only architecture
/// refuses any other layer type (mlx-lm's Llama class can mix sliding layers in).
fn read_layer_types(ckpt: &Checkpoint, spec: &ArchSpec, layers: usize) -> Result<Vec<bool>> {
    let c = &ckpt.config;
    let err = |m: String| Error::config(&c.path, "layer_types", m);
    let periodic = match spec.layer_types {
        LayerTypes::Periodic { period, key } => Some((period, key)),
        LayerTypes::Listed { period, key } if c.get("layer_types").is_none() => Some((period, Some(key))),
        _ => None,
    };
    if let Some((period, key)) = periodic {
        let p = match key {
            Some(k) => c.opt_u64(k)?.unwrap_or(period),
            None => period,
        };
        if p == 0 {
            return Err(Error::config(&c.path, key.unwrap_or("sliding_window_pattern"), "0 is not a period"));
        }
        return Ok((0..layers as u64).map(|i| (i + 1) % p != 0).collect());
    }
    let types =
        match (c.get("layer_types"), spec.layer_types) {
            (None, LayerTypes::FullOnly) => return Ok(vec![false; layers]),
            (None, _) => return Err(err(
                "missing: say which layers use sliding attention (e.g. [\"sliding_attention\", \"full_attention\", …])"
                    .into(),
            )),
            (Some(t), _) => t.as_array().ok_or_else(|| err("must be a list".into()))?,
        };
    if spec.layer_types == LayerTypes::FullOnly {
        if let Some(t) = types.iter().find(|t| t.as_str() != Some("full_attention")) {
            return Err(err(format!("has {t}: llama.cpp's {} has no sliding-window layers", spec.arch)));
        }
        return Ok(vec![false; layers]);
    }
    let sliding = types
        .iter()
        .map(|t| match t.as_str() {
            Some("sliding_attention") => Ok(true),
            Some("full_attention") => Ok(false),
            _ => Err(err(format!("unknown layer type {t}"))),
        })
        .collect::<Result<Vec<bool>>>()?;
    if sliding.len() != layers {
        return Err(err(format!("has {} entries for {layers} layers", sliding.len())));
    }
    Ok(sliding)
}

fn parse_scaling(path: &std::path::Path, rs: Option<&serde_json::Value>, spec: &ArchSpec) -> Result<RopeScaling> {
    let Some(rs) = rs else { return Ok(RopeScaling::None) };
    let ty = rs.get("rope_type").or_else(|| rs.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
    if ty != "default" && !spec.scalings.contains(&ty) {
        return Err(Error::config(
            path,
            "rope_scaling.rope_type",
            format!("'{ty}' is not supported for {} (supported: {})", spec.arch, spec.scalings.join(", ")),
        ));
    }
    if spec.fixed_yarn_betas {
        check_fixed_yarn_betas(path, rs)?;
    }
    let num = |k: &str| rs.get(k).and_then(|v| v.as_f64());
    let need = |k: &str| num(k).ok_or_else(|| Error::config(path, format!("rope_scaling.{k}"), "missing"));
    Ok(match ty {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: need("factor")? },
        "yarn" => RopeScaling::Yarn {
            factor: need("factor")?,
            original_context: need("original_max_position_embeddings")? as u64,
            extra: [
                ("extrapolation_factor", "rope.scaling.yarn_ext_factor"),
                ("attention_factor", "rope.scaling.yarn_attn_factor"),
                ("beta_fast", "rope.scaling.yarn_beta_fast"),
                ("beta_slow", "rope.scaling.yarn_beta_slow"),
            ]
            .into_iter()
            .filter(|_| !spec.fixed_yarn_betas)
            .filter_map(|(k, key)| num(k).map(|v| (key, v)))
            .collect(),
        },
        "longrope" | "su" => {
            let list = |k: &str| -> Result<Vec<f64>> {
                let v = rs.get(k).and_then(|v| v.as_array()).ok_or_else(|| {
                    Error::config(path, format!("rope_scaling.{k}"), "missing (LongRoPE needs a list of factors)")
                })?;
                v.iter()
                    .map(|x| x.as_f64().ok_or_else(|| Error::config(path, format!("rope_scaling.{k}"), "not numbers")))
                    .collect()
            };
            RopeScaling::LongRope { long: list("long_factor")?, short: list("short_factor")? }
        }
        "llama3" => RopeScaling::Llama3 {
            factor: num("factor").unwrap_or(8.0),
            low_freq_factor: num("low_freq_factor").unwrap_or(1.0),
            high_freq_factor: num("high_freq_factor").unwrap_or(4.0),
            original_context: num("original_max_position_embeddings").unwrap_or(8192.0),
        },
        other => {
            return Err(Error::config(
                path,
                "rope_scaling.rope_type",
                format!("'{other}' is not supported (supported: linear, yarn, llama3)"),
            ))
        }
    })
}

/// llama.cpp's converter's Llama 3 rope factors, one per frequency pair, in f32 as torch
/// computes them (`conversion/llama.py` `generate_extra_tensors`).
pub fn llama3_rope_factors(
    theta: f64,
    dim: usize,
    factor: f64,
    low_freq_factor: f64,
    high_freq_factor: f64,
    original_context: f64,
) -> Vec<f32> {
    let (factor, lo, hi, old) =
        (factor as f32, low_freq_factor as f32, high_freq_factor as f32, original_context as f32);
    let (low_wavelen, high_wavelen) = (old / lo, old / hi);
    (0..dim)
        .step_by(2)
        .map(|i| {
            let freq = 1.0 / (theta as f32).powf(i as f32 / dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old / wavelen - lo) / (hi - lo);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

/// gpt-oss: llama.cpp uses yarn betas 32 and 1 and has no key to change them.
fn check_fixed_yarn_betas(path: &std::path::Path, rs: &serde_json::Value) -> Result<()> {
    for (k, want) in [("beta_fast", 32.0), ("beta_slow", 1.0)] {
        if let Some(v) = rs.get(k).and_then(|v| v.as_f64()).filter(|v| *v != want) {
            return Err(Error::config(
                path,
                format!("rope_scaling.{k}"),
                format!("{v}: llama.cpp's gpt-oss uses {want} and has no key to change it"),
            ));
        }
    }
    Ok(())
}

/// Builds the plan of a decoder-only model described by `spec`.
pub fn plan(ckpt: &Checkpoint, spec: &ArchSpec, opts: &PlanOptions) -> Result<Plan> {
    let cfg = DecoderConfig::read(ckpt, spec)?;
    let mut tensors = Vec::new();
    for (layer, t) in spec.tensors(cfg.layers) {
        if cfg.has(t.when, layer) {
            tensors.push(plan_tensor(ckpt, spec, &cfg, &cfg.dims_at(layer), layer, t)?);
        }
    }
    check_all_used(ckpt, spec, &tensors)?;
    let metadata = metadata(ckpt, spec, &cfg, opts)?;
    let n_gqa = cfg.heads / cfg.layer.first().map_or(cfg.kv_heads, |l| l.kv_heads).max(1);
    let shape = ModelShape { n_layer: cfg.layers, n_expert: cfg.experts, n_gqa, has_imatrix: false };
    Ok(Plan { arch: spec.arch, shape, metadata, tensors })
}

/// Every checkpoint tensor must be read by the plan: one llama.cpp's architecture has no
/// place for (a bias it does not load, a norm of another layout) would be dropped and the
/// model would compute something else.
fn check_all_used(ckpt: &Checkpoint, spec: &ArchSpec, tensors: &[PlannedTensor]) -> Result<()> {
    let mut used = std::collections::HashSet::new();
    for t in tensors {
        match &t.source {
            Encoding::Dense { tensor, .. } | Encoding::Adapter { tensor, .. } => {
                used.insert(tensor.as_str());
            }
            Encoding::Quantized { weight, scales, biases, global_scale, .. } => {
                used.extend(
                    [Some(weight), Some(scales), biases.as_ref(), global_scale.as_ref()]
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
            Encoding::Computed { .. } => {}
        }
    }
    match ckpt.tensors.names().find(|n| !used.contains(n)) {
        None => Ok(()),
        Some(name) => {
            let file = ckpt.tensors.file_of(name).unwrap_or(&ckpt.dir);
            let msg = format!(
                "llama.cpp's {} has no place for it, so the converted model would differ (check config.json's settings for it)",
                spec.arch
            );
            Err(Error::tensor(file, name, msg))
        }
    }
}

/// One tensor of the spec, resolved in the checkpoint (layer `layer` for per-layer ones).
fn plan_tensor(
    ckpt: &Checkpoint,
    spec: &ArchSpec,
    cfg: &DecoderConfig,
    dims: &Dims,
    layer: Option<usize>,
    t: &TensorSpec,
) -> Result<PlannedTensor> {
    let (name, mlx) = match layer {
        Some(i) => (format!("blk.{i}.{}", t.gguf), format!("model.layers.{i}.{}", t.mlx)),
        None => (t.gguf.to_string(), t.mlx.to_string()),
    };
    if t.gguf == "output.weight" && t.when == When::Always && cfg.tied {
        let msg = format!("true, but llama.cpp's {} needs an output.weight of its own", spec.arch);
        return Err(Error::config(&ckpt.config.path, "tie_word_embeddings", msg));
    }
    if t.when == When::Untied && !ckpt.tensors.contains(&format!("{mlx}.weight")) {
        let msg = "missing, and config.json does not set tie_word_embeddings: true";
        return Err(Error::tensor(&ckpt.dir, format!("{mlx}.weight"), msg));
    }
    let shape = cfg.shape(dims, t.shape);
    let (class, source, module) = match t.source {
        Source::Weight(kind, class) => {
            if class == TensorClass::Router && !ckpt.tensors.contains(&format!("{mlx}.weight")) {
                let msg = format!("missing: llama.cpp's {} needs experts in every layer", spec.arch);
                return Err(Error::tensor(&ckpt.dir, format!("{mlx}.weight"), msg));
            }
            let src = t.split.map_or_else(|| shape.clone(), |s| split_source_shape(cfg, &s, &shape));
            let w = resolve_weight(ckpt, &mlx, &src).map_err(|e| explain_experts(e, spec, cfg, t))?;
            (class, w, Some(ModuleRef { path: mlx, kind }))
        }
        Source::Param => (TensorClass::F32Only, resolve_param(ckpt, &mlx, &shape)?, None),
        Source::Llama3RopeFreqs => (TensorClass::F32Only, llama3_freqs(cfg), None),
        Source::LongRopeFactors(long) => (TensorClass::F32Only, long_rope_factors(cfg, long, &shape)?, None),
        Source::ProportionalRope => {
            let values = cfg.mixed.as_ref().map(|m| m.full_rope_freqs.clone()).unwrap_or_default();
            let what = "rope_parameters.full_attention in config.json".to_string();
            (TensorClass::F32Only, Encoding::Computed { what, values }, None)
        }
    };
    let mut planned = PlannedTensor::new(name, shape, class, source, module);
    planned.rope_permute = (t.rope_permute && cfg.permute(spec)).then_some(cfg.head_dim);
    planned.plus_one = t.plus_one;
    planned.neg_exp = t.neg_exp;
    if let Some(s) = t.split {
        apply_split(cfg, &s, &mut planned);
    }
    if let Some(v) = t.v_heads {
        let order = v_head_order(cfg, &v, if v.cols { planned.row_len() } else { planned.rows() });
        if v.cols {
            planned.col_order = order;
        } else {
            planned.row_order = order;
        }
    }
    Ok(planned)
}

/// Sizes of a split module's per-head parts, and the offset and size of part `s.part`.
fn split_parts(cfg: &DecoderConfig, s: &super::spec::HeadSplit) -> (usize, usize, usize) {
    let sizes: Vec<usize> = s.parts.iter().map(|k| cfg.config_int(k) as usize).collect();
    let offset = sizes[..s.part].iter().sum();
    (sizes.iter().sum(), offset, sizes[s.part])
}

/// The module's shape `[n_head · per-head rows, in]` behind a split tensor of `shape`.
fn split_source_shape(cfg: &DecoderConfig, s: &super::spec::HeadSplit, shape: &[usize]) -> Vec<usize> {
    let (per_head, _, _) = split_parts(cfg, s);
    let in_dim = if s.transpose { shape[1] } else { shape[2] };
    vec![cfg.heads * per_head, in_dim]
}

/// Reads a split tensor's rows from its part of each head (transposed if asked).
fn apply_split(cfg: &DecoderConfig, s: &super::spec::HeadSplit, t: &mut PlannedTensor) {
    let (per_head, offset, size) = split_parts(cfg, s);
    t.source_shape = Some(split_source_shape(cfg, s, &t.shape));
    if s.transpose {
        t.head_transpose = Some(crate::plan::HeadTranspose {
            out_rows: t.shape[1],
            src_rows: size,
            src_stride: per_head,
            src_offset: offset,
        });
    } else {
        let order = (0..cfg.heads).flat_map(|h| (0..size).map(move |j| (h * per_head + offset + j) as u32));
        t.row_order = Some(order.collect());
    }
}

/// The order that tiles value heads grouped by key head (see [`super::spec::VHeads`]) over
/// `len` rows or columns, or `None` when it changes nothing (as many key as value heads).
fn v_head_order(cfg: &DecoderConfig, v: &super::spec::VHeads, len: usize) -> Option<Vec<u32>> {
    let (nk, nv) = (cfg.config_int("linear_num_key_heads") as usize, cfg.config_int("linear_num_value_heads") as usize);
    if nk == 0 || nv <= nk || !nv.is_multiple_of(nk) {
        return None;
    }
    let r = nv / nk;
    let head = v.head.iter().map(|k| cfg.config_int(k) as usize).product::<usize>();
    let offset = cfg.terms(v.offset) as usize;
    let mut order: Vec<u32> = (0..len as u32).collect();
    for j in 0..r {
        for k in 0..nk {
            let (dst, src) = (offset + (j * nk + k) * head, offset + (k * r + j) * head);
            for e in 0..head {
                order[dst + e] = (src + e) as u32;
            }
        }
    }
    Some(order)
}

/// LongRoPE's long or short factors, one per rotated frequency.
fn long_rope_factors(cfg: &DecoderConfig, long: bool, shape: &[usize]) -> Result<Encoding> {
    let RopeScaling::LongRope { long: l, short: s } = &cfg.scaling else {
        return Ok(Encoding::Computed { what: "rope_scaling".into(), values: Vec::new() });
    };
    let (key, factors) = if long { ("long_factor", l) } else { ("short_factor", s) };
    if factors.len() != shape[0] {
        return Err(Error::Usage(format!(
            "config.json: rope_scaling.{key} has {} factors, but the model rotates {} dimensions ({} frequencies)",
            factors.len(),
            cfg.rope_dims,
            shape[0]
        )));
    }
    let values = factors.iter().map(|&f| f as f32).collect();
    Ok(Encoding::Computed { what: format!("rope_scaling.{key} in config.json"), values })
}

/// Llama 3.1's `rope_freqs` values.
fn llama3_freqs(cfg: &DecoderConfig) -> Encoding {
    let RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } = cfg.scaling else {
        return Encoding::Computed { what: "rope_scaling".into(), values: Vec::new() };
    };
    let values =
        llama3_rope_factors(cfg.rope_theta, cfg.head_dim, factor, low_freq_factor, high_freq_factor, original_context);
    Encoding::Computed { what: "rope_scaling (llama3) in config.json".into(), values }
}

/// Adds the config's expert settings, by key, to a shape error of an expert tensor.
fn explain_experts(e: Error, spec: &ArchSpec, cfg: &DecoderConfig, t: &TensorSpec) -> Error {
    match (e, spec.moe) {
        (Error::Tensor { path, tensor, msg }, Some(m)) if t.shape.contains(&super::spec::Dim::Experts) => {
            let msg = format!(
                "{msg} (config: {}={}, {}={}, hidden_size={})",
                m.count, cfg.experts, m.ff, cfg.expert_ff, cfg.hidden
            );
            Error::Tensor { path, tensor, msg }
        }
        (e, _) => e,
    }
}

fn metadata(
    ckpt: &Checkpoint,
    spec: &ArchSpec,
    cfg: &DecoderConfig,
    opts: &PlanOptions,
) -> Result<Vec<(String, Value)>> {
    let mut md = crate::arch::general_metadata(spec.arch);
    md.push(("general.quantization_version".into(), Value::U32(2)));
    for m in spec.metadata {
        md.extend(meta_values(spec, cfg, *m));
    }
    let vocab = match spec.vocab {
        VocabKind::Standard => Vocab::load(&ckpt.dir, cfg.vocab)?,
        VocabKind::Gemma4 => crate::tokenizer::gemma4::load(&ckpt.dir, cfg.vocab)?,
    };
    let pre = crate::tokenizer::pre_for(&ckpt.dir, &vocab, opts.tokenizer_pre.as_deref())?.name;
    let add_prefix = match spec.space_prefix {
        SpacePrefix::Default => None,
        SpacePrefix::FromTokenizerConfig => {
            ckpt.read_json("tokenizer_config.json")?.and_then(|c| c.get("add_prefix_space")?.as_bool())
        }
        SpacePrefix::OffForSentencePiece => (vocab.model == "llama" || vocab.model == "gemma4").then_some(false),
    };
    if let Some(b) = add_prefix {
        md.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(b)));
    }
    md.extend(vocab_metadata(ckpt, vocab, &pre)?);
    Ok(md)
}

/// The `{arch}.*` keys (and values) one metadata entry of the spec stands for.
fn meta_values(spec: &ArchSpec, cfg: &DecoderConfig, m: Meta) -> Vec<(String, Value)> {
    let k = |s: &str| format!("{}.{s}", spec.arch);
    let u32v = |v: usize| Value::U32(v as u32);
    match m {
        Meta::VocabSize => vec![(k("vocab_size"), u32v(cfg.vocab))],
        Meta::BlockCount => vec![(k("block_count"), u32v(cfg.layers))],
        Meta::ContextLength => cfg
            .context_length
            .map(|n| (k("context_length"), Value::U32(n.min(u32::MAX as u64) as u32)))
            .into_iter()
            .collect(),
        Meta::EmbeddingLength => vec![(k("embedding_length"), u32v(cfg.hidden))],
        Meta::FeedForwardLength => match cfg.intermediate {
            None => Vec::new(),
            Some(f) => vec![(k("feed_forward_length"), per_layer(&cfg.layer, f, |l| l.ff))],
        },
        Meta::ExpertFeedForwardLength if cfg.experts == 0 => Vec::new(),
        Meta::ExpertFeedForwardLength => vec![(k("expert_feed_forward_length"), u32v(cfg.expert_ff))],
        Meta::ExpertSharedFeedForwardLength => vec![(k("expert_shared_feed_forward_length"), u32v(cfg.shared_ff))],
        Meta::HeadCount => vec![(k("attention.head_count"), u32v(cfg.heads))],
        Meta::HeadCountKv => vec![(k("attention.head_count_kv"), per_layer(&cfg.layer, cfg.kv_heads, |l| l.kv_heads))],
        // llama.cpp assumes n_embd / n_head when these are absent.
        Meta::KeyValueLength if cfg.head_dim_given || cfg.head_dim != cfg.hidden / cfg.heads => {
            vec![(k("attention.key_length"), u32v(cfg.head_dim)), (k("attention.value_length"), u32v(cfg.head_dim))]
        }
        Meta::KeyValueLength => Vec::new(),
        Meta::RmsEps => vec![(k("attention.layer_norm_rms_epsilon"), Value::F32(cfg.rms_eps as f32))],
        Meta::SlidingWindow => vec![(k("attention.sliding_window"), Value::U32(cfg.sliding_window as u32))],
        Meta::FreqBase => vec![(k("rope.freq_base"), Value::F32(cfg.rope_theta as f32))],
        Meta::ExpertCount | Meta::ExpertUsedCount
            if cfg.experts == 0 && spec.moe.is_some_and(|m| m.enabled_by.is_some()) =>
        {
            Vec::new()
        }
        Meta::ExpertCount => vec![(k("expert_count"), u32v(cfg.experts))],
        Meta::ExpertUsedCount => vec![(k("expert_used_count"), u32v(cfg.experts_used))],
        Meta::RopeDimensionCount => vec![(k("rope.dimension_count"), u32v(cfg.rope_dims))],
        Meta::RopeScaling => scaling_values(&k, cfg),
        Meta::OriginalContextLength => {
            vec![(k("rope.scaling.original_context_length"), Value::U32(cfg.original_context as u32))]
        }
        Meta::SlidingWindowPattern => {
            sliding_pattern(spec, cfg).into_iter().map(|v| (k("attention.sliding_window_pattern"), v)).collect()
        }
        _ => extra_meta_values(cfg, m, &k),
    }
}

/// The values of the metadata a mixed-attention model or a config key gives (the rest of
/// [`meta_values`]); `k` prefixes the architecture.
fn extra_meta_values(cfg: &DecoderConfig, m: Meta, k: &dyn Fn(&str) -> String) -> Vec<(String, Value)> {
    let u32v = |v: usize| Value::U32(v as u32);
    match m {
        Meta::KeyValueLengthSwa => cfg.mixed.as_ref().map_or(Vec::new(), |m| {
            vec![
                (k("attention.key_length_swa"), u32v(m.swa_head_dim)),
                (k("attention.value_length_swa"), u32v(m.swa_head_dim)),
            ]
        }),
        Meta::RopeDimensionCountSwa => {
            cfg.mixed.as_ref().map(|m| (k("rope.dimension_count_swa"), u32v(m.swa_head_dim))).into_iter().collect()
        }
        Meta::FreqBaseSwa => cfg
            .mixed
            .as_ref()
            .map(|m| (k("rope.freq_base_swa"), Value::F32(m.swa_rope_theta as f32)))
            .into_iter()
            .collect(),
        Meta::ConfigSum { key, configs } => {
            let sum = configs.iter().map(|c| cfg.config_int(c)).sum::<u64>();
            vec![(k(key), Value::U32(sum as u32))]
        }
        Meta::FixedU32 { key, value } => vec![(k(key), Value::U32(value))],
        Meta::ConfigTerms { key, terms } => vec![(k(key), Value::U32(cfg.terms(terms) as u32))],
        Meta::ConfigTrue { key, config, .. } => {
            let on = cfg.flags.iter().any(|(c, v)| *c == config && *v);
            on.then(|| (k(key), Value::Bool(true))).into_iter().collect()
        }
        Meta::GatingFunc { .. } => cfg
            .gating
            .as_deref()
            .map(|g| (k("expert_gating_func"), Value::U32(if g == "sigmoid" { 2 } else { 1 })))
            .into_iter()
            .collect(),
        Meta::RopeSections => {
            let mut s = cfg.mrope_sections.clone().unwrap_or_else(|| vec![11, 11, 10]);
            s.resize(4, 0);
            vec![(k("rope.dimension_sections"), Value::Array(crate::gguf::Array::U32(s)))]
        }
        Meta::YarnLogMul => match (&cfg.scaling, cfg.mscale_all_dim) {
            (RopeScaling::Yarn { .. }, Some(m)) => {
                vec![(k("rope.scaling.yarn_log_multiplier"), Value::F32((0.1 * m) as f32))]
            }
            _ => Vec::new(),
        },
        Meta::ConfigU32 { key, config, .. } => {
            cfg.extra_u32.iter().filter(|(c, _)| *c == config).map(|(_, v)| (k(key), Value::U32(*v as u32))).collect()
        }
        Meta::ConfigF32 { key, config, .. } => {
            cfg.extra_f32.iter().filter(|(c, _)| *c == config).map(|(_, v)| (k(key), Value::F32(*v as f32))).collect()
        }
        // Handled by meta_values (listed so a new variant must be placed).
        Meta::VocabSize
        | Meta::BlockCount
        | Meta::ContextLength
        | Meta::EmbeddingLength
        | Meta::FeedForwardLength
        | Meta::ExpertFeedForwardLength
        | Meta::ExpertSharedFeedForwardLength
        | Meta::HeadCount
        | Meta::HeadCountKv
        | Meta::KeyValueLength
        | Meta::RmsEps
        | Meta::SlidingWindow
        | Meta::FreqBase
        | Meta::ExpertCount
        | Meta::ExpertUsedCount
        | Meta::RopeDimensionCount
        | Meta::RopeScaling
        | Meta::OriginalContextLength
        | Meta::SlidingWindowPattern => {
            unreachable!("meta_values handles {m:?}")
        }
    }
}

/// `attention.sliding_window_pattern` when the layers differ from llama.cpp's default for
/// the architecture: the period for periodic ones, else a flag per layer.
fn sliding_pattern(spec: &ArchSpec, cfg: &DecoderConfig) -> Option<Value> {
    let layers = &cfg.sliding_layers;
    match spec.layer_types {
        LayerTypes::FullOnly => None,
        // llama.cpp's default for gpt-oss: even layers sliding, odd layers full.
        LayerTypes::AlternatingSliding => layers
            .iter()
            .enumerate()
            .any(|(i, s)| *s != (i % 2 == 0))
            .then(|| Value::Array(crate::gguf::Array::Bool(layers.clone()))),
        LayerTypes::Listed { .. } => Some(Value::Array(crate::gguf::Array::Bool(layers.clone()))),
        LayerTypes::Periodic { period, .. } => {
            let actual = layers.iter().position(|s| !s).map_or(layers.len() + 1, |i| i + 1) as u64;
            (actual != period && actual <= layers.len() as u64).then_some(Value::U32(actual as u32))
        }
    }
}

/// A per-layer value: one u32 when every layer has the same, else an array.
fn per_layer(layers: &[LayerShape], uniform: usize, of: impl Fn(&LayerShape) -> usize) -> Value {
    let values: Vec<u32> = layers.iter().map(|l| of(l) as u32).collect();
    match values.iter().all(|&v| v == uniform as u32) {
        true => Value::U32(uniform as u32),
        false => Value::Array(crate::gguf::Array::U32(values)),
    }
}

fn scaling_values(k: &dyn Fn(&str) -> String, cfg: &DecoderConfig) -> Vec<(String, Value)> {
    match &cfg.scaling {
        RopeScaling::None | RopeScaling::Llama3 { .. } => Vec::new(),
        // llama.cpp's converter for Phi-3: sqrt(1 + ln(s) / ln(original)) for s = context /
        // original context above 1 (mlx-lm's SuScaledRoPE scales by the same).
        RopeScaling::LongRope { .. } => {
            let orig = cfg.original_context.max(2) as f64;
            let scale = cfg.context_length.unwrap_or(cfg.original_context) as f64 / orig;
            let attn = if scale > 1.0 { (1.0 + scale.ln() / orig.ln()).sqrt() } else { 1.0 };
            vec![(k("rope.scaling.attn_factor"), Value::F32(attn as f32))]
        }
        RopeScaling::Linear { factor } => vec![
            (k("rope.scaling.type"), Value::String("linear".into())),
            (k("rope.scaling.factor"), Value::F32(*factor as f32)),
        ],
        RopeScaling::Yarn { factor, original_context, extra } => {
            let mut v = vec![
                (k("rope.scaling.type"), Value::String("yarn".into())),
                (k("rope.scaling.factor"), Value::F32(*factor as f32)),
                (k("rope.scaling.original_context_length"), Value::U32(*original_context as u32)),
            ];
            v.extend(extra.iter().map(|(key, x)| (k(key), Value::F32(*x as f32))));
            v
        }
    }
}

/// The attention head counts and sizes of `config.json`, checked.
struct Heads {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    /// `head_dim` as given (or the spec's default), if any.
    given: Option<usize>,
    head_dim: usize,
}

impl Heads {
    fn read(ckpt: &Checkpoint, spec: &ArchSpec) -> Result<Heads> {
        let c = &ckpt.config;
        let us = |k: &str| c.u64(k).map(|v| v as usize);
        let cfg_err = |k: &str, m: String| Error::config(&c.path, k, m);
        let (hidden, heads) = (us("hidden_size")?, us("num_attention_heads")?);
        if heads == 0 || hidden == 0 {
            return Err(cfg_err("num_attention_heads", "hidden_size and num_attention_heads must be positive".into()));
        }
        let kv_heads = c.opt_u64("num_key_value_heads")?.map(|v| v as usize).unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(cfg_err(
                "num_key_value_heads",
                format!("{kv_heads} does not divide num_attention_heads {heads}"),
            ));
        }
        let given = if spec.honours_head_dim { c.opt_u64("head_dim")?.map(|v| v as usize) } else { None };
        if given.is_none() && spec.requires_head_dim {
            return Err(cfg_err(
                "head_dim",
                format!("missing: llama.cpp would assume hidden_size/num_attention_heads, which is wrong for {}; add it to config.json", spec.arch),
            ));
        }
        let given = given.or(spec.default_head_dim);
        let head_dim = given.unwrap_or(hidden / heads);
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(cfg_err("head_dim", format!("{head_dim}: rope needs an even, positive head size")));
        }
        Ok(Heads { hidden, heads, kv_heads, given, head_dim })
    }
}

/// Which layers slide, each layer's shape (MoE, linear attention), and a mixed model's
/// per-layer description.
fn read_layers(
    ckpt: &Checkpoint,
    spec: &ArchSpec,
    layers: usize,
    head_dim: usize,
    kv_heads: usize,
    ff: usize,
    experts: usize,
) -> Result<(Vec<bool>, Vec<LayerShape>, Option<Mixed>)> {
    let c = &ckpt.config;
    let sliding_layers = read_layer_types(ckpt, spec, layers)?;
    let mixed = match &spec.mixed_layers {
        Some(m) => Some(super::layers::read_mixed(ckpt, m, &sliding_layers, head_dim, kv_heads, ff)?),
        None => None,
    };
    let mut layer = match &mixed {
        Some(m) => m.layers.clone(),
        None => LayerShape::uniform(&sliding_layers, head_dim, kv_heads, ff),
    };
    let dense_lead = match spec.moe.and_then(|m| m.dense_lead) {
        Some(k) => c.opt_u64(k)?.unwrap_or(0) as usize,
        None => 0,
    };
    let step = match spec.moe.and_then(|m| m.interleave) {
        Some(k) => c.u64(k)?.max(1) as usize,
        None => 1,
    };
    let linear_interval = match spec.linear_attention {
        Some(la) => c.opt_u64(la.interval_key)?.unwrap_or(la.default_interval).max(1) as usize,
        None => 0,
    };
    for (i, l) in layer.iter_mut().enumerate() {
        l.moe = experts > 0 && i >= dense_lead && (i + 1).is_multiple_of(step);
        l.linear = linear_interval > 0 && !(i + 1).is_multiple_of(linear_interval);
    }
    Ok((sliding_layers, layer, mixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_heads_go_from_grouped_to_tiled() {
        // 2 key heads, 4 value heads of 1: grouped [k0v0, k0v1, k1v0, k1v1] → tiled
        // [k0v0, k1v0, k0v1, k1v1]; with a head of 2 and an offset of 3, whole heads move.
        let ints = vec![("linear_num_key_heads", 2), ("linear_num_value_heads", 4), ("linear_value_head_dim", 2)];
        let mut cfg = test_config();
        cfg.config_ints = ints;
        let v = super::super::spec::VHeads { cols: false, offset: &[], head: &[] };
        assert_eq!(v_head_order(&cfg, &v, 4), Some(vec![0, 2, 1, 3]));
        let v = super::super::spec::VHeads {
            cols: true,
            offset: &[&["linear_value_head_dim"]],
            head: &["linear_value_head_dim"],
        };
        assert_eq!(v_head_order(&cfg, &v, 10), Some(vec![0, 1, 2, 3, 6, 7, 4, 5, 8, 9]));
        cfg.config_ints[1].1 = 2;
        assert_eq!(v_head_order(&cfg, &v, 6), None, "as many value as key heads: nothing to reorder");
    }

    fn test_config() -> DecoderConfig {
        DecoderConfig {
            hidden: 8,
            layers: 1,
            intermediate: None,
            heads: 1,
            kv_heads: 1,
            head_dim: 8,
            head_dim_given: false,
            rope_dims: 8,
            original_context: 0,
            vocab: 1,
            rms_eps: 1e-6,
            rope_theta: 1e4,
            context_length: None,
            scaling: RopeScaling::None,
            tied: true,
            flags: Vec::new(),
            rope_traditional: false,
            experts: 0,
            experts_used: 0,
            expert_ff: 0,
            shared_ff: 0,
            sliding_window: 0,
            sliding_layers: Vec::new(),
            extra_f32: Vec::new(),
            extra_u32: Vec::new(),
            layer: Vec::new(),
            mixed: None,
            config_ints: Vec::new(),
            mscale_all_dim: None,
            gating: None,
            mrope_sections: None,
        }
    }

    #[test]
    fn llama3_factors_follow_the_three_bands() {
        // Llama 3.1 8B's settings: theta 500000, head_dim 128.
        let f = llama3_rope_factors(500000.0, 128, 8.0, 1.0, 4.0, 8192.0);
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0); // high frequency: unscaled
        assert_eq!(f[63], 8.0); // low frequency: scaled by factor
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "monotone: {f:?}");
        let mid: Vec<f32> = f.iter().copied().filter(|&x| x > 1.0 && x < 8.0).collect();
        assert!(!mid.is_empty(), "a smooth band between the two");
    }
}
