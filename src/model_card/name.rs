//! Names as llama.cpp's converter reads and writes them: a model id such as
//! `Qwen3-4B-Instruct-2507-4bit` split into basename, size label, fine-tune and version
//! (gguf-py `gguf/metadata.py`, `Metadata.get_model_id_components` and `id_to_title`), the
//! size label from parameter counts and the file name from the parts (gguf-py
//! `gguf/utility.py`, `size_label` and `naming_convention`).
//!
//! Digits are ASCII here; Python's `\d` and `isdecimal` also take other scripts' digits.

use std::sync::LazyLock;

use regex::Regex;

/// What a model id says about the model, each part `None` when it does not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdParts {
    /// The id without its organization (`Qwen3-4B-Instruct-2507-4bit`).
    pub full_name: Option<String>,
    pub organization: Option<String>,
    pub basename: Option<String>,
    pub finetune: Option<String>,
    pub version: Option<String>,
    pub size_label: Option<String>,
}

/// How one `-`-separated part of a name was read (a part can be more than one).
#[derive(Clone, Copy, Default)]
struct Roles {
    basename: bool,
    size_label: bool,
    finetune: bool,
    version: bool,
    /// A quantization or float type (`Q8`, `BF16`), which no part of the result takes.
    encoding: bool,
}

impl Roles {
    fn count(self) -> usize {
        [self.basename, self.size_label, self.finetune, self.version, self.encoding].iter().filter(|b| **b).count()
    }
}

static VERSION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^(v|iter)?[0-9]+([.][0-9]+)*$").unwrap());
static ENCODING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^(i?q[0-9](_\w)*|b?fp?(16|32))$").unwrap());
static SIZE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^((A|[0-9]+x)?[0-9]+([._][0-9]+)?[KMBT][0-9]?|small|mini|medium|large|x?xl)$").unwrap()
});
static FINETUNE_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^(chat|instruct|vision|lora)$").unwrap());

/// Splits a model id (`ORG/NAME` or `NAME`) as gguf-py does. `total_params` is the model's
/// parameter count (negative for a LoRA adapter, 0 when unknown): a size in the name far
/// from it is read as part of the fine-tune (a context length such as `32k`).
pub fn id_parts(model_id: &str, total_params: i64) -> IdParts {
    if model_id.contains(' ') {
        // A sentence, not a Hugging Face id.
        return IdParts { full_name: Some(model_id.into()), ..IdParts::default() };
    }
    let (org, full) = match model_id.split_once('/') {
        Some((org, full)) => (Some(org), full),
        None => (None, model_id),
    };
    // `./name` or `../name` is a path, not an organization.
    let org = org.filter(|o| !o.starts_with('.'));
    let mut parts: Vec<String> = full.split('-').filter(|p| !p.is_empty()).map(str::to_string).collect();
    let mut roles = vec![Roles::default(); parts.len()];
    for (i, part) in parts.iter_mut().enumerate() {
        roles[i] = annotate(i, part, total_params);
    }
    drop_word_sizes(&parts, &mut roles);
    mark_basename(&parts, &mut roles);
    let join = |pick: &dyn Fn(&Roles) -> bool| {
        let mut picked: Vec<&str> = Vec::new();
        for (p, r) in parts.iter().zip(&roles) {
            if pick(r) {
                picked.push(p);
            }
        }
        (!picked.is_empty()).then(|| picked.join("-"))
    };
    let mut basename = join(&|r| r.basename);
    let mut sizes: Vec<&str> = Vec::new();
    for (p, r) in parts.iter().zip(&roles) {
        if r.size_label && !sizes.contains(&p.as_str()) {
            sizes.push(p);
        }
    }
    let size_label = (!sizes.is_empty()).then(|| sizes.join("-"));
    let finetune = join(&|r| r.finetune);
    let version = join(&|r| r.version && !r.basename);
    if size_label.is_none() && finetune.is_none() && version.is_none() {
        // Too little to tell the basename from the rest.
        basename = None;
    }
    IdParts {
        full_name: Some(full.to_string()),
        organization: org.map(str::to_string),
        basename,
        finetune,
        version,
        size_label,
    }
}

/// Reads part `i` of a name; rewrites it as it appears in the result (`Q8` upper case,
/// `7b1` as `7.1B`).
fn annotate(i: usize, part: &mut String, total_params: i64) -> Roles {
    let mut r = Roles::default();
    if VERSION.is_match(part) {
        r.version = true;
    } else if ENCODING.is_match(part) {
        r.encoding = true;
        *part = part.to_uppercase();
    } else if i > 0 && SIZE.is_match(part) {
        *part = normalize_size(part);
        if size_is_far_from(part, total_params) {
            r.finetune = true;
            let last = part.pop().unwrap_or_default();
            part.extend(last.to_lowercase());
        }
        if r.count() == 0 {
            r.size_label = true;
        }
    } else if i > 0 && FINETUNE_WORD.is_match(part) {
        // An adapter's own "lora" says nothing new about it.
        if total_params < 0 && part.eq_ignore_ascii_case("lora") {
            r.encoding = true;
        } else {
            r.finetune = true;
        }
    }
    r
}

