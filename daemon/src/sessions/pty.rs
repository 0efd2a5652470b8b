//! `PtySession`: one actor per terminal session. It owns the PTY, reads its
//! output without blocking (AsyncFd on a dup of the master), keeps the output in
//! an offset-addressed ring and in a headless terminal (vt100) for snapshots, and
//! fans it out to attached clients through bounded channels. Reads wait briefly
//! for clients that keep up (`pace`); a client that falls behind is skipped, not
//! waited for, and catches up from the ring, or from a snapshot when its gap has
//! left the ring. Input is written to the PTY directly (`input`), so it never
//! waits behind output.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use portable_pty::{MasterPty, PtySize};
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};
use tokio::io::unix::AsyncFd;

mod agent_view;
mod attach;
pub use agent_view::{ReadOutput, ScreenTextOf, WatchProgress};
pub use attach::{ATTACH_QUEUE, AttachClient};

use super::emulator::{Emulator, Slot};
use super::fanout::Clients;
use super::fd::PtyFd;
use super::input::PtyInput;
use super::pace::Pace;
use super::ring::OutputRing;
use super::{SessionError, SessionExited, now_ms};

/// Most bytes handed on at once from the PTY.
const CHUNK: usize = 64 * 1024;
/// One read from the PTY (the kernel rarely has more at a time).
const READ_SIZE: usize = 16 * 1024;
/// A read shorter than this means the PTY has nothing more for now.
const SHORT_READ: usize = 1024;
/// How often lagging clients are offered what they missed.
const CATCH_UP_EVERY: Duration = Duration::from_millis(50);
/// How long a little output may wait before the emulator gets it.
const EMULATOR_DELAY: Duration = Duration::from_millis(2);
/// Small chunks held for the emulator at most (each holds one of its slots).
const HELD_CHUNKS: usize = 24;
/// How often the exit status is polled once the PTY reports end of output.
const EXIT_POLL: Duration = Duration::from_millis(20);
/// Resizes arriving closer together than this are merged (agent TUIs redraw on each).
const RESIZE_DEBOUNCE: Duration = Duration::from_millis(150);
/// Steps of `stop`: SIGHUP, then SIGTERM, then SIGKILL.
const STOP_STEP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

/// Largest terminal accepted; beyond it a resize is refused.
pub const MAX_COLS: u16 = 1000;
pub const MAX_ROWS: u16 = 500;

impl Size {
    pub fn checked(cols: u16, rows: u16) -> Result<Self, SessionError> {
        if cols == 0 || rows == 0 || cols > MAX_COLS || rows > MAX_ROWS {
            return Err(SessionError::Invalid(format!(
                "terminal size {cols}x{rows} is outside 1x1 to {MAX_COLS}x{MAX_ROWS}"
            )));
        }
        Ok(Self { cols, rows })
    }
}

#[derive(Debug, Clone)]
pub struct Exit {
    pub code: Option<u32>,
    pub signal: Option<String>,
    pub at: u64,
}

/// Everything a new session starts from.
pub struct Spawned {
    pub id: String,
    pub name: Option<String>,
    pub agent: String,
    pub command: String,
    pub cwd: String,
    pub size: Size,
    pub master: Box<dyn MasterPty + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    pub ring_bytes: usize,
    pub scrollback_lines: usize,
    pub idle_timeout: Duration,
    pub manager: Recipient<SessionExited>,
    pub initial_input: Option<String>,
}

