//! Memory measurement for the closing summary: anonymous (heap) memory, sampled, since
//! mmap'd model pages are page cache the kernel can drop, not memory the tool holds.

/// Current anonymous resident memory in bytes (Linux `RssAnon`); `None` elsewhere.
pub fn rss_anon() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The running maximum of [`rss_anon`] samples.
#[derive(Debug, Default)]
pub struct PeakSampler {
    peak: std::sync::atomic::AtomicU64,
}

impl PeakSampler {
    pub fn sample(&self) {
        if let Some(v) = rss_anon() {
            self.peak.fetch_max(v, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn peak(&self) -> Option<u64> {
        self.sample();
        match self.peak.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }
}
