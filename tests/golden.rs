//! The bundled example converted through the library at several output types: every
//! tensor's name, type, ggml shape and data CRC32 equal the checked-in golden files
//! (tests/golden/*.tsv, written from the converter before the plan/transform refactors).
//! A regression in planning, quantization or layout shows here without Python.

use std::path::Path;

use mlx2gguf::convert::{convert, ConvertOptions};
use mlx2gguf::gguf::GgufFile;

fn rows_of(path: &Path) -> Vec<String> {
    let f = GgufFile::open(path).expect("readable").expect("valid GGUF");
    f.tensors
        .iter()
        .map(|t| {
            let ne: Vec<String> = t.ne.iter().map(u64::to_string).collect();
            format!("{}\t{}\t{}\t{:08x}", t.name, t.ggml_type.name(), ne.join(","), crc32fast::hash(f.tensor_data(t)))
        })
        .collect()
}

#[test]
fn example_matches_golden_tensor_tables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    for outtype in ["auto", "f16", "q8_0", "q5_0", "q4_k_m", "mxfp4_moe"] {
        let out = dir.path().join(format!("{outtype}.gguf"));
        let opts = ConvertOptions {
            outfile: Some(out.clone()),
            outtype: outtype.parse().expect("an output type"),
            threads: Some(2),
            ..ConvertOptions::new(root.join("examples/tiny-gpt-oss"))
        };
        let summary = convert(&opts).expect("converts");
        assert_eq!(summary.files.len(), 1);
        let golden = std::fs::read_to_string(root.join(format!("tests/golden/tiny-gpt-oss-{outtype}.tsv"))).unwrap();
        let want: Vec<&str> = golden.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows_of(&out), want, "--outtype {outtype}");
        assert_eq!(summary.files[0].tensors, want.len());
    }
}