pub struct PtySession {
    id: String,
    name: Option<String>,
    agent: String,
    command: String,
    cwd: String,
    pid: Option<u32>,
    created_at: u64,
    last_activity: u64,
    size: Size,
    pending_size: Option<Size>,
    fd: Arc<AsyncFd<PtyFd>>,
    master: Box<dyn MasterPty + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    input: Arc<PtyInput>,
    ring: OutputRing,
    /// The headless terminal, on its own thread.
    emulator: Emulator,
    /// The clients keeping up, which the PTY reader waits for (briefly).
    pace: Arc<Pace>,
    /// Output not yet handed to the emulator, in order.
    to_emulator: Vec<(Bytes, Slot)>,
    /// A catch-up of lagging clients is scheduled.
    catch_up_scheduled: bool,
    /// A snapshot for lagging clients is being made.
    resyncing: bool,
    clients: Clients,
    exit: Option<Exit>,
    idle_timeout: Duration,
    idle_timer: Option<SpawnHandle>,
    manager: Recipient<SessionExited>,
    /// The output's end offset and whether the session exited, for waiters.
    progress: tokio::sync::watch::Sender<agent_view::Progress>,
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

impl PtySession {
    pub fn new(spawned: Spawned) -> Result<Self, SessionError> {
        let raw = spawned
            .master
            .as_raw_fd()
            .ok_or_else(|| SessionError::Failed("the PTY has no file descriptor".into()))?;
        // A descriptor of our own: its lifetime no longer depends on portable-pty's.
        let owned = super::fd::dup_cloexec(raw).map_err(|e| SessionError::Failed(e.to_string()))?;
        set_nonblocking(&owned).map_err(|e| SessionError::Failed(e.to_string()))?;
        let writer = owned
            .try_clone()
            .map_err(|e| SessionError::Failed(e.to_string()))?;
        let fd = Arc::new(
            super::fd::register(PtyFd(owned), tokio::io::Interest::READABLE)
                .map_err(|e| SessionError::Failed(e.to_string()))?,
        );
        let input =
            Arc::new(PtyInput::start(writer).map_err(|e| SessionError::Failed(e.to_string()))?);
        if let Some(text) = spawned.initial_input {
            let _ = input.send(Bytes::from(text));
        }
        let size = spawned.size;
        let now = now_ms();
        Ok(Self {
            id: spawned.id,
            name: spawned.name,
            agent: spawned.agent,
            command: spawned.command,
            cwd: spawned.cwd,
            pid: spawned.child.process_id(),
            created_at: now,
            last_activity: now,
            size,
            pending_size: None,
            fd,
            master: spawned.master,
            child: spawned.child,
            input,
            ring: OutputRing::new(spawned.ring_bytes),
            emulator: Emulator::start(size.rows, size.cols, spawned.scrollback_lines).map_err(
                |e| SessionError::Failed(format!("cannot start the terminal emulator: {e}")),
            )?,
            to_emulator: Vec::new(),
            pace: Arc::default(),
            catch_up_scheduled: false,
            resyncing: false,
            clients: Clients::default(),
            exit: None,
            idle_timeout: spawned.idle_timeout,
            idle_timer: None,
            manager: spawned.manager,
            progress: tokio::sync::watch::Sender::new(agent_view::Progress::default()),
        })
    }

