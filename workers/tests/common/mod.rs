//! Helpers shared by the encode and probe tests.

use fixtures::Fixture;
use workers::encode::ChunkSource;

/// The chunk of `frames` frames from `start` of a generated master, read single-threaded.
pub fn source(f: Fixture, start: u64, frames: u64) -> ChunkSource {
    let m = fixtures::ensure(f).unwrap();
    let (stream, pts) = media::frame_timestamps(&m.path).unwrap();
    let info = media::probe(&m.path, false).unwrap();
    let rate = info.streams[stream].video.as_ref().unwrap().avg_frame_rate;
    ChunkSource {
        path: m.path.clone(),
        stream,
        start_frame: start,
        frames,
        start_pts: pts[start as usize],
        frame_rate: rate,
        decoder_threads: 1,
    }
}
