//! llama.cpp file types (`LLAMA_FTYPE_*`) and the per-tensor type mixture llama-quantize
//! applies for them (`src/llama-quant.cpp`: `llama_tensor_get_type_impl` and
//! `tensor_type_fallback`), so that `--outtype q5_0` gives the tensor types
//! `llama-quantize … Q5_0` would give for the same model.

use crate::quant::GgmlType;

use super::{PlannedTensor, TensorClass};

/// A llama.cpp file type this tool can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    F32,
    F16,
    Bf16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Mxfp4Moe,
    Q4KS,
    Q4KM,
    Q5KS,
    Q5KM,
    Q6K,
    Q2K,
    Q3KS,
    Q3KM,
    Q3KL,
    Iq4Nl,
    Iq4Xs,
    Q2KS,
    Iq2Xxs,
    Iq2Xs,
    Iq2S,
    Iq2M,
    Iq3Xxs,
    Iq3Xs,
    Iq3S,
    Iq3M,
    Iq1S,
    Iq1M,
    Tq1_0,
    Tq2_0,
}

impl FileType {
    /// (name, file type) for `--outtype`, lower case.
    pub const ALL: [(&'static str, FileType); 33] = [
        ("f32", FileType::F32),
        ("f16", FileType::F16),
        ("bf16", FileType::Bf16),
        ("q4_0", FileType::Q4_0),
        ("q4_1", FileType::Q4_1),
        ("q5_0", FileType::Q5_0),
        ("q5_1", FileType::Q5_1),
        ("q8_0", FileType::Q8_0),
        ("mxfp4_moe", FileType::Mxfp4Moe),
        ("q4_k_s", FileType::Q4KS),
        ("q4_k_m", FileType::Q4KM),
        ("q5_k_s", FileType::Q5KS),
        ("q5_k_m", FileType::Q5KM),
        ("q6_k", FileType::Q6K),
        ("q2_k", FileType::Q2K),
        ("q3_k_s", FileType::Q3KS),
        ("q3_k_m", FileType::Q3KM),
        ("q3_k_l", FileType::Q3KL),
        ("iq4_nl", FileType::Iq4Nl),
        ("iq4_xs", FileType::Iq4Xs),
        ("q2_k_s", FileType::Q2KS),
        ("iq3_xxs", FileType::Iq3Xxs),
        ("iq3_xs", FileType::Iq3Xs),
        ("iq3_s", FileType::Iq3S),
        ("iq3_m", FileType::Iq3M),
        ("iq2_xxs", FileType::Iq2Xxs),
        ("iq2_xs", FileType::Iq2Xs),
        ("iq2_s", FileType::Iq2S),
        ("iq2_m", FileType::Iq2M),
        ("iq1_s", FileType::Iq1S),
        ("iq1_m", FileType::Iq1M),
        ("tq1_0", FileType::Tq1_0),
        ("tq2_0", FileType::Tq2_0),
    ];

    pub fn parse(s: &str) -> Option<FileType> {
        let l = s.to_ascii_lowercase();
        // llama-quantize's aliases.
        let l = match l.as_str() {
            "mxfp4" => "mxfp4_moe".to_string(),
            "q4_k" => "q4_k_m".to_string(),
            "q5_k" => "q5_k_m".to_string(),
            "q3_k" => "q3_k_m".to_string(),
            _ => l,
        };
        Self::ALL.iter().find(|(n, _)| *n == l).map(|(_, f)| *f).filter(|f| f.writable())
    }

    /// Whether this version can write the file type's main tensor type (some only given an
    /// importance matrix).
    pub fn writable(self) -> bool {
        self.default_type().can_write()
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, f)| *f == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// `llama_ftype_get_default_type`.
    pub fn default_type(self) -> GgmlType {
        match self {
            FileType::F32 => GgmlType::F32,
            FileType::F16 => GgmlType::F16,
            FileType::Bf16 => GgmlType::Bf16,
            FileType::Q4_0 => GgmlType::Q4_0,
            FileType::Q4_1 => GgmlType::Q4_1,
            FileType::Q5_0 => GgmlType::Q5_0,
            FileType::Q5_1 => GgmlType::Q5_1,
            FileType::Q8_0 => GgmlType::Q8_0,
            FileType::Mxfp4Moe => GgmlType::Mxfp4,
            FileType::Q4KS | FileType::Q4KM => GgmlType::Q4K,
            FileType::Q5KS | FileType::Q5KM => GgmlType::Q5K,
            FileType::Q6K => GgmlType::Q6K,
            FileType::Q2K | FileType::Q2KS => GgmlType::Q2K,
            FileType::Q3KS | FileType::Q3KM | FileType::Q3KL => GgmlType::Q3K,
            FileType::Iq4Nl => GgmlType::Iq4Nl,
            FileType::Iq4Xs => GgmlType::Iq4Xs,
            FileType::Iq2Xxs => GgmlType::Iq2Xxs,
            FileType::Iq2Xs | FileType::Iq2S => GgmlType::Iq2Xs,
            FileType::Iq2M => GgmlType::Iq2S,
            FileType::Iq3Xxs => GgmlType::Iq3Xxs,
            FileType::Iq3Xs | FileType::Iq3S | FileType::Iq3M => GgmlType::Iq3S,
            FileType::Iq1S => GgmlType::Iq1S,
            FileType::Iq1M => GgmlType::Iq1M,
            FileType::Tq1_0 => GgmlType::Tq1_0,
            FileType::Tq2_0 => GgmlType::Tq2_0,
        }
    }

    /// `LLAMA_FTYPE_*` (general.file_type).
    pub fn id(self) -> u32 {
        match self {
            FileType::F32 => 0,
            FileType::F16 => 1,
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q5_0 => 8,
            FileType::Q5_1 => 9,
            FileType::Bf16 => 32,
            FileType::Mxfp4Moe => 38,
            FileType::Q4KS => 14,
            FileType::Q4KM => 15,
            FileType::Q5KS => 16,
            FileType::Q5KM => 17,
            FileType::Q6K => 18,
            FileType::Q2K => 10,
            FileType::Q3KS => 11,
            FileType::Q3KM => 12,
            FileType::Q3KL => 13,
            FileType::Iq4Nl => 25,
            FileType::Iq4Xs => 30,
            FileType::Q2KS => 21,
            FileType::Iq2Xxs => 19,
            FileType::Iq2Xs => 20,
            FileType::Iq3Xs => 22,
            FileType::Iq3Xxs => 23,
            FileType::Iq1S => 24,
            FileType::Iq3S => 26,
            FileType::Iq3M => 27,
            FileType::Iq2S => 28,
            FileType::Iq2M => 29,
            FileType::Iq1M => 31,
            FileType::Tq1_0 => 36,
            FileType::Tq2_0 => 37,
        }
    }
}

/// llama-quant's `tensor_get_category`, by GGUF name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnQkv,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    let has = |s: &str| name.contains(s);
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        Category::TokenEmbd
    } else if has("attn_qkv.weight") {
        Category::AttnQkv
    } else if has("attn_v.weight") {
        Category::AttnV
    } else if has("attn_k.weight") {
        Category::AttnK
    } else if has("attn_q.weight") {
        Category::AttnQ
    } else if has("attn_output.weight") {
        Category::AttnOutput
    } else if has("ffn_up") {
        Category::FfnUp
    } else if has("ffn_gate") {
        Category::FfnGate
    } else if has("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

/// What the mixture needs to know about the model (llama.cpp hparams).
#[derive(Clone, Copy, Debug, Default)]
pub struct ModelShape {
    pub n_layer: usize,
    pub n_expert: usize,
    /// `n_head / n_head_kv` of layer 0 (`hparams.n_gqa()`).
    pub n_gqa: usize,
    /// An importance matrix is given (`qs.has_imatrix`).
    pub has_imatrix: bool,
}

/// `--tensor-type REGEX=TYPE` overrides and `--pure`, as llama-quantize's options.
#[derive(Clone, Debug, Default)]
pub struct TypeOverrides {
    pub patterns: Vec<(regex::Regex, GgmlType)>,
    pub pure: bool,
}

/// The type llama-quantize gives each tensor for `ftype`, by tensor index. Tensors it
/// does not quantize (1-D, norms, the MoE router, non-`weight`) are F32 here, as
/// llama.cpp's converter writes them.
pub fn mixture(ftype: FileType, tensors: &[PlannedTensor], shape: ModelShape, ov: &TypeOverrides) -> Vec<GgmlType> {
    let default = ftype.default_type();
    let mut st = State {
        ftype,
        shape,
        has_output: tensors.iter().any(|t| t.name == "output.weight"),
        n_attention_wv: tensors.iter().filter(|t| is_attn_v(category(&t.name))).count(),
        i_attention_wv: 0,
        i_ffn_down: 0,
        i_ffn_gate: 0,
        i_ffn_up: 0,
    };
    // llama-quantize walks tensors in its loader's order: by block number, then name.
    let layer = |n: &str| n.strip_prefix("blk.").and_then(|r| r.split('.').next()).and_then(|l| l.parse::<i64>().ok());
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| {
        let (na, nb) = (&tensors[a].name, &tensors[b].name);
        (layer(na).unwrap_or(-1), na).cmp(&(layer(nb).unwrap_or(-1), nb))
    });
    let mut out = vec![GgmlType::F32; tensors.len()];
    for i in order {
        let t = &tensors[i];
        out[i] = if !quantizable(t) {
            GgmlType::F32
        } else if let Some(ty) = ov.patterns.iter().find(|(re, _)| re.is_match(&t.name)).map(|(_, ty)| *ty) {
            fallback(t.row_len() as u64, ty)
        } else if matches!(default, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16) {
            default
        } else if ov.pure {
            fallback(t.row_len() as u64, default)
        } else {
            fallback(t.row_len() as u64, st.tensor_type(default, t))
        };
    }
    out
}

