//! Resolving a module's weight to its stored encoding, with every shape, dtype and
//! config cross-check done before any data is read.

use crate::error::{Error, Result};
use crate::mlx::{QuantMode, QuantParams, ScaleFloat};
use crate::source::config::ModuleQuant;
use crate::source::{Checkpoint, Dtype};

use super::Encoding;

/// A dense parameter (`sinks`, a bias, a norm weight) with an exact expected shape.
pub fn resolve_param(ckpt: &Checkpoint, name: &str, expected: &[usize]) -> Result<Encoding> {
    let Some(view) = ckpt.tensors.get(name) else {
        return Err(Error::tensor(&ckpt.dir, name, "missing from the checkpoint"));
    };
    if !view.dtype.is_float() {
        let dt = ckpt.tensors.dtype_name(name).unwrap_or("?");
        return Err(Error::tensor(view.file, name, format!("dtype {dt} is not a float type (F32, F16 or BF16)")));
    }
    if view.shape != expected {
        return Err(Error::tensor(
            view.file,
            name,
            format!("shape {:?}, but the config implies {expected:?}", view.shape),
        ));
    }
    Ok(Encoding::Dense { tensor: name.to_string(), dtype: view.dtype })
}

/// `module.weight`, dense or MLX-quantized, whose logical shape must be `expected`
/// (row-major, the last dim being the quantized `in` dim).
pub fn resolve_weight(ckpt: &Checkpoint, module: &str, expected: &[usize]) -> Result<Encoding> {
    let name = format!("{module}.weight");
    let scales_name = format!("{module}.scales");
    let Some(w) = ckpt.tensors.get(&name) else {
        return Err(Error::tensor(&ckpt.dir, &name, "missing from the checkpoint"));
    };
    let cfg = ckpt.config.quant.for_module(module);
    let Some(scales) = ckpt.tensors.get(&scales_name) else {
        if w.dtype == Dtype::U32 {
            return Err(Error::tensor(w.file, &name, format!("U32 (quantized) weight without {scales_name}")));
        }
        if let ModuleQuant::Explicit(p) = cfg {
            return Err(Error::tensor(
                w.file,
                &name,
                format!(
                    "config.json quantizes module '{module}' ({p}), but its weight is a dense {:?} tensor",
                    w.dtype
                ),
            ));
        }
        return resolve_param(ckpt, &name, expected);
    };
    if w.dtype != Dtype::U32 {
        return Err(Error::tensor(w.file, &name, format!("has {scales_name} but is {:?}, not U32", w.dtype)));
    }
    let (lead, in_dim) = expected.split_at(expected.len() - 1);
    let in_dim = in_dim[0];
    let err = |msg: String| Error::tensor(w.file, &name, msg);
    if w.shape.len() != expected.len() || &w.shape[..lead.len()] != lead {
        return Err(err(format!("packed shape {:?} does not match the expected {expected:?}", w.shape)));
    }
    if scales.shape.len() != expected.len() || &scales.shape[..lead.len()] != lead {
        return Err(Error::tensor(
            scales.file,
            &scales_name,
            format!("shape {:?} does not match the weight's {:?}", scales.shape, w.shape),
        ));
    }
    let packed = *w.shape.last().unwrap_or(&0);
    let n_groups = *scales.shape.last().unwrap_or(&0);
    let fits = |p: &QuantParams| packed * 32 == in_dim * p.bits as usize && n_groups * p.group_size as usize == in_dim;
    let inferred = infer_params(scales.dtype, packed, n_groups, in_dim);
    let params = match cfg {
        ModuleQuant::Dense => {
            return Err(err(format!(
                "config.json marks module '{module}' as not quantized (false), but it has {scales_name}"
            )));
        }
        ModuleQuant::Explicit(p) => {
            if !fits(&p) {
                return Err(err(format!(
                    "config.json says {p} for module '{module}', but at that setting the weight {:?} holds rows of {} and the scales {:?} cover {}; the model needs {in_dim}",
                    w.shape,
                    packed * 32 / p.bits as usize,
                    scales.shape,
                    n_groups * p.group_size as usize
                )));
            }
            p
        }
        // mlx-lm 0.32.2 infers a module's parameters from its tensors when it has no entry.
        ModuleQuant::Default(Some(p)) if fits(&p) && mode_matches(&p, scales.dtype) => p,
        ModuleQuant::Default(d) => inferred.ok_or_else(|| {
            let said = d.map(|p| format!("the default {p}")).unwrap_or_else(|| "no quantization".into());
            err(format!(
                "config.json gives {said}, which does not match weight {:?} and scales {:?} for in={in_dim}",
                w.shape, scales.shape
            ))
        })?,
    };
    let sdt = scales.dtype;
    let scale_float = match (params.mode, sdt) {
        (QuantMode::Affine, Dtype::F32) => ScaleFloat::F32,
        (QuantMode::Affine, Dtype::F16) => ScaleFloat::F16,
        (QuantMode::Affine, Dtype::BF16) => ScaleFloat::BF16,
        (QuantMode::Affine, _) => {
            return Err(Error::tensor(
                scales.file,
                &scales_name,
                format!("affine scales must be F32, F16 or BF16, found {sdt:?}"),
            ));
        }
        (_, Dtype::U8) => ScaleFloat::F32,
        (m, _) => {
            return Err(Error::tensor(scales.file, &scales_name, format!("{m} scales must be U8, found {sdt:?}")))
        }
    };
    let biases_name = format!("{module}.biases");
    let biases = match (params.mode, ckpt.tensors.get(&biases_name)) {
        (QuantMode::Affine, Some(b)) => {
            if b.shape != scales.shape || b.dtype != sdt {
                return Err(Error::tensor(
                    b.file,
                    &biases_name,
                    format!("{:?} {:?} does not match the scales' {sdt:?} {:?}", b.dtype, b.shape, scales.shape),
                ));
            }
            Some(biases_name)
        }
        (QuantMode::Affine, None) => return Err(err(format!("affine-quantized, but {biases_name} is missing"))),
        (m, Some(_)) => {
            return Err(Error::tensor(&ckpt.dir, &biases_name, format!("present, but {m} quantization has no biases")))
        }
        (_, None) => None,
    };
    let gs_name = format!("{module}.global_scale");
    let global_scale = match ckpt.tensors.get(&gs_name) {
        None => None,
        Some(g) => {
            let experts = if lead.len() >= 2 { lead[0] } else { 1 };
            let ok_shape = g.shape == [experts] || (experts == 1 && g.shape.is_empty());
            if params.mode != QuantMode::Nvfp4 || g.dtype != Dtype::F32 || !ok_shape {
                return Err(Error::tensor(
                    g.file,
                    &gs_name,
                    format!(
                        "expected an F32 [{experts}] global scale of an nvfp4 module, found {:?} {:?} ({})",
                        g.dtype, g.shape, params.mode
                    ),
                ));
            }
            Some(gs_name)
        }
    };
    Ok(Encoding::Quantized { weight: name, scales: scales_name, biases, global_scale, params, scale_float })
}

fn mode_matches(p: &QuantParams, scales: Dtype) -> bool {
    (p.mode == QuantMode::Affine) == scales.is_float()
}

/// Parameters implied by the tensors alone (mlx-lm's inference).
fn infer_params(scales: Dtype, packed: usize, n_groups: usize, in_dim: usize) -> Option<QuantParams> {
    if in_dim == 0 || n_groups == 0 || !in_dim.is_multiple_of(n_groups) || !(packed * 32).is_multiple_of(in_dim) {
        return None;
    }
    let group_size = u32::try_from(in_dim / n_groups).ok()?;
    let bits = u32::try_from(packed * 32 / in_dim).ok()?;
    let mode = if scales.is_float() { QuantMode::Affine } else { QuantMode::from_fp_params(bits, group_size)? };
    let p = QuantParams { mode, group_size, bits };
    p.validate().ok().map(|_| p)
}
