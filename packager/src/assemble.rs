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
    #[error("chunk {index}: {source}")]
    Load {
        /// Chunk number.
        index: usize,
        /// Why, as the loader said.
        source: LoadError,
    },
    /// A chunk does not fit the plan or the other chunks.
    #[error("chunk {index} (frame {start_frame}): {reason}")]
    Mismatch {
        /// Chunk number.
        index: usize,
        /// Its first frame.
        start_frame: u64,
        /// What is wrong.
        #[source]
        reason: ChunkMismatch,
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

/// Why a chunk could not be loaded: whatever the caller's loader met (a store, a decode).
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

/// Loads chunk `index` of the plan.
pub type Loader<'a> = dyn FnMut(usize) -> Result<EncodedChunk, LoadError> + 'a;

/// What is wrong with one chunk.
#[derive(Debug, thiserror::Error)]
pub enum ChunkMismatch {
    /// Another number of frames than planned.
    #[error("{encoded} frames encoded, {planned} planned")]
    Frames {
        /// Frames in the chunk.
        encoded: u64,
        /// Frames in the plan.
        planned: u64,
    },
    /// Presentation times that are not 0, 1, 2...
    #[error("its frames are not numbered 0, 1, 2, ...")]
    Numbering,
    /// A timestamp that leaves the range of the title's time line.
    #[error("packet {frame}'s time {pts} falls outside the title's time line")]
    Timestamp {
        /// The packet's index in the chunk.
        frame: usize,
        /// Its presentation time in the chunk.
        pts: i64,
    },
    /// The first packet is not a keyframe.
    #[error("it does not start with a keyframe")]
    NoKeyframe,
    /// Other stream parameters than the first chunk's.
    #[error(
        "its stream parameters differ from chunk 0's ({} {}x{} {} against {} {}x{} {}; \
         differing: {}); the chunks were encoded with different settings",
        .ours.codec, .ours.width, .ours.height, .ours.pixel_format,
        .first.codec, .first.width, .first.height, .first.pixel_format,
        differing(.first, .ours).join(", ")
    )]
    Params {
        /// The first chunk's.
        first: Box<StreamParams>,
        /// This chunk's.
        ours: Box<StreamParams>,
    },
    /// A decoding time that does not follow the previous one.
    #[error("decoding time {dts} does not follow {prev}")]
    Dts {
        /// This packet's, on the stream's clock.
        dts: i64,
        /// The previous packet's.
        prev: i64,
    },
}

/// Joins the chunks of `plan`, loaded one at a time by `load`, into `out` (container by
/// extension). `out` appears whole or not at all.
pub fn assemble(
    plan: &[ChunkSpan],
    frame_rate: Rational,
    load: &mut Loader<'_>,
    out: &Path,
) -> Result<Assembled, AssembleError> {
    check_plan(plan)?;
    let tmp = store::fsutil::partial_path(out);
    let result = write(plan, frame_rate, load, &tmp, out);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let mut assembled = result?;
    let io = |error| AssembleError::Io {
        path: out.to_owned(),
        error,
    };
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, out).map_err(io)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        store::fsutil::sync_dir(dir).map_err(io)?;
    }
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

fn write(
    plan: &[ChunkSpan],
    frame_rate: Rational,
    load: &mut Loader<'_>,
    tmp: &Path,
    out: &Path,
) -> Result<Assembled, AssembleError> {
    let mut joiner = Joiner::new(tmp, frame_rate, reorder_delay(plan.len(), load)?);
    for (index, span) in plan.iter().enumerate() {
        let chunk = load(index).map_err(|source| AssembleError::Load { index, source })?;
        joiner.add(index, span, chunk)?;
    }
    joiner.finish(out)
}

/// The one reorder delay decoding times are rebuilt with, the largest any chunk needs: the
/// k-th packet of a chunk decodes at its k-th presentation time minus the delay. Encoders may
/// use a smaller delay in a short chunk (x264 does for a chunk of one frame), which would
/// otherwise make decoding times go backwards at the next chunk. The chunks are read twice for
/// this, one at a time.
fn reorder_delay(chunks: usize, load: &mut Loader<'_>) -> Result<i64, AssembleError> {
    let mut delay = 0i64;
    for index in 0..chunks {
        let chunk = load(index).map_err(|source| AssembleError::Load { index, source })?;
        for (k, p) in chunk.packets.iter().enumerate() {
            delay = delay.max(k as i64 - p.pts);
        }
    }
    Ok(delay)
}

/// Checks a chunk on its own: its frame count, numbering and first keyframe.
fn check_chunk(span: &ChunkSpan, chunk: &EncodedChunk) -> Result<(), ChunkMismatch> {
    if chunk.frames() as u64 != span.frames {
        return Err(ChunkMismatch::Frames {
            encoded: chunk.frames() as u64,
            planned: span.frames,
        });
    }
    let mut pts: Vec<i64> = chunk.packets.iter().map(|p| p.pts).collect();
    pts.sort_unstable();
    if pts.iter().enumerate().any(|(i, &p)| p != i as i64) {
        return Err(ChunkMismatch::Numbering);
    }
    if !chunk.packets[0].is_key() {
        return Err(ChunkMismatch::NoKeyframe);
    }
    Ok(())
}

