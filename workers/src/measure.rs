//! The measure task: VMAF (and PSNR, SSIM) of distorted videos against their reference.
//!
//! One thread decodes the inputs in step and brings every distorted frame to the reference's
//! size and layout (bicubic, as Netflix does); a pool of scoring threads computes the
//! per-frame features of several frames at once; the calling thread puts them back in order
//! for motion and the model. Nothing is written to disk, and memory holds only the frames in
//! flight. Several distorted videos of one reference (the rungs of a ladder) are measured in
//! one pass: the reference is decoded once, and its share of each frame's features (its
//! wavelet decomposition, its low-pass for motion) is computed once for all of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};

use serde::Serialize;
use vmaf::{FrameScore, Model, Picture, Plane, PlaneView, Pooled, Spatial, Tables, Temporal};

use media::{
    DecoderOptions, Demuxer, MediaError, OwnedFrame, PixelLayout, Rational, Resizer, Samples,
    ScaleFilter, VideoDecoder,
};

/// How to measure.
#[derive(Clone, Debug)]
pub struct MeasureOptions {
    /// The VMAF model.
    pub model: Model,
    /// Scoring threads; 0 means one per core.
    pub threads: usize,
    /// Also compute PSNR of Y, Cb and Cr.
    pub psnr: bool,
    /// Also compute SSIM of luma.
    pub ssim: bool,
    /// Keep every frame's scores in the report.
    pub per_frame: bool,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        Self {
            model: Model::v061(),
            threads: 0,
            psnr: true,
            ssim: true,
            per_frame: false,
        }
    }
}

/// Why a measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// An input could not be opened or read.
    #[error("{which}: {error}")]
    Media {
        /// `reference` or `distorted`.
        which: &'static str,
        /// What went wrong.
        error: MediaError,
    },
    /// An input has no video stream.
    #[error("{which} {path} has no video stream")]
    NoVideo {
        /// `reference` or `distorted`.
        which: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The inputs' frame rates differ.
    #[error("frame rates differ: reference {reference} fps, distorted {distorted} fps")]
    FrameRate {
        /// The reference's rate.
        reference: Rational,
        /// The distorted rate.
        distorted: Rational,
    },
    /// The inputs have different numbers of frames.
    #[error("frame counts differ: reference has {reference} frames, distorted {distorted}")]
    FrameCount {
        /// Frames in the reference.
        reference: u64,
        /// Frames in the distorted video.
        distorted: u64,
    },
    /// The inputs cannot be compared (bit depth, frame size).
    #[error("{0}")]
    Incompatible(String),
    /// Scoring refused a frame.
    #[error("frame {frame}: {error}")]
    Score {
        /// The frame index.
        frame: u64,
        /// Why.
        error: vmaf::Error,
    },
    /// The inputs have no frames.
    #[error("the inputs have no frames")]
    Empty,
    /// One of several distorted inputs measured in one pass failed.
    #[error("{path}: {error}")]
    Of {
        /// The distorted input.
        path: PathBuf,
        /// Why.
        error: Box<MeasureError>,
    },
}

/// Pooled metrics of a measurement.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PooledMetrics {
    /// VMAF.
    pub vmaf: Pooled,
    /// PSNR of luma, in dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psnr_y: Option<Pooled>,
    /// PSNR of Cb, in dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psnr_cb: Option<Pooled>,
    /// PSNR of Cr, in dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psnr_cr: Option<Pooled>,
    /// SSIM of luma.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssim: Option<Pooled>,
}

/// The result of a measurement.
#[derive(Clone, Debug, Serialize)]
pub struct MeasureReport {
    /// The reference file.
    pub reference: PathBuf,
    /// The distorted file.
    pub distorted: PathBuf,
    /// The model's name.
    pub model: String,
    /// Frames scored.
    pub frames: u64,
    /// Reference width.
    pub width: usize,
    /// Reference height.
    pub height: usize,
    /// Bits per sample.
    pub bit_depth: u8,
    /// The common frame rate.
    pub frame_rate: Rational,
    /// True when the distorted frames were scaled to the reference's size.
    pub scaled: bool,
    /// Pooled metrics.
    pub pooled: PooledMetrics,
    /// Every frame's scores, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_frame: Option<Vec<FrameScore>>,
    /// CPU seconds of every thread that took part (decoding, scaling, scoring).
    #[serde(skip)]
    pub cpu_seconds: f64,
}

