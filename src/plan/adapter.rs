//! Attaching an mlx-lm adapter to the plan: every adapter tensor must belong to a module
//! the plan writes, with exactly the shapes mlx-lm's LoRA layers give it.

use crate::error::{Error, Result};
use crate::source::adapter::{Adapter, FineTuneType, LoraTensors};

use super::{Delta, Encoding, ModuleKind, Plan};

pub fn attach_adapter(plan: &mut Plan, adapter: &Adapter) -> Result<()> {
    match adapter.fine_tune_type {
        FineTuneType::Full => attach_full(plan, adapter)?,
        FineTuneType::Lora | FineTuneType::Dora => attach_lora(plan, adapter)?,
    }
    if let Some(keys) = &adapter.keys {
        for key in keys {
            let known = plan
                .tensors
                .iter()
                .filter_map(|t| t.module.as_ref())
                .any(|m| m.path == *key || m.path.ends_with(&format!(".{key}")));
            if !known {
                return Err(Error::config(
                    &adapter.config_path,
                    "lora_parameters.keys",
                    format!("'{key}' matches no module of this {} model", plan.arch),
                ));
            }
        }
    }
    Ok(())
}

fn attach_lora(plan: &mut Plan, adapter: &Adapter) -> Result<()> {
    let file = &adapter.weights_path;
    for (module, lt) in &adapter.modules {
        // One module may feed several tensors (DeepSeek V2's kv_b_proj: attn_k_b and attn_v_b).
        let mut found = false;
        for t in plan.tensors.iter_mut().filter(|t| t.module.as_ref().is_some_and(|m| m.path == *module)) {
            let kind = t.module.as_ref().map(|m| m.kind).unwrap_or(ModuleKind::Linear);
            let shape = t.src_shape().to_vec();
            let r = lora_rank(adapter, module, lt, kind, &shape)?;
            if let Some(m) = &lt.m {
                if t.head_transpose.is_some() {
                    let msg = format!(
                        "a DoRA magnitude on module '{module}', whose rows llama.cpp wants transposed per head"
                    );
                    return Err(Error::tensor(file, m, msg));
                }
                check_magnitude(adapter, module, m, kind, &shape)?;
            }
            t.delta =
                Some(Delta { a: lt.a.clone(), b: lt.b.clone(), m: lt.m.clone(), scale: adapter.scale, rank: r, kind });
            found = true;
        }
        if !found {
            return Err(Error::tensor(
                file,
                &lt.a,
                format!("module '{module}' is not a weight of this {} model that an adapter can change", plan.arch),
            ));
        }
    }
    Ok(())
}

/// A float adapter tensor, or an error naming it.
fn float_view<'a>(adapter: &'a Adapter, name: &str) -> Result<crate::source::TensorView<'a>> {
    let file = &adapter.weights_path;
    let v = adapter.tensors.get(name).ok_or_else(|| Error::tensor(file, name, "missing"))?;
    if !v.dtype.is_float() {
        return Err(Error::tensor(file, name, format!("dtype {:?} is not a float type", v.dtype)));
    }
    Ok(v)
}

/// The rank of a module's lora_a/lora_b, checked against each other, adapter_config.json
/// and the module's shape `s`.
fn lora_rank(adapter: &Adapter, module: &str, lt: &LoraTensors, kind: ModuleKind, s: &[usize]) -> Result<usize> {
    let file = &adapter.weights_path;
    let (a, b) = (float_view(adapter, &lt.a)?, float_view(adapter, &lt.b)?);
    // Where r sits in a and b.
    let rb = if kind == ModuleKind::Switch { b.shape.get(2) } else { b.shape.first() };
    let (Some(&r), Some(&r_b)) = (a.shape.get(1), rb) else {
        let msg = format!("shape {:?} / lora_b {:?} do not fit module '{module}'", a.shape, b.shape);
        return Err(Error::tensor(file, &lt.a, msg));
    };
    if r != r_b {
        return Err(Error::tensor(
            file,
            &lt.b,
            format!(
                "rank mismatch: lora_a {:?} has rank {r}, lora_b {:?} has rank {r_b} (module '{module}')",
                a.shape, b.shape
            ),
        ));
    }
    if let Some(cfg_r) = adapter.rank.filter(|&cr| cr != r) {
        let msg = format!("rank {r}, but adapter_config.json says rank {cfg_r} (module '{module}')");
        return Err(Error::tensor(file, &lt.a, msg));
    }
    let (want_a, want_b, what): (Vec<usize>, Vec<usize>, &str) = match kind {
        ModuleKind::Linear => (vec![s[1], r], vec![r, s[0]], "[in, r] and [r, out]"),
        ModuleKind::Switch => (vec![s[0], r, s[2]], vec![s[0], s[1], r], "[E, r, in] and [E, out, r]"),
        ModuleKind::Embedding => (vec![s[0], r], vec![r, s[1]], "[vocab, r] and [r, dims]"),
    };
    if a.shape != want_a.as_slice() || b.shape != want_b.as_slice() {
        return Err(Error::tensor(
            file,
            &lt.a,
            format!(
                "lora_a {:?} and lora_b {:?} do not fit module '{module}' of shape {s:?} (expected {want_a:?} and {want_b:?}, i.e. {what}): is this adapter for another model?",
                a.shape, b.shape
            ),
        ));
    }
    Ok(r)
}

