//! The declarative description of an architecture: which tensors llama.cpp creates for it
//! (GGUF name, the MLX tensor it comes from, shape in model dimensions, role, when it
//! exists) and which metadata keys it reads, in the order they are written. The planner
//! (`decoder`) builds a plan from it and `verify` checks any GGUF of the architecture
//! against it, so the two cannot disagree.

use crate::plan::{ModuleKind, TensorClass};

/// A model dimension that tensor shapes are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Embd,
    Vocab,
    /// `n_head · head_dim`.
    Q,
    /// `(n_head + 2·n_head_kv) · head_dim`: fused Q, K and V.
    Qkv,
    /// `n_head_kv · head_dim`.
    Kv,
    HeadDim,
    HalfHeadDim,
    Heads,
    Ff,
    /// `2 · n_ff`: fused gate and up projections.
    Ff2,
    /// Half the rotated dimensions (`n_rot / 2`): one rope factor per frequency.
    HalfRot,
    Experts,
    ExpFf,
    /// The shared experts' hidden size (all of them side by side).
    ShExpFf,
    /// A single value (Gemma 4's per-layer output scale).
    One,
    /// Gemma 4's per-layer input embedding size (`hidden_size_per_layer_input`).
    PerLayerEmbd,
    /// `n_layer · PerLayerEmbd`: every layer's input embedding side by side.
    PerLayerEmbdAll,
    /// The sum of config.json integers (mlx-lm's defaults in `ArchSpec::config_defaults`):
    /// DeepSeek's LoRA ranks and head parts.
    Config(&'static [&'static str]),
    /// `n_head` times the sum of config.json integers.
    HeadsTimes(&'static [&'static str]),
    /// A sum of products of config.json integers (Qwen3-Next's linear-attention sizes).
    Terms(&'static [&'static [&'static str]]),
    /// `2 · n_head · head_dim`: queries with an output gate per head (Qwen3-Next).
    QGated,
}

/// The dimensions' values: from config.json when planning, from the metadata when
/// verifying (`vocab` is unknown when a file's vocabulary is unreadable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub embd: u64,
    pub vocab: Option<u64>,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    /// Rotated dimensions per head (`n_rot`).
    pub rot: u64,
    pub ff: u64,
    pub experts: u64,
    pub exp_ff: u64,
    pub shexp_ff: u64,
    pub n_layer: u64,
    pub per_layer_embd: u64,
}

impl Dims {
    pub fn of(&self, d: Dim) -> Option<u64> {
        Some(match d {
            Dim::Embd => self.embd,
            Dim::Vocab => return self.vocab,
            Dim::Q => self.heads.saturating_mul(self.head_dim),
            Dim::Qkv => self.heads.saturating_add(self.kv_heads.saturating_mul(2)).saturating_mul(self.head_dim),
            Dim::Kv => self.kv_heads.saturating_mul(self.head_dim),
            Dim::HeadDim => self.head_dim,
            Dim::HalfHeadDim => self.head_dim / 2,
            Dim::Heads => self.heads,
            Dim::Ff => self.ff,
            Dim::Ff2 => self.ff.saturating_mul(2),
            Dim::HalfRot => self.rot / 2,
            Dim::Experts => self.experts,
            Dim::ExpFf => self.exp_ff,
            Dim::ShExpFf => self.shexp_ff,
            Dim::One => 1,
            Dim::PerLayerEmbd => self.per_layer_embd,
            Dim::PerLayerEmbdAll => self.per_layer_embd.saturating_mul(self.n_layer),
            // Resolved by the planner from config.json; unknown when verifying a file.
            Dim::QGated => self.heads.saturating_mul(self.head_dim).saturating_mul(2),
            Dim::Config(_) | Dim::HeadsTimes(_) | Dim::Terms(_) => return None,
        })
    }

    /// A spec shape (MLX order: rows…, then the row) as sizes.
    pub fn shape(&self, dims: &[Dim]) -> Vec<Option<u64>> {
        dims.iter().map(|d| self.of(*d)).collect()
    }
}

