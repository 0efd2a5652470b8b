//! The byte ring of a session: the most recent output, every byte addressed by
//! its absolute offset since the session started, so a client can ask for
//! "everything from offset N" and get exactly the bytes it missed.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Debug)]
pub struct OutputRing {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// Absolute offset of `bytes[0]`.
    start: u64,
}

/// Why a range cannot be served from the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// The bytes were dropped from the ring; a snapshot must stand in for them.
    Evicted,
    /// The offset lies beyond the output so far.
    Future,
}

impl OutputRing {
    pub fn new(capacity: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            capacity: capacity.max(1),
            start: 0,
        }
    }

    /// Offset one past the last byte written.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(self.capacity);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.start += excess as u64;
        }
    }

    /// The bytes from `offset` to the end.
    pub fn since(&self, offset: u64) -> Result<Bytes, Gap> {
        if offset > self.end() {
            return Err(Gap::Future);
        }
        if offset < self.start {
            return Err(Gap::Evicted);
        }
        let skip = (offset - self.start) as usize;
        let (a, b) = self.bytes.as_slices();
        let mut out = Vec::with_capacity(self.bytes.len() - skip);
        if skip < a.len() {
            out.extend_from_slice(&a[skip..]);
            out.extend_from_slice(b);
        } else {
            out.extend_from_slice(&b[skip - a.len()..]);
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_eviction() {
        let mut ring = OutputRing::new(8);
        ring.push(b"hello ");
        ring.push(b"world");
        assert_eq!(ring.end(), 11);
        assert_eq!(ring.start(), 3);
        assert_eq!(ring.since(5).as_deref(), Ok(&b" world"[..]));
        assert_eq!(ring.since(11).as_deref(), Ok(&b""[..]));
        assert_eq!(ring.since(2), Err(Gap::Evicted));
        assert_eq!(ring.since(12), Err(Gap::Future));
    }
}
