//! Upper bounds on every number that reaches the daemon from outside: request
//! parameters, config values and a relay's answers. A value past its bound is a
//! clear 400 (or a config error), never an overflow: `Duration::from_secs_f64`,
//! `Instant + Duration` and friends panic on values these checks keep out.
//! `docs/security.md` lists the bounds.

use std::time::Duration;

use loopsy_transports::error::ApiError;

/// Longest an exec job may be given to run (`timeout`, ms): one day.
pub const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest a phone pairing window may stay open (`ttlSeconds`, and the relay's `expiresAt`).
pub const MAX_PAIR_TTL: Duration = Duration::from_secs(60 * 60);
/// Longest any configured duration may be (idle timeouts, retention): 30 days.
pub const MAX_CONFIG_DURATION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A duration given in milliseconds (JSON numbers are `f64`): positive, finite and
/// at most `max`. `field` names the parameter in the error.
pub fn millis(field: &str, value: f64, max: Duration) -> Result<Duration, ApiError> {
    let max_ms = max.as_millis() as f64;
    if !value.is_finite() || value <= 0.0 || value > max_ms {
        return Err(ApiError::bad_request(format!(
            "{field} must be a positive number of milliseconds, at most {max_ms:.0} ({}); got {value}",
            human(max)
        )));
    }
    Ok(Duration::from_secs_f64(value / 1000.0))
}

/// A duration given in whole seconds: at least `min`, at most `max`.
pub fn seconds(field: &str, value: u64, min: u64, max: Duration) -> Result<Duration, ApiError> {
    if value < min || value > max.as_secs() {
        return Err(ApiError::bad_request(format!(
            "{field} must be between {min} and {} seconds ({}); got {value}",
            max.as_secs(),
            human(max)
        )));
    }
    Ok(Duration::from_secs(value))
}

/// "1 day", "1 hour", "30 days": the bound as a person reads it.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_millis_are_refused_not_panicking() {
        for bad in [
            1e23,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            -1.0,
            0.0,
            86_400_001.0,
        ] {
            let error = millis("timeout", bad, MAX_EXEC_TIMEOUT).expect_err("refused");
            assert_eq!(error.status, 400, "{bad}");
        }
        assert_eq!(
            millis("timeout", 1500.0, MAX_EXEC_TIMEOUT).ok(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            millis("timeout", 86_400_000.0, MAX_EXEC_TIMEOUT).ok(),
            Some(MAX_EXEC_TIMEOUT)
        );
    }

    #[test]
    fn seconds_have_both_ends() {
        assert!(seconds("ttl", u64::MAX, 30, MAX_PAIR_TTL).is_err());
        assert!(seconds("ttl", 29, 30, MAX_PAIR_TTL).is_err());
        assert!(seconds("ttl", 3601, 30, MAX_PAIR_TTL).is_err());
        assert_eq!(
            seconds("ttl", 3600, 30, MAX_PAIR_TTL).ok(),
            Some(MAX_PAIR_TTL)
        );
        assert!(human(MAX_PAIR_TTL) == "1 hour" && human(MAX_CONFIG_DURATION) == "30 days");
    }
}
