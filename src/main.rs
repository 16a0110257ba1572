//! The `mlx2gguf` binary: the command line lives in the library ([`mlx2gguf::cli`]), which
//! the Python package's `mlx2gguf` command runs too.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Exit codes are 0..=4 and 130.
    ExitCode::from(mlx2gguf::cli::main_with_args(std::env::args_os()) as u8)
}
