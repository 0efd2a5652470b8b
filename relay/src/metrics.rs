//! Counters for `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub laptops: AtomicU64,
    pub phones: AtomicU64,
    pub frames_from_laptops: AtomicU64,
    pub frames_from_phones: AtomicU64,
    pub bytes_from_laptops: AtomicU64,
    pub bytes_from_phones: AtomicU64,
    pub rejected_auth: AtomicU64,
    pub rejected_origin: AtomicU64,
    pub rejected_rate: AtomicU64,
    pub rejected_capacity: AtomicU64,
    pub dropped_slow_phones: AtomicU64,
    pub registrations: AtomicU64,
    pub pairings: AtomicU64,
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Ordering::Relaxed);
}

impl Metrics {
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        line(
            "loopsy_relay_connections",
            "gauge",
            "Open WebSockets.",
            &[
                (r#"{side="laptop"}"#, get(&self.laptops)),
                (r#"{side="phone"}"#, get(&self.phones)),
            ],
        );
        line(
            "loopsy_relay_frames_total",
            "counter",
            "Frames relayed.",
            &[
                (r#"{from="laptop"}"#, get(&self.frames_from_laptops)),
                (r#"{from="phone"}"#, get(&self.frames_from_phones)),
            ],
        );
        line(
            "loopsy_relay_bytes_total",
            "counter",
            "Payload bytes relayed.",
            &[
                (r#"{from="laptop"}"#, get(&self.bytes_from_laptops)),
                (r#"{from="phone"}"#, get(&self.bytes_from_phones)),
            ],
        );
        line(
            "loopsy_relay_rejects_total",
            "counter",
            "Requests refused.",
            &[
                (r#"{reason="auth"}"#, get(&self.rejected_auth)),
                (r#"{reason="origin"}"#, get(&self.rejected_origin)),
                (r#"{reason="rate"}"#, get(&self.rejected_rate)),
                (r#"{reason="capacity"}"#, get(&self.rejected_capacity)),
                (r#"{reason="slow_phone"}"#, get(&self.dropped_slow_phones)),
            ],
        );
        line(
            "loopsy_relay_registrations_total",
            "counter",
            "Devices registered.",
            &[("", get(&self.registrations))],
        );
        line(
            "loopsy_relay_pairings_total",
            "counter",
            "Phones paired.",
            &[("", get(&self.pairings))],
        );
        out
    }
}
