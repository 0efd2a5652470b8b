//! The headless terminal of a session on a thread of its own, so that parsing
//! (the costliest step of a session's output path) runs beside the fan-out
//! instead of in front of it. Output reaches it through a bounded queue that the
//! PTY reader waits on, so a slow emulator slows the PTY, never memory. It
//! counts the bytes it has processed: a snapshot says which output offset it
//! stands for, so a client continues exactly after it.

use std::num::NonZeroU16;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Chunks queued toward the emulator before the PTY reader waits.
const QUEUE: usize = 32;

/// A snapshot: escape sequences that redraw the screen, and the output offset
/// they correspond to.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub bytes: Bytes,
    pub offset: u64,
}

enum Control {
    Resize { rows: u16, cols: u16 },
    Snapshot(oneshot::Sender<Snapshot>),
}

/// Handles to the emulator thread; dropping both ends it.
pub struct Emulator {
    pub output: mpsc::Sender<Bytes>,
    control: mpsc::UnboundedSender<Control>,
}

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

impl Emulator {
    pub fn start(rows: u16, cols: u16, scrollback: usize) -> std::io::Result<Self> {
        let (output, mut chunks) = mpsc::channel::<Bytes>(QUEUE);
        let (control, mut requests) = mpsc::unbounded_channel::<Control>();
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        std::thread::Builder::new().name("pty-emulator".into()).spawn(move || {
            let mut parser = vt100::Parser::new(nonzero(rows), nonzero(cols), scrollback);
            let mut processed: u64 = 0;
            runtime.block_on(async move {
                loop {
                    tokio::select! {
                        chunk = chunks.recv() => match chunk {
                            Some(chunk) => {
                                parser.process(&chunk);
                                processed += chunk.len() as u64;
                            }
                            None => return,
                        },
                        request = requests.recv() => match request {
                            Some(Control::Resize { rows, cols }) => parser.screen_mut().set_size(nonzero(rows), nonzero(cols)),
                            Some(Control::Snapshot(reply)) => {
                                let _ = reply.send(Snapshot { bytes: render(&mut parser), offset: processed });
                            }
                            None => return,
                        },
                    }
                }
            });
        })?;
        Ok(Self { output, control })
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        let _ = self.control.send(Control::Resize { rows, cols });
    }

    /// A snapshot of the screen as of everything queued so far (or later).
    pub fn snapshot(&self) -> oneshot::Receiver<Snapshot> {
        let (reply, snapshot) = oneshot::channel();
        let _ = self.control.send(Control::Snapshot(reply));
        snapshot
    }
}
