//! The single decode pass behind [`super::analyze`].

use std::collections::BTreeMap;
use std::path::Path;

use media::{
    AudioDecoder, DecoderOptions, Demuxer, MediaError, MediaInfo, Packet, Rational, VideoDecoder,
    VideoInfo,
};

use super::ShotOptions;
use super::problem::{Problem, ProblemKind, Severity, round_ms};
use super::structure;
use super::timing::FrameClock;
use super::{AudioSummary, IngestError, IngestOptions, IngestReport, Progress, VideoSummary};
use crate::shots::{self, Detector, Features, ShotReport, Timeline};

/// The most decode errors taken from a decoder for one packet before moving on.
const MAX_ERRORS_PER_DRAIN: u32 = 64;

/// Collects problems, listing at most `max_listed` of each kind and counting the rest.
struct Problems {
    list: Vec<Problem>,
    counts: BTreeMap<ProblemKind, u64>,
    max_listed: usize,
}

impl Problems {
    fn new(max_listed: usize) -> Self {
        Self {
            list: Vec::new(),
            counts: BTreeMap::new(),
            max_listed,
        }
    }

    fn add(&mut self, p: Problem) {
        let n = self.counts.entry(p.kind).or_insert(0);
        *n += 1;
        if *n as usize <= self.max_listed {
            self.list.push(p);
        }
    }

    fn has(&self, kind: ProblemKind) -> bool {
        self.counts.contains_key(&kind)
    }

    fn finish(mut self) -> (Vec<Problem>, BTreeMap<ProblemKind, u64>) {
        for (&kind, &n) in &self.counts {
            if n as usize > self.max_listed {
                let more = n as usize - self.max_listed;
                self.list.push(Problem::new(
                    kind,
                    format!("{more} more {} problems are not listed", kind.name()),
                ));
            }
        }
        (self.list, self.counts)
    }
}

/// The video stream being decoded, and what its frames have shown so far.
struct VideoState {
    decoder: VideoDecoder,
    clock: FrameClock,
    pts: Vec<Option<i64>>,
    detector: Option<Detector>,
    size: Option<(u32, u32)>,
    resized: u64,
    interlaced: u64,
    first_interlaced: Option<(u64, Option<f64>)>,
    corrupt: u64,
    last_packet_seconds: Option<f64>,
}

/// An audio stream being decoded, and what its frames have shown so far.
struct AudioState {
    decoder: AudioDecoder,
    samples: u64,
    rate: u32,
    start: Option<f64>,
    corrupt: u64,
}

impl AudioState {
    fn new(decoder: AudioDecoder) -> Self {
        Self {
            decoder,
            samples: 0,
            rate: 0,
            start: None,
            corrupt: 0,
        }
    }
}

/// The single decode pass: [`Scanner::open`], then [`Scanner::packet`] for every packet,
/// [`Scanner::flush`] at the end of the file, and [`Scanner::finish`] for the report.
pub(super) fn run(
    path: &Path,
    file_size: u64,
    options: &IngestOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<IngestReport, IngestError> {
    let mut scanner = match Scanner::open(path, file_size, options)? {
        Opened::Ready(scanner) => scanner,
        Opened::Unreadable(report) => return Ok(*report),
    };
    while let Some(packet) = scanner.next_packet() {
        scanner.packet(&packet, progress);
        if scanner.past_frame_limit() {
            break;
        }
    }
    scanner.flush();
    Ok(scanner.finish())
}

/// What opening a master gave.
enum Opened<'a> {
    /// A scanner ready for the packets.
    Ready(Box<Scanner<'a>>),
    /// The demuxer cannot open the file: the report says why.
    Unreadable(Box<IngestReport>),
}

/// The state of one decode pass over a master.
struct Scanner<'a> {
    path: &'a Path,
    file_size: u64,
    options: &'a IngestOptions,
    problems: Problems,
    /// The structure walk found the file truncated.
    structure_truncated: bool,
    demuxer: Demuxer,
    info: MediaInfo,
    video: Option<VideoState>,
    audio: BTreeMap<usize, AudioState>,
    /// Where each stream's packets end, in seconds, from the container's timestamps.
    packet_end: BTreeMap<usize, f64>,
    /// Where reading stopped for good, and why.
    read_error: Option<(u64, String)>,
    /// The first packet whose data runs past the end of the file.
    truncated_packet: Option<Problem>,
    /// Video frames decoded at the last progress report.
    last_report: u64,
    packets_read: u64,
}

