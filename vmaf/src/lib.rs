//! VMAF in pure Rust: the integer VIF, ADM and motion features of libvmaf, its SVM models
//! (v0.6.1, 4K v0.6.1, and the phone transform), pooling, and PSNR and SSIM alongside.
//!
//! The crate takes borrowed planes and does no I/O. Work is split in two so that frames can be
//! scored in parallel: [`spatial`] computes everything that depends on one frame pair (any
//! thread, any order), and [`Temporal`] adds motion and the model prediction in frame order.
//! [`Scorer`] does both on one thread.
//!
//! ```
//! use vmaf::{Model, Options, Picture, Plane, PlaneView, Scorer};
//!
//! let (w, h) = (64, 48);
//! let reference: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
//! let distorted: Vec<u8> = reference.iter().map(|v| v.saturating_add(3)).collect();
//! fn picture(data: &[u8], w: usize, h: usize) -> Picture<'_> {
//!     let luma = Plane::U8(PlaneView::new(data, w, w, h).unwrap());
//!     Picture::new(8, luma, None).unwrap()
//! }
//! let mut scorer = Scorer::new(Model::v061(), Options::default());
//! let mut scores = Vec::new();
//! for _ in 0..3 {
//!     scores.extend(scorer.push(&picture(&reference, w, h), &picture(&distorted, w, h)).unwrap());
//! }
//! scores.extend(scorer.finish());
//! assert_eq!(scores.len(), 3);
//! assert!(scores.iter().all(|s| (0.0..=100.0).contains(&s.vmaf)));
//! ```

pub(crate) mod adm;
mod error;
mod kernels;
mod model;
mod motion;
mod picture;
mod pool;
mod psnr;
mod ssim;
mod vif;

use serde::Serialize;

pub use adm::AdmScales;
pub use error::Error;
pub use model::{Feature, Model, VMAF_4K_V061, VMAF_V061};
pub use picture::{Picture, Plane, PlaneView};
pub use pool::{Pooled, percentile};
pub use vif::VifScales;

/// What to compute besides VMAF, and libvmaf's feature options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Also compute PSNR of Y, Cb and Cr (when the pictures carry chroma).
    pub psnr: bool,
    /// Also compute SSIM of luma.
    pub ssim: bool,
    /// Enhancement gain limit of VIF (libvmaf's `vif_enhn_gain_limit`, 1 to 100).
    pub vif_gain_limit: f64,
    /// Enhancement gain limit of ADM (libvmaf's `adm_enhn_gain_limit`, 1 to 100).
    pub adm_gain_limit: f64,
    /// Low-pass the reference for the motion feature. Off when the caller tracks motion
    /// itself with a [`Motion`] (it depends on the reference alone, so one track serves every
    /// distorted version of it).
    pub motion: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            psnr: false,
            ssim: false,
            vif_gain_limit: vif::DEFAULT_VIF_ENHN_GAIN_LIMIT,
            adm_gain_limit: adm::DEFAULT_ADM_ENHN_GAIN_LIMIT,
            motion: true,
        }
    }
}

/// Read-only tables, made once and shared by every thread.
pub struct Tables {
    log2: vif::Log2Table,
    div: adm::DivTable,
}

impl Tables {
    /// Builds the tables (about 400 KiB).
    pub fn new() -> Self {
        Self {
            log2: vif::Log2Table::new(),
            div: adm::DivTable::new(),
        }
    }
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

/// Scratch memory for [`spatial`]; one per thread, reused across frames.
pub struct Workspace {
    isa: kernels::Isa,
    vif: vif::Workspace,
    adm: adm::Workspace,
    blur_rows: kernels::LowPassRow,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            isa: kernels::Isa::detect(),
            vif: vif::Workspace::default(),
            adm: adm::Workspace::default(),
            blur_rows: Default::default(),
        }
    }
}

/// The features of one frame pair that do not depend on other frames.
#[derive(Clone, Debug)]
pub struct Spatial {
    /// VIF numerators and denominators.
    pub vif: VifScales,
    /// ADM numerators and denominators.
    pub adm: AdmScales,
    /// PSNR of Y, Cb, Cr, when asked for and available.
    pub psnr: Option<[Option<f64>; 3]>,
    /// SSIM of luma, when asked for.
    pub ssim: Option<f64>,
    width: usize,
    height: usize,
    blur: Vec<u16>,
}

