//! The phone path's own audit lines: pairing attempts (a right code, a wrong
//! one, a window closed by five wrong codes, a token with no window), phones
//! connecting or refused, and revocations the relay reports. They go to the
//! same `logs/audit.jsonl` as the Router's, with transport `relay`.

use actix::Addr;

use crate::audit::{AuditLog, AuditRecord, now_rfc3339};

#[derive(Default)]
pub struct PhoneEvents {
    audit: Option<Addr<AuditLog>>,
    next: u64,
}

impl PhoneEvents {
    pub fn new(audit: Addr<AuditLog>) -> Self {
        Self {
            audit: Some(audit),
            next: 0,
        }
    }

    /// One audit line: `op` by `principal` (`phone:<id>`, `pairing:<token id>`).
    pub fn record(
        &mut self,
        op: &'static str,
        principal: String,
        outcome: &'static str,
        status: u16,
    ) {
        let Some(audit) = &self.audit else { return };
        self.next += 1;
        audit.do_send(AuditRecord {
            ts: now_rfc3339(),
            request_id: format!("relay-link-{:06}", self.next),
            principal,
            transport: "relay",
            op,
            outcome,
            status,
            duration_ms: 0.0,
            remote: None,
            started: None,
        });
    }
}