impl<'a> Scanner<'a> {
    /// Opens the master and its decoders, or says why it cannot be read.
    fn open(
        path: &'a Path,
        file_size: u64,
        options: &'a IngestOptions,
    ) -> Result<Opened<'a>, IngestError> {
        let mut problems = Problems::new(options.max_listed);
        let structure = structure::check(path).unwrap_or_default();
        let demuxer = match Demuxer::open(path) {
            Ok(d) => d,
            Err(e) => {
                unopenable(path, e, structure.truncation, &mut problems)?;
                return Ok(Opened::Unreadable(Box::new(unreadable_report(
                    path, problems,
                ))));
            }
        };
        let info = demuxer.info().clone();
        if let Some(p) = structure.truncation.clone() {
            problems.add(p);
        }
        let video = open_video(&demuxer, &info, options, &mut problems);
        let audio = open_audio(&demuxer, &info, &mut problems);
        Ok(Opened::Ready(Box::new(Self {
            path,
            file_size,
            options,
            problems,
            structure_truncated: structure.truncation.is_some(),
            demuxer,
            info,
            video,
            audio,
            packet_end: BTreeMap::new(),
            read_error: None,
            truncated_packet: None,
            last_report: 0,
            packets_read: 0,
        })))
    }

    /// The next packet, skipping data the demuxer can step over; `None` at the end of the file
    /// or where reading stops for good (remembered in `read_error`).
    fn next_packet(&mut self) -> Option<Packet> {
        loop {
            match self.demuxer.read() {
                Ok(p) => return p,
                Err(MediaError::Demux {
                    position,
                    reason,
                    recoverable: true,
                }) => {
                    self.problems.add(
                        Problem::new(
                            ProblemKind::CorruptPacket,
                            format!("the demuxer skipped unreadable data: {reason}"),
                        )
                        .offset(Some(position)),
                    );
                }
                Err(MediaError::Demux {
                    position, reason, ..
                }) => {
                    self.read_error = Some((position, reason));
                    return None;
                }
                Err(e) => {
                    self.read_error = Some((self.demuxer.position(), e.to_string()));
                    return None;
                }
            }
        }
    }

    /// Takes one packet: notes where its stream ends, checks it, and decodes it.
    fn packet(&mut self, packet: &Packet, progress: &mut dyn FnMut(&Progress)) {
        self.packets_read += 1;
        let stream = packet.stream();
        if let (Some(t), d) = (packet.seconds(), packet.duration()) {
            let end = t + packet.time_base().seconds(d.max(0));
            let e = self.packet_end.entry(stream).or_insert(end);
            *e = e.max(end);
        }
        if packet.is_corrupt() {
            self.corrupt_packet(packet);
        }
        if let Some(v) = self.video.as_mut().filter(|v| v.decoder.stream() == stream) {
            v.last_packet_seconds = packet.seconds();
            if let Err(e) = v.decoder.send(packet) {
                self.problems.add(decode_problem(&e, stream, packet));
            }
            drain_video(v, &mut self.problems);
            if v.pts.len() as u64 >= self.last_report + 16 {
                self.last_report = v.pts.len() as u64;
                progress(&Progress {
                    seconds: packet.seconds().unwrap_or(0.0),
                    total_seconds: self.info.duration_seconds,
                    frames: self.last_report,
                });
            }
        } else if let Some(a) = self.audio.get_mut(&stream) {
            if let Err(e) = a.decoder.send(packet) {
                self.problems.add(decode_problem(&e, stream, packet));
            }
            drain_audio(a, &mut self.problems);
        }
    }

    /// True, with the problem recorded, once the video has more frames than the limit.
    fn past_frame_limit(&mut self) -> bool {
        let limit = self.options.max_frames;
        let Some(v) = self.video.as_ref().filter(|v| v.pts.len() as u64 > limit) else {
            return false;
        };
        let p = Problem::new(
            ProblemKind::TooManyFrames,
            format!(
                "the video has more than {limit} frames (the limit, max_frames); decoding stopped there"
            ),
        )
        .stream(v.decoder.stream())
        .at(v.last_packet_seconds);
        self.problems.add(p);
        true
    }

    /// Records a packet the demuxer flagged corrupt; one running past the end of the file is
    /// kept apart as a sign of truncation.
    fn corrupt_packet(&mut self, packet: &Packet) {
        let past_end = packet
            .position()
            .is_some_and(|p| p + packet.size() as u64 > self.file_size);
        let p = Problem::new(
            ProblemKind::CorruptPacket,
            "the demuxer flagged the packet as corrupt (its data is incomplete)",
        )
        .stream(packet.stream())
        .at(packet.seconds())
        .offset(packet.position());
        if past_end {
            self.truncated_packet.get_or_insert(Problem {
                kind: ProblemKind::Truncated,
                severity: ProblemKind::Truncated.severity(),
                message: "a packet's data runs past the end of the file".into(),
                ..p
            });
        } else {
            self.problems.add(p);
        }
    }

    /// Drains the decoders at the end of the file.
    fn flush(&mut self) {
        if let Some(v) = self.video.as_mut() {
            if let Err(e) = v.decoder.send_eof() {
                self.problems.add(
                    Problem::new(ProblemKind::CorruptPacket, e.to_string())
                        .stream(v.decoder.stream()),
                );
            }
            drain_video(v, &mut self.problems);
        }
        for a in self.audio.values_mut() {
            if let Err(e) = a.decoder.send_eof() {
                self.problems.add(
                    Problem::new(ProblemKind::CorruptPacket, e.to_string())
                        .stream(a.decoder.stream()),
                );
            }
            drain_audio(a, &mut self.problems);
        }
    }

    /// The report: truncation, the streams' checks and summaries, and the shots.
    fn finish(mut self) -> IngestReport {
        self.check_truncation();
        let (video, shots) = match self.video.take() {
            Some(v) => {
                let (summary, shots) = self.finish_video(v);
                (Some(summary), shots)
            }
            None => (None, None),
        };
        let audio = self.audio_summaries();
        let (problems, problem_counts) = self.problems.finish();
        IngestReport {
            master: self.path.to_owned(),
            accepted: !problems.iter().any(|p| p.severity == Severity::Error),
            problem_counts,
            problems,
            probe: Some(self.info),
            video,
            audio,
            packets_read: self.packets_read,
            shots,
        }
    }

    /// Truncation: the structure walk, a packet past the end, a read error, or a short stream
    /// (checked later, with the video).
    fn check_truncation(&mut self) {
        if let Some((position, reason)) = &self.read_error {
            let p = if *position + 4096 >= self.file_size || self.structure_truncated {
                Problem::new(
                    ProblemKind::Truncated,
                    format!("reading stopped at the end of the file: {reason}"),
                )
            } else {
                Problem::new(
                    ProblemKind::CorruptPacket,
                    format!("reading stopped: {reason}"),
                )
            };
            add_truncation_or(&mut self.problems, p.offset(Some(*position)));
        }
        if let Some(p) = self.truncated_packet.take() {
            add_truncation_or(&mut self.problems, p);
        }
    }

    /// Checks the decoded video against itself, the container and the audio, and finds its
    /// shots when asked.
    fn finish_video(&mut self, mut v: VideoState) -> (VideoSummary, Option<ShotReport>) {
        let stream = v.decoder.stream();
        let (timing, timing_problems) = v.clock.finish(stream);
        timing_problems
            .into_iter()
            .for_each(|p| self.problems.add(p));
        self.check_video(&v, stream, &timing);
        let shots = v
            .detector
            .take()
            .and_then(|d| self.shot_report(d, stream, &v.pts, &timing));
        let (width, height) = v.size.unwrap_or((0, 0));
        let summary = VideoSummary {
            stream,
            codec: v.decoder.codec().to_owned(),
            width,
            height,
            timing,
            interlaced_frames: v.interlaced,
            corrupt_frames: v.corrupt,
        };
        (summary, shots)
    }

    /// Interlacing, size changes, no frames at all, a short stream, and audio that does not
    /// last as long.
    fn check_video(&mut self, v: &VideoState, stream: usize, timing: &super::Timing) {
        let problems = &mut self.problems;
        let vinfo = self.info.stream(stream).and_then(|s| s.video.as_ref());
        check_interlace(v, vinfo, stream, problems);
        if v.resized > 0 {
            problems.add(
                Problem::new(
                    ProblemKind::ResolutionChange,
                    format!("{} frames differ in size from the first frame", v.resized),
                )
                .stream(stream),
            );
        }
        if timing.frames == 0 {
            problems.add(
                Problem::new(
                    ProblemKind::NoDecodableFrames,
                    "not one video frame could be decoded",
                )
                .stream(stream),
            );
        }
        check_declared_duration(&self.info, stream, timing, &self.packet_end, problems);
        for (&index, a) in &self.audio {
            check_av(
                a,
                index,
                timing,
                self.options.av_tolerance_seconds,
                problems,
            );
        }
    }

    /// The shots and chunks from the detector's cuts, when shot detection was asked for.
    fn shot_report(
        &self,
        detector: Detector,
        stream: usize,
        pts: &[Option<i64>],
        timing: &super::Timing,
    ) -> Option<ShotReport> {
        let ShotOptions {
            rules,
            detector: params,
            ..
        } = self.options.shots.as_ref()?;
        let (cuts, scores) = detector.finish();
        let tb = self
            .info
            .stream(stream)
            .map(|s| s.time_base)
            .unwrap_or(Rational::new(1, 1));
        let timeline = Timeline {
            pts,
            time_base: tb,
            frame_rate: timing.frame_rate.unwrap_or(Rational::new(25, 1)),
            start_seconds: timing.start_seconds.unwrap_or(0.0),
        };
        Some(shots::report(&cuts, scores, &timeline, rules, params))
    }

    /// What decoding each audio stream found.
    fn audio_summaries(&self) -> Vec<AudioSummary> {
        self.audio
            .iter()
            .map(|(&stream, a)| AudioSummary {
                stream,
                language: self.info.stream(stream).and_then(|s| s.language.clone()),
                sample_rate: a.rate,
                samples: a.samples,
                start_seconds: a.start.map(round_ms),
                duration_seconds: round_ms(audio_seconds(a)),
                corrupt_frames: a.corrupt,
            })
            .collect()
    }
}

