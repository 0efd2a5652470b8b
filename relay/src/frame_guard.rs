//! Refuses an oversized WebSocket frame from its header, before its payload is
//! read. actix-ws (like the codec beneath it) only refuses a frame once all of
//! it has arrived, so an announced 1 GiB frame would be buffered whole first.
//! The guard reads the raw bytes on their way to the WebSocket codec, follows
//! the frame boundaries (header, then `length` payload bytes to skip), and
//! trips on the first header that announces more than the limit: from then on
//! it passes nothing and drops what it reads, and the socket's reader, told by
//! [`Tripped`], closes the socket with 1009.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;

/// Told once, when a frame over the limit was announced.
#[derive(Clone, Default)]
pub struct Tripped(Arc<Notify>);

impl Tripped {
    pub async fn wait(&self) {
        self.0.notified().await;
    }
}

/// Where the guard is in the byte stream.
#[derive(Debug, Default)]
struct Frames {
    /// Header bytes gathered so far (at most 2 + 8 + 4).
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
}

/// A frame header announced this many payload bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Oversized(pub u64);

impl Frames {
    /// The payload length once the header is complete.
    fn header_length(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let short = self.header[1] & 0x7f;
        let extended = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        if self.have < 2 + extended + mask {
            return None;
        }
        let field = &self.header[2..2 + extended];
        Some(match extended {
            2 => u64::from(u16::from_be_bytes([field[0], field[1]])),
            8 => field.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)),
            _ => u64::from(short),
        })
    }

    /// Follows `bytes` through the frames; an announced length over `limit` trips.
    fn scan(&mut self, mut bytes: &[u8], limit: u64) -> Result<(), Oversized> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip =
                    usize::try_from(self.remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                self.remaining -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if let Some(length) = self.header_length() {
                if length > limit {
                    return Err(Oversized(length));
                }
                self.remaining = length;
                self.have = 0;
            }
        }
        Ok(())
    }
}

struct FrameGuard<S> {
    inner: S,
    limit: u64,
    frames: Frames,
    tripped: Option<Tripped>,
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let chunk = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => chunk,
                other => return other,
            };
            let Some(tripped) = &this.tripped else {
                // Tripped before: what still comes is dropped unread.
                continue;
            };
            match this.frames.scan(&chunk, this.limit) {
                Ok(()) => return Poll::Ready(Some(Ok(chunk))),
                Err(Oversized(length)) => {
                    tracing::warn!(
                        length,
                        "refusing a WebSocket frame larger than the limit from its header"
                    );
                    tripped.0.notify_one();
                    this.tripped = None;
                }
            }
        }
    }
}

/// `body` behind a guard that refuses frames over `limit` bytes from their
/// header; the [`Tripped`] is told when it does.
pub async fn guarded(
    req: &HttpRequest,
    body: web::Payload,
    limit: u64,
) -> Result<(web::Payload, Tripped), actix_web::Error> {
    let tripped = Tripped::default();
    let guard = FrameGuard {
        inner: body,
        limit,
        frames: Frames::default(),
        tripped: Some(tripped.clone()),
    };
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(guard);
    let mut payload = actix_web::dev::Payload::from(stream);
    let body = web::Payload::from_request(req, &mut payload).await?;
    Ok((body, tripped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header announcing `length`.
    fn header(length: u64) -> Vec<u8> {
        let mut out = vec![0x82];
        match length {
            0..=125 => out.push(0x80 | length as u8),
            126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&length.to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out
    }

    #[test]
    fn frames_under_the_limit_pass_in_any_split() {
        let mut stream = Vec::new();
        for length in [0u64, 5, 125, 126, 300, 70_000] {
            stream.extend(header(length));
            stream.extend(std::iter::repeat_n(7u8, length as usize));
        }
        for split in [1, 2, 3, 7, 1000, stream.len()] {
            let mut frames = Frames::default();
            for piece in stream.chunks(split) {
                assert_eq!(frames.scan(piece, 70_000), Ok(()), "split {split}");
            }
            assert_eq!(
                (frames.have, frames.remaining),
                (0, 0),
                "ends between frames"
            );
        }
    }

    #[test]
    fn an_oversized_header_trips_before_any_payload() {
        for (length, limit) in [(1u64 << 30, 1 << 20), (70_001, 70_000), (u64::MAX >> 1, 10)] {
            let mut frames = Frames::default();
            let mut stream = header(10);
            stream.extend([0u8; 10]);
            stream.extend(header(length));
            let tripped = stream
                .iter()
                .position(|b| frames.scan(std::slice::from_ref(b), limit).is_err());
            assert_eq!(
                tripped,
                Some(stream.len() - 1),
                "{length}: at the header's last byte"
            );
        }
    }
}
