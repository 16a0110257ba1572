//! The conversion driver: source → plan → transform → sink, in one streaming pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::model_card::describe::{for_adapter, for_model, insert_after};
use crate::model_card::ModelCard;
use crate::ordered::{Ordered, StopOnPanic};
use crate::plan::{attach_adapter, FileType, OutType, Plan, PlanOptions, TypeOverrides};
use crate::sink::{ShardedWriter, SplitSpec};
use crate::source::adapter::Adapter;
use crate::source::readahead::{Readahead, WINDOW_BYTES};
use crate::source::Checkpoint;
use crate::transform::{produce_chunk, Chunk, NanPolicy, Source, Survival};

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
    /// Checked between chunks; cancelling it stops the conversion cleanly.
    pub cancel: Option<CancelToken>,
    /// An importance matrix (`llama-imatrix` output, GGUF or legacy .dat) for the quantizers.
    pub imatrix: Option<PathBuf>,
    /// Use the imatrix only for tensors whose names contain one of these (llama-quantize
    /// `--include-weights`).
    pub imatrix_include: Vec<String>,
    /// Do not use the imatrix for tensors whose names contain one of these
    /// (`--exclude-weights`).
    pub imatrix_exclude: Vec<String>,
    /// A JSON file of model-card keys (`general.name`, `general.base_models`, …) that replace
    /// the derived ones, as llama.cpp's `--metadata`.
    pub metadata_override: Option<PathBuf>,
}

impl ConvertOptions {
    /// Options for converting `model` (a folder or a repo id) with every default: `auto`
    /// output named after the model, no adapter, no split, all cores.
    pub fn new(model: impl Into<PathBuf>) -> ConvertOptions {
        ConvertOptions {
            model_dir: model.into(),
            adapter_dir: None,
            adapter_out: None,
            outfile: None,
            outtype: OutType::Auto,
            overrides: TypeOverrides::default(),
            tokenizer_pre: None,
            split: SplitSpec::default(),
            nan_policy: NanPolicy::default(),
            threads: None,
            progress: None,
            cancel: None,
            imatrix: None,
            imatrix_include: Vec::new(),
            imatrix_exclude: Vec::new(),
            metadata_override: None,
        }
    }

