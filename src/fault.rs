//! Faults that end the process before Rust can unwind: a file size limit (SIGXFSZ) and a
//! model file truncated under our mmap (SIGBUS). Temporary outputs are registered here so
//! that such a signal still removes them (unlink is async-signal-safe) before exiting.

#[cfg(unix)]
mod imp {
    use std::ffi::CString;
    use std::sync::atomic::{AtomicPtr, Ordering};

    const SLOTS: usize = 64;
    static TEMPS: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

    pub fn register(path: &std::path::Path) {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return };
        let raw = c.into_raw();
        for slot in &TEMPS {
            if slot.compare_exchange(std::ptr::null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return;
            }
        }
        // All slots taken: the path is simply not cleaned up on a fatal signal.
        // SAFETY: `raw` came from `into_raw` above and was not stored.
        drop(unsafe { CString::from_raw(raw) });
    }

    pub fn unregister(path: &std::path::Path) {
        use std::os::unix::ffi::OsStrExt;
        for slot in &TEMPS {
            let p = slot.load(Ordering::SeqCst);
            // SAFETY: non-null slots hold pointers from `CString::into_raw`.
            if !p.is_null()
                && unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes() == path.as_os_str().as_bytes()
                && slot.compare_exchange(p, std::ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                // SAFETY: taken out of the slot, so no handler can see it any more.
                drop(unsafe { CString::from_raw(p) });
                return;
            }
        }
    }

    extern "C" fn on_sigbus(_: libc::c_int) {
        const MSG: &[u8] = b"error: a model file was truncated or changed during the conversion (SIGBUS); \
nothing was written\n";
        for slot in &TEMPS {
            let p = slot.load(Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: unlink and write are async-signal-safe; p is a valid C string.
                unsafe { libc::unlink(p) };
            }
        }
        // SAFETY: async-signal-safe calls only.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(3);
        }
    }

    pub fn install() {
        // SAFETY: plain signal disposition changes at start-up.
        unsafe {
            // Exceeding a file size limit then fails the write (EFBIG) instead of killing us.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            libc::signal(libc::SIGBUS, on_sigbus as *const () as libc::sighandler_t);
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn register(_: &std::path::Path) {}
    pub fn unregister(_: &std::path::Path) {}
    pub fn install() {}
}

/// Installs the handlers (the binary calls this once).
pub fn install_handlers() {
    imp::install();
}

pub(crate) fn register_temp(path: &std::path::Path) {
    imp::register(path);
}

pub(crate) fn unregister_temp(path: &std::path::Path) {
    imp::unregister(path);
}
