//! What happens when an actor the daemon cannot serve without panics.
//!
//! Actix does not restart an actor whose handler panicked: the runtime drops the
//! actor's task, its mailbox closes, and every later request would be answered
//! "unavailable" by a process that looks alive to its service manager. So the
//! threads of such actors (the Router) are marked critical, and a panic on a
//! critical thread ends the process with [`EXIT_ACTOR_DIED`] once the panic is
//! logged: systemd (`Restart=on-failure`) or launchd (`KeepAlive`) start a fresh
//! daemon, whose state comes back from `config.yaml` and `loopsy.db`.
//! A panic anywhere else (a PTY session, a connection) ends only that actor.

use std::cell::Cell;
use std::sync::Once;

/// Exit status after a critical actor died (`EX_SOFTWARE` of sysexits.h).
pub const EXIT_ACTOR_DIED: i32 = 70;

thread_local! {
    static CRITICAL: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Marks the calling thread as running `actor`, which the daemon cannot do without.
pub fn mark_critical(actor: &'static str) {
    install_hook();
    CRITICAL.with(|c| c.set(Some(actor)));
}

/// Installs the panic hook (once): the default report, then, on a critical
/// thread, a logged exit.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            if let Some(actor) = CRITICAL.with(Cell::get) {
                tracing::error!(
                    actor,
                    panic = %info,
                    exit_code = EXIT_ACTOR_DIED,
                    "the {actor} actor panicked; the daemon exits so that its service manager (systemd, launchd) starts it again. Please report this with the log above"
                );
                std::process::exit(EXIT_ACTOR_DIED);
            }
        }));
    });
}
