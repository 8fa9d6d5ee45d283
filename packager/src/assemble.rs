//! Assembly: the encoded chunks of one rendition joined into one continuous stream, with no
//! re-encode.
//!
//! Each chunk's timestamps count frames from its own start; assembly offsets them by the
//! chunk's first frame in the master, so the rendition's timeline is the master's frame
//! clock exactly: frame `n` is presented at `n / rate` whatever the chunking, and nothing can
//! drift (the failure behind Av1an's issues 250, 475 and 734, where chunk durations were
//! summed in rounded container units). Every check that could make the result wrong is made
//! before the file is renamed into place.

use std::path::{Path, PathBuf};

use media::chunk::{EncodedChunk, StreamParams};
use media::{MediaError, Rational, VideoMuxer};

/// One chunk of the plan: where it starts in the master and how many frames it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// First frame, in presentation order.
    pub start_frame: u64,
    /// Frames.
    pub frames: u64,
}

/// What assembly wrote.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Assembled {
    /// The rendition file.
    pub path: PathBuf,
    /// Frames written.
    pub frames: u64,
    /// Frames divided by the rate.
    pub duration_seconds: f64,
    /// Bytes of compressed video (the file is slightly larger: container overhead).
    pub video_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Average video bit rate.
    pub average_kbps: f64,
    /// The highest bit rate of any keyframe-to-keyframe span (a segment, when packaged).
    pub peak_kbps: f64,
    /// Frame numbers of the keyframes.
    pub keyframes: Vec<u64>,
}

/// Why a rendition could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// A chunk could not be loaded.
    #[error("chunk {index}: {reason}")]
    Load {
        /// Chunk number.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A chunk does not fit the plan or the other chunks.
    #[error("chunk {index} (frame {start_frame}): {reason}")]
    Mismatch {
        /// Chunk number.
        index: usize,
        /// Its first frame.
        start_frame: u64,
        /// What is wrong.
        reason: String,
    },
    /// The plan itself has gaps or overlaps.
    #[error("the chunk plan is not contiguous: {0}")]
    Plan(String),
    /// Writing the file failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// Renaming the finished file into place failed.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

/// Joins the chunks of `plan`, loaded one at a time by `load`, into `out` (container by
/// extension). `out` appears whole or not at all.
pub fn assemble(
    plan: &[ChunkSpan],
    frame_rate: Rational,
    load: &mut dyn FnMut(usize) -> Result<EncodedChunk, String>,
    out: &Path,
) -> Result<Assembled, AssembleError> {
    check_plan(plan)?;
    let tmp = partial_path(out);
    let result = write(plan, frame_rate, load, &tmp, out);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let mut assembled = result?;
    std::fs::rename(&tmp, out).map_err(|error| AssembleError::Io {
        path: out.to_owned(),
        error,
    })?;
    assembled.path = out.to_owned();
    Ok(assembled)
}

fn check_plan(plan: &[ChunkSpan]) -> Result<(), AssembleError> {
    let mut next = 0;
    for (i, c) in plan.iter().enumerate() {
        if c.start_frame != next {
            return Err(AssembleError::Plan(format!(
                "chunk {i} starts at frame {} but the previous one ends at {next}",
                c.start_frame
            )));
        }
        if c.frames == 0 {
            return Err(AssembleError::Plan(format!("chunk {i} has no frames")));
        }
        next += c.frames;
    }
    if plan.is_empty() {
        return Err(AssembleError::Plan("no chunks".into()));
    }
    Ok(())
}

/// `dir/.NAME.partial.EXT`, so that the container is still chosen by the extension.
fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.partial.{ext}"))
}

