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
pub use staged::placed_buffer;
pub use writer::{encode_header, ggml_n_dims, GgufWriter, HeaderTensor, LayoutError};

/// A sink that can take a buffer instead of copying from it.
pub trait TakeWrite: std::io::Write {
    /// Appends `buf[start..]`.
    fn write_taken(&mut self, buf: Vec<u8>, start: usize) -> std::io::Result<()> {
        self.write_all(&buf[start..])
    }
}

impl TakeWrite for Vec<u8> {}