/// Computes the per-frame features of one reference/distorted pair.
pub fn spatial(
    reference: &Picture<'_>,
    distorted: &Picture<'_>,
    options: &Options,
    tables: &Tables,
    ws: &mut Workspace,
) -> Result<Spatial, Error> {
    let mut out = spatial_many(
        reference,
        std::slice::from_ref(distorted),
        options,
        tables,
        ws,
    )?;
    Ok(out.pop().expect("one result per distorted picture"))
}

/// Computes the per-frame features of several distorted versions of one reference frame (the
/// encodings of a probe, say), doing the reference's share of the work once: its wavelet
/// decomposition and ADM denominators, and its low-pass for motion. The results are the same,
/// bit for bit, as [`spatial`] gives for each pair alone.
pub fn spatial_many(
    reference: &Picture<'_>,
    distorted: &[Picture<'_>],
    options: &Options,
    tables: &Tables,
    ws: &mut Workspace,
) -> Result<Vec<Spatial>, Error> {
    for d in distorted {
        check_pair(reference, d)?;
    }
    let bpc = u32::from(reference.bit_depth());
    let mut blur = Vec::new();
    // The sample types match (checked above), so no distorted picture is dropped here.
    let luma = match reference.luma() {
        Plane::U8(r) => {
            let ds: Vec<_> = distorted.iter().filter_map(|d| d.luma().as_u8()).collect();
            features(&r, &ds, bpc, options, tables, ws, &mut blur)
        }
        Plane::U16(r) => {
            let ds: Vec<_> = distorted.iter().filter_map(|d| d.luma().as_u16()).collect();
            features(&r, &ds, bpc, options, tables, ws, &mut blur)
        }
    };
    Ok(distorted
        .iter()
        .zip(luma)
        .map(|(d, (vif, adm))| {
            let psnr = options.psnr.then(|| {
                [0, 1, 2].map(|i| match (reference.plane(i), d.plane(i)) {
                    (Some(r), Some(d)) if (r.width(), r.height()) == (d.width(), d.height()) => {
                        psnr::plane(r, d, bpc)
                    }
                    _ => None,
                })
            });
            let ssim = if options.ssim {
                ssim::ssim(reference.luma(), d.luma(), bpc)
            } else {
                None
            };
            Spatial {
                vif,
                adm,
                psnr,
                ssim,
                width: reference.width(),
                height: reference.height(),
                blur: blur.clone(),
            }
        })
        .collect())
}

/// Refuses a pair VMAF cannot score: different sizes, depths or sample types, or too small.
fn check_pair(reference: &Picture<'_>, distorted: &Picture<'_>) -> Result<(), Error> {
    if (reference.width(), reference.height()) != (distorted.width(), distorted.height()) {
        return Err(Error::Mismatch {
            what: format!(
                "size {}x{} vs {}x{}",
                reference.width(),
                reference.height(),
                distorted.width(),
                distorted.height()
            ),
        });
    }
    if reference.bit_depth() != distorted.bit_depth() {
        return Err(Error::Mismatch {
            what: format!(
                "bit depth {} vs {}",
                reference.bit_depth(),
                distorted.bit_depth()
            ),
        });
    }
    if reference.width() < 32 || reference.height() < 32 {
        return Err(Error::InvalidSize {
            width: reference.width(),
            height: reference.height(),
            reason: "VMAF's four scales need at least 32x32 luma samples",
        });
    }
    if matches!(
        (reference.luma(), distorted.luma()),
        (Plane::U8(_), Plane::U16(_)) | (Plane::U16(_), Plane::U8(_))
    ) {
        return Err(Error::Mismatch {
            what: "sample types (8-bit vs 16-bit)".into(),
        });
    }
    Ok(())
}

/// VIF and ADM of every distorted picture against `r`, and `r`'s low-pass for motion when
/// asked: the reference's ADM half is done once.
fn features<T: picture::Sample>(
    r: &PlaneView<'_, T>,
    ds: &[PlaneView<'_, T>],
    bpc: u32,
    options: &Options,
    tables: &Tables,
    ws: &mut Workspace,
    blur: &mut Vec<u16>,
) -> Vec<(VifScales, AdmScales)> {
    let den = adm::prepare_reference(r, bpc, &mut ws.adm);
    let out = ds
        .iter()
        .map(|d| {
            let vif = vif::compute(r, d, bpc, &tables.log2, options.vif_gain_limit, &mut ws.vif);
            let adm = adm::compute_distorted(
                d,
                den,
                bpc,
                options.adm_gain_limit,
                &tables.div,
                &mut ws.adm,
            );
            (vif, adm)
        })
        .collect();
    if options.motion {
        motion::blur(ws.isa, r, bpc, &mut ws.blur_rows, blur);
    }
    out
}

/// One frame's scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameScore {
    /// Frame index, from 0.
    pub frame: u64,
    /// The model's prediction.
    pub vmaf: f64,
    /// `integer_vif_scale0` to `3`.
    pub vif: [f64; 4],
    /// `integer_adm2`.
    pub adm2: f64,
    /// `integer_adm_scale0` to `3`.
    pub adm: [f64; 4],
    /// `integer_motion`: mean absolute difference to the previous frame.
    pub motion: f64,
    /// `integer_motion2`: the smaller of the differences to the previous and next frames.
    pub motion2: f64,
    /// PSNR of Y, Cb and Cr in dB, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psnr: Option<[Option<f64>; 3]>,
    /// SSIM of luma, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssim: Option<f64>,
}

struct Pending {
    frame: u64,
    spatial: Spatial,
    motion: f64,
}

/// The in-order stage: motion between frames, then the model.
pub struct Temporal {
    model: Model,
    next: u64,
    pending: Option<Pending>,
}

impl Temporal {
    /// A temporal stage predicting with `model`.
    pub fn new(model: Model) -> Self {
        Self {
            model,
            next: 0,
            pending: None,
        }
    }

    /// Adds the next frame. Returns the previous frame's scores, now that its `motion2` is
    /// known.
    pub fn push(&mut self, spatial: Spatial) -> Result<Option<FrameScore>, Error> {
        let frame = self.next;
        self.next += 1;
        let Some(prev) = self.pending.take() else {
            self.pending = Some(Pending {
                frame,
                spatial,
                motion: 0.0,
            });
            return Ok(None);
        };
        if (prev.spatial.width, prev.spatial.height) != (spatial.width, spatial.height) {
            return Err(Error::Mismatch {
                what: format!(
                    "frame {frame} is {}x{} but frame {} was {}x{}",
                    spatial.width,
                    spatial.height,
                    prev.frame,
                    prev.spatial.width,
                    prev.spatial.height
                ),
            });
        }
        let motion = motion::sad_score(
            &prev.spatial.blur,
            &spatial.blur,
            spatial.width,
            spatial.height,
        );
        let motion2 = if prev.frame == 0 {
            0.0
        } else {
            prev.motion.min(motion)
        };
        let out = self.score(&prev, motion2);
        self.pending = Some(Pending {
            frame,
            spatial,
            motion,
        });
        Ok(Some(out))
    }

    /// Scores the last frame.
    pub fn finish(&mut self) -> Option<FrameScore> {
        let last = self.pending.take()?;
        let motion2 = last.motion;
        Some(self.score(&last, motion2))
    }

    fn score(&self, p: &Pending, motion2: f64) -> FrameScore {
        predict(&self.model, &p.spatial, p.frame, p.motion, motion2)
    }
}

/// The scores of frame `frame` from its spatial features and its motion features (as a
/// [`Motion`] track gives them): what [`Temporal`] computes, for callers that score only some
/// frames.
pub fn predict(model: &Model, s: &Spatial, frame: u64, motion: f64, motion2: f64) -> FrameScore {
    let vif = [0, 1, 2, 3].map(|i| s.vif.score(i));
    let adm2 = s.adm.adm2(s.width, s.height);
    let vmaf = model.predict(|f| match f {
        Feature::Adm2 => adm2,
        Feature::Motion2 => motion2,
        Feature::Vif(i) => vif[i],
    });
    FrameScore {
        frame,
        vmaf,
        vif,
        adm2,
        adm: [0, 1, 2, 3].map(|i| s.adm.score(i)),
        motion,
        motion2,
        psnr: s.psnr,
        ssim: s.ssim,
    }
}

/// The motion feature of a reference, frame by frame: it depends on the reference alone, so
/// one track serves every distorted version scored against it.
#[derive(Default)]
pub struct Motion {
    rows: kernels::LowPassRow,
    previous: Vec<u16>,
    current: Vec<u16>,
    size: Option<(usize, usize)>,
    frames: u64,
}

impl Motion {
    /// A track with no frame yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next reference frame; returns its `motion` (the mean absolute difference of
    /// its low-passed luma to the previous frame's, 0 for the first frame). A frame's
    /// `motion2` is the smaller of its own `motion` and the next frame's, or its own for the
    /// last frame, and 0 for the first.
    pub fn push(&mut self, reference: &Picture<'_>) -> Result<f64, Error> {
        let (w, h) = (reference.width(), reference.height());
        if self.size.is_some_and(|s| s != (w, h)) {
            return Err(Error::Mismatch {
                what: format!(
                    "frame {} is {w}x{h}, unlike the frames before it",
                    self.frames
                ),
            });
        }
        let isa = kernels::Isa::detect();
        let bpc = u32::from(reference.bit_depth());
        std::mem::swap(&mut self.previous, &mut self.current);
        match reference.luma() {
            Plane::U8(r) => motion::blur(isa, &r, bpc, &mut self.rows, &mut self.current),
            Plane::U16(r) => motion::blur(isa, &r, bpc, &mut self.rows, &mut self.current),
        }
        let m = if self.frames == 0 {
            0.0
        } else {
            motion::sad_score(&self.previous, &self.current, w, h)
        };
        self.size = Some((w, h));
        self.frames += 1;
        Ok(m)
    }
}

/// Scores frame pairs one after another on the calling thread.
pub struct Scorer {
    options: Options,
    tables: Tables,
    workspace: Workspace,
    temporal: Temporal,
}

impl Scorer {
    /// A scorer predicting with `model`.
    pub fn new(model: Model, options: Options) -> Self {
        Self {
            options,
            tables: Tables::new(),
            workspace: Workspace::default(),
            temporal: Temporal::new(model),
        }
    }

    /// Adds the next frame pair; returns the previous frame's scores once they are complete.
    pub fn push(
        &mut self,
        reference: &Picture<'_>,
        distorted: &Picture<'_>,
    ) -> Result<Option<FrameScore>, Error> {
        let s = spatial(
            reference,
            distorted,
            &self.options,
            &self.tables,
            &mut self.workspace,
        )?;
        self.temporal.push(s)
    }

    /// The last frame's scores.
    pub fn finish(&mut self) -> Option<FrameScore> {
        self.temporal.finish()
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// A textured frame and a distorted copy: blurred in one part, sharpened (enhanced past the
    /// gain limits) in another, noisy everywhere, with flat and clipped areas.
    fn pair(w: usize, h: usize, max: u32, seed: u64) -> (Vec<u16>, Vec<u16>) {
        let mut s = seed | 1;
        let mut noise = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 7) as i64 - 3
        };
        let m = i64::from(max);
        let r: Vec<u16> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                let v = if x < w as f64 / 8.0 {
                    0.5
                } else {
                    0.5 + 0.3 * (x * 0.31 + y * 0.07).sin() * (y * 0.19).cos()
                        + 0.25 * ((x * 1.7).sin() * (y * 2.3).sin())
                };
                ((v * m as f64) as i64 + noise()).clamp(0, m) as u16
            })
            .collect();
        let d = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let at = |dx: isize, dy: isize| {
                    let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                    let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                    i64::from(r[yy * w + xx])
                };
                let blur = (at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1) + 4 * at(0, 0)) / 8;
                let v = if y < h / 2 {
                    blur
                } else {
                    // Unsharp masking: detail amplified beyond the reference's.
                    at(0, 0) + 2 * (at(0, 0) - blur)
                };
                (v + noise()).clamp(0, m) as u16
            })
            .collect();
        (r, d)
    }

    fn spatial_with(isa: kernels::Isa, r: &Picture<'_>, d: &Picture<'_>) -> Spatial {
        let mut ws = Workspace {
            isa,
            ..Default::default()
        };
        ws.vif.set_isa(isa);
        ws.adm.set_isa(isa);
        spatial(r, d, &Options::default(), &Tables::new(), &mut ws).unwrap()
    }

    #[test]
    fn simd_and_portable_give_identical_features() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for (w, h) in [(32, 32), (67, 45), (97, 53), (176, 144), (333, 97)] {
            for bpc in [8u8, 10] {
                let max = (1u32 << bpc) - 1;
                let (r16, d16) = pair(w, h, max, (w * h) as u64 + u64::from(bpc));
                let (r8, d8): (Vec<u8>, Vec<u8>) = (
                    r16.iter().map(|&v| v as u8).collect(),
                    d16.iter().map(|&v| v as u8).collect(),
                );
                let (r, d) = if bpc == 8 {
                    (
                        Plane::U8(PlaneView::new(&r8, w, w, h).unwrap()),
                        Plane::U8(PlaneView::new(&d8, w, w, h).unwrap()),
                    )
                } else {
                    (
                        Plane::U16(PlaneView::new(&r16, w, w, h).unwrap()),
                        Plane::U16(PlaneView::new(&d16, w, w, h).unwrap()),
                    )
                };
                let r = Picture::new(bpc, r, None).unwrap();
                let d = Picture::new(bpc, d, None).unwrap();
                let a = spatial_with(kernels::Isa::Portable, &r, &d);
                let b = spatial_with(kernels::Isa::Avx2, &r, &d);
                let at = format!("{w}x{h} {bpc}-bit");
                assert_eq!(a.vif, b.vif, "VIF at {at}");
                assert_eq!(a.adm, b.adm, "ADM at {at}");
                assert_eq!(a.blur, b.blur, "motion blur at {at}");
                // The distortion must be visible, or the comparison proves little.
                assert!(
                    a.vif.score(0) < 0.99 && a.adm.adm2(w, h) < 0.999,
                    "{at}: {a:?}"
                );
            }
        }
    }

    #[test]
    fn a_shared_motion_track_scores_like_temporal() {
        let (w, h) = (96, 64);
        let frames: Vec<(Vec<u8>, Vec<u8>)> = (0..6u64)
            .map(|k| {
                let (r, d) = pair(w, h, 255, 11 + 7 * k);
                (
                    r.iter().map(|&v| v as u8).collect(),
                    d.iter().map(|&v| v as u8).collect(),
                )
            })
            .collect();
        fn pic(v: &[u8], w: usize, h: usize) -> Picture<'_> {
            Picture::new(8, Plane::U8(PlaneView::new(v, w, w, h).unwrap()), None).unwrap()
        }
        let mut scorer = Scorer::new(Model::v061(), Options::default());
        let mut want: Vec<FrameScore> = Vec::new();
        for (r, d) in &frames {
            want.extend(scorer.push(&pic(r, w, h), &pic(d, w, h)).unwrap());
        }
        want.extend(scorer.finish());
        let no_blur = Options {
            motion: false,
            ..Options::default()
        };
        let (tables, mut ws) = (Tables::new(), Workspace::default());
        let mut track = Motion::new();
        let motion: Vec<f64> = frames
            .iter()
            .map(|(r, _)| track.push(&pic(r, w, h)).unwrap())
            .collect();
        let n = frames.len();
        for (i, (r, d)) in frames.iter().enumerate() {
            let s = spatial(&pic(r, w, h), &pic(d, w, h), &no_blur, &tables, &mut ws).unwrap();
            assert!(s.blur.is_empty());
            let motion2 = match i {
                0 => 0.0,
                i if i == n - 1 => motion[i],
                i => motion[i].min(motion[i + 1]),
            };
            let got = predict(&Model::v061(), &s, i as u64, motion[i], motion2);
            assert_eq!(got, want[i], "frame {i}");
        }
        assert!(motion[1] > 0.0);
    }
}