/// One input being decoded.
struct Input {
    which: &'static str,
    demuxer: Demuxer,
    decoder: VideoDecoder,
    stream: usize,
    done: bool,
}

impl Input {
    fn open(which: &'static str, path: &Path) -> Result<(Self, Rational), MeasureError> {
        let media = |error| MeasureError::Media { which, error };
        let demuxer = Demuxer::open(path).map_err(media)?;
        let stream = demuxer
            .info()
            .best_video()
            .ok_or_else(|| MeasureError::NoVideo {
                which,
                path: path.to_owned(),
            })?;
        let video = demuxer.info().streams[stream].video.as_ref();
        let rate = video
            .map(|v| {
                if v.avg_frame_rate.is_positive() {
                    v.avg_frame_rate
                } else {
                    v.r_frame_rate
                }
            })
            .unwrap_or(Rational::new(0, 1));
        // One decoder thread: the scoring pool has the cores.
        let decoder = demuxer
            .video_decoder(stream, &DecoderOptions { threads: 1 })
            .map_err(media)?;
        Ok((
            Self {
                which,
                demuxer,
                decoder,
                stream,
                done: false,
            },
            rate,
        ))
    }

    /// Decodes the next frame and hands it to `take`; `None` at the end.
    fn next<T>(
        &mut self,
        take: impl FnOnce(&media::VideoFrame<'_>) -> Result<T, MeasureError>,
    ) -> Result<Option<T>, MeasureError> {
        let which = self.which;
        let media = |error| MeasureError::Media { which, error };
        loop {
            // A frame the decoder already holds comes first.
            if let Some(f) = self.decoder.receive().map_err(media)? {
                return take(&f).map(Some);
            }
            if self.done {
                return Ok(None);
            }
            match self.demuxer.read().map_err(media)? {
                Some(p) if p.stream() == self.stream => self.decoder.send(&p).map_err(media)?,
                Some(_) => {}
                None => {
                    self.decoder.send_eof().map_err(media)?;
                    self.done = true;
                }
            }
        }
    }

    /// Decodes and counts the frames left.
    fn count_rest(&mut self) -> u64 {
        let mut n = 0;
        while let Ok(Some(())) = self.next(|_| Ok(())) {
            n += 1;
        }
        n
    }
}

/// A reference frame and the frame of every distorted input at the same index.
type Frames = (u64, OwnedFrame, Vec<OwnedFrame>);

/// One distorted input and the scaler that brings its frames to the reference's size.
struct Distorted {
    input: Input,
    resizer: Option<Resizer>,
}

impl Distorted {
    /// The next frame at `reference`'s size and layout (as it is when there is no reference
    /// frame left); `None` at the end.
    fn next(
        &mut self,
        reference: Option<&OwnedFrame>,
        out: OwnedFrame,
        scaled: &AtomicBool,
    ) -> Result<Option<OwnedFrame>, MeasureError> {
        let resizer = &mut self.resizer;
        self.input.next(|f| {
            let mut out = out;
            let Some(r) = reference else {
                f.copy_to(&mut out);
                return Ok(out);
            };
            if (f.width(), f.height(), f.layout()) == (r.width, r.height, r.layout) {
                f.copy_to(&mut out);
                return Ok(out);
            }
            scaled.store(true, Ordering::Relaxed);
            let rs = resizer.get_or_insert_with(|| {
                Resizer::new(
                    r.width as u32,
                    r.height as u32,
                    r.layout,
                    ScaleFilter::Bicubic,
                )
            });
            rs.resize_into(f, &mut out)
                .map_err(|error| MeasureError::Media {
                    which: "distorted",
                    error,
                })
                .map(|()| out)
        })
    }
}

/// `error` of distorted input `k`: with several inputs, it names the one it comes from.
fn named(paths: &[&Path], k: usize, error: MeasureError) -> MeasureError {
    match paths {
        [_, _, ..] => MeasureError::Of {
            path: paths[k].to_owned(),
            error: Box::new(error),
        },
        _ => error,
    }
}

/// Decodes every input in step on the current thread, sending the frames of each index until
/// the end. `scaled[k]` is set when distorted input `k` needed scaling.
fn decode(
    mut reference: Input,
    distorted: Vec<Input>,
    paths: &[&Path],
    tx: SyncSender<Result<Frames, MeasureError>>,
    spare: Receiver<OwnedFrame>,
    scaled: &[AtomicBool],
) {
    let of = |k: usize, error| named(paths, k, error);
    let mut distorted: Vec<Distorted> = distorted
        .into_iter()
        .map(|input| Distorted {
            input,
            resizer: None,
        })
        .collect();
    let mut index = 0u64;
    // Frames the scorers are done with come back, so that their buffers are reused.
    let take = || spare.try_recv().unwrap_or_else(|_| OwnedFrame::empty());
    loop {
        let r = match reference.next(|f| {
            let mut out = take();
            f.copy_to(&mut out);
            Ok(out)
        }) {
            Ok(r) => r,
            Err(e) => return drop(tx.send(Err(e))),
        };
        let mut ds = Vec::with_capacity(distorted.len());
        for (k, d) in distorted.iter_mut().enumerate() {
            match d.next(r.as_ref(), take(), &scaled[k]) {
                Ok(f) => ds.push(f),
                Err(e) => return drop(tx.send(Err(of(k, e)))),
            }
        }
        let ended: Vec<bool> = ds.iter().map(Option::is_none).collect();
        match r {
            Some(r) if !ended.contains(&true) => {
                let ds = ds.into_iter().flatten().collect();
                if tx.send(Ok((index, r, ds))).is_err() {
                    return;
                }
                index += 1;
            }
            None if !ended.contains(&false) => return,
            r => {
                // Some input ended before the others: the first distorted one whose count
                // differs from the reference's is named.
                let reference_frames = if r.is_some() {
                    index + 1 + reference.count_rest()
                } else {
                    index
                };
                for (k, (d, ended)) in distorted.iter_mut().zip(ended).enumerate() {
                    let frames = if ended {
                        index
                    } else {
                        index + 1 + d.input.count_rest()
                    };
                    if frames != reference_frames {
                        let error = MeasureError::FrameCount {
                            reference: reference_frames,
                            distorted: frames,
                        };
                        return drop(tx.send(Err(of(k, error))));
                    }
                }
                return;
            }
        }
    }
}

/// A vmaf picture viewing an owned frame.
pub(crate) fn picture(f: &OwnedFrame) -> Result<Picture<'_>, vmaf::Error> {
    let plane = |i: usize| -> Result<Plane<'_>, vmaf::Error> {
        let (w, h) = f.plane_size(i);
        Ok(match &f.planes[i] {
            Samples::U8(v) => Plane::U8(PlaneView::new(v, w, w, h)?),
            Samples::U16(v) => Plane::U16(PlaneView::new(v, w, w, h)?),
        })
    };
    let chroma = if f.planes.len() == 3 {
        Some([plane(1)?, plane(2)?])
    } else {
        None
    };
    Picture::new(f.layout.bit_depth, plane(0)?, chroma)
}

