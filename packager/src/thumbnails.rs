//! Trick-play thumbnails: a picture every `interval` seconds of the master, scaled to a tile,
//! laid out left to right and top to bottom on JPEG sprite sheets (made with the `image`
//! crate), listed by a WebVTT thumbnail track (`thumbs/thumbnails.vtt`, media fragments
//! `#xywh=`) and by a DASH image adaptation set (the DASH-IF thumbnail tiles).

use std::fmt::Write;
use std::path::Path;

use image::{ImageEncoder, RgbImage};
use media::{Chroma, Demuxer, MediaError, PixelLayout, Resizer, Samples, ScaleFilter};

use crate::presentation::Thumbnails;
use crate::sink::{Sink, SinkError};
use crate::subtitles::vtt_time;

/// Default seconds between thumbnails.
pub const DEFAULT_INTERVAL: u32 = 10;
/// Default tile width in pixels (the height follows the picture's shape).
pub const DEFAULT_TILE_WIDTH: u32 = 240;
/// Default tiles across and down a sheet.
pub const DEFAULT_GRID: (u32, u32) = (5, 5);
/// JPEG quality of the sheets.
const JPEG_QUALITY: u8 = 80;

/// Thumbnail settings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ThumbnailSettings {
    /// Seconds between thumbnails (at least 1).
    pub interval: u32,
    /// Tile width in pixels.
    pub tile_width: u32,
    /// Tiles across and down a sheet.
    pub grid: (u32, u32),
}

impl Default for ThumbnailSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            tile_width: DEFAULT_TILE_WIDTH,
            grid: DEFAULT_GRID,
        }
    }
}

/// Why thumbnails could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// The settings make no sense.
    #[error("thumbnail settings: {0}")]
    Settings(String),
    /// Decoding or scaling failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// JPEG encoding failed.
    #[error("encoding sheet {sheet}: {reason}")]
    Jpeg {
        /// The sheet (from 1).
        sheet: u32,
        /// Why.
        reason: String,
    },
    /// The sink refused a file.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Name of the thumbnail track.
pub const VTT: &str = "thumbs/thumbnails.vtt";

/// Makes the thumbnails of `master` (its first video stream) for `duration` seconds of title
/// that start at `origin` seconds of the master's clock, and writes the sheets and the track.
pub fn make(
    master: &Path,
    origin: f64,
    duration: f64,
    settings: &ThumbnailSettings,
    sink: &dyn Sink,
) -> Result<Thumbnails, ThumbnailError> {
    check(settings)?;
    let count = (duration / f64::from(settings.interval)).ceil().max(1.0) as u32;
    let mut d = Demuxer::open(master)?;
    let no_video = || ThumbnailError::Settings("the master has no video stream".into());
    let index = d.info().best_video().ok_or_else(no_video)?;
    let v = d.info().streams[index].video.clone().ok_or_else(no_video)?;
    let dar = v
        .display_aspect_ratio
        .to_f64()
        .filter(|a| *a > 0.0)
        .unwrap_or(f64::from(v.width) / f64::from(v.height.max(1)));
    let tw = settings.tile_width & !1;
    let th = ((f64::from(tw) / dar / 2.0).round() as u32 * 2).max(2);
    let mut decoder = d.video_decoder(index, &Default::default())?;
    let mut resizer = Resizer::new(
        tw,
        th,
        PixelLayout {
            chroma: Chroma::Cs444,
            bit_depth: 8,
        },
        ScaleFilter::Bicubic,
    );
    let mut sheets = Sheets::new(sink, (tw, th), settings.grid, v.height >= 720);
    let mut eof = false;
    'decode: while !eof {
        match d.read()? {
            Some(p) if p.stream() == index => decoder.send(&p)?,
            Some(_) => continue,
            None => {
                decoder.send_eof()?;
                eof = true;
            }
        }
        while let Some(frame) = decoder.receive()? {
            let t = frame.seconds().unwrap_or(0.0) - origin;
            // The first frame at or after each thumbnail's time.
            if sheets.taken >= count {
                break 'decode;
            }
            if t + 1e-6 < f64::from(sheets.taken * settings.interval) {
                continue;
            }
            sheets.add(&resizer.resize(&frame)?)?;
        }
    }
    let taken = sheets.taken;
    let thumbs = sheets.finish(settings.interval)?;
    sink.put(VTT, track(&thumbs, taken, duration).as_bytes())?;
    Ok(thumbs)
}

/// Refuses settings that make no sense.
fn check(settings: &ThumbnailSettings) -> Result<(), ThumbnailError> {
    let (cols, rows) = settings.grid;
    if settings.interval == 0
        || !(16..=1920).contains(&settings.tile_width)
        || !(1..=20).contains(&cols)
        || !(1..=20).contains(&rows)
    {
        return Err(ThumbnailError::Settings(format!(
            "interval {} s, tile width {}, grid {cols}x{rows} (expected an interval of at least \
             1 s, a width of 16 to 1920 and 1 to 20 tiles each way)",
            settings.interval, settings.tile_width
        )));
    }
    Ok(())
}

