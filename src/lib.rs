//! mlx2gguf: convert MLX checkpoints (safetensors + config.json, usually quantized,
//! often with an mlx-lm LoRA adapter) into GGUF files for llama.cpp.
//!
//! Data flows one way: [`source`] (validated views over mmap'd shards) → [`plan`] (every
//! output tensor and all metadata, decided before any weight is read) → [`transform`]
//! (row-chunked dequantize → encode) → [`sink`] (the streaming GGUF writer).
//! [`arch`] holds one file per architecture, [`mlx`] one per MLX quantization mode, and
//! [`quant`] one per ggml block type. [`gguf`] is the container format and its reader.

pub mod adapter_gguf;
pub mod arch;
pub mod cli;
pub mod convert;
pub mod error;
pub mod fault;
pub mod gguf;
pub mod imatrix;
pub mod inspect;
pub mod mem;
pub mod mlx;
pub mod model_card;
pub(crate) mod ordered;
pub mod plan;
#[cfg(feature = "python")]
mod python;
pub mod quant;
pub mod report;
pub mod sink;
pub mod source;
pub mod tokenizer;
pub mod transform;
pub mod verify;

pub use error::{Error, Result};
