//! The local terminal during `loopsy shell`/`attach`: raw mode that is always
//! undone (on return, on panic, and when the daemon goes away), and its size.

use std::sync::{Mutex, OnceLock};

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};

/// The settings to restore, shared with the panic hook.
static SAVED: OnceLock<Mutex<Option<Termios>>> = OnceLock::new();

fn restore_saved() {
    if let Some(saved) = SAVED.get()
        && let Ok(mut guard) = saved.lock()
        && let Some(termios) = guard.take()
    {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &termios);
    }
}

/// Raw mode for as long as this lives.
pub struct RawMode;

impl RawMode {
    pub fn enter() -> std::io::Result<Self> {
        let original = tcgetattr(std::io::stdin())?;
        let mut raw = original.clone();
        raw.make_raw();
        let saved = SAVED.get_or_init(|| Mutex::new(None));
        if let Ok(mut guard) = saved.lock() {
            *guard = Some(original);
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_saved();
            previous(info);
        }));
        tcsetattr(std::io::stdin(), OptionalActions::Now, &raw)?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_saved();
    }
}

/// Columns and rows of the terminal on stdout, if it is one.
pub fn size() -> Option<(u16, u16)> {
    let size = tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

pub fn is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin())
}
