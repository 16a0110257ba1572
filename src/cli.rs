//! The `mlx2gguf` command line: parse arguments, call the library, print. The binary and
//! the Python package's `mlx2gguf` command both run [`main_with_args`].

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::convert::{convert, ConvertOptions};
use crate::plan::{parse_tensor_type, OutType, TypeOverrides};
use crate::report;
use crate::sink::{parse_size, SplitSpec};
use crate::transform::NanPolicy;
use crate::Error;

#[derive(Parser)]
#[command(
    name = "mlx2gguf",
    version,
    about = "Convert MLX checkpoints into GGUF files for llama.cpp, Ollama and LM Studio"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing would only add noise
enum Command {
    /// Convert an MLX model folder into one GGUF file.
    #[command(
        after_help = "Examples:\n  mlx2gguf convert ./gpt-oss-20b-mlx -o gpt-oss-20b-f16.gguf --outtype f16\n  mlx2gguf convert examples/tiny-gpt-oss -o tiny.gguf"
    )]
    Convert(ConvertArgs),
    /// Check a GGUF file (ours or another tool's) against the rules llama.cpp enforces when
    /// loading and running it. Prints one line per problem; exit code 1 if there are any.
    #[command(after_help = "Example:\n  mlx2gguf verify gpt-oss-120b-q8_0.gguf")]
    Verify {
        path: PathBuf,
        /// Print JSON (the problems, each with its rule, and whether the file passes).
        #[arg(long)]
        json: bool,
    },
    /// Show an MLX model folder (architecture, parameters, quantization per tensor class,
    /// adapters) or a GGUF file (metadata, types, tensor table).
    #[command(after_help = "Examples:\n  mlx2gguf inspect ./gpt-oss-20b-mlx\n  mlx2gguf inspect model.gguf --json")]
    Inspect {
        /// An MLX model folder, a cached Hugging Face repo id (ORG/NAME[@REVISION]) or a .gguf file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn outtype_help() -> String {
    format!(
        "Output type: {}. Norms, biases, sinks and the MoE router are always F32",
        crate::plan::outtype_names().join(", ")
    )
}

/// `convert`'s arguments.
#[derive(Args)]
pub(crate) struct ConvertArgs {
    /// MLX model folder (config.json, model*.safetensors, tokenizer.json), or a Hugging Face
    /// repo id ORG/NAME[@REVISION] already in the local Hugging Face cache.
    pub(crate) model_dir: PathBuf,
    /// mlx-lm adapter folder (adapter_config.json, adapters.safetensors) or cached repo id, fused into the output.
    #[arg(long)]
    pub(crate) adapter: Option<PathBuf>,
    /// Instead of fusing, write the adapter as a llama.cpp LoRA GGUF here (the main output is then the base model).
    #[arg(long, requires = "adapter")]
    pub(crate) adapter_out: Option<PathBuf>,
    #[arg(long, default_value = "auto", help = outtype_help())]
    pub(crate) outtype: String,
    /// Force the type of output tensors whose name matches REGEX (repeatable), e.g. 'attn_v=q8_0'.
    #[arg(long = "tensor-type", value_name = "REGEX=TYPE")]
    pub(crate) tensor_type: Vec<String>,
    /// Use the output type for every quantizable tensor, without llama-quantize's per-tensor mixture.
    #[arg(long)]
    pub(crate) pure: bool,
    /// Output file (default: named as llama.cpp's converter names it, from the model card and
    /// folder name: {basename}-{size}-{finetune}-{version}-{TYPE}.gguf, in the current folder).
    #[arg(short = 'o', long = "outfile")]
    pub(crate) outfile: Option<PathBuf>,
    /// JSON file of model-card keys that replace the derived ones, as llama.cpp's --metadata
    /// (e.g. {"general.name": "…", "general.base_models": [{"name": "…"}], "general.tags": […]}).
    #[arg(long, value_name = "FILE")]
    pub(crate) metadata: Option<PathBuf>,
    /// What to do with inf/NaN values in the (dequantized) weights.
    #[arg(long, value_enum, default_value_t = NanArg::Error)]
    pub(crate) nan_policy: NanArg,
    /// Split the output into shards of at most this size (e.g. 48G; K, M, G, T are powers of 1000), named OUT-00001-of-0000N.gguf.
    #[arg(long, value_name = "SIZE")]
    pub(crate) split_max_size: Option<String>,
    /// Split the output into shards of at most this many tensors.
    #[arg(long, value_name = "N")]
    pub(crate) split_max_tensors: Option<usize>,
    /// Show the plan (every tensor class, its source and output type, sizes) without writing anything.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the plan (--dry-run) or the closing summary as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress display.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// llama.cpp pre-tokenizer name (tokenizer.ggml.pre, e.g. llama-bpe, qwen2, gpt-4o) when
    /// the one detected from tokenizer.json is unknown or wrong.
    #[arg(long, value_name = "NAME")]
    pub(crate) tokenizer_pre: Option<String>,
    /// Importance matrix from llama-imatrix (GGUF or legacy .dat), applied as llama-quantize --imatrix does.
    #[arg(long, value_name = "FILE")]
    pub(crate) imatrix: Option<PathBuf>,
    /// Use the importance matrix only for tensors whose names contain NAME (repeatable).
    #[arg(long, value_name = "NAME", requires = "imatrix", conflicts_with = "exclude_weights")]
    pub(crate) include_weights: Vec<String>,
    /// Do not use the importance matrix for tensors whose names contain NAME (repeatable).
    #[arg(long, value_name = "NAME", requires = "imatrix")]
    pub(crate) exclude_weights: Vec<String>,
}