/// What a tensor is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A module's weight (`mlx` is the module path), MLX-quantized or dense; an adapter may
    /// change it.
    Weight(ModuleKind, TensorClass),
    /// A dense parameter kept F32 (`mlx` is the tensor name): norms, biases, sinks.
    Param,
    /// Llama 3 rope factors, computed from config.json's rope_scaling.
    Llama3RopeFreqs,
    /// LongRoPE's per-frequency factors from config.json's rope_scaling (`long_factor` when
    /// true, `short_factor` when false).
    LongRopeFactors(bool),
    /// Gemma 4's "proportional" rope of full-attention layers: one factor per frequency,
    /// the rotated ones at the rope factor, the others so large they do not turn.
    ProportionalRope,
}

/// When a tensor exists. Planning decides from config.json; `verify` requires `Always`
/// tensors and accepts the others when present (llama.cpp creates them optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// A config.json flag (`attention_bias`, `mlp_bias`, `use_bias`, …), false when absent.
    Flag(&'static str),
    /// Embeddings not tied (llama.cpp reuses token_embd when output is absent).
    Untied,
    /// Llama 3 rope scaling.
    Llama3Rope,
    /// LongRoPE (`su`) scaling.
    LongRope,
    /// A layer with K and V projections of its own (not one reusing an earlier layer's
    /// KV cache).
    HasKv,
    /// A layer with a V projection (keys are not its values).
    HasV,
    /// A config.json number that is present, not null and above zero (or a true flag).
    Positive(&'static str),
    /// Not present with that number (`q_proj` when there is no `q_lora_rank`).
    NotPositive(&'static str),
    /// A layer with a dense MLP, in a model with experts in other layers.
    DenseLayer,
    /// A layer with experts.
    MoeLayer,
    /// A linear-attention (recurrent) layer, or a full-attention one beside them.
    LinearLayer,
    FullAttnLayer,
}

/// One tensor llama.cpp creates. Per-layer names are relative to `blk.N.` and
/// `model.layers.N.`.
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec {
    pub gguf: &'static str,
    pub mlx: &'static str,
    pub shape: &'static [Dim],
    pub source: Source,
    /// Q/K rows permuted for llama.cpp's NORM rope.
    pub rope_permute: bool,
    pub when: When,
    /// Gemma's norms store `w` for a scale of `1 + w`: llama.cpp wants `1 + w` (in f32, as
    /// transformers computes it, and MLX when it runs the model in float32).
    pub plus_one: bool,
    /// `A_log` stored for a decay of `-exp(A_log)`: llama.cpp wants the decay.
    pub neg_exp: bool,
    /// Linear-attention value heads stored grouped by key head, which llama.cpp's Qwen3.5
    /// wants tiled.
    pub v_heads: Option<VHeads>,
    /// A part of each head's rows of the module (DeepSeek V2's `kv_b_proj`).
    pub split: Option<HeadSplit>,
    /// llama.cpp creates it not-required even where it is planned (DeepSeek V3's routing
    /// bias, absent from V2 files): `verify` does not ask for it.
    pub optional: bool,
}

/// Part `part` of each head's rows of a module whose heads hold `parts` (config keys of
/// their sizes, in order), optionally transposed per head: DeepSeek V2's `kv_b_proj` holds
/// per head `qk_nope_head_dim` key rows then `v_head_dim` value rows; llama.cpp wants the
/// keys transposed (`attn_k_b`: `[n_head, kv_lora_rank, qk_nope]`) and the values as they
/// are (`attn_v_b`: `[n_head, v_head, kv_lora_rank]`).
#[derive(Clone, Copy, Debug)]
pub struct HeadSplit {
    pub parts: &'static [&'static str],
    pub part: usize,
    pub transpose: bool,
}

/// Where a tensor holds linear-attention value heads (`linear_num_value_heads`, grouped by
/// key head, `linear_num_key_heads` groups): from `offset` on, heads of `head` entries, along
/// the rows or (`cols`) along each row. llama.cpp's Qwen3.5 broadcasts key heads by tiling,
/// so value head `j` of key head `k` moves from `k·r + j` to `j·n_k + k` (r = n_v / n_k).
#[derive(Clone, Copy, Debug)]
pub struct VHeads {
    pub cols: bool,
    pub offset: &'static [&'static [&'static str]],
    /// The head size: a product of config keys (none: 1).
    pub head: &'static [&'static str],
}

impl TensorSpec {
    /// A tensor made from `source`, always present, with no transformation.
    const fn of(gguf: &'static str, mlx: &'static str, shape: &'static [Dim], source: Source) -> Self {
        TensorSpec {
            gguf,
            mlx,
            shape,
            source,
            rope_permute: false,
            when: When::Always,
            plus_one: false,
            neg_exp: false,
            v_heads: None,
            split: None,
            optional: false,
        }
    }

    pub const fn weight(gguf: &'static str, mlx: &'static str, shape: &'static [Dim], kind: ModuleKind) -> Self {
        TensorSpec::of(gguf, mlx, shape, Source::Weight(kind, TensorClass::Matrix))
    }

    /// The MoE router: a module weight kept F32.
    pub const fn router(gguf: &'static str, mlx: &'static str, shape: &'static [Dim]) -> Self {
        TensorSpec::of(gguf, mlx, shape, Source::Weight(ModuleKind::Linear, TensorClass::Router))
    }

    pub const fn param(gguf: &'static str, mlx: &'static str, shape: &'static [Dim]) -> Self {
        TensorSpec::of(gguf, mlx, shape, Source::Param)
    }

    pub const fn when(self, when: When) -> Self {
        TensorSpec { when, ..self }
    }

    pub const fn rope(self) -> Self {
        TensorSpec { rope_permute: true, ..self }
    }

    pub const fn plus_one(self) -> Self {
        TensorSpec { plus_one: true, ..self }
    }

    pub const fn neg_exp(self) -> Self {
        TensorSpec { neg_exp: true, ..self }
    }

    pub const fn v_heads(self, v: VHeads) -> Self {
        TensorSpec { v_heads: Some(v), ..self }
    }

    pub const fn split(self, s: HeadSplit) -> Self {
        TensorSpec { split: Some(s), ..self }
    }

    pub const fn optional(self) -> Self {
        TensorSpec { optional: true, ..self }
    }
}

/// A metadata key an architecture writes (under `{arch}.`), in its place in the header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Meta {
    VocabSize,
    BlockCount,
    /// Written when config.json states it (always for gpt-oss, derived if need be).
    ContextLength,
    EmbeddingLength,
    /// Written when the model has a dense intermediate size.
    FeedForwardLength,
    ExpertFeedForwardLength,
    /// expert_shared_feed_forward_length: the shared experts' hidden size.
    ExpertSharedFeedForwardLength,
    HeadCount,
    HeadCountKv,
    /// key_length and value_length, when the head size is not n_embd / n_head (or is given).
    KeyValueLength,
    RmsEps,
    SlidingWindow,
    FreqBase,
    ExpertCount,
    ExpertUsedCount,
    RopeDimensionCount,
    /// rope.scaling.* for linear and yarn scaling (and LongRoPE's attention factor).
    RopeScaling,
    /// rope.scaling.original_context_length from `original_max_position_embeddings`.
    OriginalContextLength,
    /// attention.sliding_window_pattern, when the layers differ from llama.cpp's default.
    SlidingWindowPattern,
    /// key_length_swa and value_length_swa: the head size of sliding-window layers.
    KeyValueLengthSwa,
    RopeDimensionCountSwa,
    /// rope.freq_base_swa: the rope base of sliding-window layers.
    FreqBaseSwa,
    /// A u32 key from a config.json integer, mlx-lm's default when absent, nothing when
    /// null (written only when there is a value).
    ConfigU32 {
        key: &'static str,
        config: &'static str,
        default: Option<u64>,
    },
    /// A u32 key holding the sum of config.json integers (defaults as for `Dim::Config`).
    ConfigSum {
        key: &'static str,
        configs: &'static [&'static str],
    },
    /// A u32 key holding a sum of products of config.json integers.
    ConfigTerms {
        key: &'static str,
        terms: &'static [&'static [&'static str]],
    },
    /// A u32 key with a fixed value.
    FixedU32 {
        key: &'static str,
        value: u32,
    },
    /// A bool key from a config.json flag (mlx-lm's default when absent), written when true.
    ConfigTrue {
        key: &'static str,
        config: &'static str,
        default: bool,
    },
    /// expert_gating_func from config.json's scoring function (llama.cpp: softmax 1,
    /// sigmoid 2), when stated.
    GatingFunc {
        config: &'static str,
    },
    /// rope.scaling.yarn_log_multiplier: 0.1 × `rope_scaling.mscale_all_dim`, as llama.cpp's
    /// DeepSeek converter writes it.
    YarnLogMul,
    /// rope.dimension_sections: M-RoPE's `rope_parameters.mrope_section` padded to four
    /// (Qwen3.5's [11, 11, 10, 0] when absent, as llama.cpp's converter writes it).
    RopeSections,
    /// An f32 key (under `{arch}.`) from a config.json number, or from mlx-lm's default for
    /// it when absent (written only when there is a value).
    ConfigF32 {
        key: &'static str,
        config: &'static str,
        default: Option<f64>,
    },
}

