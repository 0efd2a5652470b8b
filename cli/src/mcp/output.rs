//! Output as an agent can take it: capped (an agent's context is small and
//! costly; about 10k tokens by default), keeping the tail, where the end of a
//! build or a test run says what happened, with byte offsets to page back.

/// Bytes of output a tool returns unless asked for fewer or more.
pub const DEFAULT_MAX_BYTES: u64 = 40_000;
/// The most a tool returns in one answer, whatever it is asked.
pub const LIMIT_MAX_BYTES: u64 = 1024 * 1024;

/// A byte stream's retained tail, with the absolute offset of its first byte.
#[derive(Debug, Default)]
pub struct Tail {
    start: u64,
    bytes: Vec<u8>,
    cap: usize,
}

impl Tail {
    pub fn new(cap: usize) -> Self {
        Self {
            start: 0,
            bytes: Vec::new(),
            cap,
        }
    }

    pub fn push(&mut self, piece: &[u8]) {
        self.bytes.extend_from_slice(piece);
        if self.bytes.len() > self.cap {
            let drop = self.bytes.len() - self.cap;
            self.bytes.drain(..drop);
            self.start += drop as u64;
        }
    }

    /// Offset just past the last byte seen.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Up to `max` bytes from `offset` (clamped to what is retained), and
    /// the offset they start at.
    pub fn from(&self, offset: u64, max: u64) -> (u64, &[u8]) {
        let from = offset.clamp(self.start, self.end());
        let at = (from - self.start) as usize;
        let take = (self.bytes.len() - at).min(max as usize);
        (from, &self.bytes[at..at + take])
    }

    /// The last `max` bytes, and the offset they start at.
    pub fn last(&self, max: u64) -> (u64, &[u8]) {
        self.from(self.end().saturating_sub(max), max)
    }
}

/// Text of bytes that may end inside a UTF-8 character or hold invalid ones.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_end_and_its_offsets() {
        let mut tail = Tail::new(5);
        tail.push(b"abc");
        tail.push(b"defg");
        assert_eq!(tail.end(), 7);
        assert_eq!(tail.from(0, 100), (2, &b"cdefg"[..]));
        assert_eq!(tail.from(4, 2), (4, &b"ef"[..]));
        assert_eq!(tail.last(2), (5, &b"fg"[..]));
        assert_eq!(tail.from(99, 2), (7, &b""[..]));
    }
}
