//! `loopsy stop`: ask the daemon over the Unix socket, fall back to SIGTERM,
//! and wait until it has really exited (its instance lock is free).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use loopsy_daemon::instance;
use loopsy_daemon::paths::DataDir;
use loopsy_transports::wire::method;
use rustix::process::{Pid, Signal, kill_process};

use crate::args::StopArgs;
use crate::daemon_link;

const POLL: Duration = Duration::from_millis(20);
/// After SIGKILL the kernel frees the lock almost at once; this only bounds the wait.
const AFTER_KILL: Duration = Duration::from_secs(5);

fn signal(pid: Option<u32>, sig: Signal) -> bool {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw)
    else {
        return false;
    };
    kill_process(pid, sig).is_ok()
}

fn wait_unlocked(data_dir: &DataDir, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while instance::is_locked(data_dir) {
        if Instant::now() >= deadline {
            return false;
        }
        daemon_link::pause(POLL);
    }
    true
}

pub fn run(data_dir: &DataDir, args: &StopArgs) -> anyhow::Result<ExitCode> {
    let Some(pid) = daemon_link::running_pid(data_dir) else {
        println!("loopsy daemon is not running");
        return Ok(ExitCode::SUCCESS);
    };
    let timeout = Duration::from_secs(args.timeout);
    let graceful = match daemon_link::call(data_dir, method::DAEMON_STOP, None) {
        Ok(_) => true,
        Err(error) => {
            eprintln!("warning: {error}; sending SIGTERM instead");
            signal(pid, Signal::TERM)
        }
    };
    if graceful && wait_unlocked(data_dir, timeout) {
        println!("loopsy daemon stopped");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "warning: the daemon did not exit within {} s; sending SIGKILL",
        args.timeout
    );
    if signal(pid, Signal::KILL) && wait_unlocked(data_dir, AFTER_KILL) {
        println!("loopsy daemon killed");
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::bail!(
        "could not stop the daemon (pid {}); stop it by hand with `kill -9 <pid>`",
        pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
    )
}
