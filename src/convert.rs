//! The conversion driver: source → plan → transform → sink, in one streaming pass.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::plan::{OutType, Plan, PlanOptions};
use crate::sink::{AtomicFile, GgufWriter};
use crate::source::Checkpoint;
use crate::transform::{produce_chunk, NanPolicy, SourceView};

#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub model_dir: PathBuf,
    pub outfile: Option<PathBuf>,
    pub outtype: OutType,
    pub nan_policy: NanPolicy,
    pub threads: Option<usize>,
}

/// What a finished conversion did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub outfile: PathBuf,
    pub tensors: usize,
    pub bytes_written: u64,
    pub seconds: f64,
    /// (tensor, count) for every tensor that had inf/NaN values.
    pub non_finite: Vec<(String, u64)>,
}

/// Elements per work chunk (4 MiB of f32): bounded memory per worker.
const CHUNK_ELEMS: usize = 1 << 20;

pub fn default_outfile(model_dir: &Path, outtype: OutType) -> PathBuf {
    let name = model_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    PathBuf::from(format!("{name}-{outtype}.gguf"))
}

pub fn plan_checkpoint(ckpt: &Checkpoint, outtype: OutType) -> Result<Plan> {
    crate::arch::plan(
        ckpt,
        &PlanOptions {
            outtype,
            name: None,
        },
    )
}

pub fn convert(opts: &ConvertOptions) -> Result<Summary> {
    let start = Instant::now();
    let ckpt = Checkpoint::open(&opts.model_dir)?;
    let plan = plan_checkpoint(&ckpt, opts.outtype)?;
    let outfile = opts
        .outfile
        .clone()
        .unwrap_or_else(|| default_outfile(&opts.model_dir, opts.outtype));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))?;
    let threads = pool.current_num_threads();

    let file = AtomicFile::create(&outfile).map_err(|e| Error::io(&outfile, e))?;
    let io_err = |e: std::io::Error| Error::io(&outfile, e);
    let mut writer =
        GgufWriter::new(file, &plan.metadata, &plan.header_tensors()).map_err(io_err)?;
    let mut non_finite = Vec::new();
    for t in &plan.tensors {
        let src = SourceView::new(&ckpt.tensors, t)?;
        let rows = t.rows();
        let per_chunk = (CHUNK_ELEMS / t.row_len().max(1)).max(1);
        let starts: Vec<usize> = (0..rows).step_by(per_chunk).collect();
        let mut bad = 0u64;
        // A bounded batch of chunks in flight, written in order.
        for batch in starts.chunks(threads * 2) {
            let chunks: Vec<_> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|&first| {
                        produce_chunk(&src, t, first, per_chunk.min(rows - first), opts.nan_policy)
                    })
                    .collect()
            });
            for c in chunks {
                bad += c.non_finite;
                writer.write(&c.bytes).map_err(io_err)?;
            }
        }
        if bad > 0 {
            if opts.nan_policy == NanPolicy::Error {
                let file = source_file(&ckpt, t);
                return Err(Error::tensor(
                    file,
                    source_name(t),
                    format!("{bad} inf/NaN values after dequantization (use --nan-policy zero or keep to convert anyway)"),
                ));
            }
            non_finite.push((t.name.clone(), bad));
        }
    }
    ckpt.tensors.check_unchanged()?;
    let bytes_written = writer.bytes_written();
    writer.finish().map_err(io_err)?.commit().map_err(io_err)?;
    Ok(Summary {
        outfile,
        tensors: plan.tensors.len(),
        bytes_written,
        seconds: start.elapsed().as_secs_f64(),
        non_finite,
    })
}

fn source_name(t: &crate::plan::PlannedTensor) -> &str {
    match &t.source {
        crate::plan::Encoding::Dense { tensor, .. } => tensor,
        crate::plan::Encoding::Quantized { weight, .. } => weight,
    }
}

fn source_file<'a>(ckpt: &'a Checkpoint, t: &crate::plan::PlannedTensor) -> &'a Path {
    ckpt.tensors.file_of(source_name(t)).unwrap_or(&ckpt.dir)
}
