//! Reading the input ahead of the conversion: a background thread touches the pages of
//! the tensors the pass will read next, up to a byte window ahead of it, so the
//! conversion's threads find their input mapped instead of stopping at page faults.
//!
//! On a cold page cache a first touch costs a disk read and, on virtual machines that
//! hand freed memory back to the host, a host fault too; taken by the compute threads it
//! stalls the whole pass (measured on the bench checkpoints: about a third of the user
//! time of a cold q8_0 conversion). Touching is portable; the `madvise(MADV_WILLNEED)`
//! before it lets the kernel read a piece in one request where it can.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::TensorStore;

/// How far ahead of the pass the input is read. Page-cache pages, not the process's
/// own memory; small against any machine that converts a model.
pub const WINDOW_BYTES: usize = 256 << 20;

/// The unit of touching: one `madvise` request, and how often the thread looks at the
/// window and the stop flag.
const PIECE_BYTES: usize = 8 << 20;

/// Pieces whose reads are requested ahead of the one being touched (so reads run up to
/// this many pieces past the window; the touching stays within it).
const ADVISED_AHEAD: usize = 2;

/// Touch stride: 4 KiB, the smallest page size of the platforms we run on (arm64 macOS
/// has 16 KiB pages; touching each 4 KiB of them costs nothing extra).
const STRIDE: usize = 4096;

/// The input bytes of each step of a pass, in order, and where the pass is.
pub struct Readahead<'a> {
    steps: Vec<Vec<&'a [u8]>>,
    window: usize,
    /// Bytes touched so far (for tests and reports).
    touched: AtomicUsize,
    /// The step the pass is working on.
    at: AtomicUsize,
    stop: AtomicBool,
}

