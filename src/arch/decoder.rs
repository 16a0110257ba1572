//! The shared builder for Llama-style decoders (RMSNorm, GQA attention, SwiGLU MLP or
//! top-k MoE), driven by each architecture file's [`DecoderSpec`]. An architecture file
//! states its names and quirks; this file turns config.json and the headers into a plan.

use crate::error::{Error, Result};
use crate::gguf::Value;
use crate::plan::{
    resolve_param, resolve_weight, Encoding, ModelShape, ModuleKind, ModuleRef, Plan, PlanOptions, PlannedTensor,
    TensorClass,
};
use crate::source::Checkpoint;
use crate::tokenizer::{vocab_metadata, Vocab};

/// How llama.cpp applies rope for an architecture (`llama_model_rope_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeKind {
    /// Adjacent pairs: HF-layout Q/K rows must be permuted at conversion.
    Norm,
    /// Rotate-half, as in HF and MLX: weights are taken as they are.
    Neox,
}

/// A mixture-of-experts block as mlx-lm stores it: router `{block}.gate`, experts stacked
/// by `SwitchGLU` as `{block}.switch_mlp.{gate,up,down}_proj` (`[E, out, in]`).
#[derive(Clone, Copy, Debug)]
pub struct MoeSpec {
    /// Module under `model.layers.N.` (`block_sparse_moe` for Mixtral, `mlp` for Qwen3-MoE).
    pub block: &'static str,
    /// config.json key with the expert count.
    pub count_key: &'static str,
    /// config.json key with each expert's hidden size.
    pub ff_key: &'static str,
    /// Whether llama.cpp reads `{arch}.expert_feed_forward_length`.
    pub write_expert_ff: bool,
}

/// What distinguishes one decoder architecture from another.
#[derive(Clone, Copy, Debug)]
pub struct DecoderSpec {
    /// `general.architecture`.
    pub arch: &'static str,
    pub rope: RopeKind,
    /// q/k/v projections always have biases (Qwen2); otherwise config's `attention_bias`.
    pub qkv_bias: bool,
    /// Per-head RMSNorm on queries and keys (Qwen3).
    pub qk_norm: bool,
    pub moe: Option<MoeSpec>,
    /// Whether config's `head_dim` is used (Mixtral's mlx-lm class ignores it).
    pub honours_head_dim: bool,
    /// Whether llama.cpp's converter writes `{arch}.rope.dimension_count` and `vocab_size`.
    pub write_rope_dims: bool,
    /// mlx-lm's defaults where config.json is silent.
    pub default_tie: bool,
    pub default_rope_theta: f64,
}

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
    pub vocab: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    pub context_length: Option<u64>,
    pub scaling: RopeScaling,
    pub tied: bool,
    pub attn_bias: bool,
    pub mlp_bias: bool,
    /// Whether MLX applies rope to adjacent pairs already (`rope_traditional`).
    pub rope_traditional: bool,
    pub experts: usize,
    pub experts_used: usize,
    pub expert_ff: usize,
}

impl DecoderConfig {
    pub fn read(ckpt: &Checkpoint, spec: &DecoderSpec) -> Result<DecoderConfig> {
        let c = &ckpt.config;
        let us = |k: &str| c.u64(k).map(|v| v as usize);
        let cfg_err = |k: &str, m: String| Error::config(&c.path, k, m);
        let hidden = us("hidden_size")?;
        let heads = us("num_attention_heads")?;
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
        let head_dim = given.unwrap_or(hidden / heads);
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(cfg_err("head_dim", format!("{head_dim}: rope needs an even, positive head size")));
        }
        // transformers ≥ 5 nests rope settings under `rope_parameters`.
        let rope_params = c.get("rope_parameters").filter(|v| v.is_object());
        let rope_theta = match c.opt_f64("rope_theta")? {
            Some(t) => t,
            None => rope_params
                .and_then(|p| p.get("rope_theta"))
                .and_then(|v| v.as_f64())
                .unwrap_or(spec.default_rope_theta),
        };
        let scaling_json = c.get("rope_scaling").filter(|v| !v.is_null()).or(rope_params);
        let scaling = parse_scaling(&c.path, scaling_json)?;
        let (experts, experts_used, expert_ff) = match spec.moe {
            None => (0, 0, 0),
            Some(m) => {
                let e = us(m.count_key)?;
                let k = us("num_experts_per_tok")?;
                if k == 0 || k > e {
                    return Err(cfg_err("num_experts_per_tok", format!("{k} is not between 1 and {} experts", e)));
                }
                (e, k, us(m.ff_key)?)
            }
        };
        let intermediate = c.opt_u64("intermediate_size")?.map(|v| v as usize);
        if spec.moe.is_none() && intermediate.is_none() {
            return Err(cfg_err("intermediate_size", "missing".into()));
        }
        let rope_traditional = c.opt_bool("rope_traditional")?.unwrap_or(false);
        if rope_traditional && spec.rope == RopeKind::Neox {
            return Err(cfg_err(
                "rope_traditional",
                format!("true, but llama.cpp's {} applies rotate-half rope; the model would not match", spec.arch),
            ));
        }
        Ok(DecoderConfig {
            hidden,
            layers: us("num_hidden_layers")?,
            intermediate,
            heads,
            kv_heads,
            head_dim,
            head_dim_given: given.is_some(),
            vocab: us("vocab_size")?,
            rms_eps: c.opt_f64("rms_norm_eps")?.unwrap_or(1e-5),
            rope_theta,
            context_length: c.opt_u64("max_position_embeddings")?,
            scaling,
            tied: c.opt_bool("tie_word_embeddings")?.unwrap_or(spec.default_tie),
            attn_bias: spec.qkv_bias || c.opt_bool("attention_bias")?.unwrap_or(false),
            mlp_bias: c.opt_bool("mlp_bias")?.unwrap_or(false),
            rope_traditional,
            experts,
            experts_used,
            expert_ff,
        })
    }

    /// Whether Q/K rows are permuted into llama.cpp's adjacent-pair layout.
    fn permute(&self, spec: &DecoderSpec) -> bool {
        spec.rope == RopeKind::Norm && !self.rope_traditional
    }
}