    fn plan_options(&self) -> Result<PlanOptions> {
        let (include, exclude) = (&self.imatrix_include, &self.imatrix_exclude);
        if !include.is_empty() && !exclude.is_empty() {
            return Err(Error::Usage("--include-weights and --exclude-weights cannot be combined".into()));
        }
        if self.imatrix.is_none() && !(include.is_empty() && exclude.is_empty()) {
            return Err(Error::Usage(
                "--include-weights/--exclude-weights select entries of --imatrix FILE: add it".into(),
            ));
        }
        let mut imatrix = self.imatrix.as_deref().map(crate::imatrix::Imatrix::load).transpose()?;
        if let Some(m) = &mut imatrix {
            m.select(include, exclude);
        }
        // llama-quantize then quantizes as if no imatrix had been given.
        let imatrix = imatrix.filter(|m| !m.is_empty());
        Ok(PlanOptions {
            outtype: self.outtype,
            name: None,
            overrides: self.overrides.clone(),
            tokenizer_pre: self.tokenizer_pre.clone(),
            imatrix: imatrix.map(std::sync::Arc::new),
        })
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
    /// The model folder read (a repo id's snapshot in the Hugging Face cache).
    pub model_dir: PathBuf,
    /// For a multimodal folder: what was converted and what left out.
    pub multimodal: Option<String>,
    /// The file the chat template came from.
    pub chat_template: Option<&'static str>,
    pub adapter_dir: Option<PathBuf>,
    /// What each committed file holds (model files, then the adapter file).
    pub files: Vec<WrittenFile>,
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
    /// Tensors whose type holds their MLX blocks but that were encoded, and why.
    pub not_copied: Vec<(String, String)>,
    /// Per tensor class: source format → output type, counts, bytes.
    pub classes: Vec<crate::report::ClassRow>,
    /// Bytes of the checkpoint's safetensors files.
    pub input_bytes: u64,
    /// Peak anonymous memory sampled during the run (Linux), in bytes.
    pub peak_anon: Option<u64>,
    pub threads: usize,
}

/// Asks a running conversion to stop: at the next chunk it returns
/// [`Error::Interrupted`] and removes its temporary files. Clones share one flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Elements per work chunk (1 MiB of f32): bounded memory per worker. Chunk boundaries
/// depend only on the tensor, never on the thread count, so the output does not either.
const CHUNK_ELEMS: usize = 1 << 18;

/// The name llama.cpp's converter gives the file (gguf-py's `naming_convention`:
/// `{basename}-{size label}-{finetune}-{version}-{TYPE}.gguf`, parts it lacks left out), in
/// the current folder.
pub fn default_outfile(card: &ModelCard, plan: &Plan) -> PathBuf {
    PathBuf::from(format!("{}.gguf", card.file_stem(&file_type_label(plan), false)))
}

/// The file type as the converter spells it in file names: gguf-py's `LlamaFileType` name
/// without its `ALL_`/`MOSTLY_` prefix (`F32`, `Q8_0`, `Q4_K_M`, `MXFP4_MOE`). For `auto`, the
/// type `general.file_type` records (MXFP4_MOE with MXFP4 experts, else the most common
/// matrix type's).
pub fn file_type_label(plan: &Plan) -> String {
    let id = plan.metadata.iter().find_map(|(k, v)| match (k.as_str(), v) {
        ("general.file_type", crate::gguf::Value::U32(id)) => Some(*id),
        _ => None,
    });
    FileType::ALL.iter().find(|(_, f)| Some(f.id()) == id).map_or("F32", |(n, _)| n).to_uppercase()
}

/// The full plan for a checkpoint and optional adapter (to fuse).
pub fn build_plan(ckpt: &Checkpoint, adapter: Option<&Adapter>, opts: &PlanOptions) -> Result<Plan> {
    let mut plan = crate::arch::plan(ckpt, opts)?;
    if let Some(a) = adapter {
        attach_adapter(&mut plan, a)?;
    }
    // llama-quantize's mixture changes for some file types when an imatrix is given.
    plan.shape.has_imatrix = opts.imatrix.is_some();
    plan.assign_types(opts.outtype, &opts.overrides)?;
    plan.decide_how(&ckpt.tensors);
    if let Some(m) = &opts.imatrix {
        if opts.outtype == OutType::Auto {
            return Err(Error::Usage("--imatrix needs an --outtype that quantizes (e.g. q4_k_m, iq4_xs)".into()));
        }
        plan.attach_imatrix(m)?;
    }
    Ok(plan)
}

/// What `--dry-run` shows: the plan, the output file and its exact size.
pub struct DryRun {
    pub plan: Plan,
    /// The model folder read (a repo id's snapshot in the Hugging Face cache).
    pub model_dir: PathBuf,
    pub multimodal: Option<String>,
    pub outfile: PathBuf,
    pub total_bytes: u64,
    /// (file, tensors, data bytes) per output file.
    pub files: Vec<(PathBuf, usize, u64)>,
}

/// Everything decided before a byte is written: inputs opened, plans made, the layout of
/// every output file, and the check that no output is an input or another output.
struct Job {
    ckpt: Checkpoint,
    adapter: Option<Adapter>,
    plan: Plan,
    adapter_plan: Option<crate::adapter_gguf::AdapterPlan>,
    outfile: PathBuf,
    header_len: u64,
    /// Data bytes per tensor, in plan order.
    sizes: Vec<u64>,
    /// Output paths of the model (one, or the split shards).
    outfiles: Vec<PathBuf>,
}

impl Job {
    /// The adapter to fuse into the model (none when it goes to its own file).
    fn fused(&self) -> Option<&Adapter> {
        self.adapter.as_ref().filter(|_| self.adapter_plan.is_none())
    }
}

fn prepare(opts: &ConvertOptions) -> Result<Job> {
    if let (Some(p), None) = (&opts.adapter_out, &opts.adapter_dir) {
        return Err(Error::Usage(format!("--adapter-out {} needs --adapter", p.display())));
    }
    // Outputs named by the user are checked against the input files before any is read.
    let model = crate::source::hub::resolve(&opts.model_dir)?;
    let adapter_dir = opts.adapter_dir.as_deref().map(crate::source::hub::resolve).transpose()?;
    let mut dirs = vec![model.dir.clone()];
    dirs.extend(adapter_dir.map(|a| a.dir));
    let inputs = crate::sink::guard::input_files(&dirs)?;
    let named: Vec<&Path> = opts.outfile.iter().chain(&opts.adapter_out).map(PathBuf::as_path).collect();
    crate::sink::guard::check_outputs(&inputs, &named)?;
    let ckpt = Checkpoint::open_resolved(model)?;
    let mut adapter = dirs.get(1).map(|d| Adapter::open(d)).transpose()?;
    if let (Some(a), Some(_)) = (adapter.as_mut(), &ckpt.config.wrapper) {
        a.rename(crate::source::multimodal::language_model_name);
    }
    let fuse = if opts.adapter_out.is_some() { None } else { adapter.as_ref() };
    let plan_opts = opts.plan_options()?;
    let mut plan = build_plan(&ckpt, fuse, &plan_opts)?;
    let card = for_model(&ckpt, fuse, &plan, opts.metadata_override.as_deref(), plan_opts.name.as_deref())?;
    insert_after(&mut plan.metadata, "general.type", card.metadata()?);
    // The separate adapter file is planned (and refused if inexpressible) before any output.
    let adapter_plan = match (&opts.adapter_out, &adapter) {
        (Some(_), Some(a)) => {
            let mut with = build_plan(&ckpt, None, &plan_opts)?;
            attach_adapter(&mut with, a)?;
            let mut p = crate::adapter_gguf::plan_adapter(&with, a)?;
            let keys = for_adapter(&ckpt, a, &p)?.metadata()?;
            insert_after(&mut p.metadata, "adapter.type", keys);
            Some(p)
        }
        _ => None,
    };
    let outfile = opts.outfile.clone().unwrap_or_else(|| default_outfile(&card, &plan));
    let (header_len, sizes) = crate::sink::encode_header(&plan.metadata, &plan.header_tensors())
        .map(|(h, sizes)| (h.len() as u64, sizes))
        .map_err(|e| Error::input(&outfile, e.to_string()))?;
    let outfiles = crate::sink::split::output_paths(&outfile, &sizes, opts.split);
    // Every output, now that the shard names are known.
    let outputs: Vec<&Path> = outfiles.iter().map(PathBuf::as_path).chain(opts.adapter_out.as_deref()).collect();
    crate::sink::guard::check_outputs(&inputs, &outputs)?;
    Ok(Job { ckpt, adapter, plan, adapter_plan, outfile, header_len, sizes, outfiles })
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
    let job = prepare(opts)?;
    let total_bytes = job.header_len + job.sizes.iter().map(|n| crate::gguf::pad(*n).unwrap_or(*n)).sum::<u64>();
    let shards = crate::sink::split::plan_shards(&job.sizes, opts.split);
    let files = shards
        .iter()
        .zip(&job.outfiles)
        .map(|(r, path)| (path.clone(), r.len(), job.sizes[r.clone()].iter().sum()))
        .collect();
    let multimodal = job.ckpt.multimodal_note();
    Ok(DryRun { plan: job.plan, model_dir: job.ckpt.dir, multimodal, outfile: job.outfile, total_bytes, files })
}

/// What one tensor's chunks added up to.
#[derive(Default)]
struct TensorStats {
    /// Changed by the fused adapter.
    adapted: bool,
    non_finite: u64,
    survival: Survival,
}

/// What the streaming pass found, besides the bytes.
#[derive(Default)]
struct PassStats {
    non_finite: Vec<(String, u64)>,
    survival: BTreeMap<String, ClassSurvival>,
}

pub fn convert(opts: &ConvertOptions) -> Result<Summary> {
    let start = Instant::now();
    let mut job = prepare(opts)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))?;
    let threads = pool.current_num_threads();
    let outfile = &job.outfile;
    let io_err = |e: std::io::Error| Error::io(outfile, e);
    check_free_space(outfile, crate::sink::split::total_size(&job.sizes, job.header_len, opts.split))?;
    // The writer takes the metadata and drops it with the header: a large vocabulary's
    // strings (~9 MB for gpt-oss's 201,088 tokens) would otherwise stay through the pass.
    let metadata = std::mem::take(&mut job.plan.metadata);
    let writer =
        ShardedWriter::new(outfile, metadata, job.plan.header_tensors(), &job.sizes, opts.split).map_err(io_err)?;
    let peak = crate::mem::PeakSampler::default();
    let (stats, writer) = stream(&job, opts, &pool, writer, &peak)?;
    job.ckpt.tensors.check_unchanged()?;
    let file = writer.finish().map_err(io_err)?;
    // Both outputs appear together or not at all.
    let adapter_file = match (&job.adapter_plan, &opts.adapter_out, &job.adapter) {
        (Some(p), Some(path), Some(a)) => Some(crate::adapter_gguf::write_adapter(p, a, path)?),
        _ => None,
    };
    // A cancel after the last chunk still leaves nothing under the output names.
    if opts.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
        return Err(Error::Interrupted(outfile.clone()));
    }
    file.commit().map_err(io_err)?;
    if let (Some(f), Some(path)) = (adapter_file, &opts.adapter_out) {
        f.commit().map_err(|e| Error::io(path, e))?;
    }
    let mut written = job.outfiles.clone();
    written.extend(opts.adapter_out.clone());
    let files = written.iter().map(|p| WrittenFile::read(p)).collect::<Result<Vec<_>>>()?;
    let model_files = &files[..job.outfiles.len()];
    Ok(Summary {
        model_dir: job.ckpt.dir.clone(),
        multimodal: job.ckpt.multimodal_note(),
        chat_template: job.ckpt.chat_template_source()?,
        adapter_dir: job.adapter.as_ref().map(|a| a.dir.clone()),
        outfile: job.outfiles[0].clone(),
        outfiles: job.outfiles.clone(),
        adapter_out: opts.adapter_out.clone(),
        tensors: model_files.iter().map(|f| f.tensors).sum(),
        bytes_written: model_files.iter().map(|f| f.bytes).sum(),
        files,
        seconds: start.elapsed().as_secs_f64(),
        non_finite: stats.non_finite,
        survival: stats.survival.into_values().collect(),
        not_copied: not_copied(&job.plan),
        classes: crate::report::summarize(&job.plan),
        input_bytes: job.ckpt.tensors.total_bytes(),
        peak_anon: peak.peak(),
        threads,
    })
}