/// The sprite sheets: tiles painted left to right and top to bottom, each full sheet written
/// as a JPEG.
struct Sheets<'a> {
    sink: &'a dyn Sink,
    /// Tile width and height.
    tile: (u32, u32),
    /// Tiles across and down.
    grid: (u32, u32),
    /// BT.709 colours (else BT.601).
    hd: bool,
    /// The sheet being painted.
    sheet: RgbImage,
    /// Tiles painted so far.
    taken: u32,
    /// Sheets written.
    sheets: u32,
    /// Bytes of the largest sheet.
    max_bytes: u64,
}

impl<'a> Sheets<'a> {
    fn new(sink: &'a dyn Sink, tile: (u32, u32), grid: (u32, u32), hd: bool) -> Self {
        Self {
            sink,
            tile,
            grid,
            hd,
            sheet: RgbImage::new(tile.0 * grid.0, tile.1 * grid.1),
            taken: 0,
            sheets: 0,
            max_bytes: 0,
        }
    }

    fn per_sheet(&self) -> u32 {
        self.grid.0 * self.grid.1
    }

    /// Paints the next tile, and writes the sheet when it is full.
    fn add(&mut self, tile: &media::OwnedFrame) -> Result<(), ThumbnailError> {
        let ((tw, th), cols) = (self.tile, self.grid.0);
        let slot = self.taken % self.per_sheet();
        paint(
            &mut self.sheet,
            tile,
            (slot % cols) * tw,
            (slot / cols) * th,
            self.hd,
        );
        self.taken += 1;
        if self.taken.is_multiple_of(self.per_sheet()) {
            self.flush()?;
            self.sheet = RgbImage::new(tw * cols, th * self.grid.1);
        }
        Ok(())
    }

    /// Writes the sheet being painted.
    fn flush(&mut self) -> Result<(), ThumbnailError> {
        self.sheets += 1;
        let n = self.sheets;
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
            .write_image(
                self.sheet.as_raw(),
                self.sheet.width(),
                self.sheet.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| ThumbnailError::Jpeg {
                sheet: n,
                reason: e.to_string(),
            })?;
        self.sink.put(&format!("thumbs/{n:05}.jpg"), &jpeg)?;
        self.max_bytes = self.max_bytes.max(jpeg.len() as u64);
        Ok(())
    }

    /// Writes the last sheet if it holds any tile, and describes them all.
    fn finish(mut self, interval: u32) -> Result<Thumbnails, ThumbnailError> {
        if !self.taken.is_multiple_of(self.per_sheet()) {
            self.flush()?;
        }
        Ok(Thumbnails {
            interval,
            columns: self.grid.0,
            rows: self.grid.1,
            tile: self.tile,
            sheets: self.sheets,
            max_sheet_bytes: self.max_bytes,
        })
    }
}

/// Paints a YUV 4:4:4 tile at (`x`, `y`), BT.709 for HD and BT.601 below, limited range.
fn paint(sheet: &mut RgbImage, tile: &media::OwnedFrame, x: u32, y: u32, hd: bool) {
    let (Some(Samples::U8(py)), Some(Samples::U8(pu)), Some(Samples::U8(pv))) =
        (tile.planes.first(), tile.planes.get(1), tile.planes.get(2))
    else {
        return;
    };
    // (Cr to R, Cb to G, Cr to G, Cb to B).
    let (rv, gu, gv, bu) = if hd {
        (1.5748, 0.1873, 0.4681, 1.8556)
    } else {
        (1.402, 0.3441, 0.7141, 1.772)
    };
    for j in 0..tile.height {
        for i in 0..tile.width {
            let k = j * tile.width + i;
            let l = (f32::from(py[k]) - 16.0) * 255.0 / 219.0;
            let cb = (f32::from(pu[k]) - 128.0) * 255.0 / 224.0;
            let cr = (f32::from(pv[k]) - 128.0) * 255.0 / 224.0;
            let px = [
                (l + rv * cr).round().clamp(0.0, 255.0) as u8,
                (l - gu * cb - gv * cr).round().clamp(0.0, 255.0) as u8,
                (l + bu * cb).round().clamp(0.0, 255.0) as u8,
            ];
            sheet.put_pixel(x + i as u32, y + j as u32, image::Rgb(px));
        }
    }
}

/// The WebVTT thumbnail track: one cue per thumbnail, pointing into its sheet.
pub fn track(t: &Thumbnails, count: u32, duration: f64) -> String {
    let mut out = String::from("WEBVTT\n\n");
    let per_sheet = t.columns * t.rows;
    let end_ms = (duration * 1000.0).round() as u64;
    for k in 0..count {
        let start = u64::from(k * t.interval) * 1000;
        let end = (u64::from((k + 1) * t.interval) * 1000).min(end_ms.max(start + 1));
        let slot = k % per_sheet;
        let _ = writeln!(
            out,
            "{} --> {}\n{:05}.jpg#xywh={},{},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            k / per_sheet + 1,
            (slot % t.columns) * t.tile.0,
            (slot / t.columns) * t.tile.1,
            t.tile.0,
            t.tile.1
        );
    }
    out
}
