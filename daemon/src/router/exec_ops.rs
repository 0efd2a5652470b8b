//! Execute requests (spec §1.7): the Router applies the command guard and the
//! concurrency limit to buffered and streaming runs alike (the original skipped
//! both for streaming), registers the job, and lets the exec service run it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{ExecParams, Reply, ReplyStream, Request};
use serde_json::json;
use std::pin::Pin;

use tokio::sync::{Notify, mpsc, oneshot};

use super::{Principal, Router, Work};
use crate::paths::expand_home;
use crate::policy::command_guard::CommandGuard;
use crate::secrets;
use crate::services::exec::{self, JobOutput, JobSpec};
use loopsy_transports::clock::now_ms;

use loopsy_transports::error::code::{
    EXEC_DENIED as DENIED, EXEC_FAILED as FAILED, EXEC_MAX_CONCURRENT as MAX_CONCURRENT,
    JOB_NOT_FOUND,
};
/// Events buffered toward a streaming client before the job waits for it.
const STREAM_BUFFER: usize = 64;

/// A running job, as `GET /execute/jobs` shows it.
pub(super) struct JobEntry {
    command: String,
    args: Vec<String>,
    started_at: u64,
    from_node_id: String,
    /// Known once the exec worker has started the process.
    pid: Option<u32>,
    /// Who started it (principal label): only they, and the owner, see or cancel it.
    owner: String,
    cancel: Arc<Notify>,
}

/// Every running job, buffered or streaming: the one count `maxConcurrent` limits.
#[derive(Default)]
pub(super) struct JobTable {
    jobs: HashMap<String, JobEntry>,
    /// Jobs started since the daemon started.
    total: u64,
}

impl JobTable {
    pub(super) fn active(&self) -> usize {
        self.jobs.len()
    }
    pub(super) fn total(&self) -> u64 {
        self.total
    }
}

