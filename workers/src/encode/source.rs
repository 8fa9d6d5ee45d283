//! Reading exactly the frames of one chunk from the master.
//!
//! With timestamps, the demuxer seeks to the keyframe at or before the chunk's first frame and
//! frames are selected by presentation timestamp, so nothing depends on how many frames the
//! seek skipped. When the master has no timestamps, or the seek lands past the chunk (some
//! containers index coarsely), the chunk is read from the start of the file by counting frames,
//! which is slower but exact.

use ffmpeg_next::util::frame;

use super::{ChunkSource, EncodeError, EncodeSettings};
use crate::media::{
    Chroma, DecoderOptions, Demuxer, PixelLayout, Resizer, ScaleFilter, VideoFrame,
};

/// Where the reader starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Seek, then select by timestamp.
    Seek(i64),
    /// From the first frame, counting.
    Count,
}

/// Calls `sink` with each frame of the chunk, scaled to the settings' size and depth, and its
/// index within the chunk.
pub(super) fn read(
    source: &ChunkSource,
    settings: &EncodeSettings,
    sink: &mut dyn FnMut(&mut frame::Video, u64) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = match source.start_pts {
        Some(pts) if source.start_frame > 0 => Start::Seek(pts),
        _ => Start::Count,
    };
    match read_from(source, settings, start, sink)? {
        Outcome::Done => Ok(()),
        Outcome::Overshot(first) => {
            tracing::debug!(first, "seek landed past the chunk; reading from the start");
            match read_from(source, settings, Start::Count, sink)? {
                Outcome::Done => Ok(()),
                Outcome::Overshot(_) => unreachable!("counting never overshoots"),
            }
        }
    }
}

enum Outcome {
    Done,
    /// The first frame after the seek came after the chunk's start (its pts).
    Overshot(i64),
}

fn read_from(
    source: &ChunkSource,
    settings: &EncodeSettings,
    start: Start,
    sink: &mut dyn FnMut(&mut frame::Video, u64) -> Result<(), EncodeError>,
) -> Result<Outcome, EncodeError> {
    let fail = |reason: String| EncodeError::Source {
        start_frame: source.start_frame,
        reason,
    };
    let mut demuxer = Demuxer::open(&source.path)?;
    if let Start::Seek(pts) = start {
        demuxer.seek(source.stream, pts)?;
    }
    let options = DecoderOptions {
        threads: source.decoder_threads,
    };
    let mut decoder = demuxer.video_decoder(source.stream, &options)?;
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
    let mut seen = 0u64; // frames decoded (Count) since the start of the file
    let mut taken = 0u64;
    let mut last_pts: Option<i64> = None;
    let mut eof = false;
    loop {
        if !eof {
            match demuxer.read() {
                Ok(Some(packet)) if packet.stream() == source.stream => decoder.send(&packet)?,
                Ok(Some(_)) => continue,
                Ok(None) => {
                    decoder.send_eof()?;
                    eof = true;
                }
                Err(e) if e.is_recoverable() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let mut got_any = false;
        while let Some(frame) = decoder.receive()? {
            got_any = true;
            let wanted = match start {
                Start::Count => {
                    seen += 1;
                    seen > source.start_frame
                }
                Start::Seek(target) => {
                    let pts = frame
                        .pts
                        .ok_or_else(|| fail("a frame without a timestamp after seeking".into()))?;
                    if taken == 0 && pts > target {
                        return Ok(Outcome::Overshot(pts));
                    }
                    pts >= target
                }
            };
            if !wanted {
                continue;
            }
            if let (Some(prev), Some(pts)) = (last_pts, frame.pts)
                && pts <= prev
            {
                return Err(fail(format!(
                    "timestamps go backwards ({pts} after {prev}) at frame {}",
                    source.start_frame + taken
                )));
            }
            last_pts = frame.pts;
            deliver(&mut resizer, &frame, taken, sink)?;
            taken += 1;
            if taken == source.frames {
                return Ok(Outcome::Done);
            }
        }
        if eof && !got_any {
            return Err(fail(format!(
                "the master ended after {taken} of the chunk's {} frames",
                source.frames
            )));
        }
    }
}

fn deliver(
    resizer: &mut Resizer,
    frame: &VideoFrame<'_>,
    index: u64,
    sink: &mut dyn FnMut(&mut frame::Video, u64) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let colors = frame.color_properties();
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
}
