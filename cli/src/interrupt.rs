//! Stopping cleanly on a signal: the first one sets [`STOP`] (running tasks finish, no new one
//! starts, the work is kept); the second one ends the process at once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first signal.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// What the first signal prints.
static MESSAGE: OnceLock<&'static [u8]> = OnceLock::new();

extern "C" fn on_signal(signal: libc::c_int) {
    if STOP.swap(true, Ordering::AcqRel) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
    if let Some(msg) = MESSAGE.get() {
        // SAFETY: write(2) is async-signal-safe; the buffer is static.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    }
}

/// Handles `signals`, printing `message` on the first one.
pub fn install(signals: &[libc::c_int], message: &'static [u8]) {
    let _ = MESSAGE.set(message);
    for &s in signals {
        // SAFETY: installs a handler that only touches atomics and async-signal-safe calls.
        unsafe {
            libc::signal(s, on_signal as *const () as libc::sighandler_t);
        }
    }
}
