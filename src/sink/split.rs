//! Split output, as llama.cpp's gguf-split writes it: `out-00001-of-0000N.gguf`, each a
//! complete GGUF; the first carries all metadata, every shard carries `split.no` (u16,
//! 0-based), `split.count` (u16) and `split.tensors.count` (i32, all shards' tensors).
//! All shards are written to temporary files and renamed into place together.

use std::io;
use std::path::{Path, PathBuf};

use crate::gguf::{pad, Value};

use super::{AtomicFile, GgufWriter, HeaderTensor};

/// Limits per shard (`--split-max-size`, `--split-max-tensors`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitSpec {
    pub max_bytes: Option<u64>,
    pub max_tensors: Option<usize>,
}

impl SplitSpec {
    pub fn is_split(&self) -> bool {
        self.max_bytes.is_some() || self.max_tensors.is_some()
    }
}

/// Parses a size like `48G`, `500M`, `1024K` or a plain byte count (K/M/G are powers of 1000,
/// as gguf-split's `--split-max-size`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1_000),
        Some('M') => (&t[..t.len() - 1], 1_000_000),
        Some('G') => (&t[..t.len() - 1], 1_000_000_000),
        Some('T') => (&t[..t.len() - 1], 1_000_000_000_000),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("'{s}' is not a size (use a number with K, M, G or T, e.g. 48G)"))
}