/// How an architecture reads its sliding-window layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerTypes {
    /// Only full attention: any other `layer_types` entry is refused.
    FullOnly,
    /// gpt-oss: `layer_types` required; llama.cpp's default is even layers sliding.
    AlternatingSliding,
    /// Gemma: every `period`-th layer full, the others sliding; the period from a config key
    /// (mlx-lm's default when absent), llama.cpp's default `period`.
    Periodic { period: u64, key: Option<&'static str> },
    /// Gemma 4: `layer_types` as listed, else every `period`-th layer (from `key`) full;
    /// llama.cpp requires the flags as an array.
    Listed { period: u64, key: &'static str },
}

/// Gemma's query scaling: mlx-lm scales queries by `query_pre_attn_scalar^-½`, llama.cpp by
/// `head_dim^-½`, or by `(n_embd / n_head)^-½` for its 27B layer count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueryScalar {
    pub default: f64,
    pub n_layer_27b: usize,
}

/// Where `tokenizer.ggml.add_space_prefix` comes from (llama.cpp's SentencePiece default is
/// true).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpacePrefix {
    /// Not written.
    Default,
    /// tokenizer_config.json's `add_prefix_space` when it states one (llama.cpp's LlamaModel).
    FromTokenizerConfig,
    /// false for a SentencePiece vocabulary (Gemma's, which adds no dummy prefix).
    OffForSentencePiece,
}