thread_local! {
    static WORKSPACE: std::cell::RefCell<vmaf::Workspace> = std::cell::RefCell::new(vmaf::Workspace::default());
}

/// Measures `distorted` against `reference`. `progress` is told the frames done so far.
pub fn measure(
    reference: &Path,
    distorted: &Path,
    options: &MeasureOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<MeasureReport, MeasureError> {
    let mut out = measure_many(reference, &[distorted], options, progress)?;
    Ok(out.pop().expect("one report per distorted input"))
}

/// Measures each of `distorted` against `reference` in one pass, with the same scores as
/// [`measure`] gives for each alone: the reference is decoded once and its share of every
/// frame's features computed once. Every input must have the reference's frame count and
/// rate. `progress` is told the frames done so far; the reports come in `distorted`'s order,
/// each with its share of the CPU time.
pub fn measure_many(
    reference: &Path,
    distorted: &[&Path],
    options: &MeasureOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<MeasureReport>, MeasureError> {
    if distorted.is_empty() {
        return Ok(Vec::new());
    }
    let (ref_in, ref_rate) = Input::open("reference", reference)?;
    let mut inputs = Vec::with_capacity(distorted.len());
    for (k, path) in distorted.iter().enumerate() {
        let of = |error| named(distorted, k, error);
        let (input, rate) = Input::open("distorted", path).map_err(of)?;
        if ref_rate.reduced() != rate.reduced() {
            return Err(of(MeasureError::FrameRate {
                reference: ref_rate,
                distorted: rate,
            }));
        }
        inputs.push(input);
    }
    let (pool, threads) = scoring_pool(options.threads)?;
    let in_flight = 2 * threads + 1;
    let (frames_tx, frames_rx) = sync_channel::<Result<Frames, MeasureError>>(in_flight);
    let scaled: Vec<AtomicBool> = distorted.iter().map(|_| AtomicBool::new(false)).collect();
    let caller_cpu = media::cpu::thread_cpu_seconds();
    std::thread::scope(|scope| {
        let scaled = &scaled;
        let (spare_tx, spare_rx) = std::sync::mpsc::channel::<OwnedFrame>();
        let decoder = scope.spawn(move || {
            decode(ref_in, inputs, distorted, frames_tx, spare_rx, scaled);
            media::cpu::thread_cpu_seconds()
        });
        let mut scoring = Scoring::new(&pool, options, spare_tx, in_flight as u64, distorted);
        let outcome = scoring.run(&frames_rx, progress);
        drop(frames_rx);
        outcome?;
        // The pool's threads are this call's own, so their clocks are this call's work.
        let scoring_cpu: f64 = pool
            .broadcast(|_| media::cpu::thread_cpu_seconds())
            .iter()
            .sum();
        let decoding = decoder.join().unwrap_or(0.0);
        let (scores, geometry) = scoring.finish();
        let (width, height, layout): Geometry = geometry.ok_or(MeasureError::Empty)?;
        let cpu = scoring_cpu + decoding + (media::cpu::thread_cpu_seconds() - caller_cpu).max(0.0);
        Ok(scores
            .into_iter()
            .zip(distorted)
            .zip(scaled)
            .map(|((scores, path), scaled)| {
                let mut out = report(
                    reference,
                    path,
                    options,
                    scores,
                    width,
                    height,
                    layout.bit_depth,
                    ref_rate,
                );
                out.scaled = scaled.load(Ordering::Relaxed);
                out.cpu_seconds = cpu / distorted.len() as f64;
                out
            })
            .collect())
    })
}

/// The reference's width, height and layout.
type Geometry = (usize, usize, PixelLayout);

/// The pool of scoring threads (`threads`, or one per core when 0), and its size.
fn scoring_pool(threads: usize) -> Result<(rayon::ThreadPool, usize), MeasureError> {
    let threads = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vmaf-{i}"))
        .build()
        .map_err(|e| {
            MeasureError::Incompatible(format!("cannot start the scoring threads: {e}"))
        })?;
    Ok((pool, threads))
}

/// A frame's spatial features for every distorted input, or why they could not be computed.
type Scored = (u64, Result<Vec<Spatial>, vmaf::Error>);

/// Scores frame pairs on the pool, several at once, and puts the scores back in frame order
/// for motion and the model.
struct Scoring<'a> {
    pool: &'a rayon::ThreadPool,
    tables: Arc<Tables>,
    vmaf_options: vmaf::Options,
    /// The most frames handed to the pool and not yet back.
    in_flight: u64,
    done_tx: Sender<Scored>,
    done_rx: Receiver<Scored>,
    /// Where scored frames go back to the decoder, for their buffers to be reused.
    spare: Sender<OwnedFrame>,
    /// Motion and the model, per distorted input.
    temporal: Vec<Temporal>,
    /// Every frame's scores, per distorted input.
    scores: Vec<Vec<FrameScore>>,
    /// Frames scored ahead of the next one in order.
    waiting: BTreeMap<u64, Result<Vec<Spatial>, vmaf::Error>>,
    /// The next frame in order.
    next: u64,
    /// Frames handed to the pool.
    sent: u64,
    /// The reference's size and layout, from its first frame.
    geometry: Option<Geometry>,
    /// The first error; scoring stops at it.
    failure: Option<MeasureError>,
}

impl<'a> Scoring<'a> {
    fn new(
        pool: &'a rayon::ThreadPool,
        options: &MeasureOptions,
        spare: Sender<OwnedFrame>,
        in_flight: u64,
        distorted: &[&Path],
    ) -> Self {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        Self {
            pool,
            tables: Arc::new(Tables::new()),
            vmaf_options: vmaf::Options {
                psnr: options.psnr,
                ssim: options.ssim,
                ..vmaf::Options::default()
            },
            in_flight,
            done_tx,
            done_rx,
            spare,
            temporal: distorted
                .iter()
                .map(|_| Temporal::new(options.model.clone()))
                .collect(),
            scores: distorted.iter().map(|_| Vec::new()).collect(),
            waiting: BTreeMap::new(),
            next: 0,
            sent: 0,
            geometry: None,
            failure: None,
        }
    }

    /// Scores every pair `frames` gives, until its end or the first error.
    fn run(
        &mut self,
        frames: &Receiver<Result<Frames, MeasureError>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), MeasureError> {
        let mut open = true;
        loop {
            while open && self.sent - self.next < self.in_flight {
                match self.feed(frames) {
                    Ok(more) => open = more,
                    Err(e) => {
                        self.failure.get_or_insert(e);
                        open = false;
                    }
                }
            }
            if self.next == self.sent {
                break;
            }
            let Ok((index, result)) = self.done_rx.recv() else {
                break;
            };
            self.settle(index, result, progress);
            if self.failure.is_some() {
                break;
            }
        }
        self.failure.take().map_or(Ok(()), Err)
    }

    /// Hands the next pair to the pool; false at the end of the inputs.
    fn feed(
        &mut self,
        frames: &Receiver<Result<Frames, MeasureError>>,
    ) -> Result<bool, MeasureError> {
        let (index, r, ds) = match frames.recv() {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(false),
        };
        self.geometry.get_or_insert((r.width, r.height, r.layout));
        let (tables, opts, tx, spare) = (
            Arc::clone(&self.tables),
            self.vmaf_options.clone(),
            self.done_tx.clone(),
            self.spare.clone(),
        );
        self.pool.spawn(move || {
            let result = picture(&r).and_then(|rp| {
                let dps = ds.iter().map(picture).collect::<Result<Vec<_>, _>>()?;
                WORKSPACE
                    .with(|ws| vmaf::spatial_many(&rp, &dps, &opts, &tables, &mut ws.borrow_mut()))
            });
            let _ = tx.send((index, result));
            let _ = spare.send(r);
            for d in ds {
                let _ = spare.send(d);
            }
        });
        self.sent += 1;
        Ok(true)
    }

    /// Takes frame `index`'s features, and passes on every frame now in order.
    fn settle(
        &mut self,
        index: u64,
        result: Result<Vec<Spatial>, vmaf::Error>,
        progress: &mut dyn FnMut(u64),
    ) {
        self.waiting.insert(index, result);
        while let Some(result) = self.waiting.remove(&self.next) {
            let pushed = result.and_then(|spatial| {
                for ((s, temporal), scores) in spatial
                    .into_iter()
                    .zip(&mut self.temporal)
                    .zip(&mut self.scores)
                {
                    scores.extend(temporal.push(s)?);
                }
                Ok(())
            });
            if let Err(error) = pushed {
                let frame = self.next;
                self.failure
                    .get_or_insert(MeasureError::Score { frame, error });
            }
            self.next += 1;
            progress(self.next);
        }
    }

    /// Every frame's scores per distorted input, and the reference's geometry (`None` when
    /// there were no frames).
    fn finish(mut self) -> (Vec<Vec<FrameScore>>, Option<Geometry>) {
        for (scores, temporal) in self.scores.iter_mut().zip(&mut self.temporal) {
            scores.extend(temporal.finish());
        }
        (self.scores, self.geometry)
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    reference: &Path,
    distorted: &Path,
    options: &MeasureOptions,
    scores: Vec<FrameScore>,
    width: usize,
    height: usize,
    bit_depth: u8,
    frame_rate: Rational,
) -> MeasureReport {
    let series = |f: &dyn Fn(&FrameScore) -> Option<f64>| -> Option<Pooled> {
        let v: Option<Vec<f64>> = scores.iter().map(f).collect();
        v.filter(|v| !v.is_empty()).map(|v| Pooled::of(&v))
    };
    let psnr = |i: usize| move |s: &FrameScore| s.psnr.and_then(|p| p[i]);
    let pooled = PooledMetrics {
        vmaf: series(&|s| Some(s.vmaf)).unwrap_or_default(),
        psnr_y: series(&psnr(0)),
        psnr_cb: series(&psnr(1)),
        psnr_cr: series(&psnr(2)),
        ssim: series(&|s| s.ssim),
    };
    MeasureReport {
        reference: reference.to_owned(),
        distorted: distorted.to_owned(),
        model: options.model.name().to_owned(),
        frames: scores.len() as u64,
        width,
        height,
        bit_depth,
        frame_rate,
        scaled: false,
        pooled,
        per_frame: options.per_frame.then_some(scores),
        cpu_seconds: 0.0,
    }
}
