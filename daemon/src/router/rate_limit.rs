//! Per-principal, per-family rate limits with GCRA (generic cell rate algorithm):
//! one timestamp per key, exact `Retry-After`, bursts of one minute's quota.
//! The Router owns this state alone, so it needs no locks or atomics.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use loopsy_transports::wire::RateFamily;

use crate::config::RateLimitsConfig;

/// Entries whose theoretical arrival time has passed carry no state; they are
/// dropped every this many checks so the map stays as small as the active set.
const SWEEP_EVERY: u32 = 4096;

pub struct RateLimiter {
    limits: RateLimitsConfig,
    /// Theoretical arrival time per (subject, family).
    tat: HashMap<(String, RateFamily), Instant>,
    checks: u32,
}

impl RateLimiter {
    pub fn new(limits: RateLimitsConfig) -> Self {
        Self {
            limits,
            tat: HashMap::new(),
            checks: 0,
        }
    }

    pub fn set_limits(&mut self, limits: RateLimitsConfig) {
        self.limits = limits;
    }

    fn per_minute(&self, family: RateFamily) -> Option<u32> {
        let limits = &self.limits;
        match family {
            RateFamily::Execute => Some(limits.execute),
            RateFamily::Transfer => Some(limits.transfer),
            RateFamily::Context => Some(limits.context),
            RateFamily::Pair => Some(limits.pair),
            RateFamily::Session => Some(limits.session),
            RateFamily::Default => Some(limits.default),
            RateFamily::Unmetered => None,
        }
    }

    /// `Ok` admits the request; `Err` says how long until one would be admitted.
    pub fn check(
        &mut self,
        subject: &str,
        family: RateFamily,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(per_minute) = self.per_minute(family) else {
            return Ok(());
        };
        self.checks = self.checks.wrapping_add(1);
        if self.checks.is_multiple_of(SWEEP_EVERY) {
            self.tat.retain(|_, tat| *tat > now);
        }
        let per_minute = per_minute.max(1);
        let emission = Duration::from_secs(60) / per_minute;
        let tolerance = emission * (per_minute - 1);
        let key = (subject.to_owned(), family);
        let tat = self.tat.get(&key).copied().unwrap_or(now).max(now);
        let allowed_at = tat.checked_sub(tolerance).unwrap_or(now);
        if allowed_at > now {
            return Err(allowed_at - now);
        }
        self.tat.insert(key, tat + emission);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(default: u32) -> RateLimitsConfig {
        RateLimitsConfig {
            default,
            ..Default::default()
        }
    }

    #[test]
    fn burst_then_refill() {
        let mut limiter = RateLimiter::new(limits(60));
        let start = Instant::now();
        for _ in 0..60 {
            assert!(limiter.check("peer:a", RateFamily::Default, start).is_ok());
        }
        let wait = limiter.check("peer:a", RateFamily::Default, start).err();
        assert!(
            wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(1)),
            "{wait:?}"
        );
        // Other subjects and families are independent.
        assert!(limiter.check("peer:b", RateFamily::Default, start).is_ok());
        assert!(limiter.check("peer:a", RateFamily::Execute, start).is_ok());
        // One emission interval later, exactly one more is admitted.
        let later = start + Duration::from_secs(1);
        assert!(limiter.check("peer:a", RateFamily::Default, later).is_ok());
        assert!(limiter.check("peer:a", RateFamily::Default, later).is_err());
    }

    #[test]
    fn unmetered_is_never_limited() {
        let mut limiter = RateLimiter::new(limits(1));
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(
                limiter
                    .check("anonymous", RateFamily::Unmetered, now)
                    .is_ok()
            );
        }
    }
}