/// Matrices llama-quantize keeps as they are, by name (Gemma 4's small per-layer input
/// projection).
const NEVER_QUANTIZED: &[&str] = &["per_layer_model_proj"];

/// `tensor_allows_quantization`, for the tensors this tool writes.
pub fn quantizable(t: &PlannedTensor) -> bool {
    t.class == TensorClass::Matrix
        && t.shape.len() >= 2
        && t.name.ends_with("weight")
        && !NEVER_QUANTIZED.iter().any(|n| t.name.contains(n))
}

fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv)
}

/// `use_more_bits` of llama-quant.
fn use_more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i as i64 - (n / 8) as i64).rem_euclid(3) == 2
}

struct State {
    ftype: FileType,
    shape: ModelShape,
    has_output: bool,
    n_attention_wv: usize,
    i_attention_wv: usize,
    i_ffn_down: usize,
    i_ffn_gate: usize,
    i_ffn_up: usize,
}

/// The file types of llama-quant's very-low-bit branch (IQ1 and IQ2 mixtures).
fn is_low_iq(f: FileType) -> bool {
    use FileType::*;
    matches!(f, Iq2Xxs | Iq2Xs | Iq1S | Iq2S | Iq2M | Iq1M)
}

impl State {
    /// `llama_tensor_get_type_impl` (its Falcon and 70B branches do not apply: no Falcon
    /// here, and the 70B bump needs a model-size label this tool does not compute).
    fn tensor_type(&mut self, default: GgmlType, t: &PlannedTensor) -> GgmlType {
        use FileType::*;
        let ftype = self.ftype;
        let cat = category(&t.name);
        if cat == Category::Output || (!self.has_output && cat == Category::TokenEmbd) {
            return output_type(ftype, default, t.row_len() as u64);
        }
        if ftype == Mxfp4Moe {
            // ne[2] > 1: stacked experts.
            return if t.shape.len() >= 3 && t.shape[0] > 1 { GgmlType::Mxfp4 } else { GgmlType::Q8_0 };
        }
        if cat == Category::TokenEmbd {
            return match ftype {
                Iq2Xxs | Iq2Xs | Iq1S | Iq1M => GgmlType::Q2K,
                Iq2S | Iq2M | Iq3Xxs => GgmlType::Iq3S,
                Tq1_0 | Tq2_0 => GgmlType::Q4K,
                _ => default,
            };
        }
        if is_low_iq(ftype) {
            return self.low_iq_type(default, cat);
        }
        match cat {
            c if is_attn_v(c) => self.attn_v_type(default),
            Category::AttnK if self.shape.n_expert == 8 => GgmlType::Q8_0,
            Category::AttnK | Category::AttnQ => match ftype {
                Iq3Xs => GgmlType::Iq3Xxs,
                Iq3Xxs => GgmlType::Iq2S,
                _ => default,
            },
            Category::FfnDown => {
                let layer = self.layer_of(t, self.i_ffn_down);
                self.i_ffn_down += 1;
                self.ffn_down_type(default, layer)
            }
            Category::AttnOutput => self.attn_output_type(default),
            Category::FfnGate | Category::FfnUp => {
                let counter = if cat == Category::FfnGate { &mut self.i_ffn_gate } else { &mut self.i_ffn_up };
                let i = *counter;
                *counter += 1;
                let i_layer = self.layer_of(t, i);
                let n = self.shape.n_layer;
                if ftype == Iq3Xs && i_layer >= n / 8 && i_layer < 7 * n / 8 {
                    GgmlType::Iq3Xxs
                } else {
                    default
                }
            }
            _ => default,
        }
    }

