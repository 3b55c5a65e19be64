//! Stopping `whiten live` on Ctrl-C (SIGINT) or SIGTERM: the main thread looks for the signal
//! between two reports, so the streams are closed and the last report printed before exit.

use std::time::Duration;

#[cfg(not(target_os = "linux"))]
use std::sync::atomic::{AtomicBool, Ordering};

/// SIGINT and SIGTERM, blocked in this thread and in every thread started while it lives (the
/// audio threads inherit the mask), and taken synchronously by [`StopSignals::wait`]. With a
/// handler instead, a signal could land in a JACK client thread and interrupt its wait for
/// the server, which then stalls the shutdown for the client timeout.
#[cfg(target_os = "linux")]
pub(super) struct StopSignals {
    /// SIGINT and SIGTERM: the signals blocked and waited for.
    set: libc::sigset_t,
    /// The thread's mask before, restored on drop.
    old: libc::sigset_t,
}

#[cfg(target_os = "linux")]
impl StopSignals {
    /// Block SIGINT and SIGTERM in this thread; before any audio thread exists, so that they
    /// all inherit the mask.
    pub(super) fn block() -> Self {
        // SAFETY: sigset_t is plain data initialised by sigemptyset; pthread_sigmask only
        // changes this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            Self { set, old }
        }
    }

    /// Wait up to `timeout` for SIGINT or SIGTERM; `true` if one came.
    pub(super) fn wait(&self, timeout: Duration) -> bool {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: valid pointers to a signal set and a timespec; no siginfo requested.
        unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) > 0 }
    }
}

#[cfg(target_os = "linux")]
impl Drop for StopSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `block`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// Elsewhere: a handler that sets a flag.
#[cfg(not(target_os = "linux"))]
pub(super) struct StopSignals;

#[cfg(not(target_os = "linux"))]
static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(not(target_os = "linux"))]
extern "C" fn on_stop_signal(_: libc::c_int) {
    // Async-signal-safe: a single atomic store.
    STOP.store(true, Ordering::SeqCst);
}

#[cfg(not(target_os = "linux"))]
impl StopSignals {
    pub(super) fn block() -> Self {
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
        StopSignals
    }

    pub(super) fn wait(&self, timeout: Duration) -> bool {
        std::thread::sleep(timeout);
        STOP.load(Ordering::SeqCst)
    }
}