fn parse_scaling(path: &std::path::Path, rs: Option<&serde_json::Value>) -> Result<RopeScaling> {
    let Some(rs) = rs else { return Ok(RopeScaling::None) };
    let ty = rs.get("rope_type").or_else(|| rs.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
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
            .filter_map(|(k, key)| num(k).map(|v| (key, v)))
            .collect(),
        },
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

/// Builds the plan of a decoder-only model described by `spec`.
pub fn plan(ckpt: &Checkpoint, spec: &DecoderSpec, opts: &PlanOptions) -> Result<Plan> {
    let cfg = DecoderConfig::read(ckpt, spec)?;
    check_layer_types(ckpt, spec)?;
    let mut tensors = Vec::new();
    let module = |path: &str, kind: ModuleKind| Some(ModuleRef { path: path.to_string(), kind });
    let (h, hd, f32only) = (cfg.hidden, cfg.head_dim, TensorClass::F32Only);
    let (q, kv) = (cfg.heads * hd, cfg.kv_heads * hd);

    let embed = resolve_weight(ckpt, "model.embed_tokens", &[cfg.vocab, h])?;
    push(
        &mut tensors,
        "token_embd.weight".into(),
        vec![cfg.vocab, h],
        TensorClass::Matrix,
        embed,
        module("model.embed_tokens", ModuleKind::Embedding),
    );
    for i in 0..cfg.layers {
        let p = format!("model.layers.{i}");
        let b = format!("blk.{i}");
        let norm = resolve_param(ckpt, &format!("{p}.input_layernorm.weight"), &[h])?;
        push(&mut tensors, format!("{b}.attn_norm.weight"), vec![h], f32only, norm, None);
        let attn: [(&str, &str, usize, usize, bool); 4] = [
            ("q_proj", "attn_q", q, h, true),
            ("k_proj", "attn_k", kv, h, true),
            ("v_proj", "attn_v", kv, h, false),
            ("o_proj", "attn_output", h, q, false),
        ];
        for (m, gguf, rows, cols, rotated) in attn {
            let mp = format!("{p}.self_attn.{m}");
            let w = resolve_weight(ckpt, &mp, &[rows, cols])?;
            let permute = (rotated && cfg.permute(spec)).then_some(hd);
            let kind = ModuleKind::Linear;
            push(
                &mut tensors,
                format!("{b}.{gguf}.weight"),
                vec![rows, cols],
                TensorClass::Matrix,
                w,
                module(&mp, kind),
            )
            .rope_permute = permute;
            // Qwen2 has q/k/v biases only; Llama's attention_bias covers o_proj too.
            let has_bias = if spec.qkv_bias { m != "o_proj" } else { cfg.attn_bias };
            if has_bias {
                let bias = resolve_param(ckpt, &format!("{mp}.bias"), &[rows])?;
                push(&mut tensors, format!("{b}.{gguf}.bias"), vec![rows], f32only, bias, None).rope_permute = permute;
            }
        }
        if spec.qk_norm {
            for (m, gguf) in [("q_norm", "attn_q_norm"), ("k_norm", "attn_k_norm")] {
                let w = resolve_param(ckpt, &format!("{p}.self_attn.{m}.weight"), &[hd])?;
                push(&mut tensors, format!("{b}.{gguf}.weight"), vec![hd], f32only, w, None);
            }
        }
        let norm = resolve_param(ckpt, &format!("{p}.post_attention_layernorm.weight"), &[h])?;
        push(&mut tensors, format!("{b}.ffn_norm.weight"), vec![h], f32only, norm, None);
        match spec.moe {
            Some(moe) => {
                let (e, f) = (cfg.experts, cfg.expert_ff);
                let blk = format!("{p}.{}", moe.block);
                if !ckpt.tensors.contains(&format!("{blk}.gate.weight")) {
                    return Err(Error::tensor(
                        &ckpt.dir,
                        format!("{blk}.gate.weight"),
                        format!(
                            "missing: layer {i} has no MoE router; llama.cpp's {} needs experts in every layer",
                            spec.arch
                        ),
                    ));
                }
                let router = resolve_weight(ckpt, &format!("{blk}.gate"), &[e, h])?;
                let rp = format!("{blk}.gate");
                push(
                    &mut tensors,
                    format!("{b}.ffn_gate_inp.weight"),
                    vec![e, h],
                    TensorClass::Router,
                    router,
                    module(&rp, ModuleKind::Linear),
                );
                for (m, gguf, shape) in [
                    ("gate_proj", "ffn_gate_exps", [e, f, h]),
                    ("up_proj", "ffn_up_exps", [e, f, h]),
                    ("down_proj", "ffn_down_exps", [e, h, f]),
                ] {
                    let mp = format!("{blk}.switch_mlp.{m}");
                    let w = resolve_weight(ckpt, &mp, &shape).map_err(|err| explain_experts(err, &cfg))?;
                    push(
                        &mut tensors,
                        format!("{b}.{gguf}.weight"),
                        shape.to_vec(),
                        TensorClass::Matrix,
                        w,
                        module(&mp, ModuleKind::Switch),
                    );
                }
            }
            None => {
                let f = cfg.intermediate.unwrap_or(0);
                for (m, gguf, rows, cols) in
                    [("gate_proj", "ffn_gate", f, h), ("up_proj", "ffn_up", f, h), ("down_proj", "ffn_down", h, f)]
                {
                    let mp = format!("{p}.mlp.{m}");
                    let w = resolve_weight(ckpt, &mp, &[rows, cols])?;
                    push(
                        &mut tensors,
                        format!("{b}.{gguf}.weight"),
                        vec![rows, cols],
                        TensorClass::Matrix,
                        w,
                        module(&mp, ModuleKind::Linear),
                    );
                    if cfg.mlp_bias {
                        let bias = resolve_param(ckpt, &format!("{mp}.bias"), &[rows])?;
                        push(&mut tensors, format!("{b}.{gguf}.bias"), vec![rows], f32only, bias, None);
                    }
                }
            }
        }
    }
    let norm = resolve_param(ckpt, "model.norm.weight", &[h])?;
    push(&mut tensors, "output_norm.weight".into(), vec![h], f32only, norm, None);
    if !cfg.tied {
        if !ckpt.tensors.contains("lm_head.weight") {
            return Err(Error::tensor(
                &ckpt.dir,
                "lm_head.weight",
                "missing, and config.json does not set tie_word_embeddings: true",
            ));
        }
        let head = resolve_weight(ckpt, "lm_head", &[cfg.vocab, h])?;
        push(
            &mut tensors,
            "output.weight".into(),
            vec![cfg.vocab, h],
            TensorClass::Matrix,
            head,
            module("lm_head", ModuleKind::Linear),
        );
    }
    if let RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } = cfg.scaling {
        let values =
            llama3_rope_factors(cfg.rope_theta, hd, factor, low_freq_factor, high_freq_factor, original_context);
        let what = "rope_scaling (llama3) in config.json".to_string();
        push(
            &mut tensors,
            "rope_freqs.weight".into(),
            vec![hd / 2],
            f32only,
            Encoding::Computed { what, values },
            None,
        );
    }

    let metadata = metadata(ckpt, spec, &cfg, opts)?;
    Ok(Plan { arch: spec.arch, shape: ModelShape { n_layer: cfg.layers, n_expert: cfg.experts }, metadata, tensors })
}