    /// `layer_info`: the block number from the name in MoE models (experts are not in layer
    /// order there), else the running count of this kind of tensor.
    fn layer_of(&self, t: &PlannedTensor, counter: usize) -> usize {
        if self.shape.n_expert > 1 {
            let l = t.name.strip_prefix("blk.").and_then(|r| r.split('.').next()).and_then(|l| l.parse().ok());
            l.unwrap_or(0)
        } else {
            counter
        }
    }

    /// The IQ1/IQ2 file types' branch: only attention V/K/output and the first ffn_down
    /// tensors get other types.
    fn low_iq_type(&mut self, default: GgmlType, cat: Category) -> GgmlType {
        let ftype = self.ftype;
        let iq2_sm = matches!(ftype, FileType::Iq2S | FileType::Iq2M);
        let n_expert = self.shape.n_expert;
        match cat {
            c if is_attn_v(c) => {
                self.i_attention_wv += 1;
                if self.shape.n_gqa >= 4 || n_expert >= 4 {
                    GgmlType::Q4K
                } else if iq2_sm {
                    GgmlType::Iq3S
                } else {
                    GgmlType::Q2K
                }
            }
            Category::AttnK if n_expert == 8 => GgmlType::Q4K,
            Category::FfnDown => {
                // A running count over every ffn_down tensor, against the layer count.
                let first = self.i_ffn_down < self.shape.n_layer / 8;
                self.i_ffn_down += 1;
                match (first, iq2_sm) {
                    (true, true) => GgmlType::Iq3S,
                    (true, false) => GgmlType::Q2K,
                    _ => default,
                }
            }
            Category::AttnOutput if n_expert == 8 => GgmlType::Q5K,
            Category::AttnOutput => match ftype {
                FileType::Iq1S | FileType::Iq1M => GgmlType::Iq2Xxs,
                _ if iq2_sm => GgmlType::Iq3S,
                _ => default,
            },
            _ => default,
        }
    }

