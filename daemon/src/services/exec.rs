//! Running commands for peers and agents (spec §1.7): no shell, a clean
//! environment, its own process group, a timeout, bounded capture, and
//! termination of the whole group (SIGTERM, then SIGKILL after a grace period).
//! Policy (denylist, concurrency) is decided by the Router before `spawn`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loopsy_transports::wire::StreamItem;
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc};

/// Between SIGTERM and SIGKILL (spec §1.7).
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// Read size from each pipe.
const READ_CHUNK: usize = 16 * 1024;
/// Environment variables never passed to children: they would let an agent
/// recognise a parent agent (spec §1.7) or carry loopsy's own secrets.
const STRIPPED_ENV: &[&str] = &["CLAUDECODE", "CLAUDE_CODE_ENTRY_POINT"];

/// What to run, fully resolved.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub job_id: String,
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub extra_env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Captured bytes kept per stream (buffered mode).
    pub max_output: usize,
}

/// Where the output goes.
pub enum JobOutput {
    /// Kept (up to the cap) for the final result.
    Buffered,
    /// Forwarded as events; the channel is bounded, so a slow reader slows the
    /// child through its pipe instead of growing memory. A dropped receiver
    /// (client gone) terminates the job.
    Streaming(mpsc::Sender<StreamItem>),
}

#[derive(Debug, thiserror::Error)]
#[error("Execution failed: {0}")]
pub struct SpawnError(pub String);

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub job_id: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub duration_ms: u64,
    pub timed_out: bool,
    pub cancelled: bool,
}

impl JobResult {
    /// The original's result shape plus truncation and timeout flags.
    pub fn to_json(&self) -> Value {
        json!({
            "jobId": self.job_id,
            "exitCode": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration": self.duration_ms,
            "killed": self.signal.is_some(),
            "signal": self.signal,
            "timedOut": self.timed_out,
            "cancelled": self.cancelled,
            "stdoutTruncated": self.stdout_truncated,
            "stderrTruncated": self.stderr_truncated,
        })
    }
}

/// The daemon's environment minus what children must not see, plus `extra`.
pub fn child_env(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| !STRIPPED_ENV.contains(&name.as_str()) && !name.starts_with("LOOPSY_"))
        .collect();
    env.extend(extra.iter().cloned());
    env
}

/// A running job: its pid and the future that supervises it to the end.
pub struct Started {
    pub pid: u32,
    pub finished: std::pin::Pin<Box<dyn std::future::Future<Output = JobResult> + Send>>,
}

/// Starts `spec`; `cancel` terminates it. Must run inside the Tokio runtime.
pub fn spawn(spec: JobSpec, output: JobOutput, cancel: Arc<Notify>) -> Result<Started, SpawnError> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(child_env(&spec.extra_env))
        .current_dir(&spec.cwd)
        // Its own group, so a timeout or cancel reaches every process it started.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| SpawnError(format!("{}: {e}", spec.program)))?;
    let pid = child
        .id()
        .ok_or_else(|| SpawnError("the process exited before it could be watched".into()))?;
    Ok(Started {
        pid,
        finished: Box::pin(supervise(child, pid, spec, output, cancel)),
    })
}

/// Appends up to a cap, remembering whether anything was dropped.
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }
    fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Turns a byte stream into text without splitting a UTF-8 character across events.
#[derive(Default)]
struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    fn push(&mut self, chunk: &[u8]) -> String {
        self.pending.extend_from_slice(chunk);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete character at the end waits for the next chunk.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        text
    }
    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

use loopsy_transports::clock::now_ms;

fn event(kind: &str, data: &str, job_id: &str) -> StreamItem {
    StreamItem::Event(json!({ "type": kind, "data": data, "jobId": job_id, "timestamp": now_ms() }))
}

fn signal_group(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // ESRCH (already gone) is the normal end of a race with the process exiting.
        let _ = kill_process_group(pid, signal);
    }
}

