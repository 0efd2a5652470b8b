//! `loopsy_execute` and the job tools: a run waits a while, then becomes a
//! handle an agent polls, pages and cancels.

use std::time::Duration;

use loopsy_transports::wire::method;
use serde_json::{Value, json};

use super::args::Args;
use super::jobs::{Job, Run};
use super::output::{DEFAULT_MAX_BYTES, LIMIT_MAX_BYTES, text};
use super::{Answer, LoopsyMcp, ToolError};

/// How long `loopsy_execute` waits before it hands back a job id.
const DEFAULT_WAIT: f64 = 20.0;
const MAX_WAIT: f64 = 120.0;

/// A job as the job tools report it: state and the tail of both streams
/// within `max` bytes (stderr gets at most a quarter when stdout needs room).
fn report(id: &str, job: &Job, max: u64) -> Value {
    let running = !job.is_done();
    let state = job.state();
    let stderr_room = (max / 4).max(max.saturating_sub(state.stdout.end()));
    let (err_at, err) = state.stderr.last(stderr_room.min(max));
    let out_room = max - err.len() as u64;
    let (out_at, out) = state.stdout.last(out_room);
    let result = state.result.as_ref();
    json!({
        "job_id": id,
        "peer": state.peer,
        "command": state.command,
        "running": running,
        "exit_code": result.and_then(|r| r["exitCode"].as_i64()),
        "signal": result.and_then(|r| r["signal"].as_i64()),
        "timed_out": result.is_some_and(|r| r["timedOut"] == true || r["killed"] == true),
        "error": state.error,
        "stdout": text(out),
        "stderr": text(err),
        "stdout_offset": out_at,
        "stdout_end": state.stdout.end(),
        "stderr_offset": err_at,
        "stderr_end": state.stderr.end(),
        "truncated": out_at > 0 || err_at > 0,
    })
}

fn summary(report: &Value) -> String {
    let id = report["job_id"].as_str().unwrap_or_default();
    if report["running"] == true {
        return format!(
            "{id} is still running ({} bytes of output so far); ask loopsy_job_status later",
            report["stdout_end"]
        );
    }
    if let Some(error) = report["error"].as_str() {
        return format!("{id} could not run: {error}");
    }
    match report["exit_code"].as_i64() {
        Some(code) => format!("{id} exited with {code}"),
        None => format!("{id} was stopped (signal {})", report["signal"]),
    }
}

fn max_bytes(args: &Args) -> Result<u64, ToolError> {
    Ok(args
        .opt_u64("max_bytes", LIMIT_MAX_BYTES)?
        .unwrap_or(DEFAULT_MAX_BYTES)
        .max(1))
}

impl LoopsyMcp {
    pub(super) async fn execute(&self, args: &Args) -> Result<Answer, ToolError> {
        let mut params = json!({
            "command": args.str("command")?,
            "args": args.str_list("args")?,
        });
        if let Some(cwd) = args.opt_str("cwd")? {
            params["cwd"] = json!(cwd);
        }
        if let Some(secs) = args.opt_seconds("timeout_seconds", 24.0 * 3600.0)? {
            params["timeout"] = json!((secs * 1000.0).round());
        }
        let wait = args
            .opt_seconds("wait_seconds", MAX_WAIT)?
            .unwrap_or(DEFAULT_WAIT);
        let max = max_bytes(args)?;
        self.require_daemon()?;
        let run = Run {
            peer: args.peer()?.map(str::to_owned),
            params,
        };
        let (id, job) = self.jobs.start(self.daemon.socket().clone(), run);
        job.wait(Duration::from_secs_f64(wait)).await;
        let report = report(&id, &job, max);
        if report["error"].is_string() {
            return Err(ToolError(summary(&report)));
        }
        Ok(Answer::new(summary(&report), report))
    }

    pub(super) async fn job_status(&self, args: &Args) -> Result<Answer, ToolError> {
        let id = args.str("job_id")?;
        let job = self.jobs.get(id)?;
        let report = report(id, &job, DEFAULT_MAX_BYTES);
        Ok(Answer::new(summary(&report), report))
    }

    pub(super) async fn job_output(&self, args: &Args) -> Result<Answer, ToolError> {
        let id = args.str("job_id")?;
        let stream = args.opt_str("stream")?.unwrap_or("stdout");
        let offset = args.opt_u64("offset", u64::MAX)?.unwrap_or(0);
        let max = max_bytes(args)?;
        let job = self.jobs.get(id)?;
        let running = !job.is_done();
        let state = job.state();
        let tail = match stream {
            "stdout" => &state.stdout,
            "stderr" => &state.stderr,
            other => {
                return Err(ToolError(format!(
                    "`stream` is stdout or stderr, not {other:?}"
                )));
            }
        };
        let (at, bytes) = tail.from(offset, max);
        let next = at + bytes.len() as u64;
        let line = format!(
            "{} bytes of {id}'s {stream} from offset {at} (of {})",
            bytes.len(),
            tail.end()
        );
        let value = json!({
            "job_id": id, "stream": stream, "data": text(bytes), "offset": at,
            "next_offset": next, "end": tail.end(), "running": running,
        });
        Ok(Answer::new(line, value))
    }

    pub(super) async fn job_cancel(&self, args: &Args) -> Result<Answer, ToolError> {
        let id = args.str("job_id")?;
        let job = self.jobs.get(id)?;
        if job.is_done() {
            let value = json!({"job_id": id, "cancelled": false, "note": "it had already ended"});
            return Ok(Answer::new(format!("{id} had already ended"), value));
        }
        let (peer, daemon_job) = {
            let state = job.state();
            (state.peer.clone(), state.daemon_job.clone())
        };
        let Some(daemon_job) = daemon_job else {
            return Err(ToolError(format!(
                "{id} has not started streaming yet (or runs on a TypeScript peer, which cannot cancel); try again in a moment"
            )));
        };
        self.daemon
            .on(
                peer.as_deref(),
                method::EXEC_CANCEL,
                json!({"jobId": daemon_job}),
                super::daemon::CALL_TIMEOUT,
            )
            .await?;
        job.wait(Duration::from_secs(5)).await;
        let value = json!({"job_id": id, "cancelled": true});
        Ok(Answer::new(format!("{id} was cancelled"), value))
    }
}