/// `7_5b` → `7.5B`, `7b1` (BLOOM's notation) → `7.1B`.
fn normalize_size(part: &str) -> String {
    let mut c: Vec<char> = part.replace('_', ".").chars().collect();
    let n = c.len();
    if n >= 2 && c[n - 1].is_ascii_digit() {
        let (unit, digit) = (c[n - 2], c[n - 1]);
        c.truncate(n - 2);
        c.extend(['.', digit, unit]);
    }
    let n = c.len();
    if n > 1 && c[n - 2].is_ascii_digit() && matches!(c[n - 1], 'k' | 'm' | 'b' | 't') {
        c[n - 1] = c[n - 1].to_ascii_uppercase();
    }
    c.into_iter().collect()
}

/// Whether a size label is too far from the parameter count to be the model's size: an
/// adapter's when under 1/8 of the count, a model's when off by more than 7/8 of it.
fn size_is_far_from(part: &str, total_params: i64) -> bool {
    if total_params == 0 {
        return false;
    }
    let Some(unit) = part.chars().last() else { return false };
    let Ok(number) = part[..part.len() - unit.len_utf8()].parse::<f64>() else { return false };
    let scale = match " KMBT".find(unit) {
        Some(k) => 1000f64.powi(k as i32),
        None => 0.001,
    };
    let label = number * scale;
    if total_params < 0 {
        label < (total_params.unsigned_abs() / 8) as f64
    } else {
        (label - total_params as f64).abs() > (7 * total_params / 8) as f64
    }
}

/// Word sizes (`small`, `xl`) are not size labels when a numeric one is present.
fn drop_word_sizes(parts: &[String], roles: &mut [Roles]) {
    let numeric = parts.iter().zip(roles.iter()).any(|(p, r)| r.size_label && p.chars().any(|c| c.is_ascii_digit()));
    if numeric {
        for (p, r) in parts.iter().zip(roles.iter_mut()) {
            if r.size_label && p.chars().all(char::is_alphabetic) {
                r.size_label = false;
            }
        }
    }
}

/// The basename is the leading run of plain words and versions; a plain word after it is a
/// fine-tune; a version that ends the name is only a version.
fn mark_basename(parts: &[String], roles: &mut [Roles]) {
    let mut at_start = true;
    for (p, r) in parts.iter().zip(roles.iter_mut()) {
        let plain_word = r.count() == 0 && p.chars().next().is_some_and(char::is_alphabetic);
        if at_start && (plain_word || r.version) {
            r.basename = true;
        } else {
            at_start = false;
            if r.count() == 0 {
                r.finetune = true;
            }
        }
    }
    for r in roles.iter_mut().rev() {
        if r.basename && r.count() > 1 {
            r.basename = false;
        } else {
            break;
        }
    }
}

/// A name as a title: `-` becomes a space, all-lower-case words are capitalized
/// (`gpt-oss-20b` → `Gpt Oss 20b`); versions, words starting with a digit and words with
/// capitals are kept.
pub fn id_to_title(s: &str) -> String {
    let words: Vec<String> = s
        .trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| if is_lower(w) && !starts_like_a_version(w) { title_case(w) } else { w.to_string() })
        .collect();
    words.join(" ")
}

/// Python's `str.islower`: some cased letter, none upper case.
fn is_lower(w: &str) -> bool {
    w.chars().any(char::is_lowercase) && !w.chars().any(char::is_uppercase)
}

fn starts_like_a_version(w: &str) -> bool {
    static V: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(v[0-9]+(\.[0-9]+)*|[0-9].*)$").unwrap());
    V.is_match(w)
}

/// Python's `str.title`: a letter after a non-letter is upper case, after a letter lower.
fn title_case(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut after_letter = false;
    for c in w.chars() {
        let cased = c.is_lowercase() || c.is_uppercase();
        match (cased, after_letter) {
            (true, false) => out.extend(c.to_uppercase()),
            (true, true) => out.extend(c.to_lowercase()),
            (false, _) => out.push(c),
        }
        after_letter = cased;
    }
    out
}

/// Parameter counts as gguf-py's `GGUFWriter.get_total_parameter_count` makes them from the
/// tensors of the output file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamCounts {
    /// Every element; negative for a LoRA adapter (the base weights it adapts).
    pub total: i64,
    pub shared: u64,
    /// One expert's share of the expert tensors.
    pub expert: u64,
    /// Experts per expert tensor (their mean), 0 without experts.
    pub expert_count: u64,
}

