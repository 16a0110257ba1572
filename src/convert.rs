//! The conversion driver: source → plan → transform → sink, in one streaming pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::plan::{attach_adapter, OutType, Plan, PlanOptions, TypeOverrides};
use crate::sink::{ShardedWriter, SplitSpec};
use crate::source::adapter::Adapter;
use crate::source::Checkpoint;
use crate::transform::{produce_chunk, NanPolicy, Source, Survival};

/// Called with (bytes written, total bytes) as the output grows.
pub type ProgressFn = std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>;

#[derive(Clone)]
pub struct ConvertOptions {
    pub model_dir: PathBuf,
    pub adapter_dir: Option<PathBuf>,
    /// Write the adapter as a llama.cpp LoRA GGUF here instead of fusing it.
    pub adapter_out: Option<PathBuf>,
    pub outfile: Option<PathBuf>,
    pub outtype: OutType,
    pub overrides: TypeOverrides,
    /// `tokenizer.ggml.pre` instead of the one detected from the tokenizer.
    pub tokenizer_pre: Option<String>,
    pub split: SplitSpec,
    pub nan_policy: NanPolicy,
    pub threads: Option<usize>,
    pub progress: Option<ProgressFn>,
}

impl ConvertOptions {
    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            outtype: self.outtype,
            name: None,
            overrides: self.overrides.clone(),
            tokenizer_pre: self.tokenizer_pre.clone(),
        }
    }
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
    /// The (first) output file.
    pub outfile: PathBuf,
    /// Every output file (more than one when split). `bytes_written` is their total size.
    pub outfiles: Vec<PathBuf>,
    pub adapter_out: Option<PathBuf>,
    pub tensors: usize,
    pub bytes_written: u64,
    pub seconds: f64,
    /// (tensor, count) for every tensor that had inf/NaN values.
    pub non_finite: Vec<(String, u64)>,
    pub survival: Vec<ClassSurvival>,
    /// Tensors meant for lossless passthrough that had chunks requantized from f32.
    pub requantized: Vec<String>,
    /// Per tensor class: source format → output type, counts, bytes.
    pub classes: Vec<crate::report::ClassRow>,
    /// Bytes of the checkpoint's safetensors files.
    pub input_bytes: u64,
    /// Peak anonymous memory sampled during the run (Linux), in bytes.
    pub peak_anon: Option<u64>,
    pub threads: usize,
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks a running conversion to stop at the next chunk (from a Ctrl-C/SIGTERM handler):
/// it then returns [`Error::Interrupted`] and removes its temporary file.
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// Elements per work chunk (1 MiB of f32): bounded memory per worker. Chunk boundaries
/// depend only on the tensor, never on the thread count, so the output does not either.
const CHUNK_ELEMS: usize = 1 << 18;

pub fn default_outfile(model_dir: &Path, outtype: OutType) -> PathBuf {
    let name = model_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    PathBuf::from(format!("{name}-{outtype}.gguf"))
}

/// The full plan for a checkpoint and optional adapter (to fuse).
pub fn build_plan(ckpt: &Checkpoint, adapter: Option<&Adapter>, opts: &PlanOptions) -> Result<Plan> {
    let mut plan = crate::arch::plan(ckpt, opts)?;
    if let Some(a) = adapter {
        attach_adapter(&mut plan, a)?;
    }
    plan.assign_types(opts.outtype, &opts.overrides)?;
    Ok(plan)
}

/// What `--dry-run` shows: the plan, the output file and its exact size.
pub struct DryRun {
    pub plan: Plan,
    pub outfile: PathBuf,
    pub total_bytes: u64,
    /// (file, tensors, data bytes) per output file.
    pub files: Vec<(PathBuf, usize, u64)>,
}

