//! gpt-oss (`model_type: gpt_oss` in mlx-lm; `gpt-oss` in llama.cpp).
//!
//! MLX already stores experts split into gate/up/down as `[E, out, in]`, which is GGUF's
//! `ne = [in, out, E]` byte for byte, so every tensor is a rename. Rope is NEOX: no Q/K
//! permutation. Norms, biases (including the 2-D expert biases), sinks and the router are
//! F32 (ggml asserts F32 sinks and bias operands; llama.cpp keeps the router F32).

use crate::error::{Error, Result};
use crate::gguf::Value;
use crate::plan::{
    resolve_param, resolve_weight, Encoding, ModelShape, ModuleKind, ModuleRef, Plan, PlanOptions, PlannedTensor,
    TensorClass,
};
use crate::source::Checkpoint;
use crate::tokenizer::{vocab_metadata, Vocab};

pub const ARCH: &str = "gpt-oss";

/// Per-layer modules: (MLX module path under `model.layers.N.`, GGUF name under `blk.N.`,
/// class, has bias).
const LAYER_MODULES: &[(&str, &str, TensorClass)] = &[
    ("self_attn.q_proj", "attn_q", TensorClass::Matrix),
    ("self_attn.k_proj", "attn_k", TensorClass::Matrix),
    ("self_attn.v_proj", "attn_v", TensorClass::Matrix),
    ("self_attn.o_proj", "attn_output", TensorClass::Matrix),
    ("mlp.router", "ffn_gate_inp", TensorClass::Router),
    ("mlp.experts.gate_proj", "ffn_gate_exps", TensorClass::Matrix),
    ("mlp.experts.up_proj", "ffn_up_exps", TensorClass::Matrix),
    ("mlp.experts.down_proj", "ffn_down_exps", TensorClass::Matrix),
];

/// The hyperparameters llama.cpp needs, read from config.json.
#[derive(Clone, Debug)]
pub struct GptOssConfig {
    pub hidden: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub experts: usize,
    pub experts_used: usize,
    pub vocab: usize,
    pub rms_eps: f64,
    pub sliding_window: usize,
    pub rope_theta: f64,
    pub context_length: u64,
    pub yarn: Option<(f64, u64)>,
    pub sliding_layers: Vec<bool>,
}