/// Computes every tensor's chunks in parallel and writes them in order as they complete.
fn stream(
    job: &Job,
    opts: &ConvertOptions,
    pool: &rayon::ThreadPool,
    mut writer: ShardedWriter,
    peak: &crate::mem::PeakSampler,
) -> Result<(PassStats, ShardedWriter)> {
    let mut stats = PassStats::default();
    let mut out = Output { writer: &mut writer, peak, progress: opts.progress.as_ref(), total: job.sizes.iter().sum() };
    let steps: Vec<Vec<&str>> = job.plan.tensors.iter().map(|t| t.source.model_tensors()).collect();
    let readahead = Readahead::new(&job.ckpt.tensors, &steps, WINDOW_BYTES);
    std::thread::scope(|s| {
        // The input is read ahead of the pass on its own thread ([`Readahead`]).
        s.spawn(|| readahead.run());
        let _finish = FinishOnDrop(&readahead);
        for (i, t) in job.plan.tensors.iter().enumerate() {
            readahead.advance(i);
            let ts = stream_tensor(job, opts, pool, t, &mut out)?;
            record(job, opts, t, ts, &mut stats)?;
        }
        Ok::<_, Error>(())
    })?;
    Ok((stats, writer))
}

/// Stops the read-ahead thread however the pass ends (error or panic included), so the
/// scope joining it does not wait for the rest of the input to be read.
struct FinishOnDrop<'r, 'a>(&'r Readahead<'a>);