/// Groups tensors (by index, in order) into shards within the limits; a tensor larger
/// than the byte limit gets a shard of its own.
pub fn plan_shards(sizes: &[u64], spec: SplitSpec) -> Vec<std::ops::Range<usize>> {
    if !spec.is_split() {
        #[allow(clippy::single_range_in_vec_init)]
        return vec![0..sizes.len()];
    }
    let mut shards = Vec::new();
    let (mut start, mut bytes) = (0usize, 0u64);
    for (i, &n) in sizes.iter().enumerate() {
        let n = pad(n).unwrap_or(n);
        let full_bytes = spec.max_bytes.is_some_and(|m| bytes + n > m);
        let full_count = spec.max_tensors.is_some_and(|m| i - start >= m);
        if i > start && (full_bytes || full_count) {
            shards.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    shards.push(start..sizes.len());
    shards
}

/// Bytes of all output files together: tensor data plus, per shard, a header (the
/// first with all metadata). Counts the single-file header per shard, an upper bound.
pub fn total_size(sizes: &[u64], header_len: u64, spec: SplitSpec) -> u64 {
    let data: u64 = sizes.iter().map(|n| pad(*n).unwrap_or(*n)).sum();
    data + header_len * plan_shards(sizes, spec).len() as u64
}

/// `prefix-00001-of-00003.gguf` for shard 0 of 3, with `prefix` the path without `.gguf`.
pub fn shard_path(outfile: &Path, no: usize, count: usize) -> PathBuf {
    let s = outfile.to_string_lossy();
    let prefix = s.strip_suffix(".gguf").unwrap_or(&s);
    PathBuf::from(format!("{prefix}-{:05}-of-{:05}.gguf", no + 1, count))
}

/// The files a model of these tensor sizes is written to: `outfile`, or its shard names.
pub fn output_paths(outfile: &Path, sizes: &[u64], spec: SplitSpec) -> Vec<PathBuf> {
    paths_for(outfile, plan_shards(sizes, spec).len())
}

fn paths_for(outfile: &Path, count: usize) -> Vec<PathBuf> {
    if count == 1 {
        return vec![outfile.to_path_buf()];
    }
    (0..count).map(|i| shard_path(outfile, i, count)).collect()
}

/// Streams tensor data into one file or a set of shards.
pub struct ShardedWriter {
    outfile: PathBuf,
    tensors: Vec<HeaderTensor>,
    shards: Vec<std::ops::Range<usize>>,
    current: Option<(usize, GgufWriter<AtomicFile>)>,
    done: Vec<AtomicFile>,
    written: u64,
}

impl ShardedWriter {
    /// The first shard's header is written here, with `metadata`, which is dropped then:
    /// a large vocabulary's lists are tens of MiB, and nothing after the header needs them.
    pub fn new(
        outfile: &Path,
        metadata: Vec<(String, Value)>,
        tensors: Vec<HeaderTensor>,
        sizes: &[u64],
        spec: SplitSpec,
    ) -> io::Result<ShardedWriter> {
        let shards = plan_shards(sizes, spec);
        if shards.len() > u16::MAX as usize {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "more than 65535 shards"));
        }
        let mut w = ShardedWriter {
            outfile: outfile.to_path_buf(),
            tensors,
            shards,
            current: None,
            done: Vec::new(),
            written: 0,
        };
        w.open_shard(0, metadata)?;
        Ok(w)
    }

    /// Output paths, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        paths_for(&self.outfile, self.shards.len())
    }

    /// Opens shard `no`, its header holding `metadata` (only shard 0's has any) and the split
    /// keys.
    fn open_shard(&mut self, no: usize, mut kvs: Vec<(String, Value)>) -> io::Result<()> {
        let count = self.shards.len();
        if count > 1 {
            kvs.extend([
                ("split.no".to_string(), Value::U16(no as u16)),
                ("split.count".to_string(), Value::U16(count as u16)),
                ("split.tensors.count".to_string(), Value::I32(self.tensors.len() as i32)),
            ]);
        }
        let path = self.paths()[no].clone();
        let file = AtomicFile::create(&path)?;
        let w = GgufWriter::new(file, &kvs, &self.tensors[self.shards[no].clone()])?;
        self.current = Some((no, w));
        Ok(())
    }

    /// Data for tensors in order; moves to the next shard when one is complete.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        loop {
            let Some((no, w)) = self.current.as_mut() else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "more tensor data than planned"));
            };
            if w.current_tensor().is_some() || data.is_empty() {
                self.written += data.len() as u64;
                return w.write(data);
            }
            let no = *no;
            self.finish_shard()?;
            if no + 1 >= self.shards.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "more tensor data than planned"));
            }
            self.open_shard(no + 1, Vec::new())?;
        }
    }

    /// [`Self::write`], taking the buffer (`buf[start..]` is the data): the direct writer
    /// writes a [`super::placed_buffer`] where it lies.
    pub fn write_taken(&mut self, buf: Vec<u8>, start: usize) -> io::Result<()> {
        match self.current.as_mut() {
            Some((_, w)) if w.current_tensor().is_some() => {
                self.written += (buf.len() - start) as u64;
                w.write_taken(buf, start)
            }
            _ => self.write(&buf[start..]),
        }
    }

    /// The offset in its file of the next byte written, as far as known: at the end of a
    /// shard it is that shard's end (the next one opens on its first byte).
    pub fn position(&self) -> u64 {
        self.current.as_ref().map_or(0, |(_, w)| w.bytes_written())
    }

    fn finish_shard(&mut self) -> io::Result<()> {
        if let Some((_, w)) = self.current.take() {
            self.done.push(w.finish()?);
        }
        Ok(())
    }

    /// Completes every shard; the files appear only on [`commit`](Self::commit).
    pub fn finish(mut self) -> io::Result<Finished> {
        self.finish_shard()?;
        while self.done.len() < self.shards.len() {
            // Shards made only of empty tensors.
            let no = self.done.len();
            self.open_shard(no, Vec::new())?;
            self.finish_shard()?;
        }
        Ok(Finished { files: self.done })
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }
}

pub struct Finished {
    files: Vec<AtomicFile>,
}

impl Finished {
    pub fn commit(self) -> io::Result<()> {
        for f in self.files {
            f.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("48G"), Ok(48_000_000_000));
        assert_eq!(parse_size("500m"), Ok(500_000_000));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert!(parse_size("x").is_err() && parse_size("0").is_err() && parse_size("99999999999T").is_err());
    }

    #[test]
    fn shards_respect_limits() {
        let sizes = [64u64, 64, 200, 32, 32, 32];
        assert_eq!(plan_shards(&sizes, SplitSpec::default()), vec![0..6]);
        let by_bytes = plan_shards(&sizes, SplitSpec { max_bytes: Some(130), max_tensors: None });
        assert_eq!(by_bytes, vec![0..2, 2..3, 3..6]);
        let by_count = plan_shards(&sizes, SplitSpec { max_bytes: None, max_tensors: Some(4) });
        assert_eq!(by_count, vec![0..4, 4..6]);
        assert_eq!(shard_path(Path::new("a/out.gguf"), 0, 3), PathBuf::from("a/out-00001-of-00003.gguf"));
    }
}