impl ConvertArgs {
    /// The library's options from the command line, each value checked.
    pub(crate) fn options(&self, cancel: crate::convert::CancelToken) -> Result<ConvertOptions, Error> {
        if let Some(p) = self.tokenizer_pre.as_deref().filter(|p| !crate::tokenizer::pre::is_known_name(p)) {
            return Err(Error::Usage(format!(
                "--tokenizer-pre '{p}' is not a pre-tokenizer llama.cpp knows (e.g. llama-bpe, qwen2, gpt-4o, default)"
            )));
        }
        let patterns =
            self.tensor_type.iter().map(|s| parse_tensor_type(s)).collect::<Result<_, _>>().map_err(Error::Usage)?;
        let max_bytes = self.split_max_size.as_deref().map(parse_size).transpose().map_err(Error::Usage)?;
        if self.split_max_tensors == Some(0) {
            return Err(Error::Usage("--split-max-tensors must be at least 1".into()));
        }
        Ok(ConvertOptions {
            adapter_dir: self.adapter.clone(),
            adapter_out: self.adapter_out.clone(),
            outfile: self.outfile.clone(),
            outtype: self.outtype.parse().map_err(Error::Usage)?,
            overrides: TypeOverrides { patterns, pure: self.pure },
            tokenizer_pre: self.tokenizer_pre.clone(),
            split: SplitSpec { max_bytes, max_tensors: self.split_max_tensors },
            nan_policy: self.nan_policy.into(),
            threads: self.threads,
            cancel: Some(cancel),
            imatrix: self.imatrix.clone(),
            imatrix_include: self.include_weights.clone(),
            imatrix_exclude: self.exclude_weights.clone(),
            metadata_override: self.metadata.clone(),
            ..ConvertOptions::new(self.model_dir.clone())
        })
    }
}

impl From<NanArg> for NanPolicy {
    fn from(a: NanArg) -> NanPolicy {
        match a {
            NanArg::Error => NanPolicy::Error,
            NanArg::Zero => NanPolicy::Zero,
            NanArg::Keep => NanPolicy::Keep,
        }
    }
}

fn run_convert(args: ConvertArgs, cancel: crate::convert::CancelToken) -> Result<bool, Error> {
    let opts = args.options(cancel)?;
    if args.dry_run {
        print_dry_run(&crate::convert::dry_run(&opts)?, opts.outtype, args.json);
        return Ok(true);
    }
    // A progress bar on stderr, only when it is a terminal.
    let bar = (!args.quiet && !args.json).then(progress_bar).flatten();
    let opts = match &bar {
        Some(b) => {
            let b = b.clone();
            ConvertOptions {
                progress: Some(std::sync::Arc::new(move |done, total| {
                    b.set_length(total);
                    b.set_position(done);
                })),
                ..opts
            }
        }
        None => opts,
    };
    let result = convert(&opts);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    print_summary(&result?, opts.nan_policy, args.json);
    Ok(true)
}

fn print_dry_run(d: &crate::convert::DryRun, outtype: OutType, json: bool) {
    let rows = report::summarize(&d.plan);
    let not_copied = crate::convert::not_copied(&d.plan);
    print_not_copied(&not_copied);
    if json {
        let doc = d.to_json(outtype);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    println!("model: {}", d.model_dir.display());
    if let Some(m) = &d.multimodal {
        println!("{m}");
    }
    println!("{} → {} ({}, {} tensors)", d.plan.arch, d.outfile.display(), outtype, d.plan.tensors.len());
    print!("{}", report::render_table(&rows));
    if d.files.len() > 1 {
        for (p, n, b) in &d.files {
            println!("  shard {}: {n} tensors, {}", p.display(), report::human_bytes(*b));
        }
    }
    println!("total: {} ({} bytes); nothing written (--dry-run)", report::human_bytes(d.total_bytes), d.total_bytes);
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum NanArg {
    Error,
    Zero,
    Keep,
}

/// Exit code of `verify` when the file has problems.
const EXIT_PROBLEMS: i32 = 1;

/// Runs the command line `args` (the program name first, as `std::env::args_os` gives it)
/// and returns the process exit code: 0 success, 1 problems found by `verify`, 2 usage,
/// 3 bad input, 4 I/O error, 130 interrupted.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // clap's own exit would end a host process (Python) without its clean-up.
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    // Ctrl-C / SIGTERM: finish the current chunk, remove the temporary file, exit 130.
    // This replaces a host's own SIGINT handler too (Python's), for the whole process.
    let cancel = crate::convert::CancelToken::default();
    let on_signal = cancel.clone();
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    crate::fault::install_handlers();
    quiet_caught_panics();
    let code = match run(cli, cancel) {
        Ok(true) => 0,
        Ok(false) => EXIT_PROBLEMS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    // A host that exits without unwinding Rust (Python's sys.exit) must not lose output.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

/// Keeps panics the library catches and reports as one-line errors from being printed
/// twice. Installed once per process, whichever front end asks first.
pub fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crate::tokenizer::pre::panic_is_caught() {
                default_hook(info);
            }
        }));
    });
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    let style =
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
            .ok()?;
    bar.set_style(style);
    Some(bar)
}