/// Counts a model's tensors, given as (GGUF name, shape with the row last). Stacked-expert
/// tensors (`_exps.` in the name, 3 or more dims) count one expert towards `expert`.
pub fn count_params<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [usize])>) -> ParamCounts {
    let (mut total, mut shared, mut expert, mut expert_sum, mut expert_tensors) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (name, shape) in tensors {
        let size: u64 = shape.iter().map(|&d| d as u64).product();
        total += size;
        if name.contains("_exps.") && shape.len() >= 3 {
            // Biases of stacked experts are (experts, rows).
            let n = if name.contains(".bias") { shape[shape.len() - 2] } else { shape[shape.len() - 3] } as u64;
            expert += size / n.max(1);
            expert_sum += n;
            expert_tensors += 1;
        } else {
            shared += size;
        }
    }
    let expert_count = expert_sum.checked_div(expert_tensors).unwrap_or(0);
    ParamCounts { total: total as i64, shared, expert, expert_count }
}

/// A count rounded to a few digits with its unit: `1.2M`, `20B`, `0.50K`.
fn rounded_count(n: u64) -> String {
    let n = n as f64;
    let (scaled, unit) = if n > 1e12 {
        (n * 1e-12, 'T')
    } else if n > 1e9 {
        (n * 1e-9, 'B')
    } else if n > 1e6 {
        (n * 1e-6, 'M')
    } else {
        (n * 1e-3, 'K')
    };
    // At least two significant digits (Python's round(): ties to even).
    let whole = scaled.round_ties_even() as u64;
    let digits = if whole == 0 { 0 } else { whole.to_string().len() };
    let decimals = 2usize.saturating_sub(digits);
    format!("{scaled:.decimals$}{unit}")
}

/// The size label of a model: `1.2B`, or `8x7.0B` with experts (shared + one expert).
pub fn size_label(c: &ParamCounts) -> String {
    if c.expert_count > 0 {
        format!("{}x{}", c.expert_count, rounded_count(c.shared + c.expert))
    } else {
        rounded_count(c.total.unsigned_abs())
    }
}

/// The parts of a GGUF file name (gguf-py's `naming_convention`).
pub struct FileName<'a> {
    pub name: Option<&'a str>,
    pub basename: Option<&'a str>,
    pub finetune: Option<&'a str>,
    pub version: Option<&'a str>,
    pub size_label: Option<&'a str>,
    /// The file type as the converter spells it (`Q8_0`, `MXFP4_MOE`).
    pub output_type: Option<&'a str>,
    /// `LoRA` for an adapter.
    pub kind: Option<&'a str>,
}