    /// The session as `session.list` shows it.
    pub fn info(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "agent": self.agent,
            "command": self.command,
            "cwd": self.cwd,
            "pid": self.pid,
            "cols": self.size.cols,
            "rows": self.size.rows,
            "createdAt": self.created_at,
            "lastActivityAt": self.last_activity,
            "alive": self.exit.is_none(),
            "exitCode": self.exit.as_ref().and_then(|e| e.code),
            "exitSignal": self.exit.as_ref().and_then(|e| e.signal.clone()),
            "attachedClientCount": self.clients.len(),
            "outputOffset": self.ring.end(),
            "ringStart": self.ring.start(),
        })
    }

    fn on_output(&mut self, chunk: Bytes) {
        self.last_activity = now_ms();
        let start = self.ring.end();
        self.ring.push(&chunk);
        let end = self.ring.end();
        if self.clients.on_output(&chunk, start, end) {
            self.publish_pace();
        }
        self.publish_progress();
    }

    /// Tells the PTY reader which clients are keeping up now.
    fn publish_pace(&self) {
        self.pace.publish(self.clients.keeping_up());
    }

    fn feed_emulator(&mut self) {
        for (chunk, slot) in self.to_emulator.drain(..) {
            self.emulator.process(chunk, slot);
        }
    }

    /// Offers lagging clients what they missed: the ring's bytes, or (for a gap
    /// that left the ring) a snapshot from the emulator.
    fn catch_up(&mut self, ctx: &mut Context<Self>) {
        let found = self.clients.catch_up_from(&self.ring);
        if found.needs_snapshot && !self.resyncing {
            self.resyncing = true;
            self.feed_emulator();
            let snapshot = self.emulator.snapshot();
            ctx.spawn(
                actix::fut::wrap_future::<_, Self>(snapshot).map(|snapshot, act, ctx| {
                    act.resyncing = false;
                    let Ok(snapshot) = snapshot else { return };
                    act.clients
                        .resync(&act.ring, &snapshot.bytes, snapshot.offset);
                    act.schedule_catch_up(ctx);
                }),
            );
        }
        if found.caught_up {
            self.publish_pace();
        }
        self.schedule_catch_up(ctx);
    }

    /// Lagging clients get another offer a little later (a timer only while
    /// someone lags: an idle session never wakes the daemon).
    fn schedule_catch_up(&mut self, ctx: &mut Context<Self>) {
        if self.catch_up_scheduled || !self.clients.any_lagging() {
            return;
        }
        self.catch_up_scheduled = true;
        ctx.run_later(CATCH_UP_EVERY, |act, ctx| {
            act.catch_up_scheduled = false;
            if act.clients.any_lagging() {
                act.catch_up(ctx);
            }
        });
    }

    fn apply_size(&mut self, size: Size) {
        if size == self.size {
            return;
        }
        self.size = size;
        let pty = PtySize {
            rows: size.rows,
            cols: size.cols,
            pixel_width: 0,
            pixel_height: 0,
        };
        if let Err(e) = self.master.resize(pty) {
            tracing::warn!(session = %self.id, error = %e, "resize failed");
        }
        self.feed_emulator();
        self.emulator.resize(size.rows, size.cols);
    }

    fn signal_group(&self, signal: Signal) {
        if let Some(pid) = self
            .pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw)
        {
            let _ = kill_process_group(pid, signal);
        }
    }

    fn update_idle_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.clients.is_empty() && self.exit.is_none() {
            self.idle_timer = Some(ctx.run_later(self.idle_timeout, |act, ctx| {
                if act.clients.is_empty() && act.exit.is_none() {
                    tracing::info!(session = %act.id, "stopping a session nobody attached to for the idle timeout");
                    act.stop(ctx);
                }
            }));
        }
    }

    fn stop(&mut self, ctx: &mut Context<Self>) {
        self.signal_group(Signal::HUP);
        ctx.run_later(STOP_STEP, |act, ctx| {
            if act.exit.is_none() {
                act.signal_group(Signal::TERM);
                ctx.run_later(STOP_STEP, |act, _| {
                    if act.exit.is_none() {
                        act.signal_group(Signal::KILL);
                    }
                });
            }
        });
    }

    fn poll_exit(&mut self, ctx: &mut Context<Self>) {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let exit = Exit {
                    code: status.signal().is_none().then(|| status.exit_code()),
                    signal: status.signal().map(str::to_owned),
                    at: now_ms(),
                };
                self.exit = Some(exit.clone());
                self.publish_progress();
                tracing::info!(session = %self.id, code = ?exit.code, signal = ?exit.signal, "session exited");
                let event = json!({ "type": "exit", "exitCode": exit.code, "signal": exit.signal, "offset": self.ring.end() });
                let end = json!({ "id": self.id, "exitCode": exit.code, "signal": exit.signal });
                self.clients.end_all(&event, &end);
                // The reader must not keep the clients' queues (and their streams) open.
                self.publish_pace();
                self.manager.do_send(SessionExited {
                    id: self.id.clone(),
                });
            }
            Ok(None) => {
                ctx.run_later(EXIT_POLL, |act, ctx| act.poll_exit(ctx));
            }
            Err(e) => tracing::warn!(session = %self.id, error = %e, "cannot read the exit status"),
        }
    }
}

impl Actor for PtySession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let slot = self.emulator.slot_source();
        let pace = self.pace.clone();
        let reads = futures_util::stream::unfold(
            (self.fd.clone(), slot, pace),
            |(fd, slot, pace)| async move {
                // Waits while the emulator is behind: the PTY is read no faster
                // than the screen can be kept, so nothing piles up.
                let room = slot().await?;
                // And, briefly, for the clients keeping up (see `pace`).
                pace.room().await;
                let mut chunk = Vec::with_capacity(CHUNK);
                let mut read = [0u8; READ_SIZE];
                loop {
                    let Ok(mut guard) = fd.readable().await else {
                        return None;
                    };
                    // While output comes in bulk, take everything there is (the
                    // kernel hands out a few KiB per read): fewer, larger chunks
                    // make every later step cheaper. A short read means the PTY
                    // is drained, so an interactive echo goes on at once instead
                    // of paying for one more read that would find nothing.
                    let mut ended = false;
                    while chunk.len() + READ_SIZE <= CHUNK {
                        match guard.try_io(|inner| {
                            rustix::io::read(&inner.get_ref().0, &mut read).map_err(io::Error::from)
                        }) {
                            Ok(Ok(n)) if n > 0 => {
                                chunk.extend_from_slice(&read[..n]);
                                if n < SHORT_READ {
                                    // Safe: tokio keeps the readiness if an event
                                    // arrived since this guard was taken.
                                    guard.clear_ready();
                                    break;
                                }
                            }
                            // EOF, or EIO once the last slave descriptor closed: the child is gone.
                            Ok(_) => {
                                ended = true;
                                break;
                            }
                            Err(_would_block) => break,
                        }
                    }
                    if chunk.is_empty() {
                        if ended {
                            return None;
                        }
                        continue;
                    }
                    return Some(((Bytes::from(chunk), room), (fd, slot, pace)));
                }
            },
        );
        ctx.add_stream(reads);
        self.update_idle_timer(ctx);
    }
}

