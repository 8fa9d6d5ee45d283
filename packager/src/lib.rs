//! Assembly of encoded chunks, CMAF/fMP4 packaging, DASH and HLS manifests, audio, subtitles,
//! trick-play thumbnails, publishing to S3 and Open Connect-style edge fill.
//!
//! Today it holds [`assemble`]: the chunks of a rendition joined into one stream with the
//! master's exact frame clock. Packaging and publishing come with their issues.

pub mod assemble;
