//! Reading exactly the frames of one chunk from the master.
//!
//! With timestamps, the demuxer seeks to the keyframe at or before the chunk's first frame and
//! frames are selected by presentation timestamp, so nothing depends on how many frames the
//! seek skipped. When the master has no timestamps, or the seek lands past the chunk (some
//! containers index coarsely), the chunk is read from the start of the file by counting frames,
//! which is slower but exact.
//!
//! A worker thread keeps its reader open after a chunk. When its next task starts where the
//! last one ended (the next chunk of the same master, as a worker that takes tasks in order
//! gets), it goes on decoding from there: no reopening, no seek, and no decoding of the frames
//! between the keyframe and the chunk start a second time. The frames are the same either way.

use std::cell::RefCell;
use std::path::PathBuf;

use ffmpeg_next::util::frame;

use super::{ChunkSource, EncodeError, EncodeSettings, frames};
use media::{
    Chroma, DecoderOptions, Demuxer, PixelLayout, Resizer, ScaleFilter, VideoDecoder, VideoFrame,
};

/// Where the reader starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Seek, then select by timestamp.
    Seek(i64),
    /// From the first frame, counting.
    Count,
}

/// An open master, positioned after the last frame a chunk took.
struct Reader {
    path: PathBuf,
    stream: usize,
    threads: usize,
    demuxer: Demuxer,
    decoder: VideoDecoder,
    eof: bool,
    /// Index of the next frame the decoder will give (when known).
    next_frame: Option<u64>,
    /// Timestamp of the last frame given.
    last_pts: Option<i64>,
}

thread_local! {
    static OPEN: RefCell<Option<Reader>> = const { RefCell::new(None) };
}

/// Calls `sink` with each frame of the chunk, scaled to the settings' size and depth, and its
/// index within the chunk.
pub(super) fn read(
    source: &ChunkSource,
    settings: &EncodeSettings,
    sink: &mut dyn FnMut(&mut frame::Video, u64) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let layout = PixelLayout {
        chroma: Chroma::Cs420,
        bit_depth: settings.bit_depth,
    };
    let mut resizer = Resizer::new(
        settings.width,
        settings.height,
        layout,
        ScaleFilter::Lanczos,
    );
    // The stream's colour description, not each frame's: frames of one master may disagree
    // (a ProRes master tagged BT.709 on some frames only), and every chunk of a rung must
    // carry the same one, or the chunks cannot be joined.
    let colors = Demuxer::open(&source.path)?.stream_color(source.stream)?;
    let mut deliver = |frame: &VideoFrame<'_>, index: u64| {
        let scaled = resizer.scale(frame)?;
        // SAFETY: `scaled` is the resizer's own frame; these are plain fields.
        unsafe {
            let raw = &mut *scaled.as_mut_ptr();
            raw.color_range = colors.0;
            raw.color_primaries = colors.1;
            raw.color_trc = colors.2;
            raw.colorspace = colors.3;
            raw.chroma_location = colors.4;
        }
        sink(scaled, index)
    };
    read_frames(source, &mut deliver)
}

/// Calls `deliver` with each frame of the chunk as the master's decoder gives it, and its index
/// within the chunk: from memory when the chunk was read lately (see [`frames`]).
pub(crate) fn read_frames(
    source: &ChunkSource,
    deliver: &mut dyn FnMut(&VideoFrame<'_>, u64) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut recorder = match frames::lookup(source) {
        Ok(chunk) => return chunk.replay(deliver),
        Err(recorder) => recorder,
    };
    decode_frames(source, &mut |frame, index| {
        recorder.record(frame);
        deliver(frame, index)
    })?;
    recorder.finish();
    Ok(())
}

