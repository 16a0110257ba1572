//! Resolving a module's weight to its stored encoding, with every shape, dtype and
//! config cross-check done before any data is read.

use crate::error::{Error, Result};
use crate::mlx::{QuantMode, QuantParams, ScaleFloat};
use crate::source::config::ModuleQuant;
use crate::source::{Checkpoint, Dtype, TensorView};

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
    // Trailing dimensions of 1 carry no data (MLX's depthwise conv1d weight [C, K, 1]).
    let squeeze = |s: &[usize]| s.iter().rposition(|&d| d != 1).map_or(0, |i| i + 1);
    if view.shape[..squeeze(view.shape)] != expected[..squeeze(expected)] {
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
    let lead = &expected[..expected.len() - 1];
    if w.shape.len() != expected.len() || &w.shape[..lead.len()] != lead {
        let msg = format!("packed shape {:?} does not match the expected {expected:?}", w.shape);
        return Err(Error::tensor(w.file, &name, msg));
    }
    if scales.shape.len() != expected.len() || &scales.shape[..lead.len()] != lead {
        let msg = format!("shape {:?} does not match the weight's {:?}", scales.shape, w.shape);
        return Err(Error::tensor(scales.file, &scales_name, msg));
    }
    let params = quant_params(module, cfg, &w, &scales, expected)?;
    let scale_float = scale_float(&params, &scales)?;
    let biases = resolve_biases(ckpt, module, &params, &scales)?;
    let global_scale = resolve_global_scale(ckpt, module, &params, lead)?;
    Ok(Encoding::Quantized { weight: name, scales: scales_name, biases, global_scale, params, scale_float })
}

/// The module's quantization: config.json's entry, checked against the tensors' shapes,
/// or (without an entry) inferred from them as mlx-lm 0.32.2 does.
fn quant_params(
    module: &str,
    cfg: ModuleQuant,
    w: &TensorView<'_>,
    scales: &TensorView<'_>,
    expected: &[usize],
) -> Result<QuantParams> {
    let in_dim = expected[expected.len() - 1];
    let err = |msg: String| Error::tensor(w.file, w.name, msg);
    let packed = *w.shape.last().unwrap_or(&0);
    let n_groups = *scales.shape.last().unwrap_or(&0);
    let fits = |p: &QuantParams| packed * 32 == in_dim * p.bits as usize && n_groups * p.group_size as usize == in_dim;
    match cfg {
        ModuleQuant::Dense => Err(err(format!(
            "config.json marks module '{module}' as not quantized (false), but it has {}",
            scales.name
        ))),
        ModuleQuant::Explicit(p) if !fits(&p) => Err(err(format!(
            "config.json says {p} for module '{module}', but at that setting the weight {:?} holds rows of {} and the scales {:?} cover {}; the model needs {in_dim}",
            w.shape,
            packed * 32 / p.bits as usize,
            scales.shape,
            n_groups * p.group_size as usize
        ))),
        ModuleQuant::Explicit(p) => Ok(p),
        ModuleQuant::Default(Some(p)) if fits(&p) && mode_matches(&p, scales.dtype) => Ok(p),
        ModuleQuant::Default(d) => infer_params(scales.dtype, packed, n_groups, in_dim).ok_or_else(|| {
            let said = d.map(|p| format!("the default {p}")).unwrap_or_else(|| "no quantization".into());
            err(format!(
                "config.json gives {said}, which does not match weight {:?} and scales {:?} for in={in_dim}",
                w.shape, scales.shape
            ))
        }),
    }
}

/// How the scales are stored: affine scales are floats, the fp modes' are U8 codes.
fn scale_float(params: &QuantParams, scales: &TensorView<'_>) -> Result<ScaleFloat> {
    let sdt = scales.dtype;
    match (params.mode, sdt) {
        (QuantMode::Affine, Dtype::F32) => Ok(ScaleFloat::F32),
        (QuantMode::Affine, Dtype::F16) => Ok(ScaleFloat::F16),
        (QuantMode::Affine, Dtype::BF16) => Ok(ScaleFloat::BF16),
        (QuantMode::Affine, _) => Err(Error::tensor(
            scales.file,
            scales.name,
            format!("affine scales must be F32, F16 or BF16, found {sdt:?}"),
        )),
        (_, Dtype::U8) => Ok(ScaleFloat::F32),
        (m, _) => Err(Error::tensor(scales.file, scales.name, format!("{m} scales must be U8, found {sdt:?}"))),
    }
}