fn new_job_id() -> Result<String, ApiError> {
    let bytes = secrets::random_bytes::<16>().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// Whether `principal` sees and may cancel a job started by `owner`.
fn sees(principal: &Principal, owner: &str) -> bool {
    matches!(principal, Principal::Owner | Principal::OwnerKey { .. }) || principal.label() == owner
}

pub(super) fn run(router: &mut Router, request: Request, principal: &Principal) -> Work {
    match request {
        Request::Execute {
            params,
            stream,
            from_node_id,
        } => match start(router, params, stream, from_node_id, principal.label()) {
            Ok(work) => work,
            Err(error) => Work::Done(Err(error)),
        },
        Request::ExecJobs => {
            let jobs: Vec<_> = router
                .jobs
                .jobs
                .iter()
                .filter(|(_, job)| sees(principal, &job.owner))
                .map(|(id, job)| {
                    json!({
                        "jobId": id,
                        "command": job.command,
                        "args": job.args,
                        "startedAt": job.started_at,
                        "fromNodeId": job.from_node_id,
                        "pid": job.pid,
                    })
                })
                .collect();
            Work::Done(Ok(Reply::ok(json!({ "jobs": jobs }))))
        }
        Request::ExecCancel { job_id } => match router
            .jobs
            .jobs
            .get(&job_id)
            .filter(|job| sees(principal, &job.owner))
        {
            Some(job) => {
                job.cancel.notify_one();
                Work::Done(Ok(Reply::ok(json!({ "success": true, "jobId": job_id }))))
            }
            None => Work::Done(Err(ApiError::new(
                JOB_NOT_FOUND,
                404,
                format!("Job not found: {job_id}; `GET /api/v1/execute/jobs` lists running jobs"),
            ))),
        },
        other => Work::Done(Err(ApiError::internal(format!(
            "'{}' is not an exec request",
            other.op()
        )))),
    }
}

fn start(
    router: &mut Router,
    params: ExecParams,
    stream: bool,
    from_node_id: Option<String>,
    owner: String,
) -> Result<Work, ApiError> {
    let execution = &router.settings.config.execution;
    CommandGuard::new(&execution.denylist, execution.allowlist.as_deref())
        .check(&params.command, &params.args)
        .map_err(|refusal| ApiError::new(DENIED, 400, refusal.to_string()))?;
    if router.jobs.active() >= execution.max_concurrent as usize {
        return Err(ApiError::new(
            MAX_CONCURRENT,
            429,
            format!(
                "{} jobs are already running (execution.maxConcurrent); wait for one to finish",
                router.jobs.active()
            ),
        ));
    }
    let cwd = match &params.cwd {
        Some(cwd) => expand_home(cwd),
        None => std::env::home_dir().unwrap_or_else(|| PathBuf::from("/")),
    };
    let timeout = crate::limits::millis(
        "timeout",
        params.timeout.unwrap_or(execution.default_timeout as f64),
        crate::limits::MAX_EXEC_TIMEOUT,
    )?;
    let job_id = new_job_id()?;
    let spec = JobSpec {
        job_id: job_id.clone(),
        program: params.command.clone(),
        args: params.args.clone(),
        cwd,
        extra_env: params.env.clone().unwrap_or_default().into_iter().collect(),
        timeout,
        max_output: execution.max_output_bytes as usize,
    };
    let cancel = Arc::new(Notify::new());
    let (output, events) = if stream {
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        (JobOutput::Streaming(sender), Some(receiver))
    } else {
        (JobOutput::Buffered, None)
    };
    // The slot is taken now, so concurrent requests count this job before it runs.
    router.jobs.total += 1;
    router.jobs.jobs.insert(
        job_id.clone(),
        JobEntry {
            command: params.command.clone(),
            args: params.args,
            started_at: now_ms(),
            from_node_id: from_node_id.unwrap_or_else(|| "unknown".to_owned()),
            pid: None,
            owner,
            cancel: cancel.clone(),
        },
    );
    // Forking (which grows slower as the daemon grows) and reading the child's
    // pipes happen on the exec arbiter's thread, never on the Router's.
    let (started_tx, started_rx) = oneshot::channel();
    let (finished_tx, finished_rx) = oneshot::channel();
    router.services.exec.spawn(async move {
        if !spec.cwd.is_dir() {
            let why = format!("working directory {} does not exist", spec.cwd.display());
            let _ = started_tx.send(Err(why));
            return;
        }
        match exec::spawn(spec, output, cancel) {
            Ok(started) => {
                let _ = started_tx.send(Ok(started.pid));
                let _ = finished_tx.send(started.finished.await);
            }
            Err(e) => {
                let _ = started_tx.send(Err(e.0));
            }
        }
    });
    let program = params.command;
    let started = actix::fut::wrap_future::<_, Router>(started_rx).map(move |started, router, _ctx| {
        let pid = match started {
            Ok(Ok(pid)) => pid,
            Ok(Err(why)) => {
                router.jobs.jobs.remove(&job_id);
                return Err(ApiError::new(FAILED, 400, format!("Execution failed: {why}")));
            }
            Err(_) => {
                router.jobs.jobs.remove(&job_id);
                return Err(ApiError::internal("The exec worker stopped; see the daemon log"));
            }
        };
        tracing::info!(job_id = %job_id, pid, program = %program, "job started");
        if let Some(job) = router.jobs.jobs.get_mut(&job_id) {
            job.pid = Some(pid);
        }
        let finished_id = job_id.clone();
        let finished = actix::fut::wrap_future::<_, Router>(finished_rx).map(move |result, router, _ctx| {
            router.jobs.jobs.remove(&finished_id);
            if let Ok(result) = &result {
                tracing::info!(job_id = %finished_id, exit_code = ?result.exit_code, signal = ?result.signal, "job finished");
            }
            result.ok()
        });
        Ok((job_id, finished))
    });
    Ok(match events {
        Some(receiver) => Work::Later(Box::pin(started.map(|started, _router, ctx| {
            let (job_id, finished) = started?;
            // The job is watched to its end in the background; the stream is the answer.
            ctx.spawn(finished.map(|_, _, _| ()));
            Ok(Reply::streaming(
                json!({ "jobId": job_id }),
                ReplyStream(receiver),
            ))
        }))),
        None => Work::Later(Box::pin(started.then(|started, _router, _ctx| {
            let pending: Pin<Box<dyn ActorFuture<Router, Output = Result<Reply, ApiError>>>> =
                match started {
                    Ok((_, finished)) => Box::pin(finished.map(|result, _, _| {
                        result
                            .map(|result| Reply::ok(result.to_json()))
                            .ok_or_else(|| {
                                ApiError::internal(
                                    "The job's supervisor stopped; see the daemon log",
                                )
                            })
                    })),
                    Err(error) => Box::pin(actix::fut::ready(Err(error))),
                };
            pending
        }))),
    })
}
