//! The encoded chunk: one elementary stream of one chunk in one rendition, as it travels
//! through the store from the encode task to assembly.
//!
//! The format is small and exact: a magic line, one line of JSON with the stream's codec
//! parameters (everything a muxer needs, including the decoder configuration as hex), then the
//! packets, each a fixed 32-byte little-endian header (pts, dts, duration, flags, size) and its
//! bytes. Timestamps count frames from the chunk's first frame, in units of one frame
//! duration. Parsing checks every length, so a truncated or corrupt object is an error with
//! its byte offset, never a panic or a silently short chunk.

use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"RUNGS-CHUNK 1\n";
const PACKET_HEADER: usize = 32;
/// The packet is a keyframe.
pub const FLAG_KEY: u32 = 1;
/// Refuse packets above this size: no sane frame is bigger, and it bounds allocations.
const MAX_PACKET: usize = 256 << 20;

/// What a muxer needs to know about the stream (a serialisable `AVCodecParameters`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamParams {
    /// FFmpeg's codec name, such as `h264`, `hevc`, `av1` or `vp9`.
    pub codec: String,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// Pixel format name, such as `yuv420p` or `yuv420p10le`.
    pub pixel_format: String,
    /// Codec profile (FFmpeg's number), or -99 when unknown.
    pub profile: i32,
    /// Codec level (FFmpeg's number), or -99 when unknown.
    pub level: i32,
    /// Bits per sample.
    pub bit_depth: u32,
    /// Sample aspect ratio as (num, den); (0, 1) when unknown.
    pub sample_aspect_ratio: (i32, i32),
    /// Colour range, primaries, transfer and matrix (FFmpeg's enum values).
    pub color: [i32; 4],
    /// Chroma sample location (FFmpeg's enum value).
    pub chroma_location: i32,
    /// Frames of reordering delay (B-frames).
    pub video_delay: i32,
    /// The decoder configuration (SPS/PPS, VPS, sequence header...), hex.
    pub extradata: String,
}

/// One compressed frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkPacket {
    /// Presentation time in frames from the chunk start.
    pub pts: i64,
    /// Decoding time in frames from the chunk start (negative before the first frame when
    /// frames are reordered).
    pub dts: i64,
    /// Duration in frames.
    pub duration: i64,
    /// [`FLAG_KEY`] and friends.
    pub flags: u32,
    /// The bitstream.
    pub data: Vec<u8>,
}

impl ChunkPacket {
    /// True for a keyframe.
    pub fn is_key(&self) -> bool {
        self.flags & FLAG_KEY != 0
    }
}

/// The encoded frames of one chunk of one rendition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedChunk {
    /// How to decode and mux the stream.
    pub params: StreamParams,
    /// Packets in decoding order.
    pub packets: Vec<ChunkPacket>,
}

/// Why bytes are not an encoded chunk.
#[derive(Debug, thiserror::Error)]
#[error("not a valid encoded chunk: {reason} at byte {offset}")]
pub struct ChunkFormatError {
    /// What is wrong.
    pub reason: String,
    /// Where.
    pub offset: usize,
}

impl EncodedChunk {
    /// The bytes of the chunk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_string(&self.params).expect("parameters serialise");
        let payload: usize = self.packets.iter().map(|p| p.data.len()).sum();
        let mut out = Vec::with_capacity(
            MAGIC.len() + header.len() + 1 + 8 + self.packets.len() * PACKET_HEADER + payload,
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(header.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&(self.packets.len() as u64).to_le_bytes());
        for p in &self.packets {
            out.extend_from_slice(&p.pts.to_le_bytes());
            out.extend_from_slice(&p.dts.to_le_bytes());
            out.extend_from_slice(&p.duration.to_le_bytes());
            out.extend_from_slice(&p.flags.to_le_bytes());
            out.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&p.data);
        }
        out
    }

    /// Parses bytes written by [`EncodedChunk::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChunkFormatError> {
        let fail = |reason: &str, offset| ChunkFormatError {
            reason: reason.to_owned(),
            offset,
        };
        if !bytes.starts_with(MAGIC) {
            return Err(fail("missing the RUNGS-CHUNK 1 signature", 0));
        }
        let mut at = MAGIC.len();
        let end = bytes[at..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| fail("the parameter line never ends", at))?;
        let params: StreamParams = serde_json::from_slice(&bytes[at..at + end])
            .map_err(|e| fail(&format!("bad stream parameters ({e})"), at))?;
        if !params.extradata.len().is_multiple_of(2) || hex_decode(&params.extradata).is_none() {
            return Err(fail("the decoder configuration is not hex", at));
        }
        at += end + 1;
        let mut take = |n: usize, what: &str| -> Result<&[u8], ChunkFormatError> {
            let s = bytes
                .get(at..at + n)
                .ok_or_else(|| fail(&format!("truncated {what}"), at))?;
            at += n;
            Ok(s)
        };
        let count = u64::from_le_bytes(take(8, "packet count")?.try_into().expect("8 bytes"));
        let mut packets = Vec::new();
        for _ in 0..count {
            let h = take(PACKET_HEADER, "packet header")?;
            let word = |i: usize| i64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
            let (pts, dts, duration) = (word(0), word(8), word(16));
            let flags = u32::from_le_bytes(h[24..28].try_into().expect("4 bytes"));
            let size = u32::from_le_bytes(h[28..32].try_into().expect("4 bytes")) as usize;
            if size > MAX_PACKET {
                return Err(fail(&format!("a packet of {size} bytes"), at - 4));
            }
            let data = take(size, "packet data")?.to_vec();
            packets.push(ChunkPacket {
                pts,
                dts,
                duration,
                flags,
                data,
            });
        }
        if at != bytes.len() {
            return Err(fail("bytes after the last packet", at));
        }
        Ok(Self { params, packets })
    }

    /// Frames in the chunk.
    pub fn frames(&self) -> usize {
        self.packets.len()
    }

    /// The decoder configuration bytes.
    pub fn extradata(&self) -> Vec<u8> {
        hex_decode(&self.params.extradata).unwrap_or_default()
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EncodedChunk {
        EncodedChunk {
            params: StreamParams {
                codec: "h264".into(),
                width: 640,
                height: 360,
                pixel_format: "yuv420p".into(),
                profile: 100,
                level: 30,
                bit_depth: 8,
                sample_aspect_ratio: (1, 1),
                color: [1, 1, 1, 1],
                chroma_location: 1,
                video_delay: 2,
                extradata: hex(&[0, 0, 0, 1, 0x67, 0x64]),
            },
            packets: (0..5)
                .map(|i| ChunkPacket {
                    pts: i,
                    dts: i - 2,
                    duration: 1,
                    flags: u32::from(i == 0),
                    data: vec![i as u8; 10 + i as usize],
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips() {
        let c = sample();
        let bytes = c.to_bytes();
        assert_eq!(EncodedChunk::from_bytes(&bytes).unwrap(), c);
        assert_eq!(c.extradata(), [0, 0, 0, 1, 0x67, 0x64]);
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error() {
        let bytes = sample().to_bytes();
        for n in 0..bytes.len() {
            let e = EncodedChunk::from_bytes(&bytes[..n]).expect_err("truncated");
            assert!(e.offset <= n, "{e} for {n}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(EncodedChunk::from_bytes(&long).is_err());
        let mut huge = bytes.clone();
        let first_size = MAGIC.len()
            + bytes[MAGIC.len()..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap()
            + 1
            + 8
            + 28;
        huge[first_size..first_size + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = EncodedChunk::from_bytes(&huge).unwrap_err();
        assert!(e.reason.contains("bytes"), "{e}");
    }
}
