//! `loopsy shell` and `loopsy attach` driven through a real PTY, as a person at
//! a terminal would: typing, the Ctrl-A d detach, re-attaching, the exit code.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use crate::harness::*;

pub struct Terminal {
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<Vec<u8>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Terminal {
    pub fn run(loopsy: &Loopsy, args: &[&str]) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("pty");
        let mut command = CommandBuilder::new(BIN);
        command.env_clear();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("HOME", loopsy.dir.path());
        command.env("TERM", "xterm-256color");
        command.arg("--data-dir");
        command.arg(loopsy.data());
        command.args(args);
        let child = pair.slave.spawn_command(command).expect("spawn loopsy");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if let Ok(mut screen) = sink.lock() {
                    screen.extend_from_slice(&buffer[..n]);
                }
            }
        });
        Self {
            writer,
            screen,
            child,
            _master: pair.master,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().expect("screen")).into_owned()
    }

    pub fn wait_for(&self, needle: &str) {
        wait_until(&format!("{needle:?} on the terminal"), || {
            self.text().contains(needle)
        });
    }

    pub fn type_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("type");
        self.writer.flush().expect("flush");
    }

    pub fn exit_code(&mut self) -> u32 {
        let mut status = None;
        wait_until("loopsy to exit", || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status.map(|s| s.exit_code()).unwrap_or(u32::MAX)
    }
}

#[test]
fn shell_detach_attach_and_exit_code() {
    let loopsy = Loopsy::started();
    let mut first = Terminal::run(&loopsy, &["shell", "--cmd", "sh", "--name", "desk"]);
    first.type_bytes(b"echo typed-$((40+2))\r");
    first.wait_for("typed-42");
    first.type_bytes(b"stty size\r");
    first.wait_for("24 80");
    first.type_bytes(&[0x01, b'd']);
    first.wait_for("[detached");
    assert_eq!(first.exit_code(), 0, "detaching is a clean exit");

    let listing = loopsy.ok(&["list"]);
    assert!(
        listing.contains("desk") && listing.contains("running"),
        "{listing}"
    );

    let mut second = Terminal::run(&loopsy, &["attach", "desk"]);
    second.wait_for("typed-42");
    // Ctrl-A Ctrl-A types one Ctrl-A; `cat -v` shows it as ^A.
    second.type_bytes(b"cat -v\r");
    second.type_bytes(&[0x01, 0x01, b'\r']);
    second.wait_for("^A");
    second.type_bytes(&[0x04]);
    second.type_bytes(b"exit 4\r");
    assert_eq!(second.exit_code(), 4, "the session's exit code");
}

#[test]
fn attach_to_an_unknown_session_says_so() {
    let loopsy = Loopsy::started();
    let mut terminal = Terminal::run(&loopsy, &["attach", "nothing-like-this"]);
    terminal.wait_for("No session matches");
    assert_eq!(terminal.exit_code(), 1);
    let kill = loopsy.run(&["kill", "nothing-like-this"]);
    assert_eq!(kill.status.code(), Some(1));
}

#[test]
fn a_shell_on_a_peer_through_the_local_daemon_detaches_and_resumes() {
    let (kai, mira) = (crate::peers::daemon(), crate::peers::daemon());
    crate::peers::pair(&kai, &mira, "exec", "sessions:shell");
    let mira_id = crate::peers::node_id(&mira);
    // Kai's terminal drives a shell that runs on Mira, through both daemons.
    let mut first = Terminal::run(
        &kai,
        &[
            "shell",
            "--peer",
            &mira_id[..8],
            "--cmd",
            "sh",
            "--name",
            "far",
        ],
    );
    first.type_bytes(b"echo on-$(basename $HOME)-$((40+2))\r");
    let home = mira
        .dir
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    first.wait_for(&format!("on-{home}-42"));
    first.type_bytes(&[0x01, b'd']);
    first.wait_for("[detached");
    assert_eq!(first.exit_code(), 0);
    // The session lives on Mira, started by Kai as a peer, and not on Kai.
    let on_mira = mira.ok(&["list"]);
    assert!(
        on_mira.contains("far") && on_mira.contains("running"),
        "{on_mira}"
    );
    assert!(!kai.ok(&["list"]).contains("far"));
    // Re-attaching resumes with what was on the screen.
    let mut second = Terminal::run(&kai, &["attach", "far", "--peer", &mira_id]);
    second.wait_for(&format!("on-{home}-42"));
    second.type_bytes(b"exit 5\r");
    assert_eq!(second.exit_code(), 5, "the remote session's exit code");
    // Kai granted Mira no sessions.
    let kai_id = crate::peers::node_id(&kai);
    let mut refused = Terminal::run(&mira, &["shell", "--peer", &kai_id, "--cmd", "sh"]);
    let code = refused.exit_code();
    assert!(refused.text().contains("sessions"), "{}", refused.text());
    assert_eq!(code, 1);
    // Removing Kai on Mira's side ends Kai's open attach there at once, not
    // only its next request.
    let mut third = Terminal::run(&kai, &["shell", "--peer", &mira_id, "--cmd", "sh"]);
    third.type_bytes(b"echo still-$((1+1))\r");
    third.wait_for("still-2");
    mira.ok(&["peers", "remove", &kai_id]);
    third.wait_for("closed the tunnel");
    assert_eq!(third.exit_code(), 1);
}
