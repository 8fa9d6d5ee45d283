//! Assembly of encoded chunks, CMAF/fMP4 packaging, DASH and HLS manifests, audio, subtitles,
//! trick-play thumbnails, publishing to S3 and Open Connect-style edge fill.
//!
//! - [`assemble`]: the chunks of a rendition joined into one stream with the master's exact
//!   frame clock.
//! - [`package`]: the renditions cut into CMAF segments on keyframes they all share
//!   ([`segments`]), each segment read back from its boxes ([`fragments`], [`codecs`]), then
//!   the playlists ([`hls`]) and the MPD ([`dash`]) written from one [`presentation`]. Files
//!   go through a [`sink::Sink`].
//! - [`fill`]: Open Connect-style edge fill: the plan (consistent hashing, popularity,
//!   licences), the push over HTTP (windows, rate, breakers, tiered fill) and steering.
//! - [`publish`]: a packaged title to S3 as a CDN origin (types, caching, manifests last,
//!   unchanged objects skipped).
//!
//! ```no_run
//! use packager::package::{package, Settings, Sources, VideoSource};
//! use packager::sink::DirSink;
//!
//! let sources = Sources {
//!     videos: vec![VideoSource { id: "360p".into(), path: "out/360p.mp4".into() }],
//!     ..Default::default()
//! };
//! let done = package(&sources, &Settings::default(), "out/.rungs/package".as_ref(),
//!                    &DirSink::new("out"))?;
//! println!("{} files", done.files);
//! # Ok::<(), packager::package::PackageError>(())
//! ```

pub mod assemble;
pub mod audio;
pub mod av1;
pub mod bmff;
pub mod cenc;
pub mod codecs;
pub mod cpix;
pub mod dash;
pub mod drm;
pub mod fill;
pub mod fragments;
pub mod hls;
pub mod package;
pub mod presentation;
pub mod publish;
pub mod segments;
pub mod sink;
pub mod speke;
pub mod subtitles;
pub mod thumbnails;
