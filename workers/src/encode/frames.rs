//! Decoded chunks of masters kept in memory, so that the tasks of one chunk decode it once.
//!
//! A per-title decision reads each chunk of the master many times: a probe task per candidate
//! size reads it to encode and again to score, anchors do the same at the final preset, and
//! every rung's final encode reads it once more. Decoding a 1080p master is about a fifth of
//! such a run's CPU. This cache keeps the decoded frames of whole chunks (deep copies, at the
//! master's own size and layout) up to a byte budget and drops the least recently used chunk
//! first. A chunk is cached only when all its frames were read without error and it fits the
//! budget on its own; a hit gives the very frames a fresh decode gives.
//!
//! The budget is an eighth of the machine's memory, at most 2 GiB, unless
//! `RUNGS_FRAME_CACHE_MB` sets it (0 turns the cache off). Entries are keyed by the master's
//! path, size and modification time, so a master replaced on disk is decoded anew.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use ffmpeg_next::util::frame;

use super::ChunkSource;
use media::{PixelLayout, Rational, VideoFrame};

/// Which frames of which master.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    stream: usize,
    start_frame: u64,
    frames: u64,
}

impl Key {
    fn of(source: &ChunkSource) -> Option<Self> {
        let meta = std::fs::metadata(&source.path).ok()?;
        Some(Self {
            path: source.path.clone(),
            len: meta.len(),
            modified: meta.modified().ok(),
            stream: source.stream,
            start_frame: source.start_frame,
            frames: source.frames,
        })
    }
}

/// One decoded frame, owned.
struct Frame {
    picture: frame::Video,
    layout: PixelLayout,
    pts: Option<i64>,
    time_base: Rational,
}

/// The frames of one chunk, in order.
pub(super) struct Chunk {
    frames: Vec<Frame>,
    bytes: usize,
}

impl Chunk {
    /// Calls `deliver` with each frame and its index in the chunk, as the decoder gave them.
    pub(super) fn replay<E>(
        &self,
        deliver: &mut dyn FnMut(&VideoFrame<'_>, u64) -> Result<(), E>,
    ) -> Result<(), E> {
        for (i, f) in self.frames.iter().enumerate() {
            let view = VideoFrame::wrap(&f.picture, f.layout, f.pts, f.time_base);
            deliver(&view, i as u64)?;
        }
        Ok(())
    }
}

/// Copies the frames of a chunk as they are decoded; gives up (and frees them) past `limit`.
pub(super) struct Recorder {
    key: Option<Key>,
    frames: Vec<Frame>,
    bytes: usize,
    limit: usize,
}

impl Recorder {
    /// Keeps a copy of `frame`, unless the chunk has outgrown the budget.
    pub(super) fn record(&mut self, frame: &VideoFrame<'_>) {
        if self.key.is_none() {
            return;
        }
        let picture = frame.ffmpeg_frame().clone();
        let bytes: usize = (0..picture.planes()).map(|p| picture.data(p).len()).sum();
        self.bytes += bytes;
        if self.bytes > self.limit {
            self.key = None;
            self.frames = Vec::new();
            return;
        }
        self.frames.push(Frame {
            picture,
            layout: frame.layout(),
            pts: frame.pts,
            time_base: frame.time_base,
        });
    }

    /// Stores the chunk read whole.
    pub(super) fn finish(self) {
        let Some(key) = self.key else {
            return;
        };
        if self.frames.len() as u64 != key.frames {
            return;
        }
        let chunk = Arc::new(Chunk {
            frames: self.frames,
            bytes: self.bytes,
        });
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(key, chunk);
    }
}

thread_local! {
    static BYPASS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's chunk reads decoded from the master, neither served from nor
/// stored in memory: for checks of the decoding itself.
pub fn decoding_uncached<T>(f: impl FnOnce() -> T) -> T {
    let before = BYPASS.with(|b| b.replace(true));
    let out = f();
    BYPASS.with(|b| b.set(before));
    out
}

/// The chunk of `source` if it is cached, or a recorder to cache it while it is decoded.
pub(super) fn lookup(source: &ChunkSource) -> Result<Arc<Chunk>, Recorder> {
    let key = Key::of(source).filter(|_| !BYPASS.with(Cell::get));
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    let limit = cache.budget;
    if let Some(k) = &key
        && let Some(chunk) = cache.take(k)
    {
        HITS.fetch_add(1, Ordering::Relaxed);
        return Ok(chunk);
    }
    MISSES.fetch_add(1, Ordering::Relaxed);
    Err(Recorder {
        key: key.filter(|_| limit > 0),
        frames: Vec::new(),
        bytes: 0,
        limit,
    })
}

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// Chunk reads served from memory and decoded, since the process started.
pub fn frame_cache_stats() -> (u64, u64) {
    (HITS.load(Ordering::Relaxed), MISSES.load(Ordering::Relaxed))
}

/// Least recently used last.
struct Cache {
    budget: usize,
    used: usize,
    entries: Vec<(Key, Arc<Chunk>)>,
}

impl Cache {
    /// The chunk under `key`, now the most recently used.
    fn take(&mut self, key: &Key) -> Option<Arc<Chunk>> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(at);
        let chunk = entry.1.clone();
        self.entries.insert(0, entry);
        Some(chunk)
    }

    fn insert(&mut self, key: Key, chunk: Arc<Chunk>) {
        if chunk.bytes > self.budget || self.entries.iter().any(|(k, _)| *k == key) {
            return;
        }
        while self.used + chunk.bytes > self.budget {
            let Some((_, old)) = self.entries.pop() else {
                break;
            };
            self.used -= old.bytes;
        }
        self.used += chunk.bytes;
        self.entries.insert(0, (key, chunk));
    }
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        Mutex::new(Cache {
            budget: budget(),
            used: 0,
            entries: Vec::new(),
        })
    })
}

/// `RUNGS_FRAME_CACHE_MB`, or an eighth of the machine's memory up to 2 GiB.
fn budget() -> usize {
    const MB: usize = 1 << 20;
    if let Some(mb) = std::env::var("RUNGS_FRAME_CACHE_MB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return mb.saturating_mul(MB);
    }
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(0, |kb| kb.saturating_mul(1024));
    (total / 8).min(2048 * MB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(start: u64) -> Key {
        Key {
            path: "m.mp4".into(),
            len: 1,
            modified: None,
            stream: 0,
            start_frame: start,
            frames: 1,
        }
    }

    fn chunk(bytes: usize) -> Arc<Chunk> {
        Arc::new(Chunk {
            frames: Vec::new(),
            bytes,
        })
    }

    #[test]
    fn the_least_recently_used_chunk_goes_first_and_nothing_outgrows_the_budget() {
        let mut c = Cache {
            budget: 10,
            used: 0,
            entries: Vec::new(),
        };
        c.insert(key(0), chunk(4));
        c.insert(key(1), chunk(4));
        assert!(c.take(&key(0)).is_some());
        // Chunk 1 is now the least recently used: it makes room for chunk 2.
        c.insert(key(2), chunk(4));
        assert!(c.take(&key(1)).is_none());
        assert!(c.take(&key(0)).is_some() && c.take(&key(2)).is_some());
        assert_eq!(c.used, 8);
        // Larger than the whole budget: not kept, and nothing is evicted for it.
        c.insert(key(3), chunk(11));
        assert!(c.take(&key(3)).is_none());
        assert_eq!((c.used, c.entries.len()), (8, 2));
    }
}