async fn sleep_opt(sleep: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

/// Resolves when a streaming client has gone away; never for buffered jobs.
async fn client_gone(output: &JobOutput) {
    match output {
        JobOutput::Streaming(events) => events.closed().await,
        JobOutput::Buffered => std::future::pending().await,
    }
}

async fn read_opt(
    pipe: &mut Option<impl tokio::io::AsyncRead + Unpin>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn supervise(
    mut child: Child,
    pid: u32,
    spec: JobSpec,
    output: JobOutput,
    cancel: Arc<Notify>,
) -> JobResult {
    let started = Instant::now();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = ([0u8; READ_CHUNK], [0u8; READ_CHUNK]);
    let (mut out_capture, mut err_capture) =
        (Capture::new(spec.max_output), Capture::new(spec.max_output));
    let (mut out_text, mut err_text) = (Utf8Chunks::default(), Utf8Chunks::default());
    let mut deadline = Some(Box::pin(tokio::time::sleep(spec.timeout)));
    let mut kill_timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut status = None;
    let (mut timed_out, mut cancelled) = (false, false);

    let terminate = |kill_timer: &mut Option<_>| {
        if kill_timer.is_none() {
            signal_group(pid, Signal::TERM);
            *kill_timer = Some(Box::pin(tokio::time::sleep(KILL_GRACE)));
        }
    };

    while stdout.is_some() || stderr.is_some() || status.is_none() {
        let mut forward: Option<(&str, String)> = None;
        tokio::select! {
            read = read_opt(&mut stdout, &mut out_buf) => match read {
                Ok(n) if n > 0 => match &output {
                    JobOutput::Buffered => out_capture.push(&out_buf[..n]),
                    JobOutput::Streaming(_) => forward = Some(("stdout", out_text.push(&out_buf[..n]))),
                },
                _ => {
                    stdout = None;
                    forward = Some(("stdout", out_text.finish()));
                }
            },
            read = read_opt(&mut stderr, &mut err_buf) => match read {
                Ok(n) if n > 0 => match &output {
                    JobOutput::Buffered => err_capture.push(&err_buf[..n]),
                    JobOutput::Streaming(_) => forward = Some(("stderr", err_text.push(&err_buf[..n]))),
                },
                _ => {
                    stderr = None;
                    forward = Some(("stderr", err_text.finish()));
                }
            },
            exit = child.wait(), if status.is_none() => {
                status = Some(exit);
                // The process is gone; wait for the pipes only as long as the deadline allows
                // (a background grandchild may hold them open).
            }
            () = sleep_opt(&mut deadline) => {
                deadline = None;
                timed_out = true;
                terminate(&mut kill_timer);
            }
            () = cancel.notified(), if kill_timer.is_none() => {
                cancelled = true;
                terminate(&mut kill_timer);
            }
            () = client_gone(&output), if kill_timer.is_none() => {
                // Nobody is watching a streamed job any more: stop it.
                cancelled = true;
                terminate(&mut kill_timer);
            }
            () = sleep_opt(&mut kill_timer) => {
                kill_timer = Some(Box::pin(tokio::time::sleep(Duration::from_secs(3600))));
                signal_group(pid, Signal::KILL);
                if status.is_some() {
                    // Only pipes held by leftovers remain; stop waiting for them.
                    stdout = None;
                    stderr = None;
                }
            }
        }
        if let (Some((kind, text)), JobOutput::Streaming(events)) = (forward, &output)
            && !text.is_empty()
            && events.send(event(kind, &text, &spec.job_id)).await.is_err()
        {
            // The client went away: stop the job rather than run it unobserved.
            cancelled = true;
            terminate(&mut kill_timer);
        }
    }

    let (exit_code, signal) = match status {
        Some(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            (status.code(), status.signal())
        }
        _ => (None, None),
    };
    let result = JobResult {
        job_id: spec.job_id.clone(),
        exit_code,
        signal,
        stdout: out_capture.text(),
        stderr: err_capture.text(),
        stdout_truncated: out_capture.truncated,
        stderr_truncated: err_capture.truncated,
        duration_ms: started.elapsed().as_millis() as u64,
        timed_out,
        cancelled,
    };
    if let JobOutput::Streaming(events) = &output {
        let code = exit_code.map_or_else(|| "0".to_owned(), |c| c.to_string());
        let _ = events.send(event("exit", &code, &spec.job_id)).await;
        let _ = events.send(StreamItem::End(Ok(result.to_json()))).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, args: &[&str], timeout: Duration) -> JobSpec {
        JobSpec {
            job_id: "job".into(),
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: std::env::temp_dir(),
            extra_env: vec![("EXTRA".into(), "yes".into())],
            timeout,
            max_output: 64,
        }
    }

    fn run(spec: JobSpec) -> JobResult {
        actix_rt::System::new().block_on(async move {
            let started = spawn(spec, JobOutput::Buffered, Arc::new(Notify::new())).expect("spawn");
            started.finished.await
        })
    }

    #[test]
    fn captures_output_exit_code_and_env() {
        let result = run(spec(
            "sh",
            &["-c", "echo out; echo err >&2; echo $EXTRA; exit 3"],
            Duration::from_secs(10),
        ));
        assert_eq!(result.exit_code, Some(3));
        assert_eq!(result.stdout, "out\nyes\n");
        assert_eq!(result.stderr, "err\n");
        assert!(!result.timed_out);
    }

    #[test]
    fn capture_is_capped_and_flagged() {
        let result = run(spec(
            "sh",
            &["-c", "head -c 100000 /dev/zero | tr '\\\\0' a"],
            Duration::from_secs(10),
        ));
        assert_eq!(result.stdout.len(), 64);
        assert!(result.stdout_truncated);
        assert_eq!(result.exit_code, Some(0));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let result = run(spec(
            "sh",
            &["-c", "sleep 30 & sleep 30; echo never"],
            Duration::from_millis(200),
        ));
        assert!(result.timed_out);
        assert_eq!(result.signal, Some(15));
        assert!(
            result.duration_ms < 10_000,
            "the background sleep did not hold the job: {}",
            result.duration_ms
        );
    }

    #[test]
    fn utf8_is_never_split() {
        let mut chunks = Utf8Chunks::default();
        let bytes = "é".as_bytes();
        assert_eq!(chunks.push(&bytes[..1]), "");
        assert_eq!(chunks.push(&bytes[1..]), "é");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        actix_rt::System::new().block_on(async {
            let error = spawn(
                spec("/nonexistent/prog", &[], Duration::from_secs(1)),
                JobOutput::Buffered,
                Arc::new(Notify::new()),
            );
            assert!(error.is_err());
        });
    }
}
