//! The library's error type. Every variant names the file, tensor or key it concerns,
//! so the binary can print one line that tells the user what to fix.

use std::path::PathBuf;

use crate::gguf::GgufError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    Input { path: PathBuf, msg: String },
    #[error("{}: tensor '{tensor}': {msg}", path.display())]
    Tensor { path: PathBuf, tensor: String, msg: String },
    #[error("{}: key '{key}': {msg}", path.display())]
    Config { path: PathBuf, key: String, msg: String },
    #[error("{}: {source}", path.display())]
    Gguf { path: PathBuf, source: GgufError },
    #[error("{0}")]
    Usage(String),
    #[error("interrupted; nothing was written to {}", .0.display())]
    Interrupted(PathBuf),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
    pub fn input(path: impl Into<PathBuf>, msg: impl Into<String>) -> Error {
        Error::Input { path: path.into(), msg: msg.into() }
    }
    pub fn tensor(path: impl Into<PathBuf>, tensor: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Tensor { path: path.into(), tensor: tensor.into(), msg: msg.into() }
    }
    pub fn config(path: impl Into<PathBuf>, key: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Config { path: path.into(), key: key.into(), msg: msg.into() }
    }

    /// Process exit code: 2 usage, 3 bad input, 4 I/O, 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Io { .. } => 4,
            Error::Interrupted(_) => 130,
            _ => 3,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