impl<'a> Readahead<'a> {
    /// `steps[i]`: the names of the tensors step `i` reads (unknown names are skipped);
    /// at most `window` bytes are read past the start of the pass's current step.
    pub fn new(store: &'a TensorStore, steps: &[Vec<&str>], window: usize) -> Readahead<'a> {
        let steps = steps.iter().map(|names| names.iter().filter_map(|n| store.get(n).map(|v| v.data)).collect());
        Readahead {
            steps: steps.collect(),
            window,
            touched: AtomicUsize::new(0),
            at: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    pub fn touched_bytes(&self) -> usize {
        self.touched.load(Ordering::Acquire)
    }

    /// The pass moved on to step `i`.
    pub fn advance(&self, i: usize) {
        self.at.store(i, Ordering::Release);
    }

    /// The pass is over (or failed): the thread stops at its next piece.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// The thread's work: every step's bytes in order, never more than the window past the
    /// start of the pass's current step. Returns at the end or when finished.
    pub fn run(&self) {
        let pieces: Vec<(usize, &[u8])> = self
            .steps
            .iter()
            .enumerate()
            .flat_map(|(i, step)| step.iter().flat_map(move |bytes| bytes.chunks(PIECE_BYTES).map(move |p| (i, p))))
            .collect();
        let mut ahead = AheadCount::default();
        let mut advised = 0;
        for (k, &(i, piece)) in pieces.iter().enumerate() {
            if i < self.at.load(Ordering::Acquire) {
                continue; // the pass got there first
            }
            if !self.wait_for_room(i, piece.len(), &mut ahead) {
                return;
            }
            // The next pieces are requested before this one is touched, so the disk has
            // reads queued while the touching waits for this one's.
            advised = advised.max(k);
            while advised < pieces.len().min(k + 1 + ADVISED_AHEAD) {
                advise_will_need(pieces[advised].1);
                advised += 1;
            }
            touch(piece);
            ahead.add(i, piece.len());
            self.touched.fetch_add(piece.len(), Ordering::AcqRel);
        }
    }

    /// Waits until `len` more bytes at step `i` fit in the window; false once finished.
    fn wait_for_room(&self, i: usize, len: usize, ahead: &mut AheadCount) -> bool {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            let at = self.at.load(Ordering::Acquire);
            ahead.forget_before(at);
            if i <= at || ahead.bytes + len <= self.window {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Bytes touched per step that the pass has not yet reached.
#[derive(Default)]
struct AheadCount {
    per_step: std::collections::VecDeque<(usize, usize)>,
    bytes: usize,
}

impl AheadCount {
    fn add(&mut self, step: usize, len: usize) {
        match self.per_step.back_mut() {
            Some((s, n)) if *s == step => *n += len,
            _ => self.per_step.push_back((step, len)),
        }
        self.bytes += len;
    }

    /// Steps the pass has reached no longer count against the window.
    fn forget_before(&mut self, at: usize) {
        while let Some(&(s, n)) = self.per_step.front() {
            if s > at {
                break;
            }
            self.bytes -= n;
            self.per_step.pop_front();
        }
    }
}

/// Brings a piece of a mapped file into memory: one read per page.
fn touch(piece: &[u8]) {
    let mut sum = 0u8;
    for i in (0..piece.len()).step_by(STRIDE) {
        sum = sum.wrapping_add(piece[i]);
    }
    std::hint::black_box(sum);
}

/// Asks the kernel to read the piece's pages now, as one request where it can, without
/// waiting for them.
#[cfg(not(unix))]
fn advise_will_need(_piece: &[u8]) {}

/// Asks the kernel to read the piece's pages now, as one request where it can, without
/// waiting for them.
#[cfg(unix)]
fn advise_will_need(piece: &[u8]) {
    let page = page_size();
    let start = piece.as_ptr() as usize;
    let aligned = start & !(page - 1);
    let len = piece.len() + (start - aligned);
    // SAFETY: the range lies within a live read-only mapping (the piece, widened down to
    // its page start, which belongs to the same mapping); WILLNEED changes no contents.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_WILLNEED);
    }
}

#[cfg(unix)]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of `n` U8 tensors `t0`, `t1`, … of `len` bytes each.
    fn store(dir: &std::path::Path, n: usize, len: usize) -> TensorStore {
        let entries: Vec<String> = (0..n)
            .map(|i| {
                format!(r#""t{i}":{{"dtype":"U8","shape":[{len}],"data_offsets":[{},{}]}}"#, i * len, (i + 1) * len)
            })
            .collect();
        let header = format!("{{{}}}", entries.join(","));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + n * len, 7);
        let path = dir.join("model.safetensors");
        std::fs::write(&path, bytes).unwrap();
        TensorStore::open_file(&path).unwrap()
    }

    /// Polls until `f` holds (the thread moves on its own time); fails after 10 s.
    fn eventually(what: &str, f: impl Fn() -> bool) {
        let t0 = std::time::Instant::now();
        while !f() {
            assert!(t0.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn reads_one_window_ahead_of_the_pass_and_stops_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let len = 3 * STRIDE;
        let store = store(dir.path(), 5, len);
        let steps: Vec<Vec<&str>> = vec![vec!["t0"], vec!["t1", "nothing"], vec!["t2"], vec!["t3"], vec!["t4"]];
        let ra = Readahead::new(&store, &steps, len);
        std::thread::scope(|s| {
            let thread = s.spawn(|| ra.run());
            // At step 0: step 0 itself, then one window (step 1), then it waits.
            eventually("steps 0 and 1 read", || ra.touched_bytes() == 2 * len);
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(ra.touched_bytes(), 2 * len, "read past its window");
            ra.advance(2);
            eventually("step 3 read", || ra.touched_bytes() == 4 * len);
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(ra.touched_bytes(), 4 * len, "read past its window");
            ra.finish();
            eventually("thread ended", || thread.is_finished());
        });
        assert_eq!(ra.touched_bytes(), 4 * len);
    }

    #[test]
    fn skips_steps_the_pass_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 3, STRIDE);
        let steps: Vec<Vec<&str>> = vec![vec!["t0"], vec!["t1"], vec!["t2"]];
        let ra = Readahead::new(&store, &steps, STRIDE);
        ra.advance(2);
        ra.run();
        assert_eq!(ra.touched_bytes(), STRIDE);
    }

    #[test]
    fn window_counts_only_steps_ahead_of_the_pass() {
        let mut a = AheadCount::default();
        a.add(1, 10);
        a.add(1, 5);
        a.add(2, 7);
        a.add(4, 1);
        assert_eq!(a.bytes, 23);
        a.forget_before(0);
        assert_eq!(a.bytes, 23);
        a.forget_before(1);
        assert_eq!(a.bytes, 8);
        a.forget_before(3);
        assert_eq!(a.bytes, 1);
        a.forget_before(9);
        assert_eq!(a.bytes, 0);
    }
}
