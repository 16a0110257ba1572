//! The GGUF sink: the header is written first from the plan, then tensor data is
//! streamed in plan order, each tensor padded to the alignment. The output goes to a
//! temporary file beside the target and is renamed into place only when complete.

mod atomic;
pub mod guard;
pub mod split;
mod staged;
mod writer;

pub use atomic::AtomicFile;
pub use split::{parse_size, ShardedWriter, SplitSpec};
pub use writer::{encode_header, ggml_n_dims, GgufWriter, HeaderTensor, LayoutError};