impl FileName<'_> {
    /// `{basename}-{size_label}-{finetune}-{version}-{TYPE}-{kind}`, each missing part left
    /// out, without the `.gguf`.
    pub fn stem(&self) -> String {
        let dashed = |s: &str| s.trim().replace(' ', "-");
        let mut stem = match self.basename.or(self.name) {
            Some(n) => dashed(n).replace('/', "-"),
            None => "ggml-model".into(),
        };
        for part in [self.size_label.map(str::to_string), self.finetune.map(dashed), self.version.map(dashed)]
            .into_iter()
            .flatten()
        {
            stem.push('-');
            stem.push_str(&part);
        }
        if let Some(t) = self.output_type {
            stem.push('-');
            stem.push_str(&dashed(t).to_uppercase());
        }
        if let Some(k) = self.kind {
            stem.push('-');
            stem.push_str(&dashed(k));
        }
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(id: &str, total: i64) -> [Option<String>; 4] {
        let p = id_parts(id, total);
        [p.basename, p.finetune, p.version, p.size_label]
    }

    fn some(v: [&str; 4]) -> [Option<String>; 4] {
        v.map(|s| (!s.is_empty()).then(|| s.to_string()))
    }

    #[test]
    fn mlx_folder_names_split_as_gguf_py_splits_them() {
        // Expected values as gguf-py 0.19's Metadata.get_model_id_components gives them.
        assert_eq!(parts("Qwen3-4B-Instruct-2507-4bit", 0), some(["Qwen3", "Instruct-4bit", "2507", "4B"]));
        assert_eq!(parts("Qwen3-4B-Instruct-2507-4bit", 1000), some(["Qwen3", "4b-Instruct-4bit", "2507", ""]));
        assert_eq!(parts("Mistral-7B-v0.3", 7_000_000_000), some(["Mistral", "", "v0.3", "7B"]));
        assert_eq!(parts("gpt-oss-20b-MXFP4-Q8", 0), some(["gpt-oss", "MXFP4", "", "20B"]));
        assert_eq!(parts("gpt-oss-20b-MXFP4-Q8", 4_000_000_000), some(["gpt-oss", "20b-MXFP4", "", ""]));
        assert_eq!(parts("Llama-3.2-1B-Instruct-bf16", 0), some(["Llama-3.2", "Instruct", "", "1B"]));
        assert_eq!(parts("Qwen3-30B-A3B-Instruct-2507-4bit", 0), some(["Qwen3", "Instruct-4bit", "2507", "30B-A3B"]));
        assert_eq!(parts("Mixtral-8x7B-Instruct-v0.1", 0), some(["Mixtral", "Instruct", "v0.1", "8x7B"]));
        assert_eq!(parts("DeepSeek-V3-0324-4bit", 0), some(["DeepSeek-V3-0324", "4bit", "", ""]));
        assert_eq!(parts("tiny-gpt-oss", 0), some(["", "", "", ""]));
        assert_eq!(parts("bloom-7b1", 0), some(["bloom", "", "", "7.1B"]));
        assert_eq!(parts("model-small-7B", 0), some(["model-small", "", "", "7B"]));
    }

    #[test]
    fn organization_and_sentences() {
        let p = id_parts("mlx-community/Qwen3-4B-4bit", 0);
        assert_eq!(p.organization.as_deref(), Some("mlx-community"));
        assert_eq!(p.full_name.as_deref(), Some("Qwen3-4B-4bit"));
        assert_eq!(id_parts("./Qwen3-4B", 0).organization, None);
        let s = id_parts("My model v2", 0);
        assert_eq!((s.full_name.as_deref(), s.basename), (Some("My model v2"), None));
    }

    #[test]
    fn lora_in_an_adapter_name_is_not_a_finetune() {
        assert_eq!(parts("llama-7b-lora", -1_000_000), some(["llama", "", "", "7B"]));
        assert_eq!(parts("llama-7b-lora", 7_000_000_000), some(["llama", "lora", "", "7B"]));
    }

    #[test]
    fn titles() {
        assert_eq!(id_to_title("gpt-oss-20b-MXFP4-Q8"), "Gpt Oss 20b MXFP4 Q8");
        assert_eq!(id_to_title("Qwen3-4B-Instruct-2507-4bit"), "Qwen3 4B Instruct 2507 4bit");
        assert_eq!(id_to_title("fused_model"), "Fused_Model");
        assert_eq!(id_to_title("mistral-v0.3-a3b"), "Mistral v0.3 A3B");
        assert_eq!(id_to_title(""), "");
    }

    #[test]
    fn size_labels_round_to_two_digits() {
        let dense = |n: i64| size_label(&ParamCounts { total: n, ..ParamCounts::default() });
        assert_eq!(dense(1_234_567), "1.2M");
        assert_eq!(dense(20_914_757_184), "21B");
        assert_eq!(dense(9_600_000_000), "10B");
        assert_eq!(dense(9_400_000_000), "9.4B");
        assert_eq!(dense(999_999), "1000K");
        assert_eq!(dense(400), "0.40K");
        assert_eq!(dense(-3_500_000), "3.5M");
        let moe = ParamCounts { total: 0, shared: 1_000_000_000, expert: 6_000_000_000, expert_count: 8 };
        assert_eq!(size_label(&moe), "8x7.0B");
    }

    #[test]
    fn expert_tensors_count_one_expert() {
        let shapes = [
            ("token_embd.weight", vec![100, 10]),
            ("blk.0.ffn_gate_exps.weight", vec![4, 20, 10]),
            ("blk.0.ffn_gate_exps.bias", vec![4, 20]),
        ];
        let c = count_params(shapes.iter().map(|(n, s)| (*n, s.as_slice())));
        assert_eq!(c, ParamCounts { total: 1000 + 800 + 80, shared: 1000 + 80, expert: 200, expert_count: 4 });
    }

    #[test]
    fn file_names() {
        let f = FileName {
            name: Some("Qwen3 4B"),
            basename: Some("Qwen3"),
            finetune: Some("Instruct-4bit"),
            version: Some("2507"),
            size_label: Some("4B"),
            output_type: Some("q8_0"),
            kind: None,
        };
        assert_eq!(f.stem(), "Qwen3-4B-Instruct-4bit-2507-Q8_0");
        let g = FileName { basename: None, finetune: None, version: None, size_label: None, kind: Some("LoRA"), ..f };
        assert_eq!(g.stem(), "Qwen3-4B-Q8_0-LoRA");
        let none = FileName { name: None, ..g };
        assert_eq!(none.stem(), "ggml-model-Q8_0-LoRA");
    }
}
