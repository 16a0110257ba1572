//! The output's write buffer. On Linux's local disk file systems it writes around the page
//! cache (`O_DIRECT`): whole aligned blocks go from the buffer to the disk, so a large GGUF
//! is neither copied into newly allocated cache pages nor pushes the user's cached files
//! out. Elsewhere (other file systems, where direct writes may be slow or refused, and other
//! platforms), and from any direct write refused for its alignment on, it writes through
//! the page cache.
//!
//! A chunk made in a [`placed_buffer`] (at its file offset modulo the block size) is written
//! from that buffer rather than copied into a stage: the copy into the stage was 10–17 % of
//! a conversion's CPU samples for the legacy types.

use std::fs::File;
use std::io::IoSlice;
use std::io::{self, Write};
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender};

/// Buffer address, write sizes and file offsets of direct writes are multiples of this
/// (the logical block size of every common disk divides it).
const ALIGN: usize = 4096;
/// Bytes staged per write.
const STAGE: usize = 1 << 20;
/// Stages a direct writer holds: one filling while the other waits for or is in a write.
const STAGES: usize = 2;
/// Bytes of taken buffers gathered into one direct write: a disk keeps busier with fewer,
/// larger requests (on the bench VM's virtio disk, whose requests go up to 4 MiB, writing
/// 1 MiB at a time ran 4–9 % below 4 MiB at a time).
const GATHER: usize = 4 << 20;
/// Writes queued behind the one in progress: one keeps the disk from waiting for the next,
/// and holds the buffers of at most three gathers (filling, queued, in write).
const QUEUED: usize = 1;
/// Smaller taken buffers are copied into the stage: they would make small writes.
const MIN_TAKEN: usize = 64 << 10;

/// A buffer for `len` bytes of output that will start at file offset `position`, placed so
/// that a direct writer can write it where it lies ([`StagedWriter::write_taken`]). Returns
/// the buffer, holding zeros up to where the data goes, and that index; append the data
/// without growing the buffer past its capacity.
pub fn placed_buffer(position: u64, len: usize) -> (Vec<u8>, usize) {
    let mut buf = Vec::<u8>::with_capacity(len + 2 * ALIGN);
    let within = (position % ALIGN as u64) as usize;
    // Room for the bytes of the block before `position`, then the data at an address as
    // far past a block boundary as `position` is.
    let start = within + buf.as_ptr().align_offset(ALIGN);
    buf.resize(start, 0);
    (buf, start)
}

/// `STAGE` bytes at an aligned address.
struct Stage {
    /// `STAGE + ALIGN` bytes; the stage starts at the first aligned address in it.
    buf: Vec<u8>,
    start: usize,
}

impl Stage {
    fn new() -> Stage {
        let buf = vec![0u8; STAGE + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        Stage { buf, start }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + STAGE]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + STAGE]
    }
}

pub(super) struct StagedWriter {
    stage: Stage,
    len: usize,
    /// Whether the file is written around the page cache.
    direct: bool,
    /// Direct writes happen on this thread, so that the disk writes one stage while the
    /// next fills (a write that blocks the filling leaves the disk idle meanwhile).
    background: Option<Background>,
}

impl StagedWriter {
    /// A writer for `file`, writing around the page cache if `direct` and the file system
    /// allows it.
    pub(super) fn new(file: &File, direct: bool) -> StagedWriter {
        let direct = direct && on_local_disk(file) && set_direct(file, true).is_ok();
        // Without a thread, stages are written in place, as through the page cache.
        let background = if direct { Background::start(file) } else { None };
        StagedWriter { stage: Stage::new(), len: 0, direct, background }
    }

    pub(super) fn is_direct(&self) -> bool {
        self.direct
    }