/// Records why the demuxer cannot open the master, or gives the error when the file cannot be
/// read from disk at all.
fn unopenable(
    path: &Path,
    e: MediaError,
    truncation: Option<Problem>,
    problems: &mut Problems,
) -> Result<(), IngestError> {
    let reason = match e {
        MediaError::Io { error, .. } => {
            return Err(IngestError::Io {
                path: path.to_owned(),
                error,
            });
        }
        MediaError::Empty { .. } => {
            problems.add(
                Problem::new(ProblemKind::EmptyFile, "the file is empty (0 bytes)").offset(Some(0)),
            );
            return Ok(());
        }
        MediaError::NotMedia { reason, .. } => reason,
        other => other.to_string(),
    };
    match truncation {
        Some(mut p) => {
            p.message = format!("{}; the demuxer cannot open it ({reason})", p.message);
            problems.add(p);
        }
        None => problems.add(
            Problem::new(
                ProblemKind::NotMedia,
                format!("not a media file FFmpeg can read: {reason}"),
            )
            .offset(Some(0)),
        ),
    }
    Ok(())
}

/// The report of a master the demuxer cannot open.
fn unreadable_report(path: &Path, problems: Problems) -> IngestReport {
    let (problems, problem_counts) = problems.finish();
    IngestReport {
        master: path.to_owned(),
        accepted: false,
        problem_counts,
        problems,
        probe: None,
        video: None,
        audio: Vec::new(),
        packets_read: 0,
        shots: None,
    }
}

