//! The only `unsafe` in loopsy: taking our own copy of the PTY master's file
//! descriptor, which portable-pty exposes only as a raw number. Everything else
//! uses the owned copy.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

/// Duplicates `raw` (close-on-exec, numbered 3 or above).
///
/// The caller must hold the object that owns `raw` open for the duration of
/// this call; the duplicate then lives independently of it.
pub fn dup_cloexec(raw: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `raw` belongs to a MasterPty the caller keeps alive across this
    // call, and the borrow ends before the function returns.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    rustix::io::fcntl_dupfd_cloexec(borrowed, 3).map_err(io::Error::from)
}

/// The PTY master as a descriptor this process owns.
pub struct PtyFd(pub OwnedFd);

impl std::os::fd::AsRawFd for PtyFd {
    fn as_raw_fd(&self) -> RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }
}

/// Registers the descriptor with the Tokio reactor for `interest` only: a
/// PTY registered for writability too would wake the daemon each time the
/// program reads its input.
pub fn register(
    fd: PtyFd,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<PtyFd>> {
    // SAFETY: `PtyFd` owns its descriptor, so it stays open and refers to the
    // same file description for as long as the `AsyncFd` that owns the `PtyFd`,
    // and `as_raw_fd` always returns that one descriptor.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }
        .map_err(|e| io::Error::other(e.to_string()))
}
