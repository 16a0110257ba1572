//! The `mlx2gguf` command line: parse arguments, call the library, print.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use mlx2gguf::convert::{convert, ConvertOptions};
use mlx2gguf::plan::OutType;
use mlx2gguf::transform::NanPolicy;
use mlx2gguf::Error;

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
enum Command {
    /// Convert an MLX model folder into one GGUF file.
    #[command(
        after_help = "Examples:\n  mlx2gguf convert ./gpt-oss-20b-mlx -o gpt-oss-20b-f16.gguf --outtype f16\n  mlx2gguf convert examples/tiny-gpt-oss -o tiny.gguf"
    )]
    Convert {
        /// MLX model folder (config.json, model*.safetensors, tokenizer.json).
        model_dir: PathBuf,
        /// mlx-lm adapter folder (adapter_config.json, adapters.safetensors), fused into the output.
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// Instead of fusing, write the adapter as a llama.cpp LoRA GGUF here (the main output is then the base model).
        #[arg(long, requires = "adapter")]
        adapter_out: Option<PathBuf>,
        /// Output type: auto, f32, f16, bf16, q8_0. Norms, biases, sinks and the MoE router are always F32.
        #[arg(long, default_value = "auto")]
        outtype: String,
        /// Output file (default: <model folder name>-<outtype>.gguf).
        #[arg(short = 'o', long = "outfile")]
        outfile: Option<PathBuf>,
        /// What to do with inf/NaN values in the (dequantized) weights.
        #[arg(long, value_enum, default_value_t = NanArg::Error)]
        nan_policy: NanArg,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Show a GGUF file's metadata and tensors.
    Inspect {
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum NanArg {
    Error,
    Zero,
    Keep,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Convert { model_dir, adapter, adapter_out, outtype, outfile, nan_policy, threads } => {
            let outtype: OutType = outtype.parse().map_err(Error::Usage)?;
            let nan_policy = match nan_policy {
                NanArg::Error => NanPolicy::Error,
                NanArg::Zero => NanPolicy::Zero,
                NanArg::Keep => NanPolicy::Keep,
            };
            let opts =
                ConvertOptions { model_dir, adapter_dir: adapter, adapter_out, outfile, outtype, nan_policy, threads };
            let s = convert(&opts)?;
            for (name, n) in &s.non_finite {
                let what = if nan_policy == NanPolicy::Zero { "set to 0" } else { "kept" };
                eprintln!("warning: {name}: {n} inf/NaN values ({what})");
            }
            if !s.survival.is_empty() {
                println!("adapter survival (‖Q(W+ΔW) − Q(W)‖ / ‖ΔW‖ on sampled rows):");
                println!("  {:<28} {:>7} {:>12} {:>10}", "tensor class", "tensors", "‖ΔW‖/‖W‖", "survives");
                for c in &s.survival {
                    let (rel, surv) = (c.stats.relative_delta(), c.stats.surviving());
                    println!("  {:<28} {:>7} {:>12.3e} {:>9.1}%", c.class, c.tensors, rel, 100.0 * surv);
                    if surv < 0.5 {
                        eprintln!(
                            "warning: {}: only {:.0}% of the adapter's update survives this output type; choose a finer --outtype",
                            c.class,
                            100.0 * surv
                        );
                    }
                }
            }
            if let Some(p) = &s.adapter_out {
                println!("wrote adapter {}", p.display());
            }
            println!(
                "wrote {} ({} tensors, {:.1} MB) in {:.2} s",
                s.outfile.display(),
                s.tensors,
                s.bytes_written as f64 / 1e6,
                s.seconds
            );
            Ok(())
        }
        Command::Inspect { path, json } => {
            let text = mlx2gguf::inspect::inspect_gguf(&path, json)?;
            print!("{text}");
            Ok(())
        }
    }
}
