//! Assembly of encoded chunks, CMAF/fMP4 packaging, DASH and HLS manifests, audio, subtitles,
//! trick-play thumbnails, publishing to S3 and Open Connect-style edge fill.
//!
//! This crate is a placeholder in the workspace until the packager issue lands; it intentionally
//! exports nothing yet.
