//! Keystrokes into a PTY. Input is written to the descriptor at once, from
//! whoever has it, when nothing is waiting before it; only what the PTY has no
//! room for is queued, for a writer task that waits for room and keeps the
//! order. Typing thus costs no extra hop, and never waits behind output.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

/// Pause before writing again to a PTY that said it had room but had none.
const FULL_PTY_PAUSE: Duration = Duration::from_millis(2);

/// The PTY is gone (the session ended).
#[derive(Debug)]
pub struct Closed;

pub struct PtyInput {
    fd: OwnedFd,
    queue: mpsc::UnboundedSender<Bytes>,
    /// Pieces queued and not yet written in full: while any are, new input queues behind them.
    queued: Arc<AtomicUsize>,
}

impl PtyInput {
    /// Takes the (non-blocking) descriptor and starts the writer task.
    pub fn start(fd: OwnedFd) -> io::Result<Self> {
        let writer = fd.try_clone()?;
        let (queue, pending) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        actix_rt::spawn(write_queued(writer, pending, queued.clone()));
        Ok(Self { fd, queue, queued })
    }

    pub fn send(&self, mut bytes: Bytes) -> Result<(), Closed> {
        if self.queued.load(Ordering::Acquire) == 0 {
            while !bytes.is_empty() {
                match rustix::io::write(&self.fd, &bytes) {
                    Ok(n) => bytes.advance(n),
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return Err(Closed),
                }
            }
            if bytes.is_empty() {
                return Ok(());
            }
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.queue.send(bytes).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            Closed
        })
    }
}

/// Writes the queued pieces as the PTY makes room; runs until the input is dropped.
async fn write_queued(
    pty: OwnedFd,
    mut pending: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(mut bytes) = pending.recv().await {
        let mut waited = false;
        while !bytes.is_empty() {
            match rustix::io::write(&pty, &bytes) {
                Ok(n) => {
                    bytes.advance(n);
                    waited = false;
                }
                Err(rustix::io::Errno::AGAIN) => {
                    if waited {
                        // Said writable, yet full: do not spin on it.
                        tokio::time::sleep(FULL_PTY_PAUSE).await;
                    }
                    if wait_writable(&pty).await.is_err() {
                        return;
                    }
                    waited = true;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
        queued.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn wait_writable(pty: &OwnedFd) -> io::Result<()> {
    let copy = pty.try_clone()?;
    let registered = super::fd::register(super::fd::PtyFd(copy), tokio::io::Interest::WRITABLE)?;
    registered.writable().await.map(drop)
}
