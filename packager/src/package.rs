//! Packaging a title: every rendition cut into CMAF segments on shared keyframes, each
//! segment read back to build the timelines, then the HLS playlists and the DASH MPD. Files
//! go to a [`Sink`]; the manifests go last, so a reader never finds a manifest that points at
//! a missing segment.

use std::path::{Path, PathBuf};

use media::{DEFAULT_AAC_BITRATE, Demuxer, Fragmenter, MediaError, Rational};

use crate::audio::{self, AudioError, AudioSource};
use crate::bmff::BoxError;
use crate::cenc::{CencError, Protector, Scheme};
use crate::codecs::{self, Media};
use crate::drm::{self, KeyPolicy, TrackClass};
use crate::fragments::{self, SegmentInfo};
use crate::presentation::{
    FrameRate, Presentation, Protection, Segment, Text, Timeline, Video, bcp47, language_name,
    segment_name,
};
use crate::segments::{self, DEFAULT_SEGMENT_SECONDS, PlanError};
use crate::sink::{Sink, SinkError};
use crate::subtitles;
use crate::thumbnails::{self, ThumbnailError, ThumbnailSettings};
use crate::{dash, hls};

/// Packaging settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Target segment duration, seconds.
    pub segment_seconds: f64,
    /// AAC bit rate, bits per second.
    pub audio_bitrate: u32,
    /// Trick-play thumbnails.
    pub thumbnails: ThumbnailSettings,
    /// Common encryption of the video and audio tracks. Serialized only as its
    /// [`EncryptionSummary`] (so a change of key packages again), never read back: keys stay
    /// out of every file.
    #[serde(skip_deserializing, serialize_with = "summarize")]
    pub encryption: Option<Encryption>,
}

/// What may be written of a title's encryption: the scheme, the clear lead, each class's key
/// ID, and a fingerprint of the keys (16 hex digits of a SHA-256 over them: it tells that a key
/// changed and gives nothing of it).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EncryptionSummary {
    /// The scheme.
    pub scheme: Scheme,
    /// Seconds left clear.
    pub clear_lead: f64,
    /// Key IDs (UUID form) by class of track.
    pub kids: std::collections::BTreeMap<&'static str, String>,
    /// The keys' fingerprint.
    pub fingerprint: String,
}

impl Encryption {
    /// What may be written of it.
    pub fn summary(&self) -> EncryptionSummary {
        EncryptionSummary {
            scheme: self.scheme,
            clear_lead: self.clear_lead,
            kids: TrackClass::ALL
                .iter()
                .filter_map(|c| {
                    self.keys
                        .key(*c)
                        .map(|k| (c.name(), crate::cenc::uuid(&k.kid)))
                })
                .collect(),
            fingerprint: self.keys.fingerprint(),
        }
    }
}

fn summarize<S: serde::Serializer>(e: &Option<Encryption>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&e.as_ref().map(Encryption::summary), s)
}

/// How a title is encrypted.
#[derive(Clone, Debug, PartialEq)]
pub struct Encryption {
    /// The scheme.
    pub scheme: Scheme,
    /// Which key protects which tracks.
    pub keys: KeyPolicy,
    /// Seconds at the start left clear: every segment that starts before it.
    pub clear_lead: f64,
    /// `pssh` boxes from a key server (CPIX, SPEKE) by key ID: they replace the ones rungs
    /// builds for the same DRM systems.
    pub pssh: std::collections::BTreeMap<[u8; 16], Vec<Vec<u8>>>,
}

impl Encryption {
    /// The `pssh` boxes of a key: the W3C common one, then each system's, the key server's
    /// where it gave one.
    pub fn pssh_of(&self, kid: &[u8; 16]) -> Vec<Vec<u8>> {
        let given = self.pssh.get(kid).map(Vec::as_slice).unwrap_or_default();
        let system = |b: &[u8]| b.get(12..28).map(<[u8]>::to_vec);
        let mut out = drm::track_pssh(kid, self.scheme);
        for g in given {
            match out.iter_mut().find(|b| system(b) == system(g)) {
                Some(b) => b.clone_from(g),
                None => out.push(g.clone()),
            }
        }
        out
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            segment_seconds: DEFAULT_SEGMENT_SECONDS,
            audio_bitrate: DEFAULT_AAC_BITRATE,
            thumbnails: ThumbnailSettings::default(),
            encryption: None,
        }
    }
}