/// Tensors whose type holds their MLX blocks but which are encoded instead, and why.
fn print_not_copied(list: &[(String, String)]) {
    for (name, why) in list {
        eprintln!("note: {name}: requantized, not copied losslessly: {why}");
    }
}

fn print_summary(s: &crate::convert::Summary, nan_policy: NanPolicy, json: bool) {
    let mb = |b: u64| b as f64 / 1e6;
    let rate = |b: u64| mb(b) / s.seconds.max(1e-9);
    print_not_copied(&s.not_copied);
    for c in s.survival.iter().filter(|c| c.stats.swamped()) {
        eprintln!(
            "warning: {}: this output type keeps {:.0}% of the adapter's update and adds quantization noise of {:.0}% of it; choose a finer --outtype",
            c.class,
            100.0 * c.stats.kept(),
            100.0 * c.stats.noise()
        );
    }
    for (name, n) in &s.non_finite {
        let what = if nan_policy == NanPolicy::Zero { "set to 0" } else { "kept" };
        eprintln!("warning: {name}: {n} inf/NaN values ({what})");
    }
    if json {
        let doc = s.to_json();
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    print!("{}", report::render_table(&s.classes));
    if !s.survival.is_empty() {
        println!("adapter survival (on sampled rows; D = Q(W+ΔW) − Q(W): kept = part of ΔW in D, noise = the rest of D, both / ‖ΔW‖):");
        println!("  {:<28} {:>7} {:>12} {:>8} {:>8}", "tensor class", "tensors", "‖ΔW‖/‖W‖", "kept", "noise");
        for c in &s.survival {
            let (rel, kept, noise) = (c.stats.relative_delta(), c.stats.kept(), c.stats.noise());
            let flag = if c.stats.swamped() { "  ← swamped" } else { "" };
            println!(
                "  {:<28} {:>7} {:>12.3e} {:>7.1}% {:>7.1}%{flag}",
                c.class,
                c.tensors,
                rel,
                100.0 * kept,
                100.0 * noise
            );
        }
    }
    let nf: u64 = s.non_finite.iter().map(|(_, n)| n).sum();
    println!("inf/NaN values: {nf}");
    println!("model: {}", s.model_dir.display());
    if let Some(m) = &s.multimodal {
        println!("{m}");
    }
    if let Some(t) = s.chat_template {
        println!("chat template: from {t}");
    }
    if let Some(d) = &s.adapter_dir {
        println!("adapter: {}", d.display());
    }
    for f in s.files.iter().filter(|f| f.kind == "adapter" || s.outfiles.len() > 1) {
        let what = if f.kind == "adapter" { "adapter" } else { "shard" };
        println!("wrote {what} {} ({} tensors, {:.1} MB)", f.path.display(), f.tensors, mb(f.bytes));
    }
    let peak = s.peak_anon.map(|p| format!(", peak memory {}", report::human_bytes(p))).unwrap_or_default();
    println!(
        "wrote {} ({} tensors, {:.1} MB) in {:.2} s: {:.0} MB/s in, {:.0} MB/s out, {} threads{peak}",
        s.outfile.display(),
        s.tensors,
        mb(s.bytes_written),
        s.seconds,
        rate(s.input_bytes),
        rate(s.bytes_written),
        s.threads
    );
}

/// Runs a command; `Ok(false)` means it ran but found problems (verify).
fn run(cli: Cli, cancel: crate::convert::CancelToken) -> Result<bool, Error> {
    match cli.command {
        Command::Convert(args) => run_convert(args, cancel),
        Command::Verify { path, json } => {
            let problems = crate::verify::verify_gguf(&path)?;
            let ok = crate::verify::passes(&problems);
            if json {
                let doc = crate::verify::report_json(&path, &problems);
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                return Ok(ok);
            }
            for p in &problems {
                println!("{}: {p}", path.display());
            }
            if ok {
                println!("{}: ok (no problems llama.cpp would refuse or crash on)", path.display());
            }
            Ok(ok)
        }
        Command::Inspect { path, json } => {
            let text = crate::inspect::inspect(&path, json)?;
            print!("{text}");
            Ok(true)
        }
    }
}