/// Adds a truncation problem unless one is already there.
fn add_truncation_or(problems: &mut Problems, p: Problem) {
    if p.kind != ProblemKind::Truncated || !problems.has(ProblemKind::Truncated) {
        problems.add(p);
    }
}

/// A decoder for every audio stream that has one; the others are problems.
fn open_audio(
    demuxer: &Demuxer,
    info: &MediaInfo,
    problems: &mut Problems,
) -> BTreeMap<usize, AudioState> {
    let mut audio = BTreeMap::new();
    for index in info.audio_streams() {
        match demuxer.audio_decoder(index) {
            Ok(decoder) => {
                audio.insert(index, AudioState::new(decoder));
            }
            Err(e) => problems.add(
                Problem::new(
                    ProblemKind::UndecodableStream,
                    format!("cannot decode audio: {e}"),
                )
                .stream(index),
            ),
        }
    }
    audio
}

/// The decoder and state of the best video stream, when there is one rungs can decode.
fn open_video(
    demuxer: &Demuxer,
    info: &MediaInfo,
    options: &IngestOptions,
    problems: &mut Problems,
) -> Option<VideoState> {
    let Some(index) = info.best_video() else {
        problems.add(no_video_stream(info));
        return None;
    };
    let stream = info.stream(index)?;
    let vinfo = stream.video.as_ref()?;
    if !check_picture(vinfo, index, options, problems) {
        return None;
    }
    let decoder = match demuxer.video_decoder(
        index,
        &DecoderOptions {
            threads: options.threads,
        },
    ) {
        Ok(d) => d,
        Err(e) => {
            problems.add(
                Problem::new(
                    ProblemKind::UndecodableStream,
                    format!("cannot decode video: {e}"),
                )
                .stream(index),
            );
            return None;
        }
    };
    let declared = [vinfo.r_frame_rate, vinfo.avg_frame_rate]
        .into_iter()
        .find(|r| r.is_positive());
    let fps = declared.and_then(|r| r.to_f64()).unwrap_or(25.0);
    let detector = options
        .shots
        .as_ref()
        .map(|s| Detector::new(s.detector.clone(), fps, s.keep_scores));
    Some(VideoState {
        decoder,
        clock: FrameClock::new(stream.time_base, declared),
        pts: Vec::new(),
        detector,
        size: None,
        resized: 0,
        interlaced: 0,
        first_interlaced: None,
        corrupt: 0,
        last_packet_seconds: None,
    })
}