/// Refuses, before any weight is read, an output that cannot fit on its file system.
fn check_free_space(outfile: &Path, needed: u64) -> Result<()> {
    let dir = match outfile.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // An unknown amount of free space (e.g. an unsupported file system) is not an error.
    if let Ok(free) = fs4::available_space(dir) {
        if free < needed {
            return Err(Error::io(
                outfile,
                std::io::Error::other(format!(
                    "not enough space: the output needs {} but only {} is free",
                    crate::report::human_bytes(needed),
                    crate::report::human_bytes(free)
                )),
            ));
        }
    }
    Ok(())
}

/// Plans the conversion without writing anything.
pub fn dry_run(opts: &ConvertOptions) -> Result<DryRun> {
    let ckpt = Checkpoint::open(&opts.model_dir)?;
    let adapter = opts.adapter_dir.as_deref().map(Adapter::open).transpose()?;
    let fuse = if opts.adapter_out.is_some() { None } else { adapter.as_ref() };
    let plan_opts = opts.plan_options();
    let plan = build_plan(&ckpt, fuse, &plan_opts)?;
    let outfile = opts.outfile.clone().unwrap_or_else(|| default_outfile(&opts.model_dir, opts.outtype));
    let total_bytes = planned_size(&plan).map_err(|e| Error::input(&outfile, e.to_string()))?;
    let sizes: Vec<u64> = plan.tensors.iter().map(|t| t.nbytes()).collect();
    let shards = crate::sink::split::plan_shards(&sizes, opts.split);
    let files = shards
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let path = if shards.len() == 1 {
                outfile.clone()
            } else {
                crate::sink::split::shard_path(&outfile, i, shards.len())
            };
            (path, r.len(), sizes[r.clone()].iter().sum())
        })
        .collect();
    Ok(DryRun { plan, outfile, total_bytes, files })
}

/// The exact size of the GGUF file a plan produces.
pub fn planned_size(plan: &Plan) -> std::result::Result<u64, crate::sink::LayoutError> {
    let (header, sizes) = crate::sink::encode_header(&plan.metadata, &plan.header_tensors())?;
    Ok(header.len() as u64 + sizes.iter().map(|n| crate::gguf::pad(*n).unwrap_or(*n)).sum::<u64>())
}

