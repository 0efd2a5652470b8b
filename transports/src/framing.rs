//! Unix-socket framing, compatible with the original Loopsy (spec §3.11):
//! `u32 big-endian L` = 1 + payload length, one type byte (`0x01` JSON, `0x02`
//! binary), then the payload. Unlike the original, frames are capped: a peer that
//! announces a larger frame is refused before any of it is buffered.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Largest payload accepted in one frame (spec §10.3 item 13: the original had no cap).
pub const MAX_FRAME_PAYLOAD: usize = 1024 * 1024;

const TYPE_JSON: u8 = 0x01;
const TYPE_BINARY: u8 = 0x02;
const HEADER_LEN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A UTF-8 JSON document: a JSON-RPC 2.0 message.
    Json(Bytes),
    /// Raw terminal bytes for the attached session.
    Binary(Bytes),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {announced} bytes exceeds the {max}-byte cap")]
    TooLarge { announced: usize, max: usize },
    #[error("frame length 0 has no type byte")]
    Empty,
    #[error("unknown frame type 0x{0:02x}; expected 0x01 (JSON) or 0x02 (binary)")]
    UnknownType(u8),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// A frame as one WebSocket message (a peer's framed connection): its type
/// byte, then the payload. The WebSocket delimits it, so no length.
pub fn to_message(frame: Frame) -> Bytes {
    let (kind, payload) = match frame {
        Frame::Json(payload) => (TYPE_JSON, payload),
        Frame::Binary(payload) => (TYPE_BINARY, payload),
    };
    let mut message = bytes::BytesMut::with_capacity(payload.len() + 1);
    message.extend_from_slice(&[kind]);
    message.extend_from_slice(&payload);
    message.freeze()
}

/// The frame of one WebSocket message, checked as a socket frame would be.
pub fn from_message(mut message: Bytes) -> Result<Frame, FrameError> {
    if message.is_empty() {
        return Err(FrameError::Empty);
    }
    if message.len() - 1 > MAX_FRAME_PAYLOAD {
        return Err(FrameError::TooLarge {
            announced: message.len() - 1,
            max: MAX_FRAME_PAYLOAD,
        });
    }
    let kind = message[0];
    let payload = message.split_off(1);
    match kind {
        TYPE_JSON => Ok(Frame::Json(payload)),
        TYPE_BINARY => Ok(Frame::Binary(payload)),
        other => Err(FrameError::UnknownType(other)),
    }
}

/// Tokio codec for [`Frame`]s with a payload cap.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_payload: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self {
            max_payload: MAX_FRAME_PAYLOAD,
        }
    }
}

impl FrameCodec {
    pub fn with_max_payload(max_payload: usize) -> Self {
        Self { max_payload }
    }
}

/// Validates a frame header and returns the payload length and type byte.
pub fn parse_header(
    header: [u8; HEADER_LEN],
    max_payload: usize,
) -> Result<(usize, u8), FrameError> {
    let [a, b, c, d, kind] = header;
    let announced = u32::from_be_bytes([a, b, c, d]) as usize;
    if announced == 0 {
        return Err(FrameError::Empty);
    }
    let payload_len = announced - 1;
    if payload_len > max_payload {
        return Err(FrameError::TooLarge {
            announced: payload_len,
            max: max_payload,
        });
    }
    if kind != TYPE_JSON && kind != TYPE_BINARY {
        return Err(FrameError::UnknownType(kind));
    }
    Ok((payload_len, kind))
}

fn frame_from(kind: u8, payload: Bytes) -> Frame {
    if kind == TYPE_JSON {
        Frame::Json(payload)
    } else {
        Frame::Binary(payload)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut fixed = [0u8; HEADER_LEN];
        fixed.copy_from_slice(header);
        let (payload_len, kind) = parse_header(fixed, self.max_payload)?;
        if src.len() < HEADER_LEN + payload_len {
            src.reserve(HEADER_LEN + payload_len - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(payload_len).freeze();
        Ok(Some(frame_from(kind, payload)))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let (kind, payload) = match frame {
            Frame::Json(p) => (TYPE_JSON, p),
            Frame::Binary(p) => (TYPE_BINARY, p),
        };
        if payload.len() > self.max_payload {
            return Err(FrameError::TooLarge {
                announced: payload.len(),
                max: self.max_payload,
            });
        }
        dst.reserve(HEADER_LEN + payload.len());
        dst.put_u32(payload.len() as u32 + 1);
        dst.put_u8(kind);
        dst.put_slice(&payload);
        Ok(())
    }
}

/// Reads one frame from a blocking reader (the CLI's side of the socket).
pub fn read_frame_blocking(
    reader: &mut impl std::io::Read,
    max_payload: usize,
) -> Result<Frame, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    reader.read_exact(&mut header)?;
    let (payload_len, kind) = parse_header(header, max_payload)?;
    let mut payload = vec![0u8; payload_len];
    reader.read_exact(&mut payload)?;
    Ok(frame_from(kind, Bytes::from(payload)))
}

/// Writes one frame to a blocking writer.
pub fn write_frame_blocking(
    writer: &mut impl std::io::Write,
    frame: Frame,
) -> Result<(), FrameError> {
    let mut buf = BytesMut::new();
    FrameCodec::with_max_payload(usize::MAX).encode(frame, &mut buf)?;
    writer.write_all(&buf)?;
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_splits_across_reads() -> Result<(), FrameError> {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(Frame::Json(Bytes::from_static(b"{}")), &mut buf)?;
        codec.encode(Frame::Binary(Bytes::from_static(b"ls\r")), &mut buf)?;
        let mut partial = buf.split_to(3);
        assert_eq!(codec.decode(&mut partial)?, None);
        partial.unsplit(buf);
        assert_eq!(
            codec.decode(&mut partial)?,
            Some(Frame::Json(Bytes::from_static(b"{}")))
        );
        assert_eq!(
            codec.decode(&mut partial)?,
            Some(Frame::Binary(Bytes::from_static(b"ls\r")))
        );
        assert_eq!(codec.decode(&mut partial)?, None);
        Ok(())
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header() {
        let mut codec = FrameCodec::with_max_payload(16);
        let mut buf = BytesMut::new();
        buf.put_u32(1_000_000);
        buf.put_u8(TYPE_JSON);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_and_unknown_frames_are_refused() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0, 1][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Empty)));
        let mut buf = BytesMut::from(&[0u8, 0, 0, 1, 9][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::UnknownType(9))
        ));
    }
}