impl GptOssConfig {
    pub fn from_checkpoint(ckpt: &Checkpoint) -> Result<GptOssConfig> {
        let c = &ckpt.config;
        let us = |k: &str| c.u64(k).map(|v| v as usize);
        let layers = us("num_hidden_layers")?;
        let head_dim = c.opt_u64("head_dim")?.ok_or_else(|| {
            Error::config(&c.path, "head_dim", "missing: llama.cpp would assume hidden_size/num_attention_heads, which is wrong for gpt-oss (64); add it to config.json")
        })? as usize;
        let layer_types = c.get("layer_types").ok_or_else(|| {
            Error::config(
                &c.path,
                "layer_types",
                "missing: say which layers use sliding attention (e.g. [\"sliding_attention\", \"full_attention\", …])",
            )
        })?;
        let sliding_layers = layer_types
            .as_array()
            .ok_or_else(|| Error::config(&c.path, "layer_types", "must be a list"))?
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(true),
                Some("full_attention") => Ok(false),
                _ => Err(Error::config(&c.path, "layer_types", format!("unknown layer type {t}"))),
            })
            .collect::<Result<Vec<bool>>>()?;
        if sliding_layers.len() != layers {
            return Err(Error::config(
                &c.path,
                "layer_types",
                format!("has {} entries for {layers} layers", sliding_layers.len()),
            ));
        }
        let yarn = match c.get("rope_scaling") {
            None => None,
            Some(rs) => {
                let ty = rs.get("rope_type").or_else(|| rs.get("type")).and_then(|v| v.as_str()).unwrap_or("");
                if ty != "yarn" {
                    return Err(Error::config(
                        &c.path,
                        "rope_scaling.rope_type",
                        format!("'{ty}' is not supported for gpt-oss (yarn only)"),
                    ));
                }
                let factor = rs
                    .get("factor")
                    .and_then(|v| v.as_f64())
                    .ok_or_else(|| Error::config(&c.path, "rope_scaling.factor", "missing"))?;
                let orig = rs.get("original_max_position_embeddings").and_then(|v| v.as_u64()).ok_or_else(|| {
                    Error::config(&c.path, "rope_scaling.original_max_position_embeddings", "missing")
                })?;
                for (k, want) in [("beta_fast", 32.0), ("beta_slow", 1.0)] {
                    if let Some(v) = rs.get(k).and_then(|v| v.as_f64()) {
                        if v != want {
                            return Err(Error::config(
                                &c.path,
                                format!("rope_scaling.{k}"),
                                format!("{v}: llama.cpp's gpt-oss uses {want} and has no key to change it"),
                            ));
                        }
                    }
                }
                Some((factor, orig))
            }
        };
        let context_length = match c.opt_u64("max_position_embeddings")? {
            Some(n) => n,
            None => match yarn {
                Some((f, orig)) => (orig as f64 * f) as u64,
                None => c
                    .opt_u64("initial_context_length")?
                    .ok_or_else(|| Error::config(&c.path, "max_position_embeddings", "missing"))?,
            },
        };
        Ok(GptOssConfig {
            hidden: us("hidden_size")?,
            layers,
            intermediate: us("intermediate_size")?,
            heads: us("num_attention_heads")?,
            kv_heads: us("num_key_value_heads")?,
            head_dim,
            experts: us("num_local_experts")?,
            experts_used: match c.opt_u64("num_experts_per_tok")? {
                Some(n) => n as usize,
                None => us("experts_per_token")?,
            },
            vocab: us("vocab_size")?,
            rms_eps: c.opt_f64("rms_norm_eps")?.unwrap_or(1e-5),
            sliding_window: c.opt_u64("sliding_window")?.unwrap_or(128) as usize,
            rope_theta: c.opt_f64("rope_theta")?.unwrap_or(150000.0),
            context_length,
            yarn,
            sliding_layers,
        })
    }

    /// Logical [rows.., in] shape of each layer module's weight, and its bias shape.
    fn module_shapes(&self, module: &str) -> (Vec<usize>, Vec<usize>) {
        let (h, q, kv, e, f) =
            (self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.experts, self.intermediate);
        match module {
            "self_attn.q_proj" => (vec![q, h], vec![q]),
            "self_attn.k_proj" | "self_attn.v_proj" => (vec![kv, h], vec![kv]),
            "self_attn.o_proj" => (vec![h, q], vec![h]),
            "mlp.router" => (vec![e, h], vec![e]),
            "mlp.experts.gate_proj" | "mlp.experts.up_proj" => (vec![e, f, h], vec![e, f]),
            _ => (vec![e, h, f], vec![e, h]), // down_proj
        }
    }
}

