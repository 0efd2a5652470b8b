//! Wall-clock time as the wire shows it: milliseconds since the Unix epoch
//! (`createdAt`, `startedAt`, expiries). A clock before 1970 reads as 0.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