/// One subtitle file to package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtitleSource {
    /// The file (SRT or WebVTT, told apart by its first line).
    pub path: PathBuf,
    /// Language.
    pub language: String,
    /// What it is for (forced narrative, SDH, or the language's main track).
    pub role: crate::presentation::Role,
}

/// Everything that goes into a title.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sources {
    /// The video renditions (all from one master: same frame count and rate).
    pub videos: Vec<VideoSource>,
    /// The audio tracks; the first is the default.
    pub audio: Vec<AudioSource>,
    /// The subtitle tracks.
    pub subtitles: Vec<SubtitleSource>,
    /// The master to take thumbnails from, and its clock's time at the title's start.
    pub thumbnails: Option<(PathBuf, f64)>,
}

/// One video rendition to package: an assembled file (one video stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoSource {
    /// Identifier and folder name (the rung's name).
    pub id: String,
    /// The file.
    pub path: PathBuf,
}

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Nothing to package.
    #[error("no video renditions to package")]
    Empty,
    /// The renditions disagree with each other.
    #[error("rendition {id}: {reason}")]
    Mismatch {
        /// The rendition.
        id: String,
        /// What differs.
        reason: String,
    },
    /// No segment plan fits the renditions.
    #[error("segment plan: {0}")]
    Plan(#[from] PlanError),
    /// Reading or writing media failed.
    #[error("rendition {id}: {source}")]
    Media {
        /// The rendition.
        id: String,
        /// What failed.
        source: MediaError,
    },
    /// A written file does not hold the boxes it should.
    #[error("rendition {id}: {source}")]
    Boxes {
        /// The rendition.
        id: String,
        /// What is wrong.
        source: BoxError,
    },
    /// The work folder could not be used.
    #[error("work folder {path}: {error}")]
    Work {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The sink refused a file.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A subtitle file was refused.
    #[error("{path}:{line}: {reason}")]
    Subtitles {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Thumbnails could not be made.
    #[error("thumbnails: {0}")]
    Thumbnails(#[from] ThumbnailError),
    /// A track could not be encrypted.
    #[error("encrypting {track}: {source}")]
    Encryption {
        /// The track (`video/720p`, `audio/en`).
        track: String,
        /// What failed.
        source: CencError,
    },
    /// An audio track failed.
    #[error("audio track {index} ({path}): {source}")]
    Audio {
        /// Its place in the list.
        index: usize,
        /// Its file.
        path: PathBuf,
        /// What failed.
        source: AudioError,
    },
}

/// What packaging wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Packaged {
    /// What the manifests list.
    pub presentation: Presentation,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Repairs made to the inputs, each with its file and line.
    pub warnings: Vec<String>,
    /// CPU seconds of the calling thread spent on thumbnails.
    pub thumbnails_cpu_seconds: f64,
}

/// A rendition's packets, read once to find its keyframes.
struct Scan {
    index: usize,
    rate: Rational,
    keyframes: Vec<u64>,
    frames: u64,
}

/// Packages `sources` into `sink`, using `work` for intermediate files.
pub fn package(
    sources: &Sources,
    settings: &Settings,
    work: &Path,
    sink: &dyn Sink,
) -> Result<Packaged, PackageError> {
    let videos = &sources.videos;
    if videos.is_empty() {
        return Err(PackageError::Empty);
    }
    std::fs::create_dir_all(work).map_err(|error| PackageError::Work {
        path: work.to_owned(),
        error,
    })?;
    let scans = scan_all(videos)?;
    let clock = Clock::plan(&scans, settings.segment_seconds)?;
    let mut out = Output::new(sink);
    let mut video = Vec::new();
    for (v, s) in videos.iter().zip(&scans) {
        video.push(package_video(
            v,
            s,
            &clock.starts,
            work,
            settings.encryption.as_ref(),
            &mut out,
        )?);
    }
    // Codec by codec, the most widely decoded first (players that start on the first HLS
    // variant then start on H.264), and by rising bit rate within a codec.
    video.sort_by_key(|v| {
        (
            compatibility_rank(&v.codecs),
            v.timeline.average_bps(),
            v.width,
        )
    });
    let mut tracks = Vec::new();
    for (index, a) in sources.audio.iter().enumerate() {
        let track = audio_track(index, a, &tracks, settings, &clock, work, &mut out)?;
        tracks.push(track);
    }
    let mut warnings = Vec::new();
    let mut text = Vec::new();
    let bounds = clock.bounds_ms();
    for s in &sources.subtitles {
        let track = subtitle_track(
            s,
            &bounds,
            &video[0].timeline,
            &text,
            &mut out,
            &mut warnings,
        )?;
        text.push(track);
    }
    let thumbnails_started = media::cpu::thread_cpu_seconds();
    let thumbnails = match &sources.thumbnails {
        Some((master, origin)) => Some(thumbnails::make(
            master,
            *origin,
            clock.duration(),
            &settings.thumbnails,
            sink,
        )?),
        None => None,
    };
    let thumbnails_cpu_seconds = media::cpu::thread_cpu_seconds() - thumbnails_started;
    let presentation = Presentation {
        duration: clock.duration(),
        video,
        audio: tracks,
        text,
        thumbnails,
    };
    write_manifests(&presentation, &mut out)?;
    Ok(Packaged {
        presentation,
        files: out.files,
        bytes: out.bytes,
        warnings,
        thumbnails_cpu_seconds,
    })
}

/// Scans every rendition; they must have the same frames at the same rate.
fn scan_all(videos: &[VideoSource]) -> Result<Vec<Scan>, PackageError> {
    let scans = videos.iter().map(scan).collect::<Result<Vec<_>, _>>()?;
    let first = &scans[0];
    for (v, s) in videos.iter().zip(&scans) {
        if s.frames != first.frames || s.rate != first.rate {
            return Err(PackageError::Mismatch {
                id: v.id.clone(),
                reason: format!(
                    "{} frames at {} fps, but {} has {} at {}",
                    s.frames, s.rate, videos[0].id, first.frames, first.rate
                ),
            });
        }
    }
    Ok(scans)
}

/// The title's clock: its frames, their rate, and the frames segments start at.
struct Clock {
    /// Frame rate as (num, den).
    rate: (u32, u32),
    /// The same, as the scans give it.
    exact: Rational,
    frames: u64,
    /// First frame of each segment.
    starts: Vec<u64>,
}

impl Clock {
    /// Plans the segments on the keyframes every rendition shares.
    fn plan(scans: &[Scan], segment_seconds: f64) -> Result<Self, PackageError> {
        let first = &scans[0];
        let keyframes: Vec<Vec<u64>> = scans.iter().map(|s| s.keyframes.clone()).collect();
        let rate = (first.rate.num.max(0) as u32, first.rate.den.max(0) as u32);
        let starts = segments::plan(&keyframes, first.frames, rate, segment_seconds)?;
        Ok(Self {
            rate,
            exact: first.rate,
            frames: first.frames,
            starts,
        })
    }

    /// Seconds of the title.
    fn duration(&self) -> f64 {
        f64::from(self.exact.den) * self.frames as f64 / f64::from(self.exact.num)
    }

    /// Seconds each segment after the first starts at (where audio is cut).
    fn cuts(&self) -> Vec<f64> {
        self.starts
            .iter()
            .skip(1)
            .map(|&f| f as f64 * f64::from(self.exact.den) / f64::from(self.exact.num))
            .collect()
    }

    /// Segment bounds in milliseconds, the end of the title last (subtitle segments follow the
    /// video's).
    fn bounds_ms(&self) -> Vec<u64> {
        let mut bounds: Vec<u64> = self
            .starts
            .iter()
            .map(|&f| f * u64::from(self.rate.1) * 1000 / u64::from(self.rate.0.max(1)))
            .collect();
        bounds.push((self.duration() * 1000.0).round() as u64);
        bounds
    }
}

/// Encodes, splits and writes one audio track.
fn audio_track(
    index: usize,
    a: &AudioSource,
    earlier: &[crate::presentation::Audio],
    settings: &Settings,
    clock: &Clock,
    work: &Path,
    out: &mut Output<'_>,
) -> Result<crate::presentation::Audio, PackageError> {
    let fail = |source: AudioError| PackageError::Audio {
        index,
        path: a.path.clone(),
        source,
    };
    let tmp = work.join(format!("audio-{index}.cmaf.mp4"));
    audio::encode(
        a,
        settings.audio_bitrate,
        clock.duration(),
        &clock.cuts(),
        &tmp,
    )
    .map_err(fail)?;
    let bytes = std::fs::read(&tmp).map_err(|error| PackageError::Work {
        path: tmp.clone(),
        error,
    })?;
    let _ = std::fs::remove_file(&tmp);
    let id = unique_id(&crate::presentation::bcp47(&a.language), earlier);
    let (bytes, protection) = match &settings.encryption {
        None => (bytes, None),
        Some(e) => {
            let split = fragments::split(&bytes).map_err(|b| fail(b.into()))?;
            let (b, p) = encrypt(&bytes, &split, e, TrackClass::Audio, &format!("audio/{id}"))?;
            (b, Some(p))
        }
    };
    let audio::Described {
        mut track,
        init_len,
        ranges,
    } = audio::describe(a, &id, index == 0, &bytes).map_err(fail)?;
    track.protection = protection;
    if ranges.len() != clock.starts.len() {
        return Err(fail(AudioError::Segments {
            written: ranges.len(),
            expected: clock.starts.len(),
        }));
    }
    out.put(&format!("audio/{id}/init.mp4"), &bytes[..init_len])?;
    for (i, (from, to)) in ranges.iter().enumerate() {
        out.put(
            &format!("audio/{id}/{}", segment_name(i + 1, "m4s")),
            &bytes[*from..*to],
        )?;
    }
    out.put(
        &format!("audio/{id}/{}", hls::MEDIA),
        hls::media(&track.timeline, track.protection.as_ref()).as_bytes(),
    )?;
    Ok(track)
}

/// The media and I-frame playlists of every video rendition, then the master playlist and the
/// MPD, last.
fn write_manifests(p: &Presentation, out: &mut Output<'_>) -> Result<(), SinkError> {
    for v in &p.video {
        out.put(
            &format!("video/{}/{}", v.id, hls::MEDIA),
            hls::media(&v.timeline, v.protection.as_ref()).as_bytes(),
        )?;
        out.put(
            &format!("video/{}/{}", v.id, hls::IFRAMES),
            hls::iframes(v).as_bytes(),
        )?;
    }
    out.put(hls::MASTER, hls::master(p).as_bytes())?;
    out.put(dash::MPD, dash::mpd(p).as_bytes())
}

/// Parses, converts and segments one subtitle file.
fn subtitle_track(
    s: &SubtitleSource,
    bounds: &[u64],
    video: &Timeline,
    earlier: &[Text],
    out: &mut Output<'_>,
    warnings: &mut Vec<String>,
) -> Result<Text, PackageError> {
    let bytes = subtitles::read(&s.path).map_err(|error| PackageError::Work {
        path: s.path.clone(),
        error,
    })?;
    let parsed = subtitles::parse(&bytes).map_err(|e| PackageError::Subtitles {
        path: s.path.clone(),
        line: e.line,
        reason: e.reason,
    })?;
    warnings.extend(
        parsed
            .warnings
            .iter()
            .map(|w| format!("{}: {w}", s.path.display())),
    );
    let language = bcp47(&s.language);
    let taken = |id: &str| earlier.iter().any(|t| t.id == id);
    let id = if taken(&language) {
        (2..)
            .map(|n| format!("{language}-{n}"))
            .find(|i| !taken(i))
            .unwrap_or_default()
    } else {
        language.clone()
    };
    let whole = subtitles::to_vtt(&parsed.cues);
    out.put(&format!("text/{id}/all.vtt"), whole.as_bytes())?;
    let mut timeline = Timeline {
        timescale: video.timescale,
        segments: Vec::new(),
    };
    for (i, (seg, v)) in subtitles::segment(&parsed.cues, bounds)
        .zip(&video.segments)
        .enumerate()
    {
        out.put(
            &format!("text/{id}/{}", segment_name(i + 1, "vtt")),
            seg.as_bytes(),
        )?;
        timeline.segments.push(Segment {
            start: v.start,
            duration: v.duration,
            bytes: seg.len() as u64,
            key_bytes: 0,
        });
    }
    let text = Text {
        id: id.clone(),
        name: format!("{}{}", language_name(&language), s.role.label()),
        language,
        default: false,
        timeline,
        bytes: whole.len() as u64,
        role: s.role,
    };
    out.put(
        &format!("text/{id}/{}", hls::MEDIA),
        hls::subtitles(&text).as_bytes(),
    )?;
    Ok(text)
}

/// `base`, or `base-2`, `base-3`... when an earlier track has it.
fn unique_id(base: &str, tracks: &[crate::presentation::Audio]) -> String {
    let taken = |id: &str| tracks.iter().any(|t| t.id == id);
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or_default()
}

/// The sink, counting what goes to it.
struct Output<'a> {
    sink: &'a dyn Sink,
    files: usize,
    bytes: u64,
}

impl<'a> Output<'a> {
    fn new(sink: &'a dyn Sink) -> Self {
        Self {
            sink,
            files: 0,
            bytes: 0,
        }
    }

    fn put(&mut self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.sink.put(name, bytes)?;
        self.files += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

fn media_error(id: &str) -> impl Fn(MediaError) -> PackageError + '_ {
    move |source| PackageError::Media {
        id: id.to_owned(),
        source,
    }
}

/// The frame number of a timestamp on the rendition's exact frame clock.
fn frame_of(pts: i64, time_base: Rational, rate: Rational) -> i64 {
    let num = i128::from(pts) * i128::from(time_base.num) * i128::from(rate.num);
    let den = i128::from(time_base.den) * i128::from(rate.den);
    if den == 0 {
        return 0;
    }
    // Rounded to the nearest frame.
    ((2 * num + den) / (2 * den)) as i64
}

fn scan(v: &VideoSource) -> Result<Scan, PackageError> {
    let err = media_error(&v.id);
    let mut d = Demuxer::open(&v.path).map_err(&err)?;
    let index = d
        .info()
        .best_video()
        .ok_or_else(|| PackageError::Mismatch {
            id: v.id.clone(),
            reason: format!("{} has no video stream", v.path.display()),
        })?;
    let rate = d.info().streams[index]
        .video
        .as_ref()
        .map(|x| x.avg_frame_rate)
        .filter(|r| r.is_positive())
        .ok_or_else(|| PackageError::Mismatch {
            id: v.id.clone(),
            reason: "no constant frame rate".into(),
        })?;
    let mut keyframes = Vec::new();
    let mut frames = 0u64;
    while let Some(p) = d.read().map_err(&err)? {
        if p.stream() != index {
            continue;
        }
        frames += 1;
        if p.is_key() {
            let pts = p.pts().ok_or_else(|| PackageError::Mismatch {
                id: v.id.clone(),
                reason: format!("keyframe {frames} has no timestamp"),
            })?;
            keyframes.push(frame_of(pts, p.time_base(), rate).max(0) as u64);
        }
    }
    keyframes.sort_unstable();
    keyframes.dedup();
    Ok(Scan {
        index,
        rate,
        keyframes,
        frames,
    })
}

fn package_video(
    v: &VideoSource,
    s: &Scan,
    starts: &[u64],
    work: &Path,
    encryption: Option<&Encryption>,
    out: &mut Output<'_>,
) -> Result<Video, PackageError> {
    let bytes = fragment(v, s, starts, work)?;
    let boxes = |source| PackageError::Boxes {
        id: v.id.clone(),
        source,
    };
    let mut split = fragments::split(&bytes).map_err(boxes)?;
    let (bytes, protection) = match encryption {
        None => (bytes, None),
        Some(e) => {
            let info = codecs::track_info(&bytes[..split.init_len as usize]).map_err(boxes)?;
            let Media::Video { width, height, .. } = info.media else {
                return Err(PackageError::Mismatch {
                    id: v.id.clone(),
                    reason: "the track is not video".into(),
                });
            };
            let class = TrackClass::of_video(width, height);
            let (b, p) = encrypt(&bytes, &split, e, class, &format!("video/{}", v.id))?;
            split = fragments::split(&b).map_err(boxes)?;
            (b, Some(p))
        }
    };
    let mismatch = |reason: String| PackageError::Mismatch {
        id: v.id.clone(),
        reason,
    };
    if split.segments.len() != starts.len() {
        return Err(mismatch(format!(
            "{} segments written, {} planned",
            split.segments.len(),
            starts.len()
        )));
    }
    let init = &bytes[..split.init_len as usize];
    let info = codecs::track_info(init).map_err(boxes)?;
    let Media::Video { width, height, sar } = info.media else {
        return Err(mismatch("the track is not video".into()));
    };
    check_contiguous(&v.id, &split.segments)?;
    out.put(&format!("video/{}/init.mp4", v.id), init)?;
    let mut timeline = Timeline {
        timescale: info.timescale,
        segments: Vec::with_capacity(split.segments.len()),
    };
    for (i, seg) in split.segments.iter().enumerate() {
        let data = &bytes[seg.range.0 as usize..seg.range.1 as usize];
        out.put(
            &format!("video/{}/{}", v.id, segment_name(i + 1, "m4s")),
            data,
        )?;
        timeline.segments.push(Segment {
            start: seg.start,
            duration: seg.duration,
            bytes: data.len() as u64,
            key_bytes: seg.first_sample_end,
        });
    }
    Ok(Video {
        id: v.id.clone(),
        codecs: info.codecs,
        width,
        height,
        sar,
        frame_rate: FrameRate {
            num: s.rate.num as u32,
            den: s.rate.den as u32,
        },
        timeline,
        protection,
    })
}

/// A whole fragmented track (its init segment and segments, as `split` found them) encrypted
/// with the key of `class`, and what the manifests must say of it.
fn encrypt(
    bytes: &[u8],
    split: &fragments::Split,
    e: &Encryption,
    class: TrackClass,
    track: &str,
) -> Result<(Vec<u8>, Protection), PackageError> {
    let fail = |source: CencError| PackageError::Encryption {
        track: track.to_owned(),
        source,
    };
    let key = e.keys.key(class).ok_or_else(|| {
        fail(CencError::Codec(format!(
            "no key for {} tracks",
            class.name()
        )))
    })?;
    let init = &bytes[..split.init_len as usize];
    let timescale = codecs::track_info(init)
        .map_err(|b| fail(b.into()))?
        .timescale;
    let clear_segments = split
        .segments
        .iter()
        .take_while(|s| (s.start as f64) < e.clear_lead * f64::from(timescale.max(1)))
        .count();
    let protector = Protector::new(init, e.scheme, key, track).map_err(fail)?;
    let pssh = e.pssh_of(&key.kid);
    let mut out = Vec::with_capacity(bytes.len() + 4096 * (split.segments.len() + 1));
    out.extend(
        protector
            .init(init, clear_segments > 0, &pssh)
            .map_err(fail)?,
    );
    for (i, s) in split.segments.iter().enumerate() {
        let seg = &bytes[s.range.0 as usize..s.range.1 as usize];
        protector
            .segment_into(seg, i + 1, i < clear_segments, &mut out)
            .map_err(fail)?;
    }
    Ok((
        out,
        Protection {
            scheme: e.scheme,
            kid: key.kid,
            pssh,
            clear_segments,
        },
    ))
}

/// The rendition remuxed into a fragmented MP4 cut at `starts`, read back whole.
fn fragment(
    v: &VideoSource,
    s: &Scan,
    starts: &[u64],
    work: &Path,
) -> Result<Vec<u8>, PackageError> {
    let err = media_error(&v.id);
    let tmp = work.join(format!("{}.cmaf.mp4", v.id));
    let mut d = Demuxer::open(&v.path).map_err(&err)?;
    let mut f = Fragmenter::create(&tmp, &d, s.index, None).map_err(&err)?;
    let mut next = 1; // the next segment start to cut at
    while let Some(p) = d.read().map_err(&err)? {
        if p.stream() != s.index {
            continue;
        }
        if p.is_key()
            && let Some(&at) = starts.get(next)
            && let Some(pts) = p.pts()
            && frame_of(pts, p.time_base(), s.rate) as u64 == at
        {
            f.cut().map_err(&err)?;
            next += 1;
        }
        f.write(&p).map_err(&err)?;
    }
    f.finish().map_err(&err)?;
    let bytes = std::fs::read(&tmp).map_err(|error| PackageError::Work {
        path: tmp.clone(),
        error,
    })?;
    let _ = std::fs::remove_file(&tmp);
    Ok(bytes)
}

/// Segments follow each other with no gap or overlap, each starting on a keyframe.
fn check_contiguous(id: &str, segments: &[SegmentInfo]) -> Result<(), PackageError> {
    let mismatch = |reason| PackageError::Mismatch {
        id: id.to_owned(),
        reason,
    };
    for (i, s) in segments.iter().enumerate() {
        if !s.starts_with_sync {
            return Err(mismatch(format!(
                "segment {} does not start with a keyframe",
                i + 1
            )));
        }
        if let Some(n) = segments.get(i + 1)
            && n.start != s.start + s.duration
        {
            return Err(mismatch(format!(
                "segment {} starts at {} but segment {} ends at {}",
                i + 2,
                n.start,
                i + 1,
                s.start + s.duration
            )));
        }
    }
    Ok(())
}

/// Where a video codec comes in the order of devices that decode it: H.264, HEVC, VP9, AV1.
pub fn compatibility_rank(codecs: &str) -> u8 {
    match codecs.get(..4) {
        Some("avc1" | "avc3") => 0,
        Some("hvc1" | "hev1") => 1,
        Some("vp09") => 2,
        Some("av01") => 3,
        _ => 4,
    }
}
