//! The output's write buffer. On Linux's local disk file systems it writes around the page
//! cache (`O_DIRECT`): whole aligned blocks go from the buffer to the disk, so a large GGUF
//! is neither copied into newly allocated cache pages nor pushes the user's cached files
//! out. Elsewhere (other file systems, where direct writes may be slow or refused, and other
//! platforms), and from any direct write refused for its alignment on, it writes through
//! the page cache.

use std::fs::File;
use std::io::{self, Write};

/// Buffer address, write sizes and file offsets of direct writes are multiples of this
/// (the logical block size of every common disk divides it).
const ALIGN: usize = 4096;
/// Bytes staged per write.
const STAGE: usize = 1 << 20;

pub(super) struct StagedWriter {
    /// `STAGE + ALIGN` bytes; the stage starts at the first aligned address in it.
    buf: Vec<u8>,
    start: usize,
    len: usize,
    /// Whether the file is written around the page cache.
    direct: bool,
}

impl StagedWriter {
    /// A writer for `file`, writing around the page cache if `direct` and the file system
    /// allows it.
    pub(super) fn new(file: &File, direct: bool) -> StagedWriter {
        let buf = vec![0u8; STAGE + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        let direct = direct && on_local_disk(file) && set_direct(file, true).is_ok();
        StagedWriter { buf, start, len: 0, direct }
    }

    pub(super) fn is_direct(&self) -> bool {
        self.direct
    }

    /// Appends `data`, writing out each full stage. Through the page cache, large writes skip
    /// the copy into the stage.
    pub(super) fn write_all(&mut self, file: &File, mut data: &[u8]) -> io::Result<()> {
        if !self.direct && data.len() >= STAGE / 4 {
            self.flush_cached(file)?;
            return self.write_out(file, data);
        }
        while !data.is_empty() {
            let n = data.len().min(STAGE - self.len);
            let at = self.start + self.len;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == STAGE {
                self.write_stage(file, STAGE)?;
            }
        }
        Ok(())
    }

    /// Through the page cache, writes out what is staged (the cache then holds it all);
    /// direct writes keep a partial block staged until [`Self::finish`].
    pub(super) fn flush_cached(&mut self, file: &File) -> io::Result<()> {
        if self.direct {
            return Ok(());
        }
        self.write_stage(file, self.len)
    }

    /// Writes out what is staged, direct writes padded with zeros to whole blocks, and cuts
    /// the file back to the `total` bytes given to it.
    pub(super) fn finish(&mut self, file: &File, total: u64) -> io::Result<()> {
        let n = if self.direct { self.len.next_multiple_of(ALIGN) } else { self.len };
        let padded = n > self.len;
        self.buf[self.start + self.len..self.start + n].fill(0);
        self.write_stage(file, n)?;
        if padded {
            file.set_len(total)?;
        }
        Ok(())
    }

    /// Writes the first `n` bytes of the stage and empties it.
    fn write_stage(&mut self, file: &File, n: usize) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let written = self.write_out(file, &buf[self.start..self.start + n]);
        (self.buf, self.len) = (buf, 0);
        written
    }

    /// Writes `data` at the file's position; a direct write refused for its alignment (after
    /// a short write, or on a file system that needs larger blocks) turns direct writes off
    /// and goes on through the page cache.
    fn write_out(&mut self, mut file: &File, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match file.write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    set_direct(file, false)?;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether `file` is on ext4, XFS, Btrfs, F2FS or bcachefs (by `statfs` magic numbers).
#[cfg(target_os = "linux")]
fn on_local_disk(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    const LOCAL: [u32; 5] = [0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010, 0xCA45_1A4E];
    // SAFETY: fstatfs fills the zeroed struct for an open descriptor.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    LOCAL.contains(&(st.f_type as u32))
}

#[cfg(not(target_os = "linux"))]
fn on_local_disk(_file: &File) -> bool {
    false
}

/// Turns `O_DIRECT` on or off for an open file (Linux lets `F_SETFL` change it).
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: plain fcntl calls on an open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on { flags | libc::O_DIRECT } else { flags & !libc::O_DIRECT };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere every write goes through the page cache.
#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on {
        Err(io::ErrorKind::Unsupported.into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct and page-cache writers leave the same bytes for writes of every size around
    /// the stage and block sizes, and a direct one on this machine's disk stays direct.
    #[test]
    fn direct_and_cached_writes_leave_the_same_bytes() {
        // Beside the sources: the disk outputs go to (a temporary directory may be tmpfs).
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let sizes = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, STAGE / 4, STAGE - 1, STAGE, STAGE + 3, 3 * STAGE + 5, 7];
        let mut files = Vec::new();
        for direct in [true, false] {
            let mut next = 1u32;
            let path = dir.path().join(format!("out-{direct}"));
            let file = File::create(&path).unwrap();
            let mut w = StagedWriter::new(&file, direct);
            let mut total = 0u64;
            for &n in &sizes {
                let data: Vec<u8> = (0..n)
                    .map(|_| {
                        next = next.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (next >> 24) as u8
                    })
                    .collect();
                w.write_all(&file, &data).unwrap();
                total += n as u64;
            }
            // CI's disk (ext4) takes them.
            assert_eq!(w.is_direct(), direct && on_local_disk(&file), "direct writes refused");
            w.finish(&file, total).unwrap();
            drop(file);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, total);
            files.push(bytes);
        }
        assert!(files[0] == files[1], "direct and cached outputs differ");
        let mut next = 1u32;
        let want: Vec<u8> = (0..files[0].len())
            .map(|_| {
                next = next.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (next >> 24) as u8
            })
            .collect();
        assert!(files[0] == want);
    }

    /// A direct write the file system refuses (here: at an unaligned offset) is written
    /// through the page cache instead, and so is the rest. Files in tmpfs are written
    /// through it from the start.
    #[test]
    fn refused_direct_writes_go_through_the_cache() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("out");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"abc").unwrap();
        let mut w = StagedWriter::new(&file, true);
        let data: Vec<u8> = (0..3 * STAGE + 11).map(|i| (i % 251) as u8).collect();
        w.write_all(&file, &data).unwrap();
        w.finish(&file, 3 + data.len() as u64).unwrap();
        assert!(!w.is_direct());
        assert_eq!(std::fs::read(&path).unwrap(), [b"abc".as_slice(), &data].concat());
        #[cfg(target_os = "linux")]
        if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
            let file = File::create(shm.path().join("out")).unwrap();
            assert!(!StagedWriter::new(&file, true).is_direct());
        }
    }
}