/// The problem of a master without a video stream, naming the streams it has.
fn no_video_stream(info: &MediaInfo) -> Problem {
    let kinds: Vec<&str> = info.streams.iter().map(|s| s.kind.name()).collect();
    Problem::new(
        ProblemKind::NoVideoStream,
        if kinds.is_empty() {
            "the file has no streams at all".to_owned()
        } else {
            format!("no video stream (streams: {})", kinds.join(", "))
        },
    )
}

/// Checks the declared picture: its size and aspect, and its pixel format. False when the
/// stream is not worth decoding.
fn check_picture(
    vinfo: &VideoInfo,
    index: usize,
    options: &IngestOptions,
    problems: &mut Problems,
) -> bool {
    let mut decodable = true;
    if let Some(reason) = absurd(vinfo, options) {
        problems.add(Problem::new(ProblemKind::AbsurdDimensions, reason).stream(index));
        decodable = false;
    }
    if vinfo.pixel_support == "unsupported" {
        problems.add(
            Problem::new(
                ProblemKind::UnsupportedPixelFormat,
                format!(
                    "pixel format {}: {}",
                    vinfo.pixel_format,
                    vinfo
                        .pixel_support_reason
                        .as_deref()
                        .unwrap_or("unsupported")
                ),
            )
            .stream(index),
        );
        decodable = false;
    } else if vinfo.bit_depth.is_some_and(|d| d > 10) {
        problems.add(
            Problem::new(
                ProblemKind::HighBitDepth,
                format!(
                    "pixel format {} has {} bits per sample; rungs works at 10 bits",
                    vinfo.pixel_format,
                    vinfo.bit_depth.unwrap_or(0)
                ),
            )
            .stream(index),
        );
    }
    decodable
}