impl StreamHandler<(Bytes, Slot)> for PtySession {
    fn handle(&mut self, (chunk, slot): (Bytes, Slot), ctx: &mut Self::Context) {
        self.on_output(chunk.clone());
        if self.clients.any_lagging() {
            self.catch_up(ctx);
        }
        // Output in bulk goes to the emulator at once. A few bytes (an echoed
        // keystroke) wait a moment and go together with what follows, so that
        // waking the emulator's thread stays off the echo's way.
        let first = self.to_emulator.is_empty();
        let bulk = chunk.len() >= SHORT_READ;
        self.to_emulator.push((chunk, slot));
        if bulk || self.to_emulator.len() >= HELD_CHUNKS {
            self.feed_emulator();
        } else if first {
            ctx.run_later(EMULATOR_DELAY, |act, _| act.feed_emulator());
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.feed_emulator();
        self.poll_exit(ctx);
    }
}

/// Current info of the session (`session.list`).
#[derive(Message)]
#[rtype(result = "Value")]
pub struct GetInfo;

impl Handler<GetInfo> for PtySession {
    type Result = MessageResult<GetInfo>;
    fn handle(&mut self, _msg: GetInfo, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.info())
    }
}

/// Bytes to type into the session.
#[derive(Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct Input {
    pub bytes: Bytes,
}

impl Handler<Input> for PtySession {
    type Result = Result<(), SessionError>;
    fn handle(&mut self, msg: Input, _ctx: &mut Self::Context) -> Self::Result {
        if self.exit.is_some() {
            return Err(SessionError::Exited(self.id.clone()));
        }
        self.input
            .send(msg.bytes)
            .map_err(|_| SessionError::Exited(self.id.clone()))
    }
}

/// A new size; merged with others arriving within the debounce interval.
#[derive(Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct Resize {
    pub size: Size,
}

impl Handler<Resize> for PtySession {
    type Result = Result<(), SessionError>;
    fn handle(&mut self, msg: Resize, ctx: &mut Self::Context) -> Self::Result {
        if self.exit.is_some() {
            return Err(SessionError::Exited(self.id.clone()));
        }
        let scheduled = self.pending_size.is_some();
        self.pending_size = Some(msg.size);
        if !scheduled {
            ctx.run_later(RESIZE_DEBOUNCE, |act, _| {
                if let Some(size) = act.pending_size.take() {
                    act.apply_size(size);
                }
            });
        }
        Ok(())
    }
}

/// Send a signal to the session's process group.
#[derive(Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct SendSignal {
    pub signal: Signal,
}

impl Handler<SendSignal> for PtySession {
    type Result = Result<(), SessionError>;
    fn handle(&mut self, msg: SendSignal, _ctx: &mut Self::Context) -> Self::Result {
        if self.exit.is_some() {
            return Err(SessionError::Exited(self.id.clone()));
        }
        self.signal_group(msg.signal);
        Ok(())
    }
}

/// SIGHUP, then SIGTERM, then SIGKILL until the session exits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for PtySession {
    type Result = ();
    fn handle(&mut self, _msg: Stop, ctx: &mut Self::Context) {
        if self.exit.is_none() {
            self.stop(ctx);
        }
    }
}

/// The session's new name (the manager checked it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rename {
    pub name: Option<String>,
}

impl Handler<Rename> for PtySession {
    type Result = ();
    fn handle(&mut self, msg: Rename, _ctx: &mut Self::Context) {
        self.name = msg.name;
    }
}

/// End the actor (after the session exited and its retention passed, or on removal).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for PtySession {
    type Result = ();
    fn handle(&mut self, _msg: Shutdown, ctx: &mut Self::Context) {
        if self.exit.is_none() {
            self.signal_group(Signal::KILL);
        }
        ctx.stop();
    }
}
