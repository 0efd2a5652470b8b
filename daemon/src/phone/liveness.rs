//! Is the relay still there? A WebSocket whose peer stopped (a frozen process,
//! a dropped NAT mapping) stays open for hours as far as TCP knows, since the
//! peer's kernel may keep acknowledging. The link pings every `ping_every`; any
//! frame from the relay counts as a sign of life, and a link silent for
//! [`Liveness::dead_after`] (one and a half intervals: a ping went unanswered)
//! is declared dead and replaced, well within two ping intervals.

use std::time::{Duration, Instant};

/// Default interval between the link's pings (`relay.pingIntervalSec`).
pub const DEFAULT_PING_EVERY: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    ping_every: Duration,
    last_heard: Instant,
}

impl Liveness {
    pub fn new(ping_every: Duration) -> Self {
        Self {
            ping_every: ping_every.max(Duration::from_millis(100)),
            last_heard: Instant::now(),
        }
    }

    pub fn ping_every(&self) -> Duration {
        self.ping_every
    }

    /// How often the deadline is checked.
    pub fn check_every(&self) -> Duration {
        self.ping_every / 5
    }

    pub fn dead_after(&self) -> Duration {
        self.ping_every * 3 / 2
    }

    /// The relay said something (any frame, a pong included).
    pub fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// How long the relay has been silent, when that is past the deadline.
    pub fn overdue(&self) -> Option<Duration> {
        let silent = self.last_heard.elapsed();
        (silent > self.dead_after()).then_some(silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_past_one_and_a_half_intervals_is_overdue() {
        let mut liveness = Liveness::new(Duration::from_millis(200));
        assert!(liveness.overdue().is_none());
        assert!(liveness.dead_after() < liveness.ping_every() * 2);
        liveness.last_heard -= Duration::from_millis(301);
        assert!(liveness.overdue().is_some());
        liveness.heard();
        assert!(liveness.overdue().is_none());
    }
}