/// An MoE block's config.json keys.
#[derive(Clone, Copy, Debug)]
pub struct MoeKeys {
    /// The expert count.
    pub count: &'static str,
    /// Each expert's hidden size.
    pub ff: &'static str,
    /// Experts per token, with older names tried in turn.
    pub used: &'static [&'static str],
    /// A config.json flag without which the model has no experts (Gemma 4).
    pub enabled_by: Option<&'static str>,
    /// The shared experts' hidden size (Qwen2-MoE).
    pub shared_ff: Option<&'static str>,
    /// The number of shared experts, each of the routed experts' size (DeepSeek).
    pub shared_count: Option<&'static str>,
    /// The number of leading layers with a dense MLP instead (DeepSeek's
    /// `first_k_dense_replace`).
    pub dense_lead: Option<&'static str>,
    /// Experts only in every N-th layer, N from this key (Llama 4's
    /// `interleave_moe_layer_step`: layers N-1, 2N-1, …).
    pub interleave: Option<&'static str>,
}

/// Layers whose shapes differ by layer (Gemma 4): the config.json keys that say how.
#[derive(Clone, Copy, Debug)]
pub struct MixedLayers {
    /// Head size of full-attention layers (sliding-window ones use `head_dim`).
    pub global_head_dim: &'static str,
    /// KV heads of full-attention layers whose keys are their values.
    pub global_kv_heads: &'static str,
    /// Full-attention layers use their keys as values (no V projection).
    pub k_eq_v: &'static str,
    /// The last N layers reuse the KV cache of earlier ones (no K/V projections).
    pub kv_shared: &'static str,
    /// KV-sharing layers have an MLP twice as wide.
    pub double_wide_mlp: &'static str,
    /// Per-layer rope settings (`rope_parameters.full_attention`, `.sliding_attention`).
    pub rope_parameters: &'static str,
    /// Size of each layer's input embedding (0 or null: none).
    pub per_layer_input: &'static str,
}

/// How the vocabulary is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// Byte-level BPE (`gpt2`) from tokenizer.json or SentencePiece (`llama`) from
    /// tokenizer.model.
    Standard,
    /// Gemma 4: tokenizer.json's BPE over `▁`-marked text with byte fallback, as llama.cpp's
    /// `gemma4` tokenizer model.
    Gemma4,
}

/// How llama.cpp applies rope for an architecture (`llama_model_rope_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeKind {
    /// Adjacent pairs: HF-layout Q/K rows must be permuted at conversion.
    Norm,
    /// Rotate-half, as in HF and MLX: weights are taken as they are.
    Neox,
}

