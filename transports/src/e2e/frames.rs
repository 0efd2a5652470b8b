//! The framed JSON-RPC protocol (`framing::Frame`) inside an end-to-end
//! channel. A frame becomes one or more sealed messages whose plaintext is
//! `kind | piece`: `kind` is 1 (JSON) or 2 (binary), with the high bit set on
//! every piece but the last. Reassembled frames are capped at 1 MiB, like
//! frames on the Unix socket.

use bytes::{Bytes, BytesMut};

use super::{Channel, E2eError, MAX_PLAINTEXT};
use crate::framing::{Frame, MAX_FRAME_PAYLOAD};

const JSON: u8 = 1;
const BINARY: u8 = 2;
const MORE: u8 = 0x80;

/// Seals `frame` into the messages that carry it, in order.
pub fn seal_frame(channel: &mut Channel, frame: &Frame) -> Result<Vec<Vec<u8>>, E2eError> {
    let (kind, payload) = match frame {
        Frame::Json(bytes) => (JSON, bytes),
        Frame::Binary(bytes) => (BINARY, bytes),
    };
    let piece_len = MAX_PLAINTEXT - 1;
    let count = payload.len().div_ceil(piece_len).max(1);
    let mut sealed = Vec::with_capacity(count);
    let mut plaintext = Vec::with_capacity(payload.len().min(piece_len) + 1);
    for index in 0..count {
        let piece = &payload[index * piece_len..payload.len().min((index + 1) * piece_len)];
        plaintext.clear();
        plaintext.push(if index + 1 < count { kind | MORE } else { kind });
        plaintext.extend_from_slice(piece);
        sealed.push(channel.seal(&plaintext)?);
    }
    Ok(sealed)
}

/// Rebuilds frames from opened plaintexts.
#[derive(Default)]
pub struct Reassembler {
    kind: Option<u8>,
    buffer: BytesMut,
}

#[derive(Debug, thiserror::Error)]
pub enum SealedFrameError {
    #[error("an end-to-end frame has an unknown kind {0}")]
    Kind(u8),
    #[error("an end-to-end frame changed kind midway")]
    Mixed,
    #[error("an end-to-end frame is over the 1 MiB limit")]
    TooLarge,
    #[error("an empty end-to-end message")]
    Empty,
}

impl Reassembler {
    /// Adds one opened plaintext; a frame once its last piece arrived.
    pub fn push(&mut self, plaintext: &[u8]) -> Result<Option<Frame>, SealedFrameError> {
        let (&head, piece) = plaintext.split_first().ok_or(SealedFrameError::Empty)?;
        let kind = head & !MORE;
        if kind != JSON && kind != BINARY {
            return Err(SealedFrameError::Kind(kind));
        }
        if self.kind.is_some_and(|k| k != kind) {
            return Err(SealedFrameError::Mixed);
        }
        if self.buffer.len() + piece.len() > MAX_FRAME_PAYLOAD {
            return Err(SealedFrameError::TooLarge);
        }
        self.kind = Some(kind);
        self.buffer.extend_from_slice(piece);
        if head & MORE != 0 {
            return Ok(None);
        }
        self.kind = None;
        let payload: Bytes = self.buffer.split().freeze();
        Ok(Some(if kind == JSON {
            Frame::Json(payload)
        } else {
            Frame::Binary(payload)
        }))
    }
}