fn write(
    plan: &[ChunkSpan],
    frame_rate: Rational,
    load: &mut dyn FnMut(usize) -> Result<EncodedChunk, String>,
    tmp: &Path,
    out: &Path,
) -> Result<Assembled, AssembleError> {
    let fps = frame_rate.to_f64().unwrap_or(0.0);
    // Decoding times are rebuilt with one reorder delay for the whole stream, the largest any
    // chunk needs: the k-th packet of a chunk decodes at its k-th presentation time minus the
    // delay. Encoders may use a smaller delay in a short chunk (x264 does for a chunk of one
    // frame), which would otherwise make decoding times go backwards at the next chunk. The
    // chunks are read twice for this, one at a time.
    let mut delay = 0i64;
    for index in 0..plan.len() {
        let chunk = load(index).map_err(|reason| AssembleError::Load { index, reason })?;
        for (k, p) in chunk.packets.iter().enumerate() {
            delay = delay.max(k as i64 - p.pts);
        }
    }
    let mut muxer: Option<VideoMuxer> = None;
    let mut first: Option<StreamParams> = None;
    let mut last_dts: Option<i64> = None;
    let mut keyframes = Vec::new();
    let mut video_bytes = 0u64;
    let mut span_bytes = 0u64;
    let mut peak_bits_per_frame = 0f64;
    let mut frames = 0u64;
    for (index, span) in plan.iter().enumerate() {
        let chunk = load(index).map_err(|reason| AssembleError::Load { index, reason })?;
        let mismatch = |reason: String| AssembleError::Mismatch {
            index,
            start_frame: span.start_frame,
            reason,
        };
        if chunk.frames() as u64 != span.frames {
            return Err(mismatch(format!(
                "{} frames encoded, {} planned",
                chunk.frames(),
                span.frames
            )));
        }
        let mut pts: Vec<i64> = chunk.packets.iter().map(|p| p.pts).collect();
        pts.sort_unstable();
        if pts.iter().enumerate().any(|(i, &p)| p != i as i64) {
            return Err(mismatch("its frames are not numbered 0, 1, 2, ...".into()));
        }
        if !chunk.packets[0].is_key() {
            return Err(mismatch("it does not start with a keyframe".into()));
        }
        match &first {
            None => {
                muxer = Some(VideoMuxer::create(
                    tmp,
                    &chunk.params,
                    &chunk.extradata(),
                    frame_rate,
                )?);
            }
            Some(f) if *f != chunk.params => {
                let c = &chunk.params;
                let differ: Vec<&str> = [
                    ("codec", f.codec != c.codec),
                    ("size", (f.width, f.height) != (c.width, c.height)),
                    ("pixel format", f.pixel_format != c.pixel_format),
                    ("profile", f.profile != c.profile),
                    ("level", f.level != c.level),
                    ("bit depth", f.bit_depth != c.bit_depth),
                    (
                        "sample aspect ratio",
                        f.sample_aspect_ratio != c.sample_aspect_ratio,
                    ),
                    ("colour description", f.color != c.color),
                    ("chroma location", f.chroma_location != c.chroma_location),
                    ("reordering delay", f.video_delay != c.video_delay),
                    ("decoder configuration", f.extradata != c.extradata),
                ]
                .into_iter()
                .filter_map(|(name, d)| d.then_some(name))
                .collect();
                return Err(mismatch(format!(
                    "its stream parameters differ from chunk 0's ({} {}x{} {} against {} \
                     {}x{} {}; differing: {}); the chunks were encoded with different settings",
                    c.codec,
                    c.width,
                    c.height,
                    c.pixel_format,
                    f.codec,
                    f.width,
                    f.height,
                    f.pixel_format,
                    differ.join(", ")
                )));
            }
            Some(_) => {}
        }
        let m = muxer.as_mut().expect("created with the first chunk");
        let base = span.start_frame as i64;
        for (k, p) in chunk.packets.iter().enumerate() {
            let (pts, dts) = (base + p.pts, base + k as i64 - delay);
            if let Some(prev) = last_dts
                && dts <= prev
            {
                return Err(mismatch(format!(
                    "decoding time {dts} does not follow {prev}"
                )));
            }
            last_dts = Some(dts);
            if p.is_key() {
                if !keyframes.is_empty() {
                    let prev = *keyframes.last().expect("not empty");
                    peak_bits_per_frame = peak_bits_per_frame
                        .max(span_bytes as f64 * 8.0 / (pts as u64 - prev) as f64);
                }
                keyframes.push(pts as u64);
                span_bytes = 0;
            }
            span_bytes += p.data.len() as u64;
            video_bytes += p.data.len() as u64;
            m.write(p, pts, dts)?;
        }
        frames += span.frames;
        if first.is_none() {
            first = Some(chunk.params);
        }
    }
    if let Some(&prev) = keyframes.last() {
        peak_bits_per_frame =
            peak_bits_per_frame.max(span_bytes as f64 * 8.0 / (frames - prev).max(1) as f64);
    }
    muxer.expect("at least one chunk").finish()?;
    let file_bytes = std::fs::metadata(tmp)
        .map_err(|error| AssembleError::Io {
            path: out.to_owned(),
            error,
        })?
        .len();
    let duration_seconds = if fps > 0.0 { frames as f64 / fps } else { 0.0 };
    Ok(Assembled {
        path: out.to_owned(),
        frames,
        duration_seconds,
        video_bytes,
        file_bytes,
        average_kbps: if duration_seconds > 0.0 {
            video_bytes as f64 * 8.0 / duration_seconds / 1000.0
        } else {
            0.0
        },
        peak_kbps: peak_bits_per_frame * fps / 1000.0,
        keyframes,
    })
}