/// Everything that distinguishes one decoder architecture from another.
#[derive(Clone, Copy, Debug)]
pub struct ArchSpec {
    /// `general.architecture`.
    pub arch: &'static str,
    pub rope: RopeKind,
    /// Tensors before the layers (`token_embd`), in each layer, and after them.
    pub front: &'static [TensorSpec],
    pub layer: &'static [&'static [TensorSpec]],
    pub back: &'static [TensorSpec],
    pub metadata: &'static [Meta],
    pub moe: Option<MoeKeys>,
    /// Whether config's `head_dim` is used (Mixtral's mlx-lm class ignores it), and
    /// whether it is required (gpt-oss: n_embd / n_head is not its head size).
    pub honours_head_dim: bool,
    pub requires_head_dim: bool,
    pub layer_types: LayerTypes,
    /// Rope scaling types config.json may ask for (`rope_scaling.rope_type`).
    pub scalings: &'static [&'static str],
    /// llama.cpp's fixed yarn betas (32, 1) with no keys for them: other values are
    /// refused and none are written (gpt-oss).
    pub fixed_yarn_betas: bool,
    /// mlx-lm's defaults where config.json is silent.
    pub default_tie: bool,
    pub default_rope_theta: f64,
    pub default_sliding_window: u64,
    /// mlx-lm's head size when config.json has no `head_dim` (Gemma 3: 256).
    pub default_head_dim: Option<usize>,
    /// Tied exactly when the checkpoint has no `lm_head` (mlx-lm's Gemma 3 sanitize).
    pub tie_from_weights: bool,
    pub query_scalar: Option<QueryScalar>,
    /// Rope on the first `partial_rotary_factor · head_dim` dimensions only (Phi-3/4).
    pub partial_rotary: bool,
    pub space_prefix: SpacePrefix,
    pub mixed_layers: Option<MixedLayers>,
    pub vocab: VocabKind,
    /// mlx-lm's defaults for config.json integers used by `Dim::Config`, `Meta::ConfigSum`.
    pub config_defaults: &'static [(&'static str, u64)],
    /// Linear-attention layers beside full-attention ones (Qwen3-Next, Qwen3.5).
    pub linear_attention: Option<LinearAttention>,
}

/// Which layers are linear attention: all but every `interval`-th (from a config key,
/// mlx-lm's default when absent).
#[derive(Clone, Copy, Debug)]
pub struct LinearAttention {
    pub interval_key: &'static str,
    pub default_interval: u64,
}

impl ArchSpec {
    /// Every tensor description with the layer it belongs to (`None` outside layers), in
    /// the order the file holds them.
    pub fn tensors(&self, n_layer: usize) -> impl Iterator<Item = (Option<usize>, &'static TensorSpec)> + '_ {
        let layers = (0..n_layer).flat_map(|i| self.layer.iter().flat_map(|g| g.iter()).map(move |t| (Some(i), t)));
        self.front.iter().map(|t| (None, t)).chain(layers).chain(self.back.iter().map(|t| (None, t)))
    }
}

/// Shared groups of tensors and of metadata keys.
pub mod groups {
    use super::Meta::{self, *};

    /// The keys a dense Qwen-style decoder writes (llama.cpp's converter order).
    pub const DENSE_KEYS: &[Meta] = &[
        BlockCount,
        ContextLength,
        EmbeddingLength,
        FeedForwardLength,
        HeadCount,
        HeadCountKv,
        FreqBase,
        RmsEps,
        KeyValueLength,
        RopeScaling,
    ];

    use super::Dim::*;
    use super::{TensorSpec as T, When};

    use crate::plan::ModuleKind::{Embedding, Linear, Switch};

    pub const EMBED: &[T] = &[T::weight("token_embd.weight", "model.embed_tokens", &[Vocab, Embd], Embedding)];
    pub const HEAD: &[T] = &[
        T::param("output_norm.weight", "model.norm.weight", &[Embd]),
        T::weight("output.weight", "lm_head", &[Vocab, Embd], Linear).when(When::Untied),
    ];
    pub const ROPE_FREQS: &[T] = &[T::param("rope_freqs.weight", "rope_scaling", &[HalfHeadDim]).llama3()];
    pub const ATTN_NORM: &[T] = &[T::param("attn_norm.weight", "input_layernorm.weight", &[Embd])];
    pub const FFN_NORM: &[T] = &[T::param("ffn_norm.weight", "post_attention_layernorm.weight", &[Embd])];

