//! All-or-nothing output: write beside the target, sync, rename.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::staged::StagedWriter;

/// A file that appears under its final name only after [`AtomicFile::commit`]. Dropping it
/// uncommitted removes the temporary file and leaves any existing target untouched.
pub struct AtomicFile {
    target: PathBuf,
    /// `Some` until committed.
    tmp: Option<NamedTempFile>,
    stage: StagedWriter,
    /// Bytes written in all, and up to where writeback has been started.
    written: u64,
    flushed_to: u64,
    /// Start of the window whose writeback was started before the current one.
    prev_window: u64,
}

/// Through the page cache, start writeback every this many bytes, so the disk writes while
/// the next data is computed instead of all at once at the end (the final sync then has
/// little left to do), and dirty pages stay bounded.
const SYNC_EVERY: u64 = 256 << 20;

/// Starts writing `[start, end)` to disk without waiting for it, then waits for the window
/// before it (started one window ago, so mostly done): writing overlaps computing, and at
/// most two windows are dirty. Linux only; see the other platforms' versions below.
#[cfg(target_os = "linux")]
fn write_back(file: &File, start: u64, end: u64, prev_start: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let range = |a: u64, b: u64, flags: libc::c_uint| {
        // SAFETY: a plain syscall on an open descriptor; offsets are within what was written.
        let r = unsafe { libc::sync_file_range(fd, a as libc::off64_t, (b - a) as libc::off64_t, flags) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    range(start, end, libc::SYNC_FILE_RANGE_WRITE)?;
    if prev_start < start {
        let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        range(prev_start, start, wait)?;
    }
    Ok(())
}

/// macOS has no ranged writeback; plain `fsync` pushes the written pages to the disk
/// without `F_FULLFSYNC`'s drive-cache flush (Rust's `sync_data` there), which only the
/// final commit needs.
#[cfg(target_vendor = "apple")]
fn write_back(file: &File, _start: u64, _end: u64, _prev_start: u64) -> io::Result<()> {
    fsync(file)
}

/// `fsync(2)` as it is, on any Unix (compiled and tested on Linux too).
#[cfg(unix)]
#[cfg_attr(not(target_vendor = "apple"), allow(dead_code))]
fn fsync(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor.
    if unsafe { libc::fsync(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
fn write_back(file: &File, _start: u64, _end: u64, _prev_start: u64) -> io::Result<()> {
    file.sync_data()
}

impl AtomicFile {
    /// Written around the page cache where the platform and file system allow.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        Self::create_with(target, true)
    }

    fn create_with(target: &Path, direct: bool) -> io::Result<AtomicFile> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name"));
        }
        if target.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "output path is a directory"));
        }
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        // The permissions of any file the user creates (0666 less the umask), not tempfile's
        // private 0600: other users and services (an Ollama or LM Studio server) read it.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(dir)?;
        // A fatal signal (SIGBUS) removes it too.
        crate::fault::register_temp(tmp.path());
        Ok(AtomicFile {
            target: target.to_path_buf(),
            stage: StagedWriter::new(tmp.as_file(), direct),
            tmp: Some(tmp),
            written: 0,
            flushed_to: 0,
            prev_window: 0,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(tmp) = self.tmp.take() else { return Ok(()) };
        self.stage.finish(tmp.as_file(), self.written)?;
        tmp.as_file().sync_all()?;
        crate::fault::unregister_temp(tmp.path());
        tmp.persist(&self.target).map_err(|e| e.error)?;
        // Make the rename itself durable where the platform allows opening a directory.
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            crate::fault::unregister_temp(tmp.path());
        }
    }
}

/// The temporary file, unless committed.
fn uncommitted(tmp: &Option<NamedTempFile>) -> io::Result<&File> {
    tmp.as_ref().map(|t| t.as_file()).ok_or_else(|| io::Error::other("file already committed"))
}

impl super::TakeWrite for AtomicFile {
    fn write_taken(&mut self, buf: Vec<u8>, start: usize) -> io::Result<()> {
        let file = uncommitted(&self.tmp)?;
        let n = (buf.len() - start) as u64;
        self.stage.write_taken(file, buf, start)?;
        self.wrote(n)
    }
}

impl AtomicFile {
    /// Counts `n` more bytes written; through the page cache, starts writeback every
    /// [`SYNC_EVERY`] bytes.
    fn wrote(&mut self, n: u64) -> io::Result<()> {
        let file = uncommitted(&self.tmp)?;
        self.written += n;
        if !self.stage.is_direct() && self.written - self.flushed_to >= SYNC_EVERY {
            let (start, end, prev) = (self.flushed_to, self.written, self.prev_window);
            self.stage.flush_cached(file)?;
            write_back(file, start, end, prev)?;
            self.prev_window = start;
            self.flushed_to = end;
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let file = uncommitted(&self.tmp)?;
        self.stage.write_all(file, buf)?;
        self.wrote(buf.len() as u64)
    }
    fn flush(&mut self) -> io::Result<()> {
        let file = uncommitted(&self.tmp)?;
        self.stage.flush_cached(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writeback every platform has (macOS's `fsync`, and this platform's own) runs on
    /// a file being written.
    #[test]
    fn writeback_paths_run_here() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("w.bin")).unwrap();
        f.write_all(&[7u8; 1 << 16]).unwrap();
        #[cfg(unix)]
        fsync(&f).unwrap();
        write_back(&f, 4096, 1 << 16, 0).unwrap();
        f.sync_data().unwrap();
        assert_eq!(std::fs::read(dir.path().join("w.bin")).unwrap().len(), 1 << 16);
    }

    #[test]
    fn uncommitted_file_leaves_nothing_and_keeps_old_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.gguf");
        std::fs::write(&target, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"new data").unwrap();
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new data").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new data");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn committed_file_has_the_permissions_of_a_file_the_user_creates() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let target = dir.path().join("out.gguf");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"x").unwrap();
        f.commit().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), mode(&plain));
    }
}