impl Drop for FinishOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Where the streaming pass puts its chunks, and whom it tells.
struct Output<'a> {
    writer: &'a mut ShardedWriter,
    peak: &'a crate::mem::PeakSampler,
    progress: Option<&'a ProgressFn>,
    total: u64,
}

/// One tensor's chunks: the pool's threads compute them, taking them in order and at most
/// 4 per thread ahead of the writing, while this thread writes them in order ([`Ordered`]):
/// memory stays bounded, and no thread waits for a batch to finish.
fn stream_tensor(
    job: &Job,
    opts: &ConvertOptions,
    pool: &rayon::ThreadPool,
    t: &crate::plan::PlannedTensor,
    out: &mut Output<'_>,
) -> Result<TensorStats> {
    let src = Source::new(&job.ckpt.tensors, job.fused().map(|a| &a.tensors), t)?;
    let rows = t.rows();
    let per_chunk = t.rows_per_chunk(CHUNK_ELEMS);
    let starts: Vec<usize> = (0..rows).step_by(per_chunk).collect();
    let window = 4 * pool.current_num_threads();
    let ordered = Ordered::new(starts.len(), window);
    // Where each chunk lands in its file, so that its buffer can be written where it lies.
    let (at, row_bytes) = (out.writer.position(), t.ggml_type.row_bytes(t.row_len() as u64).unwrap_or(0));
    let stats = pool.in_place_scope(|scope| {
        for _ in 0..pool.current_num_threads().min(starts.len()) {
            scope.spawn(|_| {
                let _stop = StopOnPanic(&ordered);
                while let Some(i) = ordered.claim() {
                    let first = starts[i];
                    let place = at + first as u64 * row_bytes;
                    ordered.put(i, produce_chunk(&src, t, first, per_chunk.min(rows - first), opts.nan_policy, place));
                }
            });
        }
        // A panic here must not leave the workers waiting for room in the window.
        let _stop = StopOnPanic(&ordered);
        let written = write_in_order(job, opts, t, &ordered, out);
        // On an error the workers stop at their current chunk (a panic stopped them already).
        ordered.stop();
        written
    })?;
    Ok(TensorStats { adapted: src.lora.is_some() || t.adapted(), ..stats })
}