/// Adds a tensor and returns it for any further setting.
fn push(
    tensors: &mut Vec<PlannedTensor>,
    name: String,
    shape: Vec<usize>,
    class: TensorClass,
    source: Encoding,
    module: Option<ModuleRef>,
) -> &mut PlannedTensor {
    tensors.push(PlannedTensor::new(name, shape, class, source, module));
    let n = tensors.len();
    &mut tensors[n - 1]
}

/// mlx-lm's Llama class can mix sliding-window layers in; llama.cpp's `llama` cannot.
fn check_layer_types(ckpt: &Checkpoint, spec: &DecoderSpec) -> Result<()> {
    let Some(types) = ckpt.config.get("layer_types").and_then(|v| v.as_array()) else { return Ok(()) };
    if let Some(t) = types.iter().find(|t| t.as_str() != Some("full_attention")) {
        return Err(Error::config(
            &ckpt.config.path,
            "layer_types",
            format!("has {t}: llama.cpp's {} has no sliding-window layers", spec.arch),
        ));
    }
    Ok(())
}

fn explain_experts(e: Error, cfg: &DecoderConfig) -> Error {
    match e {
        Error::Tensor { path, tensor, msg } => Error::Tensor {
            path,
            tensor,
            msg: format!(
                "{msg} (config: {} experts of size {}, hidden_size {})",
                cfg.experts, cfg.expert_ff, cfg.hidden
            ),
        },
        e => e,
    }
}