/// Why the picture size is absurd, if it is.
fn absurd(v: &VideoInfo, o: &IngestOptions) -> Option<String> {
    let (w, h) = (v.width, v.height);
    let range = o.min_dimension..=o.max_dimension;
    if !range.contains(&w) || !range.contains(&h) {
        return Some(format!(
            "picture size {w}x{h} is outside {}..{} pixels per side",
            o.min_dimension, o.max_dimension
        ));
    }
    let sar = v
        .sample_aspect_ratio
        .to_f64()
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    let aspect = f64::from(w) * sar / f64::from(h);
    if !(1.0 / o.max_aspect..=o.max_aspect).contains(&aspect) || !(0.01..=100.0).contains(&sar) {
        return Some(format!(
            "display aspect ratio {aspect:.3} (size {w}x{h}, sample aspect {}) is outside 1:{m}..{m}:1",
            v.sample_aspect_ratio,
            m = o.max_aspect
        ));
    }
    None
}

fn decode_problem(e: &MediaError, stream: usize, packet: &Packet) -> Problem {
    let reason = match e {
        MediaError::Decode { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    Problem::new(
        ProblemKind::CorruptPacket,
        format!("the decoder rejected the packet: {reason}"),
    )
    .stream(stream)
    .at(packet.seconds())
    .offset(packet.position())
}

fn drain_video(v: &mut VideoState, problems: &mut Problems) {
    let stream = v.decoder.stream();
    let mut errors = 0;
    loop {
        let frame = match v.decoder.receive() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(MediaError::UnsupportedPixelFormat { name, reason }) => {
                problems.add(
                    Problem::new(
                        ProblemKind::UnsupportedPixelFormat,
                        format!("pixel format {name}: {reason}"),
                    )
                    .stream(stream)
                    .at(v.last_packet_seconds),
                );
                break;
            }
            Err(e) => {
                problems.add(
                    Problem::new(ProblemKind::CorruptPacket, e.to_string())
                        .stream(stream)
                        .at(v.last_packet_seconds),
                );
                // A decoder may report one error per broken frame; one that keeps failing
                // without producing anything must not hold the pass forever.
                errors += 1;
                if errors >= MAX_ERRORS_PER_DRAIN {
                    break;
                }
                continue;
            }
        };
        let index = v.pts.len() as u64;
        let seconds = frame.seconds();
        v.clock.push(frame.pts, frame.duration);
        v.pts.push(frame.pts);
        let size = (frame.width() as u32, frame.height() as u32);
        match v.size {
            None => v.size = Some(size),
            Some(s) if s != size => v.resized += 1,
            _ => {}
        }
        if frame.interlaced {
            v.interlaced += 1;
            v.first_interlaced.get_or_insert((index, seconds));
        }
        let corrupt = frame
            .corrupt
            .then_some((frame.decode_error_flags, frame.position));
        if let Some(d) = v.detector.as_mut() {
            d.push(Features::of(&frame));
        }
        if let Some((flags, position)) = corrupt {
            v.corrupt += 1;
            let what = if flags != 0 {
                format!("the decoder reported errors in this frame (flags {flags:#x})")
            } else {
                "the decoder concealed errors in this frame".to_owned()
            };
            problems.add(
                Problem::new(ProblemKind::CorruptPacket, what)
                    .stream(stream)
                    .at(seconds)
                    .frame(index)
                    .offset(position)
                    .details(v.decoder.take_messages()),
            );
        }
    }
}

fn drain_audio(a: &mut AudioState, problems: &mut Problems) {
    let stream = a.decoder.stream();
    let mut errors = 0;
    loop {
        match a.decoder.receive() {
            Ok(Some(f)) => {
                a.samples += f.samples as u64;
                if a.rate == 0 {
                    a.rate = f.sample_rate;
                }
                if a.start.is_none() {
                    a.start = f.seconds();
                }
                if f.corrupt {
                    a.corrupt += 1;
                    let (at, pos) = (f.seconds(), f.position);
                    problems.add(
                        Problem::new(
                            ProblemKind::CorruptPacket,
                            "the audio decoder flagged this frame as corrupt",
                        )
                        .stream(stream)
                        .at(at)
                        .offset(pos)
                        .details(a.decoder.take_messages()),
                    );
                }
            }
            Ok(None) => break,
            Err(e) => {
                problems
                    .add(Problem::new(ProblemKind::CorruptPacket, e.to_string()).stream(stream));
                errors += 1;
                if errors >= MAX_ERRORS_PER_DRAIN {
                    break;
                }
            }
        }
    }
}

fn audio_seconds(a: &AudioState) -> f64 {
    if a.rate == 0 {
        0.0
    } else {
        a.samples as f64 / f64::from(a.rate)
    }
}

fn check_interlace(
    v: &VideoState,
    vinfo: Option<&VideoInfo>,
    stream: usize,
    problems: &mut Problems,
) {
    let order = vinfo.map(|i| i.field_order).unwrap_or("unknown");
    let field_coded = matches!(order, "tt" | "bb" | "tb" | "bt");
    if v.interlaced == 0 && !field_coded {
        return;
    }
    let frames = v.pts.len();
    let mut p = Problem::new(
        ProblemKind::Interlaced,
        format!(
            "{} of {frames} frames are interlaced (field order {order}); the master must be \
             progressive",
            v.interlaced
        ),
    )
    .stream(stream);
    if let Some((frame, seconds)) = v.first_interlaced {
        p = p.frame(frame).at(seconds);
    }
    problems.add(p);
}

/// Flags a video stream that decodes to less than the container says it holds.
fn check_declared_duration(
    info: &MediaInfo,
    stream: usize,
    timing: &super::Timing,
    packet_end: &BTreeMap<usize, f64>,
    problems: &mut Problems,
) {
    if problems.has(ProblemKind::Truncated) || timing.frames == 0 {
        return;
    }
    let s = info.stream(stream);
    let declared_end = s
        .and_then(|s| {
            s.duration_seconds
                .map(|d| d + s.start_seconds.unwrap_or(0.0))
        })
        .or(info
            .duration_seconds
            .map(|d| d + info.start_seconds.unwrap_or(0.0)));
    let Some(declared_end) = declared_end else {
        return;
    };
    let frame = timing
        .frame_rate
        .and_then(|r| r.to_f64())
        .map(|f| 1.0 / f)
        .unwrap_or(0.04);
    let decoded_end = timing.start_seconds.unwrap_or(0.0) + timing.duration_seconds;
    let demuxed_end = packet_end.values().copied().fold(0.0, f64::max);
    let reached = decoded_end.max(demuxed_end.min(decoded_end + frame));
    let shortfall = declared_end - reached;
    if shortfall > (2.0 * frame).max(0.5) {
        problems.add(
            Problem::new(
                ProblemKind::Truncated,
                format!(
                    "the container declares {declared_end:.3} s but the video stops at \
                     {decoded_end:.3} s ({shortfall:.3} s missing)"
                ),
            )
            .stream(stream)
            .at(Some(decoded_end)),
        );
    }
}

fn check_av(
    a: &AudioState,
    stream: usize,
    video: &super::Timing,
    tolerance: f64,
    problems: &mut Problems,
) {
    if a.samples == 0 || video.frames == 0 {
        return;
    }
    let audio = audio_seconds(a);
    let diff = audio - video.duration_seconds;
    if diff.abs() > tolerance {
        let at = video.start_seconds.unwrap_or(0.0) + audio.min(video.duration_seconds);
        problems.add(
            Problem::new(
                ProblemKind::AvDurationMismatch,
                format!(
                    "audio lasts {audio:.3} s but video lasts {:.3} s ({} by {:.3} s, tolerance \
                     {tolerance} s)",
                    video.duration_seconds,
                    if diff > 0.0 {
                        "audio longer"
                    } else {
                        "audio shorter"
                    },
                    diff.abs()
                ),
            )
            .stream(stream)
            .at(Some(at)),
        );
    }
}