    /// Appends `data`, writing out each full stage. Through the page cache, large writes skip
    /// the copy into the stage.
    pub(super) fn write_all(&mut self, file: &File, mut data: &[u8]) -> io::Result<()> {
        if !self.direct && data.len() >= STAGE / 4 {
            self.flush_cached(file)?;
            return write_out(file, data, &mut self.direct);
        }
        while !data.is_empty() {
            let n = data.len().min(STAGE - self.len);
            self.stage.bytes_mut()[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == STAGE {
                self.write_stage(file, STAGE)?;
            }
        }
        Ok(())
    }

    /// Appends `buf[start..]`, taking the buffer. A direct writer writes the whole blocks of
    /// a [`placed_buffer`] where they lie: the stage's partial block is copied into the room
    /// in front of the data, and the data's own partial last block into the stage. Anything
    /// else is staged as by [`Self::write_all`].
    pub(super) fn write_taken(&mut self, file: &File, mut buf: Vec<u8>, start: usize) -> io::Result<()> {
        let partial = self.len % ALIGN;
        let placed = (buf.as_ptr() as usize + start) % ALIGN == partial && start >= partial;
        if !self.direct || self.background.is_none() || buf.len() - start < MIN_TAKEN || !placed {
            return self.write_all(file, &buf[start..]);
        }
        let from = start - partial;
        buf[from..start].copy_from_slice(&self.stage.bytes()[self.len - partial..self.len]);
        if self.len > partial {
            self.write_stage(file, self.len - partial)?;
        }
        self.len = 0;
        let Some(b) = self.background.as_mut().filter(|_| self.direct) else {
            // That write turned direct writes off: the rest goes through the page cache.
            return self.write_all(file, &buf[from..]);
        };
        let blocks = (buf.len() - from) / ALIGN * ALIGN;
        let tail = buf.len() - from - blocks;
        self.stage.bytes_mut()[..tail].copy_from_slice(&buf[from + blocks..]);
        self.len = tail;
        if blocks > 0 {
            b.hand_over_taken(buf, from..from + blocks)?;
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

    /// Writes out what is staged, direct writes padded with zeros to whole blocks, waits for
    /// every write, and cuts the file back to the `total` bytes given to it.
    pub(super) fn finish(&mut self, file: &File, total: u64) -> io::Result<()> {
        let n = if self.direct { self.len.next_multiple_of(ALIGN) } else { self.len };
        let padded = n > self.len;
        self.stage.bytes_mut()[self.len..n].fill(0);
        self.write_stage(file, n)?;
        if let Some(b) = self.background.take() {
            b.finish(&mut self.direct)?;
        }
        if padded {
            file.set_len(total)?;
        }
        Ok(())
    }

    /// Writes the first `n` bytes of the stage (on the background thread if there is one)
    /// and empties it.
    fn write_stage(&mut self, file: &File, n: usize) -> io::Result<()> {
        self.len = 0;
        let Some(b) = &mut self.background else {
            return write_out(file, &self.stage.bytes()[..n], &mut self.direct);
        };
        // An empty placeholder (no allocation) while the full stage is away.
        let full = std::mem::replace(&mut self.stage, Stage { buf: Vec::new(), start: 0 });
        match b.hand_over(full, n, &mut self.direct) {
            Ok(next) => self.stage = next,
            Err(e) => {
                // A stage to fill again, so that a later call fails cleanly, not on a bound.
                self.stage = Stage::new();
                return Err(e);
            }
        }
        // A direct write was refused: the rest goes through the page cache, in order, here.
        if !self.direct {
            if let Some(b) = self.background.take() {
                b.finish(&mut self.direct)?;
            }
        }
        Ok(())
    }
}

/// A write for the thread: the first bytes of a stage, or ranges of taken buffers as one
/// vectored write (a request per chunk costs the disk more than the copy it saves).
enum Job {
    Stage(Stage, usize),
    Taken(Vec<(Vec<u8>, Range<usize>)>),
}

/// The thread that makes a direct writer's writes, in order, and the stages it hands back.
struct Background {
    jobs: Option<SyncSender<Job>>,
    /// Taken buffers not yet queued, and their bytes.
    pending: Vec<(Vec<u8>, Range<usize>)>,
    pending_bytes: usize,
    done: Receiver<Written>,
    /// Stages neither filling nor in a write.
    spare: Vec<Stage>,
    in_write: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A write done: its stage if it had one (taken buffers are dropped), how it went, and
/// whether writes are still direct.
struct Written {
    stage: Option<Stage>,
    result: io::Result<()>,
    direct: bool,
}

impl Background {
    /// None if the file cannot be shared with a thread or the thread cannot start.
    fn start(file: &File) -> Option<Background> {
        // The same open file: its position and flags are shared, and only the thread writes.
        let file = file.try_clone().ok()?;
        let (jobs, queued) = std::sync::mpsc::sync_channel::<Job>(QUEUED);
        let (written, done) = std::sync::mpsc::channel();
        let write_each = move || {
            let mut direct = true;
            for job in queued {
                let (result, stage) = match job {
                    Job::Stage(stage, n) => (write_out(&file, &stage.bytes()[..n], &mut direct), Some(stage)),
                    Job::Taken(parts) => (write_parts(&file, &parts, &mut direct), None),
                };
                let failed = result.is_err();
                // Nothing after a failed write: it would land at the wrong offset.
                if written.send(Written { stage, result, direct }).is_err() || failed {
                    break;
                }
            }
        };
        let thread = std::thread::Builder::new().name("mlx2gguf-writer".into()).spawn(write_each).ok()?;
        let spare = (1..STAGES).map(|_| Stage::new()).collect();
        let (pending, pending_bytes) = (Vec::new(), 0);
        Some(Background { jobs: Some(jobs), pending, pending_bytes, done, spare, in_write: 0, thread: Some(thread) })
    }

    /// Queues the first `n` bytes of `stage` for writing and returns a stage to fill next,
    /// waiting for a write to end if none is spare.
    fn hand_over(&mut self, stage: Stage, n: usize, direct: &mut bool) -> io::Result<Stage> {
        self.send_pending()?;
        self.send(Job::Stage(stage, n))?;
        loop {
            if let Some(s) = self.spare.pop() {
                return Ok(s);
            }
            if let Some(s) = self.wait_for_one(direct)? {
                return Ok(s);
            }
        }
    }

    /// Queues `range` of `buf` for writing, gathered with the next ones up to [`GATHER`]
    /// bytes; the thread drops the buffers after writing them.
    fn hand_over_taken(&mut self, buf: Vec<u8>, range: Range<usize>) -> io::Result<()> {
        self.pending_bytes += range.len();
        self.pending.push((buf, range));
        if self.pending_bytes >= GATHER {
            self.send_pending()?;
        }
        Ok(())
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_bytes = 0;
        let parts = std::mem::take(&mut self.pending);
        self.send(Job::Taken(parts))
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(self.stopped_by());
        }
        self.in_write += 1;
        Ok(())
    }

    /// The next write to end: its stage if it had one, or the write's error.
    fn wait_for_one(&mut self, direct: &mut bool) -> io::Result<Option<Stage>> {
        let w = self.done.recv().map_err(|_| self.stopped_by())?;
        self.in_write -= 1;
        *direct &= w.direct;
        w.result.map(|()| w.stage)
    }

    /// Why the thread stopped taking writes: the failed write's error.
    fn stopped_by(&self) -> io::Error {
        let failed = self.done.try_iter().find_map(|w| w.result.err());
        failed.unwrap_or_else(|| io::Error::other("the output's writer thread stopped"))
    }

    /// Waits for every queued write; the first error if any failed.
    fn finish(mut self, direct: &mut bool) -> io::Result<()> {
        self.send_pending()?;
        while self.in_write > 0 {
            self.wait_for_one(direct)?;
        }
        Ok(())
    }
}

impl Drop for Background {
    /// Ends the thread once it has written what is queued.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes `data` at the file's position, as [`write_slices`].
fn write_out(file: &File, data: &[u8], direct: &mut bool) -> io::Result<()> {
    write_slices(file, &mut [IoSlice::new(data)], direct)
}

/// Writes the ranges of `parts` in order at the file's position, as [`write_out`] does.
fn write_parts(file: &File, parts: &[(Vec<u8>, Range<usize>)], direct: &mut bool) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|(buf, r)| IoSlice::new(&buf[r.clone()])).collect();
    write_slices(file, &mut slices, direct)
}

/// Writes all of `slices` at the file's position; a direct write refused for its alignment
/// (after a short write, or on a file system that needs larger blocks) turns direct writes
/// off and goes on through the page cache.
fn write_slices(mut file: &File, slices: &mut [IoSlice<'_>], direct: &mut bool) -> io::Result<()> {
    let mut left = slices;
    // Drops empty slices in front (an empty write would read as WriteZero).
    IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        match file.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if *direct && e.raw_os_error() == Some(libc::EINVAL) => {
                set_direct(file, false)?;
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
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

    /// `n` bytes of a linear congruential sequence continued from `next`.
    fn pseudo_random(n: usize, next: &mut u32) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *next = next.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (*next >> 24) as u8
            })
            .collect()
    }

    /// Writes `data` through a buffer placed for file offset `at`.
    fn write_placed(w: &mut StagedWriter, file: &File, at: u64, data: &[u8]) {
        let (mut buf, start) = placed_buffer(at, data.len());
        buf.extend_from_slice(data);
        w.write_taken(file, buf, start).unwrap();
    }

    /// Direct and page-cache writers leave the same bytes for writes of every size around
    /// the stage and block sizes, copied or taken, and a direct one on this machine's disk
    /// stays direct.
    #[test]
    fn direct_and_cached_writes_leave_the_same_bytes() {
        // Beside the sources: the disk outputs go to (a temporary directory may be tmpfs).
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let sizes = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, STAGE / 4, STAGE - 1, STAGE, STAGE + 3, 3 * STAGE + 5, 7];
        // Then taken buffers: placed ones in runs (gathered into vectored writes) between
        // copied writes and buffers placed for the wrong offset, at every offset in a block.
        let taken = [70_000, 100_001, MIN_TAKEN, 300_000, 5, 200_000, 200_003, STAGE + 1, 123_457, 4 * ALIGN, 99_999];
        // Then one run of placed buffers longer than a gather.
        let run = vec![262_147; 3 * GATHER / 2 / 262_147 + 1];
        let mut files = Vec::new();
        for direct in [true, false] {
            let mut next = 1u32;
            let path = dir.path().join(format!("out-{direct}"));
            let file = File::create(&path).unwrap();
            let mut w = StagedWriter::new(&file, direct);
            let mut total = 0u64;
            for &n in &sizes {
                let data = pseudo_random(n, &mut next);
                w.write_all(&file, &data).unwrap();
                total += n as u64;
            }
            for (i, &n) in taken.iter().cycle().take(3 * taken.len()).enumerate() {
                let data = pseudo_random(n, &mut next);
                match i % 5 {
                    0 => w.write_all(&file, &data).unwrap(),
                    // Placed for the wrong offset.
                    4 => write_placed(&mut w, &file, total + 1, &data),
                    _ => write_placed(&mut w, &file, total, &data),
                }
                total += n as u64;
            }
            for &n in &run {
                write_placed(&mut w, &file, total, &pseudo_random(n, &mut next));
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
        let want = pseudo_random(files[0].len(), &mut 1u32);
        assert!(files[0] == want);
    }

    /// A write that fails (here: to a file opened for reading) is reported by the writer,
    /// whichever thread made it, and the writer then ends without hanging.
    #[test]
    fn failed_writes_are_reported() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("out");
        File::create(&path).unwrap();
        let file = File::open(&path).unwrap();
        let mut w = StagedWriter::new(&file, true);
        assert_eq!(w.is_direct(), on_local_disk(&file));
        let data = vec![7u8; (STAGES + 2) * STAGE];
        let err = w.write_all(&file, &data).and_then(|()| w.finish(&file, data.len() as u64)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
        assert!(w.write_all(&file, &data).is_err(), "a later write succeeded");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
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