pub fn convert(opts: &ConvertOptions) -> Result<Summary> {
    let start = Instant::now();
    let ckpt = Checkpoint::open(&opts.model_dir)?;
    let adapter = opts.adapter_dir.as_deref().map(Adapter::open).transpose()?;
    let fuse = if opts.adapter_out.is_some() { None } else { adapter.as_ref() };
    let plan_opts = opts.plan_options();
    let plan = build_plan(&ckpt, fuse, &plan_opts)?;
    // The separate adapter file is planned (and refused if inexpressible) before any output.
    let adapter_plan = match (&opts.adapter_out, &adapter) {
        (Some(_), Some(a)) => {
            let mut with = build_plan(&ckpt, None, &plan_opts)?;
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

    let (header_len, sizes) = crate::sink::encode_header(&plan.metadata, &plan.header_tensors())
        .map(|(h, sizes)| (h.len() as u64, sizes))
        .map_err(|e| Error::input(&outfile, e.to_string()))?;
    let io_err = |e: std::io::Error| Error::io(&outfile, e);
    check_free_space(&outfile, crate::sink::split::total_size(&sizes, header_len, opts.split))?;
    let mut writer = ShardedWriter::new(&outfile, plan.metadata.clone(), plan.header_tensors(), &sizes, opts.split)
        .map_err(io_err)?;
    let outfiles = writer.paths();
    let mut non_finite = Vec::new();
    let mut survival: BTreeMap<String, ClassSurvival> = BTreeMap::new();
    let mut requantized = Vec::new();
    let adapter_store = fuse.map(|a| &a.tensors);
    // Compute and write overlap: workers fill a batch of chunks while a writer thread
    // writes the previous one, in order. At most two batches are in memory.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(1);
    let total: u64 = sizes.iter().sum();
    let peak = crate::mem::PeakSampler::default();
    let (computed, written) = std::thread::scope(|scope| {
        let (progress, peak) = (opts.progress.clone(), &peak);
        let writer_thread = scope.spawn(move || -> std::io::Result<ShardedWriter> {
            for batch in rx {
                peak.sample();
                for bytes in batch {
                    writer.write(&bytes)?;
                }
                if let Some(p) = &progress {
                    p(writer.bytes_written(), total);
                }
            }
            Ok(writer)
        });
        let computed = (|| -> Result<()> {
            for t in &plan.tensors {
                let src = Source::new(&ckpt.tensors, adapter_store, t)?;
                let rows = t.rows();
                let per_chunk = t.rows_per_chunk(CHUNK_ELEMS);
                let starts: Vec<usize> = (0..rows).step_by(per_chunk).collect();
                let (mut bad, mut surv, mut requant) = (0u64, Survival::default(), false);
                for batch in starts.chunks(threads * 2) {
                    if stop_requested() {
                        return Err(Error::Interrupted(outfile.clone()));
                    }
                    let chunks: Vec<_> = pool.install(|| {
                        batch
                            .par_iter()
                            .map(|&first| produce_chunk(&src, t, first, per_chunk.min(rows - first), opts.nan_policy))
                            .collect()
                    });
                    let mut out = Vec::with_capacity(chunks.len());
                    for c in chunks {
                        bad += c.non_finite;
                        requant |= c.requantized;
                        if let Some(s) = &c.survival {
                            surv.add(s);
                        }
                        out.push(c.bytes);
                    }
                    // A closed channel means the writer failed; its error is reported below.
                    if tx.send(out).is_err() {
                        return Ok(());
                    }
                }
                if requant {
                    requantized.push(t.name.clone());
                }
                if src.lora.is_some() || t.adapted() {
                    let class = t.class_name();
                    let e = survival.entry(class.clone()).or_insert_with(|| ClassSurvival {
                        class,
                        tensors: 0,
                        stats: Survival::default(),
                    });
                    e.tensors += 1;
                    e.stats.add(&surv);
                }
                if bad > 0 {
                    if opts.nan_policy == NanPolicy::Error {
                        let file = ckpt.tensors.file_of(t.source_name()).unwrap_or(&ckpt.dir);
                        let msg = format!(
                            "{bad} inf/NaN values after dequantization (use --nan-policy zero or keep to convert anyway)"
                        );
                        return Err(Error::tensor(file, t.source_name(), msg));
                    }
                    non_finite.push((t.name.clone(), bad));
                }
            }
            Ok(())
        })();
        drop(tx);
        let written = writer_thread.join().unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
        (computed, written)
    });
    let writer = match (computed, written) {
        (Err(e), _) => return Err(e),
        (Ok(()), Err(e)) => return Err(io_err(e)),
        (Ok(()), Ok(w)) => w,
    };
    ckpt.tensors.check_unchanged()?;
    let file = writer.finish().map_err(io_err)?;
    // Both outputs appear together or not at all.
    let adapter_file = match (&adapter_plan, &opts.adapter_out, &adapter) {
        (Some(p), Some(path), Some(a)) => Some(crate::adapter_gguf::write_adapter(p, a, path)?),
        _ => None,
    };
    file.commit().map_err(io_err)?;
    let outfile = outfiles.first().cloned().unwrap_or(outfile);
    // Whole files: headers and padding included.
    let bytes_written = outfiles.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    if let (Some(f), Some(path)) = (adapter_file, &opts.adapter_out) {
        f.commit().map_err(|e| Error::io(path, e))?;
    }
    Ok(Summary {
        outfile,
        outfiles,
        adapter_out: opts.adapter_out.clone(),
        tensors: plan.tensors.len(),
        bytes_written,
        seconds: start.elapsed().as_secs_f64(),
        non_finite,
        survival: survival.into_values().collect(),
        requantized,
        classes: crate::report::summarize(&plan),
        input_bytes: ckpt.tensors.total_bytes(),
        peak_anon: peak.peak(),
        threads,
    })
}
