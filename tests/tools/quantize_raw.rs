//! Runs one of our ggml block encoders (or decoders) over raw little-endian f32 data, for the
//! oracle tests (tests/oracle/test_quantizers.py) and the benchmark (bench/quantizers.sh).
//!
//! Usage:
//!   quantize_raw TYPE IN.f32 OUT.bin            encode (IN holds whole blocks)
//!   quantize_raw --decode TYPE IN.bin OUT.f32   decode raw blocks back to f32
//!   quantize_raw --bench TYPE IN.f32 [SECONDS]  single-thread encode throughput, in elements/s
//!   quantize_raw --kernels        which encoder paths run: reference, Baseline, Avx2 or Avx512
//!   quantize_raw --bench-weights W.f32 TYPE IN.f32 [SECONDS]   the same with importance weights
//!   quantize_raw --weights W.f32 TYPE IN.f32 OUT.bin   encode rows of len(W) with importance weights W
//! TYPE is a ggml type name as `ggml_type_name` spells it (q4_0, q4_K, mxfp4, ...).

use std::process::ExitCode;

use mlx2gguf::quant::{decoder, encoder, GgmlType, ALL_TYPES};

fn ggml_type(name: &str) -> Result<GgmlType, String> {
    ALL_TYPES.iter().copied().find(|t| t.name() == name).ok_or_else(|| format!("unknown ggml type {name:?}"))
}

fn read_f32(path: &str, block: usize) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() % (4 * block) != 0 {
        return Err(format!("{path}: {} bytes is not a whole number of {block}-element blocks", bytes.len()));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// CPU seconds this thread has run: unlike the wall clock, it does not count the time other
/// processes take the core, so rates stay comparable on a loaded machine (as Python's
/// `time.thread_time`, which the benchmark uses for ggml's side).
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Prints `TYPE elements/s` of `encode` over `x` (per CPU second of this thread), repeated
/// for `secs` (default 1) CPU seconds.
fn bench(t: GgmlType, secs: Option<&String>, x: &[f32], encode: impl Fn(&[f32], &mut Vec<u8>)) -> Result<(), String> {
    let secs: f64 = secs.map_or(Ok(1.0), |s| s.parse()).map_err(|e| format!("seconds: {e}"))?;
    let mut out = Vec::with_capacity(x.len() / t.block_size() * t.type_size());
    // One untimed run first: the IQ grids are built on first use (ggml's are built before
    // its quantizers run too).
    encode(x, &mut out);
    let (mut runs, start) = (0u64, thread_cpu_seconds());
    while runs == 0 || thread_cpu_seconds() - start < secs {
        out.clear();
        encode(std::hint::black_box(x), &mut out);
        std::hint::black_box(&out);
        runs += 1;
    }
    if out.is_empty() {
        return Err(format!("no weighted encoder for {t}"));
    }
    let rate = (runs as f64 * x.len() as f64) / (thread_cpu_seconds() - start);
    println!("{} {rate:.0}", t.name());
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [flag] if flag == "--kernels" => {
            let reference = mlx2gguf::quant::reference_kernels();
            println!(
                "{}",
                if reference { "reference".to_string() } else { format!("{:?}", mlx2gguf::quant::simd_level()) }
            );
            Ok(())
        }
        [flag, ty, input, output] if flag == "--decode" => {
            let t = ggml_type(ty)?;
            let dec = decoder(t).ok_or_else(|| format!("no decoder for {t}"))?;
            let bytes = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
            if bytes.len() % t.type_size() != 0 {
                return Err(format!("{input}: {} bytes is not a whole number of {t} blocks", bytes.len()));
            }
            let mut vals = Vec::with_capacity(bytes.len() / t.type_size() * t.block_size());
            dec(&bytes, &mut vals);
            let out: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(output, out).map_err(|e| format!("{output}: {e}"))
        }
        [flag, ty, input, rest @ ..] if flag == "--bench" && rest.len() <= 1 => {
            let t = ggml_type(ty)?;
            let enc = encoder(t).ok_or_else(|| format!("no encoder for {t}"))?;
            let x = read_f32(input, t.block_size())?;
            bench(t, rest.first(), &x, enc)
        }
        [flag, weights, ty, input, rest @ ..] if flag == "--bench-weights" && rest.len() <= 1 => {
            let t = ggml_type(ty)?;
            let qw = read_f32(weights, t.block_size())?;
            let x = read_f32(input, qw.len())?;
            bench(t, rest.first(), &x, |x, out| {
                mlx2gguf::quant::encode_weighted(t, x, &qw, out);
            })
        }
        [flag, weights, ty, input, output] if flag == "--weights" => {
            let t = ggml_type(ty)?;
            let qw = read_f32(weights, t.block_size())?;
            let x = read_f32(input, qw.len())?;
            let mut out = Vec::new();
            mlx2gguf::quant::encode_weighted(t, &x, &qw, &mut out)
                .ok_or_else(|| format!("no weighted encoder for {t}"))?;
            std::fs::write(output, out).map_err(|e| format!("{output}: {e}"))
        }
        [ty, input, output] => {
            let t = ggml_type(ty)?;
            let enc = encoder(t).ok_or_else(|| format!("no encoder for {t}"))?;
            let x = read_f32(input, t.block_size())?;
            let mut out = Vec::with_capacity(x.len() / t.block_size() * t.type_size());
            enc(&x, &mut out);
            std::fs::write(output, out).map_err(|e| format!("{output}: {e}"))
        }
        _ => Err("usage: quantize_raw [--decode|--bench] TYPE IN OUT|[SECONDS]".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quantize_raw: {e}");
            ExitCode::from(2)
        }
    }
}