/// A DoRA magnitude: one per output row, and not on stacked experts.
fn check_magnitude(adapter: &Adapter, module: &str, m: &str, kind: ModuleKind, s: &[usize]) -> Result<()> {
    let file = &adapter.weights_path;
    if kind == ModuleKind::Switch {
        let msg = format!("DoRA on stacked experts ('{module}') is not something mlx-lm can train or fuse");
        return Err(Error::tensor(file, m, msg));
    }
    let mv = float_view(adapter, m)?;
    if mv.shape != [s[0]] {
        return Err(Error::tensor(file, m, format!("shape {:?}, but module '{module}' has {} rows", mv.shape, s[0])));
    }
    Ok(())
}

fn attach_full(plan: &mut Plan, adapter: &Adapter) -> Result<()> {
    let file = &adapter.weights_path;
    for name in adapter.tensors.names() {
        let Some(t) = plan.tensors.iter_mut().find(|t| t.source_name() == name) else {
            return Err(Error::tensor(file, name, format!("matches no tensor of this {} model", plan.arch)));
        };
        let v = adapter.tensors.get(name).ok_or_else(|| Error::tensor(file, name, "missing"))?;
        if !v.dtype.is_float() || v.shape != t.shape.as_slice() {
            return Err(Error::tensor(
                file,
                name,
                format!("{:?} {:?}, but the model's tensor is {:?}", v.dtype, v.shape, t.shape),
            ));
        }
        t.source = Encoding::Adapter { tensor: name.to_string(), dtype: v.dtype };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Encoding, ModelShape, ModuleRef, PlannedTensor, TensorClass};
    use ::safetensors::tensor::TensorView as StView;
    use ::safetensors::Dtype as StDtype;

    /// An mlx-lm LoRA adapter folder for module `m` with lora_a [in, r] and lora_b [r, out].
    fn adapter(a_shape: [usize; 2], b_shape: [usize; 2], rank: usize) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let a = vec![0u8; a_shape[0] * a_shape[1] * 4];
        let b = vec![0u8; b_shape[0] * b_shape[1] * 4];
        let views = vec![
            ("m.lora_a", StView::new(StDtype::F32, a_shape.to_vec(), &a).unwrap()),
            ("m.lora_b", StView::new(StDtype::F32, b_shape.to_vec(), &b).unwrap()),
        ];
        std::fs::write(d.path().join("adapters.safetensors"), ::safetensors::serialize(views, None).unwrap()).unwrap();
        let cfg = serde_json::json!({"fine_tune_type": "lora", "lora_parameters": {"rank": rank, "scale": 2.0}});
        std::fs::write(d.path().join("adapter_config.json"), cfg.to_string()).unwrap();
        d
    }

    fn plan() -> Plan {
        let source = Encoding::Computed { what: "test".into(), values: Vec::new() };
        let module = Some(ModuleRef { path: "m".into(), kind: ModuleKind::Linear });
        let t = PlannedTensor::new("blk.0.attn_q.weight".into(), vec![16, 64], TensorClass::Matrix, source, module);
        Plan { arch: "test", shape: ModelShape::default(), metadata: Vec::new(), tensors: vec![t] }
    }

    #[test]
    fn lora_attaches_to_its_module_with_rank_and_scale() {
        let d = adapter([64, 4], [4, 16], 4);
        let mut p = plan();
        attach_adapter(&mut p, &Adapter::open(d.path()).unwrap()).unwrap();
        let delta = p.tensors[0].delta.as_ref().expect("attached");
        assert_eq!((delta.rank, delta.scale, delta.kind), (4, 2.0, ModuleKind::Linear));
        assert!(p.tensors[0].adapted());
    }

    #[test]
    fn shapes_ranks_and_config_must_agree() {
        for (a, b, rank, needle) in [
            ([64, 4], [8, 16], 4, "rank mismatch"),
            ([64, 4], [4, 16], 8, "adapter_config.json says rank 8"),
            ([32, 4], [4, 16], 4, "another model"),
        ] {
            let d = adapter(a, b, rank);
            let e = attach_adapter(&mut plan(), &Adapter::open(d.path()).unwrap()).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
