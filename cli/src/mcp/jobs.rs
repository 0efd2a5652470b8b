//! Commands an agent runs, held by this process: each on a socket connection
//! of its own (`exec.stream` here, or through a tunnel on a peer), its output
//! kept as a capped tail. `loopsy_execute` waits a while, then hands back a
//! job id; the job tools read, page and cancel it. When this process ends
//! (the agent closed it), the connections close and the daemons stop the
//! commands: no job outlives the client that started it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use loopsy_transports::client::{ClientError, UnixRpcClient};
use loopsy_transports::error::code::PEER_CANNOT;
use loopsy_transports::wire::method;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::ToolError;
use super::output::Tail;

/// Bytes of each stream a job keeps (its tail); older output is dropped.
const KEPT_PER_STREAM: usize = 4 * 1024 * 1024;
/// Jobs remembered; the oldest finished one is forgotten past this.
const MAX_JOBS: usize = 64;

/// What a job has produced so far.
#[derive(Debug)]
pub struct JobState {
    pub peer: Option<String>,
    pub command: String,
    /// The daemon's id of the run (for `exec.cancel`), once it started.
    pub daemon_job: Option<String>,
    pub stdout: Tail,
    pub stderr: Tail,
    /// The command's end: exit code, signal, timed out.
    pub result: Option<Value>,
    /// Why it could not run or was lost.
    pub error: Option<String>,
}

pub struct Job {
    state: Mutex<JobState>,
    done: watch::Sender<bool>,
}

impl Job {
    pub fn state(&self) -> MutexGuard<'_, JobState> {
        // A panic while holding the lock leaves text behind, nothing unsafe.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to `wait` for the job to end; whether it did.
    pub async fn wait(&self, wait: Duration) -> bool {
        let mut done = self.done.subscribe();
        tokio::time::timeout(wait, done.wait_for(|d| *d))
            .await
            .is_ok()
    }

    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }
}

#[derive(Default)]
pub struct Jobs {
    next: Mutex<u64>,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
}

/// What to run, as `exec.stream` takes it.
pub struct Run {
    pub peer: Option<String>,
    pub params: Value,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Jobs {
    /// Starts `run` on a thread of its own; its id and handle.
    pub fn start(&self, socket: PathBuf, run: Run) -> (String, Arc<Job>) {
        let n = {
            let mut next = lock(&self.next);
            *next += 1;
            *next
        };
        let command = run.params["command"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let job = Arc::new(Job {
            state: Mutex::new(JobState {
                peer: run.peer.clone(),
                command,
                daemon_job: None,
                stdout: Tail::new(KEPT_PER_STREAM),
                stderr: Tail::new(KEPT_PER_STREAM),
                result: None,
                error: None,
            }),
            done: watch::Sender::new(false),
        });
        {
            let mut jobs = lock(&self.jobs);
            jobs.insert(n, job.clone());
            while jobs.len() > MAX_JOBS {
                let Some(oldest) = jobs.iter().find(|(_, j)| j.is_done()).map(|(k, _)| *k) else {
                    break;
                };
                jobs.remove(&oldest);
            }
        }
        let running = job.clone();
        std::thread::spawn(move || {
            let outcome = stream(&socket, &run, &running);
            let mut state = running.state();
            match outcome {
                Ok(result) => state.result = Some(result),
                Err(error) => state.error = Some(ToolError::from(error).0),
            }
            drop(state);
            running.done.send_replace(true);
        });
        (format!("job-{n}"), job)
    }

    pub fn get(&self, id: &str) -> Result<Arc<Job>, ToolError> {
        id.strip_prefix("job-")
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|n| lock(&self.jobs).get(&n).cloned())
            .ok_or_else(|| {
                ToolError(format!(
                    "no job {id}: job ids come from loopsy_execute (like job-3), and only the last {MAX_JOBS} are kept"
                ))
            })
    }
}

/// Runs the command to its end, feeding the job's tails as output arrives.
fn stream(socket: &Path, run: &Run, job: &Job) -> Result<Value, ClientError> {
    let mut client =
        UnixRpcClient::connect(socket, super::daemon::CALL_TIMEOUT)?.without_read_timeout()?;
    if let Some(peer) = &run.peer {
        match client.call(method::PEERS_TUNNEL, Some(&json!({ "peer": peer }))) {
            Ok(_) => {}
            // A TypeScript Loopsy cannot stream: its buffered run, output at the end.
            Err(ClientError::Rpc(failure))
                if failure.loopsy_code() == Some(u64::from(PEER_CANNOT)) =>
            {
                let mut fresh = UnixRpcClient::connect(socket, super::daemon::CALL_TIMEOUT)?
                    .without_read_timeout()?;
                let result = fresh.call(
                    method::PEERS_CALL,
                    Some(&json!({"peer": peer, "method": method::EXEC_RUN, "params": run.params})),
                )?;
                let mut state = job.state();
                state
                    .stdout
                    .push(result["stdout"].as_str().unwrap_or_default().as_bytes());
                state
                    .stderr
                    .push(result["stderr"].as_str().unwrap_or_default().as_bytes());
                return Ok(result);
            }
            Err(e) => return Err(e),
        }
    }
    client.call_streaming(method::EXEC_STREAM, Some(&run.params), |event| {
        let mut state = job.state();
        let data = event["data"].as_str().unwrap_or_default().as_bytes();
        match event["type"].as_str() {
            Some("start") => state.daemon_job = event["jobId"].as_str().map(str::to_owned),
            Some("stdout") => state.stdout.push(data),
            Some("stderr") => state.stderr.push(data),
            _ => {}
        }
    })
}
