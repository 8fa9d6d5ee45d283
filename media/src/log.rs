//! FFmpeg's log, routed into `tracing`, with per-decoder capture.
//!
//! FFmpeg logs through one process-wide callback. Messages logged against a codec context whose
//! `opaque` field holds a capture token are also kept for that decoder, so a corrupt frame can
//! be reported with the decoder's own words. Frame-threaded decoders copy `opaque` into their
//! worker contexts, so their messages are caught too.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use ffmpeg_next::ffi;

/// The most lines one capture keeps between drains; later lines are only counted.
const MAX_LINES: usize = 64;

static INIT: Once = Once::new();
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);
static CAPTURES: Mutex<BTreeMap<usize, Captured>> = Mutex::new(BTreeMap::new());

#[derive(Default)]
struct Captured {
    lines: Vec<String>,
    dropped: usize,
}

pub(crate) fn init() {
    INIT.call_once(|| {
        // Registration is a no-op in FFmpeg 5 but keeps older libraries working.
        let _ = ffmpeg_next::init();
        // SAFETY: installing a callback with the exact signature FFmpeg expects; the callback
        // never unwinds across the FFI boundary (it catches panics).
        unsafe {
            ffi::av_log_set_level(ffi::AV_LOG_VERBOSE);
            ffi::av_log_set_callback(Some(callback));
        }
    });
}

/// A capture of the messages one decoder logs. Dropping it stops the capture.
pub(crate) struct LogCapture {
    token: usize,
}

impl LogCapture {
    pub(crate) fn new() -> Self {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        lock().insert(token, Captured::default());
        Self { token }
    }

    /// The value to store in `AVCodecContext::opaque`.
    pub(crate) fn token(&self) -> *mut c_void {
        self.token as *mut c_void
    }

    /// Takes the error and warning lines logged since the last drain.
    pub(crate) fn drain(&self) -> Vec<String> {
        let mut map = lock();
        let Some(c) = map.get_mut(&self.token) else {
            return Vec::new();
        };
        let mut lines = std::mem::take(&mut c.lines);
        if c.dropped > 0 {
            lines.push(format!("... and {} more decoder messages", c.dropped));
            c.dropped = 0;
        }
        lines
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        lock().remove(&self.token);
    }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<usize, Captured>> {
    CAPTURES.lock().unwrap_or_else(|e| e.into_inner())
}

unsafe extern "C" fn callback(
    ptr: *mut c_void,
    level: c_int,
    fmt: *const c_char,
    vl: *mut ffi::__va_list_tag,
) {
    if level > ffi::AV_LOG_VERBOSE {
        return;
    }
    let mut buf = [0 as c_char; 1024];
    let mut print_prefix: c_int = 1;
    // SAFETY: FFmpeg hands us a valid format string and va_list for this call; the buffer is
    // large enough and av_log_format_line2 always NUL-terminates within line_size.
    let line = unsafe {
        ffi::av_log_format_line2(
            ptr,
            level,
            fmt,
            vl,
            buf.as_mut_ptr(),
            buf.len() as c_int,
            &mut print_prefix,
        );
        CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .trim_end()
            .to_owned()
    };
    if line.is_empty() {
        return;
    }
    // SAFETY: `ptr` is either null or points to a struct whose first member is an AVClass
    // pointer (FFmpeg's logging convention); we only read `opaque` when that class is the codec
    // context class, which guarantees the pointee is an AVCodecContext.
    let token = unsafe { codec_token(ptr) };
    let _ = std::panic::catch_unwind(|| {
        if level <= ffi::AV_LOG_WARNING
            && let Some(token) = token
            && let Some(c) = lock().get_mut(&token)
        {
            if c.lines.len() < MAX_LINES {
                c.lines.push(line.clone());
            } else {
                c.dropped += 1;
            }
        }
        match level {
            l if l <= ffi::AV_LOG_WARNING => tracing::debug!(target: "ffmpeg", "{line}"),
            _ => tracing::trace!(target: "ffmpeg", "{line}"),
        }
    });
}

unsafe fn codec_token(ptr: *mut c_void) -> Option<usize> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: see the caller; the first member of a logging context is its AVClass pointer.
    unsafe {
        let class = *(ptr as *const *const ffi::AVClass);
        if class.is_null() || class != ffi::avcodec_get_class() {
            return None;
        }
        let ctx = ptr as *const ffi::AVCodecContext;
        let token = (*ctx).opaque as usize;
        (token != 0).then_some(token)
    }
}