    fn attn_v_type(&mut self, default: GgmlType) -> GgmlType {
        use FileType::*;
        let gqa4 = self.shape.n_gqa >= 4;
        let mut ty = match self.ftype {
            Q2K if gqa4 => GgmlType::Q4K,
            Q2K => GgmlType::Q3K,
            Q2KS if gqa4 => GgmlType::Q4K,
            Iq3Xxs if gqa4 => GgmlType::Q4K,
            Iq3Xxs if !self.shape.has_imatrix => GgmlType::Iq3S,
            Iq3Xxs => GgmlType::Iq3Xxs,
            Iq3Xs | Iq3S if gqa4 => GgmlType::Q4K,
            Iq3M => GgmlType::Q4K,
            Q3KM if self.i_attention_wv < 2 => GgmlType::Q5K,
            Q3KM => GgmlType::Q4K,
            Q3KL => GgmlType::Q5K,
            Iq4Nl | Iq4Xs if gqa4 => GgmlType::Q5K,
            Q4KM | Q5KM if use_more_bits(self.i_attention_wv, self.n_attention_wv) => GgmlType::Q6K,
            Q4KS if self.i_attention_wv < 4 => GgmlType::Q5K,
            _ => default,
        };
        if self.shape.n_expert == 8 {
            ty = GgmlType::Q8_0;
        }
        self.i_attention_wv += 1;
        ty
    }