fn metadata(
    ckpt: &Checkpoint,
    spec: &DecoderSpec,
    cfg: &DecoderConfig,
    opts: &PlanOptions,
) -> Result<Vec<(String, Value)>> {
    let mut md = crate::arch::general_metadata(ckpt, spec.arch, opts);
    md.push(("general.quantization_version".into(), Value::U32(2)));
    let k = |s: &str| format!("{}.{s}", spec.arch);
    let u32v = |v: usize| Value::U32(v as u32);
    if spec.write_rope_dims {
        md.push((k("vocab_size"), u32v(cfg.vocab)));
    }
    md.push((k("block_count"), u32v(cfg.layers)));
    if let Some(n) = cfg.context_length {
        md.push((k("context_length"), Value::U32(n.min(u32::MAX as u64) as u32)));
    }
    md.push((k("embedding_length"), u32v(cfg.hidden)));
    if let Some(f) = cfg.intermediate {
        md.push((k("feed_forward_length"), u32v(f)));
    }
    md.extend([
        (k("attention.head_count"), u32v(cfg.heads)),
        (k("attention.head_count_kv"), u32v(cfg.kv_heads)),
        (k("rope.freq_base"), Value::F32(cfg.rope_theta as f32)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(cfg.rms_eps as f32)),
    ]);
    if spec.moe.is_some() {
        md.push((k("expert_count"), u32v(cfg.experts)));
        md.push((k("expert_used_count"), u32v(cfg.experts_used)));
        if spec.moe.is_some_and(|m| m.write_expert_ff) {
            md.push((k("expert_feed_forward_length"), u32v(cfg.expert_ff)));
        }
    }
    // llama.cpp assumes n_embd / n_head when these are absent.
    if cfg.head_dim_given || cfg.head_dim != cfg.hidden / cfg.heads {
        md.push((k("attention.key_length"), u32v(cfg.head_dim)));
        md.push((k("attention.value_length"), u32v(cfg.head_dim)));
    }
    if spec.write_rope_dims {
        md.push((k("rope.dimension_count"), u32v(cfg.head_dim)));
    }
    match &cfg.scaling {
        RopeScaling::None | RopeScaling::Llama3 { .. } => {}
        RopeScaling::Linear { factor } => {
            md.push((k("rope.scaling.type"), Value::String("linear".into())));
            md.push((k("rope.scaling.factor"), Value::F32(*factor as f32)));
        }
        RopeScaling::Yarn { factor, original_context, extra } => {
            md.push((k("rope.scaling.type"), Value::String("yarn".into())));
            md.push((k("rope.scaling.factor"), Value::F32(*factor as f32)));
            md.push((k("rope.scaling.original_context_length"), Value::U32(*original_context as u32)));
            for (key, v) in extra {
                md.push((k(key), Value::F32(*v as f32)));
            }
        }
    }

    let vocab = Vocab::load(&ckpt.dir, cfg.vocab)?;
    let pre = crate::tokenizer::pre_for(&ckpt.dir, &vocab, opts.tokenizer_pre.as_deref())?.name;
    // LlamaModel.set_vocab: the tokenizer's add_prefix_space, when it states one.
    if spec.arch == "llama" {
        let add_prefix = ckpt.read_json("tokenizer_config.json")?.and_then(|c| c.get("add_prefix_space")?.as_bool());
        if let Some(b) = add_prefix {
            md.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(b)));
        }
    }
    md.extend(vocab_metadata(ckpt, &vocab, &pre)?);
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

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