pub fn plan(ckpt: &Checkpoint, opts: &PlanOptions) -> Result<Plan> {
    let cfg = GptOssConfig::from_checkpoint(ckpt)?;
    if cfg.experts_used > cfg.experts {
        return Err(Error::config(
            &ckpt.config.path,
            "num_experts_per_tok",
            format!("{} is more than num_local_experts {}", cfg.experts_used, cfg.experts),
        ));
    }
    let mut tensors = Vec::new();
    let mut push =
        |name: String, shape: Vec<usize>, class: TensorClass, source: Encoding, module: Option<ModuleRef>| {
            tensors.push(PlannedTensor::new(name, shape, class, source, module));
        };
    let module = |path: &str, kind: ModuleKind| Some(ModuleRef { path: path.to_string(), kind });
    let (h, f32only) = (cfg.hidden, TensorClass::F32Only);
    let embed = resolve_weight(ckpt, "model.embed_tokens", &[cfg.vocab, h])?;
    let embed_module = module("model.embed_tokens", ModuleKind::Embedding);
    push("token_embd.weight".into(), vec![cfg.vocab, h], TensorClass::Matrix, embed, embed_module);
    for i in 0..cfg.layers {
        let p = format!("model.layers.{i}");
        let b = format!("blk.{i}");
        let attn_norm = resolve_param(ckpt, &format!("{p}.input_layernorm.weight"), &[h])?;
        push(format!("{b}.attn_norm.weight"), vec![h], f32only, attn_norm, None);
        for &(name, gguf, class) in LAYER_MODULES {
            let (wshape, bshape) = cfg.module_shapes(name);
            let mp = format!("{p}.{name}");
            let w = resolve_weight(ckpt, &mp, &wshape).map_err(|e| explain_expert_mismatch(e, &cfg))?;
            let kind = if wshape.len() == 3 { ModuleKind::Switch } else { ModuleKind::Linear };
            push(format!("{b}.{gguf}.weight"), wshape, class, w, module(&mp, kind));
            let bias = resolve_param(ckpt, &format!("{mp}.bias"), &bshape)?;
            push(format!("{b}.{gguf}.bias"), bshape, f32only, bias, None);
            if name == "self_attn.o_proj" {
                let sinks = resolve_param(ckpt, &format!("{p}.self_attn.sinks"), &[cfg.heads])?;
                push(format!("{b}.attn_sinks.weight"), vec![cfg.heads], f32only, sinks, None);
            }
        }
        let post_norm = resolve_param(ckpt, &format!("{p}.post_attention_layernorm.weight"), &[h])?;
        push(format!("{b}.post_attention_norm.weight"), vec![h], f32only, post_norm, None);
    }
    let norm = resolve_param(ckpt, "model.norm.weight", &[h])?;
    push("output_norm.weight".into(), vec![h], f32only, norm, None);
    let head = resolve_weight(ckpt, "lm_head", &[cfg.vocab, h])?;
    push("output.weight".into(), vec![cfg.vocab, h], TensorClass::Matrix, head, module("lm_head", ModuleKind::Linear));

    let mut md = crate::arch::general_metadata(ckpt, ARCH, opts);
    md.push(("general.quantization_version".into(), Value::U32(2)));
    let k = |s: &str| format!("{ARCH}.{s}");
    let u32v = |v: usize| Value::U32(v as u32);
    md.extend([
        (k("block_count"), u32v(cfg.layers)),
        (k("context_length"), Value::U32(cfg.context_length as u32)),
        (k("embedding_length"), u32v(h)),
        (k("feed_forward_length"), u32v(cfg.intermediate)),
        (k("expert_feed_forward_length"), u32v(cfg.intermediate)),
        (k("attention.head_count"), u32v(cfg.heads)),
        (k("attention.head_count_kv"), u32v(cfg.kv_heads)),
        (k("attention.key_length"), u32v(cfg.head_dim)),
        (k("attention.value_length"), u32v(cfg.head_dim)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(cfg.rms_eps as f32)),
        (k("attention.sliding_window"), u32v(cfg.sliding_window)),
        (k("rope.freq_base"), Value::F32(cfg.rope_theta as f32)),
        (k("expert_count"), u32v(cfg.experts)),
        (k("expert_used_count"), u32v(cfg.experts_used)),
    ]);
    if let Some((factor, orig)) = cfg.yarn {
        md.push((k("rope.scaling.type"), Value::String("yarn".into())));
        md.push((k("rope.scaling.factor"), Value::F32(factor as f32)));
        md.push((k("rope.scaling.original_context_length"), Value::U32(orig as u32)));
    }
    // llama.cpp's default for gpt-oss: even layers sliding, odd layers full.
    let default_pattern = (0..cfg.layers).all(|i| cfg.sliding_layers[i] == (i % 2 == 0));
    if !default_pattern {
        md.push((
            k("attention.sliding_window_pattern"),
            Value::Array(crate::gguf::Array::Bool(cfg.sliding_layers.clone())),
        ));
    }

    let tok_path = ckpt.dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(Error::input(&tok_path, "missing: llama.cpp needs the tokenizer in the GGUF"));
    }
    let vocab = Vocab::load_bpe(&tok_path, cfg.vocab)?;
    let pre = crate::tokenizer::pre_for(&ckpt.dir, &vocab, opts.tokenizer_pre.as_deref())?.name;
    md.extend(vocab_metadata(ckpt, &vocab, &pre)?);
    Ok(Plan { arch: ARCH, shape: ModelShape { n_layer: cfg.layers, n_expert: cfg.experts }, metadata: md, tensors })
}

/// Adds the config's expert count to shape errors of expert tensors.
fn explain_expert_mismatch(e: Error, cfg: &GptOssConfig) -> Error {
    match e {
        Error::Tensor { path, tensor, msg } if tensor.contains(".mlp.") => Error::Tensor {
            path,
            tensor,
            msg: format!(
                "{msg} (config: num_local_experts={}, intermediate_size={}, hidden_size={})",
                cfg.experts, cfg.intermediate, cfg.hidden
            ),
        },
        e => e,
    }
}