/// Takes one tensor's chunks in order, adds up their statistics and writes their bytes.
fn write_in_order(
    job: &Job,
    opts: &ConvertOptions,
    t: &crate::plan::PlannedTensor,
    ordered: &Ordered<Chunk>,
    out: &mut Output<'_>,
) -> Result<TensorStats> {
    let mut stats = TensorStats::default();
    let mut n = 0usize;
    // None: all taken, or a worker panicked (the scope then re-raises its panic).
    while let Some(c) = ordered.take() {
        if opts.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Err(Error::Interrupted(job.outfile.clone()));
        }
        if c.copy_failed {
            let file = job.ckpt.tensors.file_of(t.source_name()).unwrap_or(&job.ckpt.dir);
            return Err(Error::tensor(
                file,
                t.source_name(),
                "planned as a lossless copy, but its blocks changed since",
            ));
        }
        stats.non_finite += c.non_finite;
        if let Some(s) = &c.survival {
            stats.survival.add(s);
        }
        out.writer.write_taken(c.bytes, c.start).map_err(|e| Error::io(&job.outfile, e))?;
        n += 1;
        // A few times per window: reading the peak costs a system call.
        if n.is_multiple_of(8) {
            out.peak.sample();
            if let Some(p) = out.progress {
                p(out.writer.bytes_written(), out.total);
            }
        }
    }
    if let Some(p) = out.progress {
        p(out.writer.bytes_written(), out.total);
    }
    Ok(stats)
}

