//! The conversion driver: source → plan → transform → sink, in one streaming pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::plan::{attach_adapter, OutType, Plan, PlanOptions};
use crate::sink::{AtomicFile, GgufWriter};
use crate::source::adapter::Adapter;
use crate::source::Checkpoint;
use crate::transform::{produce_chunk, NanPolicy, Source, Survival};

#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub model_dir: PathBuf,
    pub adapter_dir: Option<PathBuf>,
    /// Write the adapter as a llama.cpp LoRA GGUF here instead of fusing it.
    pub adapter_out: Option<PathBuf>,
    pub outfile: Option<PathBuf>,
    pub outtype: OutType,
    pub nan_policy: NanPolicy,
    pub threads: Option<usize>,
}

/// Adapter survival for one tensor class (e.g. `attn_q.weight`).
#[derive(Clone, Debug)]
pub struct ClassSurvival {
    pub class: String,
    pub tensors: usize,
    pub stats: Survival,
}

/// What a finished conversion did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub outfile: PathBuf,
    pub adapter_out: Option<PathBuf>,
    pub tensors: usize,
    pub bytes_written: u64,
    pub seconds: f64,
    /// (tensor, count) for every tensor that had inf/NaN values.
    pub non_finite: Vec<(String, u64)>,
    pub survival: Vec<ClassSurvival>,
}

/// Elements per work chunk (4 MiB of f32): bounded memory per worker. Chunk boundaries
/// depend only on the tensor, never on the thread count, so the output does not either.
const CHUNK_ELEMS: usize = 1 << 20;

pub fn default_outfile(model_dir: &Path, outtype: OutType) -> PathBuf {
    let name = model_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    PathBuf::from(format!("{name}-{outtype}.gguf"))
}

/// The full plan for a checkpoint and optional adapter (to fuse).
pub fn build_plan(ckpt: &Checkpoint, adapter: Option<&Adapter>, outtype: OutType) -> Result<Plan> {
    let mut plan = crate::arch::plan(ckpt, &PlanOptions { outtype, name: None })?;
    if let Some(a) = adapter {
        attach_adapter(&mut plan, a)?;
    }
    plan.assign_types(outtype)?;
    Ok(plan)
}

pub fn convert(opts: &ConvertOptions) -> Result<Summary> {
    let start = Instant::now();
    let ckpt = Checkpoint::open(&opts.model_dir)?;
    let adapter = opts.adapter_dir.as_deref().map(Adapter::open).transpose()?;
    let fuse = if opts.adapter_out.is_some() { None } else { adapter.as_ref() };
    let plan = build_plan(&ckpt, fuse, opts.outtype)?;
    // The separate adapter file is planned (and refused if inexpressible) before any output.
    let adapter_plan = match (&opts.adapter_out, &adapter) {
        (Some(_), Some(a)) => {
            let mut with = build_plan(&ckpt, None, opts.outtype)?;
            attach_adapter(&mut with, a)?;
            Some(crate::adapter_gguf::plan_adapter(&with, a)?)
        }
        (Some(p), None) => return Err(Error::Usage(format!("--adapter-out {} needs --adapter", p.display()))),
        _ => None,
    };
    let outfile = opts.outfile.clone().unwrap_or_else(|| default_outfile(&opts.model_dir, opts.outtype));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))?;
    let threads = pool.current_num_threads();

    let file = AtomicFile::create(&outfile).map_err(|e| Error::io(&outfile, e))?;
    let io_err = |e: std::io::Error| Error::io(&outfile, e);
    let mut writer = GgufWriter::new(file, &plan.metadata, &plan.header_tensors()).map_err(io_err)?;
    let mut non_finite = Vec::new();
    let mut survival: BTreeMap<String, ClassSurvival> = BTreeMap::new();
    let adapter_store = fuse.map(|a| &a.tensors);
    for t in &plan.tensors {
        let src = Source::new(&ckpt.tensors, adapter_store, t)?;
        let rows = t.rows();
        let per_chunk = (CHUNK_ELEMS / t.row_len().max(1)).max(1);
        let starts: Vec<usize> = (0..rows).step_by(per_chunk).collect();
        let mut bad = 0u64;
        let mut surv = Survival::default();
        // A bounded batch of chunks in flight, written in order.
        for batch in starts.chunks(threads * 2) {
            let chunks: Vec<_> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|&first| produce_chunk(&src, t, first, per_chunk.min(rows - first), opts.nan_policy))
                    .collect()
            });
            for c in chunks {
                bad += c.non_finite;
                if let Some(s) = &c.survival {
                    surv.add(s);
                }
                writer.write(&c.bytes).map_err(io_err)?;
            }
        }
        if src.lora.is_some() || t.adapted() {
            let e = survival.entry(t.class_name()).or_insert_with(|| ClassSurvival {
                class: t.class_name(),
                tensors: 0,
                stats: Survival::default(),
            });
            e.tensors += 1;
            e.stats.add(&surv);
        }
        if bad > 0 {
            if opts.nan_policy == NanPolicy::Error {
                let file = ckpt.tensors.file_of(t.source_name()).unwrap_or(&ckpt.dir);
                return Err(Error::tensor(
                    file,
                    t.source_name(),
                    format!(
                        "{bad} inf/NaN values after dequantization (use --nan-policy zero or keep to convert anyway)"
                    ),
                ));
            }
            non_finite.push((t.name.clone(), bad));
        }
    }
    ckpt.tensors.check_unchanged()?;
    let bytes_written = writer.bytes_written();
    let file = writer.finish().map_err(io_err)?;
    // Both outputs appear together or not at all.
    let adapter_file = match (&adapter_plan, &opts.adapter_out, &adapter) {
        (Some(p), Some(path), Some(a)) => Some(crate::adapter_gguf::write_adapter(p, a, path)?),
        _ => None,
    };
    file.commit().map_err(io_err)?;
    if let (Some(f), Some(path)) = (adapter_file, &opts.adapter_out) {
        f.commit().map_err(|e| Error::io(path, e))?;
    }
    Ok(Summary {
        outfile,
        adapter_out: opts.adapter_out.clone(),
        tensors: plan.tensors.len(),
        bytes_written,
        seconds: start.elapsed().as_secs_f64(),
        non_finite,
        survival: survival.into_values().collect(),
    })
}