/// The names of the stream parameters that differ between `a` and `b`.
fn differing(a: &StreamParams, b: &StreamParams) -> Vec<&'static str> {
    [
        ("codec", a.codec != b.codec),
        ("size", (a.width, a.height) != (b.width, b.height)),
        ("pixel format", a.pixel_format != b.pixel_format),
        ("profile", a.profile != b.profile),
        ("level", a.level != b.level),
        ("bit depth", a.bit_depth != b.bit_depth),
        (
            "sample aspect ratio",
            a.sample_aspect_ratio != b.sample_aspect_ratio,
        ),
        ("colour description", a.color != b.color),
        ("chroma location", a.chroma_location != b.chroma_location),
        ("reordering delay", a.video_delay != b.video_delay),
        ("decoder configuration", a.extradata != b.extradata),
    ]
    .into_iter()
    .filter_map(|(name, d)| d.then_some(name))
    .collect()
}

/// The stream being written: the muxer (opened with the first chunk's parameters) and what is
/// measured on the way.
struct Joiner<'a> {
    tmp: &'a Path,
    frame_rate: Rational,
    /// The reorder delay of the whole stream.
    delay: i64,
    muxer: Option<VideoMuxer>,
    /// The first chunk's parameters, which every chunk must have.
    first: Option<StreamParams>,
    last_dts: Option<i64>,
    keyframes: Vec<u64>,
    video_bytes: u64,
    /// Bytes since the last keyframe.
    span_bytes: u64,
    peak_bits_per_frame: f64,
    frames: u64,
}

impl<'a> Joiner<'a> {
    fn new(tmp: &'a Path, frame_rate: Rational, delay: i64) -> Self {
        Self {
            tmp,
            frame_rate,
            delay,
            muxer: None,
            first: None,
            last_dts: None,
            keyframes: Vec::new(),
            video_bytes: 0,
            span_bytes: 0,
            peak_bits_per_frame: 0.0,
            frames: 0,
        }
    }

    /// Checks a chunk against the plan and the first chunk, then writes its packets on the
    /// master's frame clock.
    fn add(
        &mut self,
        index: usize,
        span: &ChunkSpan,
        chunk: EncodedChunk,
    ) -> Result<(), AssembleError> {
        let mismatch = |reason| AssembleError::Mismatch {
            index,
            start_frame: span.start_frame,
            reason,
        };
        check_chunk(span, &chunk).map_err(mismatch)?;
        match &self.first {
            None => {
                self.muxer = Some(VideoMuxer::create(
                    self.tmp,
                    &chunk.params,
                    &chunk.extradata(),
                    self.frame_rate,
                )?);
            }
            Some(f) if *f != chunk.params => {
                return Err(mismatch(ChunkMismatch::Params {
                    first: Box::new(f.clone()),
                    ours: Box::new(chunk.params),
                }));
            }
            Some(_) => {}
        }
        let m = self.muxer.as_mut().expect("created with the first chunk");
        let base = span.start_frame as i64;
        for (k, p) in chunk.packets.iter().enumerate() {
            let (Some(pts), Some(dts)) = (
                base.checked_add(p.pts),
                (k as i64)
                    .checked_add(base)
                    .and_then(|d| d.checked_sub(self.delay)),
            ) else {
                return Err(mismatch(ChunkMismatch::Timestamp {
                    frame: k,
                    pts: p.pts,
                }));
            };
            if let Some(prev) = self.last_dts
                && dts <= prev
            {
                return Err(mismatch(ChunkMismatch::Dts { dts, prev }));
            }
            self.last_dts = Some(dts);
            if p.is_key() {
                if let Some(&prev) = self.keyframes.last() {
                    self.peak_bits_per_frame = self.peak_bits_per_frame.max(
                        self.span_bytes as f64 * 8.0
                            / (pts as u64).saturating_sub(prev).max(1) as f64,
                    );
                }
                self.keyframes.push(pts as u64);
                self.span_bytes = 0;
            }
            self.span_bytes += p.data.len() as u64;
            self.video_bytes += p.data.len() as u64;
            m.write(p, pts, dts)?;
        }
        self.frames += span.frames;
        if self.first.is_none() {
            self.first = Some(chunk.params);
        }
        Ok(())
    }

    /// Closes the file and sums up what was written.
    fn finish(mut self, out: &Path) -> Result<Assembled, AssembleError> {
        if let Some(&prev) = self.keyframes.last() {
            self.peak_bits_per_frame = self
                .peak_bits_per_frame
                .max(self.span_bytes as f64 * 8.0 / (self.frames - prev).max(1) as f64);
        }
        self.muxer.expect("at least one chunk").finish()?;
        let file_bytes = std::fs::metadata(self.tmp)
            .map_err(|error| AssembleError::Io {
                path: out.to_owned(),
                error,
            })?
            .len();
        let fps = self.frame_rate.to_f64().unwrap_or(0.0);
        let duration_seconds = if fps > 0.0 {
            self.frames as f64 / fps
        } else {
            0.0
        };
        Ok(Assembled {
            path: out.to_owned(),
            frames: self.frames,
            duration_seconds,
            video_bytes: self.video_bytes,
            file_bytes,
            average_kbps: if duration_seconds > 0.0 {
                self.video_bytes as f64 * 8.0 / duration_seconds / 1000.0
            } else {
                0.0
            },
            peak_kbps: self.peak_bits_per_frame * fps / 1000.0,
            keyframes: self.keyframes,
        })
    }
}
