//! Goose announces "N users launched." with a bare `println!` that no setting turns off. shakedown's
//! stdout carries results only (verdict tables, the report path and verdict) so that CI jobs can
//! capture it; while Goose runs, its stdout is pointed at stderr (or discarded with `--quiet`) and
//! put back afterwards.

use std::io::Write;

/// Restores the process's stdout when dropped.
pub struct StdoutDiverted {
    saved: libc::c_int,
}

impl StdoutDiverted {
    /// Points file descriptor 1 at stderr, or at /dev/null when `discard`; `None` if the
    /// descriptors could not be duplicated (then nothing changed).
    pub fn divert(discard: bool) -> Option<StdoutDiverted> {
        let _ = std::io::stdout().flush();
        // SAFETY: dup/dup2/open/close on descriptors this process owns; every result is checked
        // before it is used, and the saved descriptor is restored exactly once, in Drop.
        unsafe {
            let saved = libc::dup(1);
            if saved < 0 {
                return None;
            }
            let (to, opened) = if discard {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
                (null, true)
            } else {
                (2, false)
            };
            if to < 0 || libc::dup2(to, 1) < 0 {
                libc::close(saved);
                return None;
            }
            if opened {
                libc::close(to);
            }
            Some(StdoutDiverted { saved })
        }
    }
}

impl Drop for StdoutDiverted {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        // SAFETY: `saved` is the descriptor dup'ed in `divert`, still open and owned by us.
        unsafe {
            libc::dup2(self.saved, 1);
            libc::close(self.saved);
        }
    }
}