    fn ffn_down_type(&self, default: GgmlType, i_layer: usize) -> GgmlType {
        use FileType::*;
        let n = self.shape.n_layer;
        let (imatrix, n_expert) = (self.shape.has_imatrix, self.shape.n_expert);
        match self.ftype {
            Q2K => GgmlType::Q3K,
            Q2KS if i_layer < n / 8 => GgmlType::Q4K,
            Iq3Xxs if !imatrix && i_layer < n / 8 => GgmlType::Q4K,
            Iq3Xxs if !imatrix => GgmlType::Q3K,
            // (Falcon's Q3_K branch does not apply: no Falcon here.)
            Q3KM if i_layer < n / 16 => GgmlType::Q5K,
            Q3KM => GgmlType::Q4K,
            Iq3M if i_layer < n / 8 || (n_expert == 8 && use_more_bits(i_layer, n)) => GgmlType::Q4K,
            Q3KL => GgmlType::Q5K,
            Q4KM if use_more_bits(i_layer, n) => GgmlType::Q6K,
            Iq4Nl | Iq4Xs if i_layer < n / 8 && !imatrix => GgmlType::Q5K,
            Q5KM if use_more_bits(i_layer, n) => GgmlType::Q6K,
            Q4KS if i_layer < n / 8 => GgmlType::Q5K,
            // llama.cpp's guard for the first ffn_down layers, with an imatrix only.
            Q4_0 if imatrix && i_layer < n / 8 => GgmlType::Q4_1,
            Q5_0 if imatrix && i_layer < n / 8 => GgmlType::Q5_1,
            _ => default,
        }
    }

    fn attn_output_type(&self, default: GgmlType) -> GgmlType {
        use FileType::*;
        if self.shape.n_expert == 8 {
            let bumped =
                matches!(self.ftype, Q2K | Iq3Xs | Iq3Xxs | Q3KS | Q3KM | Iq4Nl | Q4KS | Q4KM | Iq3S | Iq3M | Iq4Xs);
            return if bumped { GgmlType::Q5K } else { default };
        }
        match self.ftype {
            Q2K => GgmlType::Q3K,
            Iq3Xxs => GgmlType::Iq3S,
            Q3KM | Iq3M => GgmlType::Q4K,
            Q3KL => GgmlType::Q5K,
            _ => default,
        }
    }
}

/// The output matrix (and a tied token embedding): Q8_0 when rows are not whole blocks of
/// the file's type, Q5_K for the IQ1/IQ2/IQ3_XXS file types, else Q6_K.
fn output_type(ftype: FileType, default: GgmlType, nx: u64) -> GgmlType {
    if ftype == FileType::Mxfp4Moe || !nx.is_multiple_of(default.block_size() as u64) {
        GgmlType::Q8_0
    } else if is_low_iq(ftype) || ftype == FileType::Iq3Xxs {
        GgmlType::Q5K
    } else if default != GgmlType::Q8_0 {
        GgmlType::Q6K
    } else {
        default
    }
}

/// llama-quant's `tensor_requires_imatrix`: the very-low-bit types (and Q2_K in a Q2_K_S
/// file) outside the token embedding and output matrices need an importance matrix.
pub fn requires_imatrix(name: &str, ty: GgmlType, ftype: Option<FileType>) -> bool {
    if matches!(category(name), Category::TokenEmbd | Category::Output) {
        return false;
    }
    match ty {
        GgmlType::Iq3Xxs | GgmlType::Iq2Xxs | GgmlType::Iq2Xs | GgmlType::Iq2S | GgmlType::Iq1M | GgmlType::Iq1S => {
            true
        }
        GgmlType::Q2K => ftype == Some(FileType::Q2KS),
        _ => false,
    }
}

