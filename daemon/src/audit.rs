//! The audit log: one JSON object per line in `logs/audit.jsonl`, written by a
//! dedicated thread so the Router never waits on the disk, rotated by size.
//! Records hold who did what and how it ended, never a secret or a payload.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use actix::prelude::*;
use serde::Serialize;

use crate::durable;

/// One audited request.
#[derive(Debug, Clone, Serialize, Message)]
#[rtype(result = "()")]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub ts: String,
    pub request_id: String,
    /// `owner`, `owner-key`, `peer:<name>` or `anonymous`.
    pub principal: String,
    pub transport: &'static str,
    pub op: &'static str,
    /// `ok`, `denied`, `rate-limited`, `invalid`, `not-found` or `error`.
    pub outcome: &'static str,
    pub status: u16,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// What a job or session was started with: `{program, args}` (plus `agent`,
    /// `customCommandId`), each argument cut at [`MAX_AUDIT_ARG`] characters.
    /// Typed input is never recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<serde_json::Value>,
}

/// Longest argument kept in an audit line, and most arguments kept.
pub const MAX_AUDIT_ARG: usize = 256;
pub const MAX_AUDIT_ARGS: usize = 64;

/// `{program, args}` for an audit line, bounded.
pub fn started_with(program: Option<&str>, args: &[String]) -> serde_json::Value {
    let cut = |s: &str| s.chars().take(MAX_AUDIT_ARG).collect::<String>();
    serde_json::json!({
        "program": program.map(cut),
        "args": args.iter().take(MAX_AUDIT_ARGS).map(|a| cut(a)).collect::<Vec<_>>(),
        "argsOmitted": args.len().saturating_sub(MAX_AUDIT_ARGS),
    })
}

/// Make everything written so far durable; answered once it is.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SyncAudit;

/// Appends records; runs on its own thread (`SyncArbiter`).
pub struct AuditLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl AuditLog {
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Self {
        Self {
            path,
            file: None,
            size: 0,
            max_bytes: max_bytes.max(4096),
            keep,
        }
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let file = durable::open_private_append(&self.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("audit file unavailable"))
    }

    /// `audit.jsonl` → `.1` → `.2` …; the oldest beyond `keep` is dropped.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(numbered(self.keep));
        for n in (1..self.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))
    }

    fn append(&mut self, record: &AuditRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let file = self.file()?;
        file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

impl Actor for AuditLog {
    type Context = SyncContext<Self>;
}

impl Handler<AuditRecord> for AuditLog {
    type Result = ();

    fn handle(&mut self, record: AuditRecord, _ctx: &mut Self::Context) {
        if let Err(e) = self.append(&record) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log");
            self.file = None;
        }
    }
}

impl Handler<SyncAudit> for AuditLog {
    type Result = ();

    fn handle(&mut self, _msg: SyncAudit, _ctx: &mut Self::Context) {
        if let Some(file) = &self.file
            && let Err(e) = file.sync_all()
        {
            tracing::warn!(error = %e, "cannot sync the audit log");
        }
    }
}

/// Current time in RFC 3339 (UTC), for records.
/// `ms` since the epoch as `2026-12-01 23:10 UTC`, for people.
pub fn utc_minutes(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "?".to_owned())
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> AuditRecord {
        AuditRecord {
            ts: now_rfc3339(),
            request_id: format!("r{n}"),
            principal: "owner".into(),
            transport: "unix",
            op: "status",
            outcome: "ok",
            status: 200,
            duration_ms: 0.1,
            remote: None,
            started: None,
        }
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::new(path.clone(), 4096, 2);
        for n in 0..200 {
            log.append(&record(n))?;
        }
        assert!(path.exists());
        assert!(dir.path().join("audit.jsonl.1").exists());
        assert!(dir.path().join("audit.jsonl.2").exists());
        assert!(!dir.path().join("audit.jsonl.3").exists());
        for file in ["audit.jsonl", "audit.jsonl.1"] {
            let text = std::fs::read_to_string(dir.path().join(file))?;
            assert!(text.len() as u64 <= 4096);
            for line in text.lines() {
                let value: serde_json::Value =
                    serde_json::from_str(line).map_err(io::Error::other)?;
                assert_eq!(value["op"], "status");
            }
        }
        Ok(())
    }
}