/// [`read_frames`] from the master itself.
fn decode_frames(
    source: &ChunkSource,
    deliver: &mut dyn FnMut(&VideoFrame<'_>, u64) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    // Go on from where this thread's last chunk ended, if it ended right before this one.
    let carried = OPEN.with(|o| o.borrow_mut().take()).filter(|r| {
        r.path == source.path
            && r.stream == source.stream
            && r.threads == source.decoder_threads
            && r.next_frame == Some(source.start_frame)
    });
    let start = match source.start_pts {
        Some(pts) if source.start_frame > 0 => Start::Seek(pts),
        _ => Start::Count,
    };
    let mut reader = match carried {
        Some(r) => r,
        None => open(source, start)?,
    };
    let continuing = reader.next_frame == Some(source.start_frame) && reader.last_pts.is_some();
    let outcome = take(&mut reader, source, start, continuing, deliver)?;
    let outcome = match outcome {
        Outcome::Overshot(first) => {
            tracing::debug!(first, "seek landed past the chunk; reading from the start");
            let mut fresh = open(source, Start::Count)?;
            let o = take(&mut fresh, source, Start::Count, false, deliver)?;
            reader = fresh;
            o
        }
        done => done,
    };
    debug_assert!(matches!(outcome, Outcome::Done));
    OPEN.with(|o| *o.borrow_mut() = Some(reader));
    Ok(())
}

fn open(source: &ChunkSource, start: Start) -> Result<Reader, EncodeError> {
    let mut demuxer = Demuxer::open(&source.path)?;
    if let Start::Seek(pts) = start {
        demuxer.seek(source.stream, pts)?;
    }
    let options = DecoderOptions {
        threads: source.decoder_threads,
    };
    let decoder = demuxer.video_decoder(source.stream, &options)?;
    Ok(Reader {
        path: source.path.clone(),
        stream: source.stream,
        threads: source.decoder_threads,
        demuxer,
        decoder,
        eof: false,
        next_frame: match start {
            Start::Count => Some(0),
            Start::Seek(_) => None,
        },
        last_pts: None,
    })
}

enum Outcome {
    Done,
    /// The first frame after the seek came after the chunk's start (its pts).
    Overshot(i64),
}

/// Takes the chunk's frames from `reader`. `continuing` means the reader stands right before
/// the chunk's first frame, so every frame it gives belongs to the chunk.
fn take(
    reader: &mut Reader,
    source: &ChunkSource,
    start: Start,
    continuing: bool,
    deliver: &mut dyn FnMut(&VideoFrame<'_>, u64) -> Result<(), EncodeError>,
) -> Result<Outcome, EncodeError> {
    let mut t = Taking {
        source,
        start,
        continuing,
        taken: 0,
    };
    loop {
        // Frames the decoder already holds come first (a reader carried over from the last
        // chunk may have some).
        let mut got_any = false;
        while let Some(frame) = reader.decoder.receive()? {
            got_any = true;
            let verdict = t.verdict(reader.next_frame, frame.pts)?;
            if let Verdict::Overshot(pts) = verdict {
                return Ok(Outcome::Overshot(pts));
            }
            if let Some(n) = reader.next_frame.as_mut() {
                *n += 1;
            }
            if verdict == Verdict::Skip {
                continue;
            }
            t.check_timestamp(reader.last_pts, frame.pts)?;
            reader.last_pts = frame.pts;
            deliver(&frame, t.taken)?;
            t.taken += 1;
            if t.taken == source.frames {
                reader.next_frame = Some(source.start_frame + source.frames);
                return Ok(Outcome::Done);
            }
        }
        if reader.eof {
            if !got_any {
                return Err(t.fail(format!(
                    "the master ended after {} of the chunk's {} frames",
                    t.taken, source.frames
                )));
            }
            continue;
        }
        t.read_packet(reader)?;
    }
}

/// What becomes of a frame the decoder gives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// It belongs to the chunk.
    Take,
    /// It comes before the chunk.
    Skip,
    /// The first frame after the seek comes after the chunk's start (its pts).
    Overshot(i64),
}

/// The state of [`take`]: which frames belong to the chunk, and how many it has.
struct Taking<'a> {
    source: &'a ChunkSource,
    start: Start,
    continuing: bool,
    /// Frames delivered so far.
    taken: u64,
}

impl Taking<'_> {
    fn fail(&self, reason: String) -> EncodeError {
        EncodeError::Source {
            start_frame: self.source.start_frame,
            reason,
        }
    }

    /// Whether the frame the decoder gives as its `index`th (when counted), at `pts`, belongs
    /// to the chunk.
    fn verdict(&self, index: Option<u64>, pts: Option<i64>) -> Result<Verdict, EncodeError> {
        let wanted = if self.continuing {
            true
        } else {
            match self.start {
                Start::Count => index.unwrap_or(0) >= self.source.start_frame,
                Start::Seek(target) => {
                    let pts = pts.ok_or_else(|| {
                        self.fail("a frame without a timestamp after seeking".into())
                    })?;
                    if self.taken == 0 && pts > target {
                        return Ok(Verdict::Overshot(pts));
                    }
                    pts >= target
                }
            }
        };
        Ok(if wanted { Verdict::Take } else { Verdict::Skip })
    }

    /// Timestamps of the chunk's frames rise, and the first is where the plan says.
    fn check_timestamp(&self, last: Option<i64>, pts: Option<i64>) -> Result<(), EncodeError> {
        let source = self.source;
        if let (Some(prev), Some(pts)) = (last, pts)
            && pts <= prev
        {
            return Err(self.fail(format!(
                "timestamps go backwards ({pts} after {prev}) at frame {}",
                source.start_frame + self.taken
            )));
        }
        if self.taken == 0
            && let (Some(expected), Some(pts)) = (source.start_pts, pts)
            && source.start_frame > 0
            && pts != expected
        {
            return Err(self.fail(format!(
                "the chunk's first frame has timestamp {pts}, the plan says {expected}"
            )));
        }
        Ok(())
    }

    /// Gives the decoder the master's next packet of the stream, or its end.
    fn read_packet(&self, reader: &mut Reader) -> Result<(), EncodeError> {
        let source = self.source;
        match reader.demuxer.read() {
            Ok(Some(packet)) if packet.stream() == source.stream => {
                // Before the chunk, frames nothing refers to need not be decoded at all: with a
                // long-GOP master this roughly halves the decoding between the keyframe and the
                // chunk start. Only with one decoder thread, where the setting is exact.
                if let (Start::Seek(target), false, 1) =
                    (self.start, self.continuing, source.decoder_threads)
                {
                    reader
                        .decoder
                        .skip_unreferenced(packet.pts().is_some_and(|p| p < target));
                }
                reader.decoder.send(&packet)?
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                reader.decoder.send_eof()?;
                reader.eof = true;
            }
            Err(e) if e.is_recoverable() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}
