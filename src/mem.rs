//! Memory measurement for the closing summary: anonymous (heap) memory, sampled, since
//! mmap'd model pages are page cache the kernel can drop, not memory the tool holds.

/// Current memory the process holds, without the model pages it maps: Linux `RssAnon`,
/// macOS's physical footprint (`proc_pid_rusage`; it likewise leaves out clean file-backed
/// pages); `None` elsewhere.
pub fn rss_anon() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
    #[cfg(target_os = "macos")]
    {
        // SAFETY: rusage_info_v2 is plain data; the call fills it for our own pid.
        let mut info: libc::rusage_info_v2 = unsafe { std::mem::zeroed() };
        let ptr = (&mut info as *mut libc::rusage_info_v2).cast();
        let r = unsafe { libc::proc_pid_rusage(std::process::id() as libc::c_int, libc::RUSAGE_INFO_V2, ptr) };
        (r == 0).then_some(info.ri_phys_footprint)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
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
