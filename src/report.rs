//! Human and JSON reports of a plan: what each class of tensors is read from, what it
//! becomes, and how many bytes it takes. Used by `--dry-run`, `inspect` and the closing
//! summary of `convert`.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::plan::{Encoding, Plan};

/// One tensor class (e.g. `attn_q.weight` across all blocks) with one source format and
/// one output type.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassRow {
    pub class: String,
    pub source: String,
    pub out_type: String,
    pub count: usize,
    pub adapted: usize,
    pub passthrough: usize,
    pub bytes: u64,
}

pub fn summarize(plan: &Plan) -> Vec<ClassRow> {
    let mut rows: BTreeMap<(String, String, String), ClassRow> = BTreeMap::new();
    for t in &plan.tensors {
        let source = match &t.source {
            Encoding::Adapter { dtype, .. } => format!("{} (adapter)", format!("{dtype:?}").to_lowercase()),
            s => s.describe(),
        };
        let key = (t.class_name(), source.clone(), t.ggml_type.name().to_string());
        let r = rows.entry(key).or_insert_with(|| ClassRow {
            class: t.class_name(),
            source,
            out_type: t.ggml_type.to_string(),
            count: 0,
            adapted: 0,
            passthrough: 0,
            bytes: 0,
        });
        r.count += 1;
        r.adapted += t.adapted() as usize;
        r.passthrough += t.passthrough() as usize;
        r.bytes += t.nbytes();
    }
    rows.into_values().collect()
}

/// Every planned tensor: name, ggml type, ggml dims (innermost first, as `inspect` prints a
/// GGUF's `ne`) and how it is made.
pub fn tensors_json(plan: &Plan) -> Json {
    plan.tensors
        .iter()
        .map(|t| {
            // As the file holds it: trailing dimensions of 1 dropped.
            let ne = t.ne();
            let shape = &ne[..crate::sink::ggml_n_dims(&ne)];
            json!({"name": t.name, "type": t.ggml_type.name(), "shape": shape, "how": t.how.name()})
        })
        .collect()
}

pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", units[u])
    }
}

pub fn render_table(rows: &[ClassRow]) -> String {
    let mut s = format!(
        "  {:<28} {:<20} {:<7} {:>6} {:>8} {:>12}\n",
        "tensor class", "source", "type", "count", "adapted", "size"
    );
    for r in rows {
        let ty = if r.passthrough > 0 { format!("{}*", r.out_type) } else { r.out_type.clone() };
        s += &format!(
            "  {:<28} {:<20} {:<7} {:>6} {:>8} {:>12}\n",
            r.class,
            r.source,
            ty,
            r.count,
            r.adapted,
            human_bytes(r.bytes)
        );
    }
    if rows.iter().any(|r| r.passthrough > 0) {
        s += "  (* copied losslessly from the MLX blocks, not requantized)\n";
    }
    s
}

pub fn rows_json(rows: &[ClassRow]) -> Json {
    Json::Array(
        rows.iter()
            .map(|r| {
                json!({"class": r.class, "source": r.source, "type": r.out_type, "count": r.count,
                       "adapted": r.adapted, "passthrough": r.passthrough, "bytes": r.bytes})
            })
            .collect(),
    )
}
