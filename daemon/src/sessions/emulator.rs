//! The headless terminal of a session on a thread of its own, so that parsing
//! (the costliest step of a session's output path) runs beside the fan-out
//! instead of in front of it. Output, resizes and snapshot requests reach it in
//! one ordered queue; the PTY reader needs a free slot before each read, so a
//! slow emulator slows the PTY, never memory. It counts the bytes it has
//! processed: a snapshot says which output offset it stands for, so a client
//! continues exactly after it.

use std::num::NonZeroU16;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::coalesce::{self, RegionWatch};
use super::pty::MAX_ROWS;

/// Chunks in flight toward the emulator before the PTY reader waits.
const IN_FLIGHT: usize = 32;

/// A snapshot: escape sequences that redraw the screen, and the output offset
/// they correspond to.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub bytes: Bytes,
    pub offset: u64,
}

/// The visible screen as plain text (what an agent reads), and the output
/// offset it stands for.
#[derive(Debug, Clone)]
pub struct ScreenText {
    pub text: String,
    pub offset: u64,
    pub rows: u16,
    pub cols: u16,
    pub cursor: (u16, u16),
    pub alternate_screen: bool,
}

/// What the emulator thread does, strictly in the order sent: output, size
/// changes and snapshots all apply at their exact place in the byte stream.
enum Job {
    /// Output, and the slot it holds until processed.
    Output(Bytes, OwnedSemaphorePermit),
    Resize {
        rows: u16,
        cols: u16,
    },
    Snapshot(oneshot::Sender<Snapshot>),
    Text(oneshot::Sender<ScreenText>),
}

/// Handles to the emulator thread; dropping it ends the thread.
pub struct Emulator {
    jobs: mpsc::UnboundedSender<Job>,
    slots: Arc<Semaphore>,
}

/// Leave to hand one chunk of output to the emulator; the PTY reader waits for
/// one before each read, so a slow emulator slows the PTY, never memory.
pub struct Slot(OwnedSemaphorePermit);

/// A wait for a [`Slot`]; `None` once the emulator is gone.
pub type SlotWait = std::pin::Pin<Box<dyn Future<Output = Option<Slot>> + Send>>;

fn nonzero(value: u16) -> NonZeroU16 {
    NonZeroU16::new(value).unwrap_or(NonZeroU16::MIN)
}

/// Redraws the screen on a fresh terminal: the scrollback as lines that scroll
/// into the client's own history, then the visible screen, modes and cursor.
fn render(parser: &mut vt100::Parser) -> Bytes {
    let mut out = String::from("\x1bc");
    let (rows, cols) = parser.screen().size();
    let rows = rows.get();
    if !parser.screen().alternate_screen() {
        let screen = parser.screen_mut();
        screen.set_scrollback(usize::MAX);
        let total = screen.scrollback();
        let mut remaining = total;
        while remaining > 0 {
            screen.set_scrollback(remaining);
            let take = remaining.min(usize::from(rows));
            for line in screen.rows_formatted(0, cols.get()).take(take) {
                out.push_str(&line);
                out.push_str("\x1b[0m\r\n");
            }
            remaining -= take;
        }
        screen.set_scrollback(0);
        if total > 0 {
            // Push the history above the visible area before it is redrawn.
            out.push_str(&"\r\n".repeat(usize::from(rows)));
        }
    }
    let screen = parser.screen();
    if screen.alternate_screen() {
        out.push_str("\x1b[?1049h");
    }
    out.push_str(&screen.state_formatted());
    out.push_str(&screen.cursor_state_formatted());
    Bytes::from(out.into_bytes())
}

/// Parses a batch of output, skipping what cannot show (see [`coalesce`]).
fn parse(parser: &mut vt100::Parser, watch: &mut RegionWatch, batch: &[Bytes], history: usize) {
    let joined;
    let bytes: &[u8] = match batch {
        [one] => one,
        many => {
            joined = many.concat();
            &joined
        }
    };
    let rows = parser.screen().size().0.get();
    // The watch reads exactly what the emulator parses.
    match coalesce::plan(bytes, rows, history, MAX_ROWS, watch) {
        Some(skip) => {
            for part in [&skip.pen[..], &bytes[skip.keep_from..]] {
                parser.process(part);
                watch.observe(part);
            }
        }
        None => {
            parser.process(bytes);
            watch.observe(bytes);
        }
    }
}

impl Emulator {
    pub fn start(rows: u16, cols: u16, scrollback: usize) -> std::io::Result<Self> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("pty-emulator".into())
            .spawn(move || {
                let mut parser = vt100::Parser::new(nonzero(rows), nonzero(cols), scrollback);
                let mut watch = RegionWatch::default();
                let mut processed: u64 = 0;
                // A job taken from the queue while gathering output, kept for its turn.
                let mut next: Option<Job> = None;
                while let Some(job) = next.take().or_else(|| queue.blocking_recv()) {
                    match job {
                        Job::Output(chunk, slot) => {
                            // All the output already waiting, as one batch (its
                            // slots are freed once it is parsed).
                            let mut batch = vec![chunk];
                            let mut slots = vec![slot];
                            while let Ok(job) = queue.try_recv() {
                                match job {
                                    Job::Output(chunk, slot) => {
                                        batch.push(chunk);
                                        slots.push(slot);
                                    }
                                    other => {
                                        next = Some(other);
                                        break;
                                    }
                                }
                            }
                            processed += batch.iter().map(|c| c.len() as u64).sum::<u64>();
                            parse(&mut parser, &mut watch, &batch, scrollback);
                            drop(slots);
                        }
                        Job::Resize { rows, cols } => {
                            parser.screen_mut().set_size(nonzero(rows), nonzero(cols));
                        }
                        Job::Snapshot(reply) => {
                            let _ = reply.send(Snapshot {
                                bytes: render(&mut parser),
                                offset: processed,
                            });
                        }
                        Job::Text(reply) => {
                            let screen = parser.screen();
                            let (rows, cols) = screen.size();
                            let _ = reply.send(ScreenText {
                                text: screen.contents(),
                                offset: processed,
                                rows: rows.get(),
                                cols: cols.get(),
                                cursor: screen.cursor_position(),
                                alternate_screen: screen.alternate_screen(),
                            });
                        }
                    }
                }
            })?;
        Ok(Self {
            jobs,
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    /// Something to wait on for room to hand on one more chunk (see [`Slot`]).
    pub fn slot_source(&self) -> impl Fn() -> SlotWait + Clone + 'static {
        let slots = self.slots.clone();
        move || {
            let slots = slots.clone();
            Box::pin(async move { slots.acquire_owned().await.ok().map(Slot) })
        }
    }

    /// Hands output on; it frees its slot once processed.
    pub fn process(&self, chunk: Bytes, slot: Slot) {
        let _ = self.jobs.send(Job::Output(chunk, slot.0));
    }

    /// Output processed after this is laid out at the new size.
    pub fn resize(&self, rows: u16, cols: u16) {
        let _ = self.jobs.send(Job::Resize { rows, cols });
    }

    /// A snapshot of the screen as of everything handed on so far.
    pub fn snapshot(&self) -> oneshot::Receiver<Snapshot> {
        let (reply, snapshot) = oneshot::channel();
        let _ = self.jobs.send(Job::Snapshot(reply));
        snapshot
    }

    /// The visible screen as text, as of everything handed on so far.
    pub fn text(&self) -> oneshot::Receiver<ScreenText> {
        let (reply, text) = oneshot::channel();
        let _ = self.jobs.send(Job::Text(reply));
        text
    }
}