/// `tensor_type_fallback`: a type whose block does not divide the row length is replaced.
pub fn fallback(ncols: u64, target: GgmlType) -> GgmlType {
    if ncols.is_multiple_of(target.block_size() as u64) {
        return target;
    }
    let t = match target {
        GgmlType::Iq1S
        | GgmlType::Iq1M
        | GgmlType::Iq2Xxs
        | GgmlType::Iq2Xs
        | GgmlType::Iq2S
        | GgmlType::Iq3Xxs
        | GgmlType::Iq3S
        | GgmlType::Iq4Xs => GgmlType::Iq4Nl,
        GgmlType::Q2K | GgmlType::Q3K | GgmlType::Tq1_0 | GgmlType::Tq2_0 => GgmlType::Q4_0,
        GgmlType::Q4K => GgmlType::Q5_0,
        GgmlType::Q5K => GgmlType::Q5_1,
        GgmlType::Q6K => GgmlType::Q8_0,
        other => other,
    };
    if !ncols.is_multiple_of(t.block_size() as u64) {
        GgmlType::F16
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Encoding, PlannedTensor};

    fn tensor(name: &str, shape: &[usize], class: TensorClass) -> PlannedTensor {
        let source = Encoding::Computed { what: "test".into(), values: Vec::new() };
        PlannedTensor::new(name.into(), shape.to_vec(), class, source, None)
    }

    /// A dense Llama-like model of `n` layers, hidden `h`, with or without `output.weight`.
    fn model(n: usize, h: usize, untied: bool) -> Vec<PlannedTensor> {
        let mut ts = vec![tensor("token_embd.weight", &[1000, h], TensorClass::Matrix)];
        for i in 0..n {
            ts.push(tensor(&format!("blk.{i}.attn_norm.weight"), &[h], TensorClass::F32Only));
            for m in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up"] {
                ts.push(tensor(&format!("blk.{i}.{m}.weight"), &[h, h], TensorClass::Matrix));
            }
            ts.push(tensor(&format!("blk.{i}.ffn_down.weight"), &[h, h], TensorClass::Matrix));
        }
        if untied {
            ts.push(tensor("output.weight", &[1000, h], TensorClass::Matrix));
        }
        ts
    }

    fn types(ft: FileType, ts: &[PlannedTensor], n: usize, pure: bool) -> Vec<(String, GgmlType)> {
        let ov = TypeOverrides { patterns: Vec::new(), pure };
        let shape = ModelShape { n_layer: n, n_expert: 0, n_gqa: 1, has_imatrix: false };
        ts.iter().map(|t| t.name.clone()).zip(mixture(ft, ts, shape, &ov)).collect()
    }

    fn type_of(all: &[(String, GgmlType)], name: &str) -> GgmlType {
        all.iter().find(|(n, _)| n == name).map(|(_, t)| *t).unwrap()
    }

    /// llama-quant.cpp's `use_more_bits` for 8 layers: the first and last eighth and
    /// every third layer after the first eighth: 0, 3, 6, 7.
    #[test]
    fn q4_k_m_gives_more_bits_where_llama_quantize_does() {
        let n = 8;
        let all = types(FileType::parse("q4_k_m").unwrap(), &model(n, 256, true), n, false);
        assert_eq!(type_of(&all, "output.weight"), GgmlType::Q6K);
        assert_eq!(type_of(&all, "token_embd.weight"), GgmlType::Q4K);
        for i in 0..n {
            let more = [0, 3, 6, 7].contains(&i);
            let want = if more { GgmlType::Q6K } else { GgmlType::Q4K };
            assert_eq!(type_of(&all, &format!("blk.{i}.attn_v.weight")), want, "attn_v {i}");
            assert_eq!(type_of(&all, &format!("blk.{i}.ffn_down.weight")), want, "ffn_down {i}");
            assert_eq!(type_of(&all, &format!("blk.{i}.attn_q.weight")), GgmlType::Q4K);
            assert_eq!(type_of(&all, &format!("blk.{i}.attn_norm.weight")), GgmlType::F32);
        }
    }

    #[test]
    fn tied_embeddings_take_the_output_rule_and_pure_takes_none() {
        let all = types(FileType::parse("q4_k_m").unwrap(), &model(4, 256, false), 4, false);
        assert_eq!(type_of(&all, "token_embd.weight"), GgmlType::Q6K);
        let pure = types(FileType::parse("q4_k_m").unwrap(), &model(4, 256, true), 4, true);
        for (name, t) in &pure {
            let want = if name.ends_with("norm.weight") { GgmlType::F32 } else { GgmlType::Q4K };
            assert_eq!(*t, want, "{name}");
        }
    }

    /// Rows that are not whole 256-element super-blocks (gpt-oss's 2880) fall back as
    /// `tensor_type_fallback` does: Q4_K → Q5_0, Q6_K → Q8_0.
    #[test]
    fn rows_not_multiple_of_256_fall_back() {
        let all = types(FileType::parse("q4_k_m").unwrap(), &model(8, 2880, true), 8, false);
        assert_eq!(type_of(&all, "blk.1.attn_q.weight"), GgmlType::Q5_0);
        assert_eq!(type_of(&all, "blk.0.attn_v.weight"), GgmlType::Q8_0);
        assert_eq!(type_of(&all, "output.weight"), GgmlType::Q8_0);
        assert_eq!(fallback(2880, GgmlType::Q5K), GgmlType::Q5_1);
        assert_eq!(fallback(2880, GgmlType::Q8_0), GgmlType::Q8_0);
    }
}