    /// Llama's attention: Q/K permuted for NORM rope, biases when `attention_bias`.
    pub const LLAMA_ATTN: &[T] = &[
        T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear).rope(),
        T::param("attn_q.bias", "self_attn.q_proj.bias", &[Q]).rope().when(When::Flag("attention_bias")),
        T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear).rope(),
        T::param("attn_k.bias", "self_attn.k_proj.bias", &[Kv]).rope().when(When::Flag("attention_bias")),
        T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
        T::param("attn_v.bias", "self_attn.v_proj.bias", &[Kv]).when(When::Flag("attention_bias")),
        T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
        T::param("attn_output.bias", "self_attn.o_proj.bias", &[Embd]).when(When::Flag("attention_bias")),
    ];

    /// Qwen2's attention: q/k/v biases always, none on the output.
    pub const QKV_BIAS_ATTN: &[T] = &[
        T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
        T::param("attn_q.bias", "self_attn.q_proj.bias", &[Q]),
        T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear),
        T::param("attn_k.bias", "self_attn.k_proj.bias", &[Kv]),
        T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
        T::param("attn_v.bias", "self_attn.v_proj.bias", &[Kv]),
        T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
    ];

    /// Qwen3's attention: no biases, then per-head RMSNorm on queries and keys.
    pub const QK_NORM_ATTN: &[T] = &[
        T::weight("attn_q.weight", "self_attn.q_proj", &[Q, Embd], Linear),
        T::weight("attn_k.weight", "self_attn.k_proj", &[Kv, Embd], Linear),
        T::weight("attn_v.weight", "self_attn.v_proj", &[Kv, Embd], Linear),
        T::weight("attn_output.weight", "self_attn.o_proj", &[Embd, Q], Linear),
        T::param("attn_q_norm.weight", "self_attn.q_norm.weight", &[HeadDim]),
        T::param("attn_k_norm.weight", "self_attn.k_norm.weight", &[HeadDim]),
    ];

    /// SwiGLU MLP, biases when `mlp_bias`.
    pub const MLP: &[T] = &[
        T::weight("ffn_gate.weight", "mlp.gate_proj", &[Ff, Embd], Linear),
        T::param("ffn_gate.bias", "mlp.gate_proj.bias", &[Ff]).when(When::Flag("mlp_bias")),
        T::weight("ffn_up.weight", "mlp.up_proj", &[Ff, Embd], Linear),
        T::param("ffn_up.bias", "mlp.up_proj.bias", &[Ff]).when(When::Flag("mlp_bias")),
        T::weight("ffn_down.weight", "mlp.down_proj", &[Embd, Ff], Linear),
        T::param("ffn_down.bias", "mlp.down_proj.bias", &[Embd]).when(When::Flag("mlp_bias")),
    ];

    /// Experts stacked by mlx-lm's SwitchGLU under `mlp` (Qwen3-MoE).
    pub const MLP_SWITCH: &[T] = &[
        T::router("ffn_gate_inp.weight", "mlp.gate", &[Experts, Embd]),
        T::weight("ffn_gate_exps.weight", "mlp.switch_mlp.gate_proj", &[Experts, ExpFf, Embd], Switch),
        T::weight("ffn_up_exps.weight", "mlp.switch_mlp.up_proj", &[Experts, ExpFf, Embd], Switch),
        T::weight("ffn_down_exps.weight", "mlp.switch_mlp.down_proj", &[Experts, Embd, ExpFf], Switch),
    ];
}

impl TensorSpec {
    /// Rope factors computed from config.json (present with the scaling they belong to).
    pub const fn computed(self, source: Source) -> Self {
        let when = match source {
            Source::LongRopeFactors(_) => When::LongRope,
            Source::ProportionalRope => When::Always,
            _ => When::Llama3Rope,
        };
        TensorSpec { source, when, ..self }
    }

    /// Computed Llama 3 rope factors, present with llama3 rope scaling.
    pub const fn llama3(self) -> Self {
        TensorSpec { source: Source::Llama3RopeFreqs, when: When::Llama3Rope, ..self }
    }
}