/// Adds one tensor's statistics to the pass, or fails on inf/NaN under `--nan-policy error`.
fn record(
    job: &Job,
    opts: &ConvertOptions,
    t: &crate::plan::PlannedTensor,
    ts: TensorStats,
    stats: &mut PassStats,
) -> Result<()> {
    if ts.adapted {
        let class = t.class_name();
        let e = stats.survival.entry(class.clone()).or_insert_with(|| ClassSurvival {
            class,
            tensors: 0,
            stats: Survival::default(),
        });
        e.tensors += 1;
        e.stats.add(&ts.survival);
    }
    if ts.non_finite > 0 {
        if opts.nan_policy == NanPolicy::Error {
            let file = job.ckpt.tensors.file_of(t.source_name()).unwrap_or(&job.ckpt.dir);
            let msg = format!(
                "{} inf/NaN values after dequantization (use --nan-policy zero or keep to convert anyway)",
                ts.non_finite
            );
            return Err(Error::tensor(file, t.source_name(), msg));
        }
        stats.non_finite.push((t.name.clone(), ts.non_finite));
    }
    Ok(())
}

impl Summary {
    /// The summary as JSON (what `convert --json` prints; other front ends serialize it).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model_dir": self.model_dir, "multimodal": self.multimodal, "chat_template_from": self.chat_template,
            "adapter_dir": self.adapter_dir, "files": self.files, "outfiles": self.outfiles,
            "adapter_out": self.adapter_out, "tensors": self.tensors, "bytes_written": self.bytes_written,
            "input_bytes": self.input_bytes, "seconds": self.seconds, "peak_anon_bytes": self.peak_anon,
            "threads": self.threads, "classes": crate::report::rows_json(&self.classes),
            "non_finite": self.non_finite.iter().map(|(t, n)| serde_json::json!({"tensor": t, "count": n})).collect::<Vec<_>>(),
            "not_copied": not_copied_json(&self.not_copied),
            "adapter_survival": self.survival.iter().map(|c| serde_json::json!({
                "class": c.class, "tensors": c.tensors, "relative_delta": c.stats.relative_delta(),
                "kept": c.stats.kept(), "noise": c.stats.noise()})).collect::<Vec<_>>(),
        })
    }
}

impl DryRun {
    /// The plan as JSON (what `convert --dry-run --json` prints): every tensor with its type,
    /// ggml shape and how it is made, the classes, the files and their sizes.
    pub fn to_json(&self, outtype: OutType) -> serde_json::Value {
        let report = crate::report::summarize(&self.plan);
        serde_json::json!({
            "model_dir": self.model_dir, "multimodal": self.multimodal, "architecture": self.plan.arch,
            "outtype": outtype.to_string(), "outfile": self.outfile, "tensor_count": self.plan.tensors.len(),
            "bytes": self.total_bytes, "classes": crate::report::rows_json(&report),
            "files": self.files.iter().map(|(p, n, b)| serde_json::json!({"path": p, "tensors": n, "data_bytes": b})).collect::<Vec<_>>(),
            "not_copied": not_copied_json(&not_copied(&self.plan)),
            "tensors": crate::report::tensors_json(&self.plan),
        })
    }
}

fn not_copied_json(list: &[(String, String)]) -> serde_json::Value {
    list.iter().map(|(t, why)| serde_json::json!({"tensor": t, "reason": why})).collect()
}

/// (tensor, reason) for tensors whose output type holds their MLX blocks but whose scales
/// rule a copy out.
pub fn not_copied(plan: &Plan) -> Vec<(String, String)> {
    plan.tensors.iter().filter_map(|t| Some((t.name.clone(), t.not_copied.clone()?))).collect()
}

/// What a committed output file holds, read back from its header.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WrittenFile {
    pub path: PathBuf,
    /// `general.type`: `model` or `adapter` (empty for split shards after the first).
    pub kind: String,
    pub tensors: usize,
    pub bytes: u64,
}

impl WrittenFile {
    fn read(path: &Path) -> Result<WrittenFile> {
        let file = crate::gguf::GgufFile::open(path)
            .map_err(|e| Error::io(path, e))?
            .map_err(|e| Error::Gguf { path: path.to_path_buf(), source: e })?;
        let kind = match file.get("general.type") {
            Some(crate::gguf::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        Ok(WrittenFile { path: path.to_path_buf(), kind, tensors: file.tensors.len(), bytes: file.file_size() })
    }
}