/// Affine biases: required, of the scales' dtype and shape; other modes have none.
fn resolve_biases(
    ckpt: &Checkpoint,
    module: &str,
    params: &QuantParams,
    scales: &TensorView<'_>,
) -> Result<Option<String>> {
    let biases_name = format!("{module}.biases");
    match (params.mode, ckpt.tensors.get(&biases_name)) {
        (QuantMode::Affine, Some(b)) if b.shape != scales.shape || b.dtype != scales.dtype => Err(Error::tensor(
            b.file,
            &biases_name,
            format!("{:?} {:?} does not match the scales' {:?} {:?}", b.dtype, b.shape, scales.dtype, scales.shape),
        )),
        (QuantMode::Affine, Some(_)) => Ok(Some(biases_name)),
        (QuantMode::Affine, None) => {
            let weight = format!("{module}.weight");
            let file = ckpt.tensors.file_of(&weight).unwrap_or(scales.file);
            Err(Error::tensor(file, weight, format!("affine-quantized, but {biases_name} is missing")))
        }
        (m, Some(_)) => {
            Err(Error::tensor(&ckpt.dir, &biases_name, format!("present, but {m} quantization has no biases")))
        }
        (_, None) => Ok(None),
    }
}

/// An nvfp4 module's optional F32 global scale, one per expert.
fn resolve_global_scale(
    ckpt: &Checkpoint,
    module: &str,
    params: &QuantParams,
    lead: &[usize],
) -> Result<Option<String>> {
    let gs_name = format!("{module}.global_scale");
    let Some(g) = ckpt.tensors.get(&gs_name) else { return Ok(None) };
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
    Ok(Some(gs_name))
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

#[cfg(test)]
mod tests {
    use super::*;
    use ::safetensors::tensor::TensorView as StView;
    use ::safetensors::Dtype as StDtype;

    /// A checkpoint folder with one module `m`: a [8, 64] weight packed at `bits` with
    /// groups of `group` (U32 words), bf16 scales and biases, and `quant` as config.json's
    /// quantization record.
    fn folder(bits: usize, group: usize, quant: serde_json::Value) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let (rows, cols) = (8, 64);
        let words = vec![0u8; rows * cols * bits / 8];
        let scales = vec![0x3Fu8; rows * (cols / group) * 2];
        let views = vec![
            ("m.weight", StView::new(StDtype::U32, vec![rows, cols * bits / 32], &words).unwrap()),
            ("m.scales", StView::new(StDtype::BF16, vec![rows, cols / group], &scales).unwrap()),
            ("m.biases", StView::new(StDtype::BF16, vec![rows, cols / group], &scales).unwrap()),
        ];
        let bytes = ::safetensors::serialize(views, None).unwrap();
        std::fs::write(d.path().join("model.safetensors"), bytes).unwrap();
        let cfg = serde_json::json!({"model_type": "test", "quantization": quant});
        std::fs::write(d.path().join("config.json"), cfg.to_string()).unwrap();
        d
    }

    fn resolve(d: &tempfile::TempDir) -> Result<Encoding> {
        let ckpt = Checkpoint::open(d.path())?;
        resolve_weight(&ckpt, "m", &[8, 64])
    }

    fn params(e: Encoding) -> QuantParams {
        match e {
            Encoding::Quantized { params, .. } => params,
            other => panic!("not quantized: {other:?}"),
        }
    }

    #[test]
    fn the_default_applies_when_it_fits_the_tensors() {
        let d = folder(4, 64, serde_json::json!({"group_size": 64, "bits": 4}));
        assert_eq!(params(resolve(&d).unwrap()), QuantParams { mode: QuantMode::Affine, group_size: 64, bits: 4 });
    }

    #[test]
    fn without_an_entry_that_fits_parameters_are_inferred_from_shapes() {
        // mlx-lm 0.32.2: a module whose tensors do not fit the default is read from its shapes.
        let d = folder(8, 32, serde_json::json!({"group_size": 64, "bits": 4}));
        assert_eq!(params(resolve(&d).unwrap()), QuantParams { mode: QuantMode::Affine, group_size: 32, bits: 8 });
    }

    #[test]
    fn an_explicit_entry_that_does_not_fit_is_an_error_naming_the_module() {
        let d = folder(4, 64, serde_json::json!({"group_size": 64, "bits": 4, "m": {"group_size": 64, "bits": 8}}));
        let e = resolve(&d).unwrap_err().to_string();
        assert!(e.contains("config.json says") && e.contains("'m'"), "{e}");
        let d = folder(4, 64, serde_json::json!({"group_size": 64, "bits": 4, "m": false}));
        assert!(resolve(&d).unwrap_err().to_string().contains("not quantized"));
    }

    #[test]
    fn shapes_must_match_the_config() {
        let d = folder(4, 64, serde_json::json!({"group_size": 64, "bits": 4}));
        let ckpt = Checkpoint::open(d.path()).unwrap();
        let e = resolve_weight(&ckpt, "m", &[16, 64]).unwrap_err().to_string();
        assert!(e.contains("packed shape"), "{e}");
        assert!(resolve_weight(&ckpt, "absent", &[8, 64]).unwrap_err().to_string().contains("missing"));
    }
}
