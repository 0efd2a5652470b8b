use rustix::process::Signal;

use crate::harness::*;

#[test]
fn init_start_status_stop() {
    let loopsy = Loopsy::new();
    let out = loopsy.ok(&["init"]);
    assert!(
        out.contains("loopsy start"),
        "init names the next step: {out}"
    );
    assert_eq!(mode(&loopsy.data()), 0o700);
    assert_eq!(mode(&loopsy.path("config.yaml")), 0o600);
    let key = loopsy.key();
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));

    let out = loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    assert!(out.contains("started"), "{out}");
    assert!(
        out.contains(&loopsy.port.to_string()),
        "start prints the address: {out}"
    );
    assert_eq!(
        mode(&loopsy.path("loopsyd.sock")) & 0o077,
        0,
        "socket is private"
    );

    let status: serde_json::Value =
        serde_json::from_str(&loopsy.ok(&["status", "--json"])).expect("status JSON");
    assert_eq!(status["running"], true);
    assert_eq!(
        status["daemon"]["pid"].as_i64(),
        loopsy.pid().map(i64::from)
    );
    let health = loopsy.get("/api/v1/health", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["nodeId"], status["nodeId"]);
    assert!(loopsy.ok(&["status"]).contains("running"));

    let out = loopsy.ok(&["stop"]);
    assert!(out.contains("stopped"), "{out}");
    let status = loopsy.run(&["status", "--json"]);
    assert_eq!(
        status.status.code(),
        Some(3),
        "status exits 3 when not running"
    );
    assert_eq!(stdout(&status).trim(), r#"{"running":false}"#);
    assert!(
        !loopsy.path("loopsyd.sock").exists(),
        "socket removed on stop"
    );
    assert!(
        !loopsy.path("daemon.pid").exists(),
        "pid file removed on stop"
    );
    assert!(
        loopsy.ok(&["stop"]).contains("not running"),
        "stopping twice is harmless"
    );
}

#[test]
fn init_never_overwrites_without_force() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let key = loopsy.key();
    let out = loopsy.run(&["init"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(loopsy.key(), key);
    loopsy.ok(&["init", "--if-missing"]);
    assert_eq!(loopsy.key(), key);
    loopsy.ok(&["init", "--force"]);
    assert_ne!(loopsy.key(), key);
    assert_eq!(mode(&loopsy.path("config.yaml")), 0o600);
}

#[test]
fn second_start_is_refused_with_the_running_pid() {
    let loopsy = Loopsy::started();
    let pid = loopsy.pid().expect("pid file");
    let again = loopsy.run(&["start", "--port", &loopsy.port.to_string()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains(&format!("pid {pid}")),
        "{}",
        stderr(&again)
    );
    // Also in the foreground, where the daemon itself takes the lock.
    let fg = loopsy.run(&["start", "--foreground", "--port", &free_port().to_string()]);
    assert!(!fg.status.success());
    assert!(
        stderr(&fg).contains(&format!("pid {pid}")),
        "{}",
        stderr(&fg)
    );
    assert_eq!(loopsy.pid(), Some(pid), "the running daemon is untouched");
    assert!(loopsy.is_running());
}

#[test]
fn kill_9_leaves_nothing_that_blocks_a_restart() {
    let loopsy = Loopsy::started();
    let node_id = loopsy.get("/api/v1/health", None).json()["nodeId"].clone();
    let pid = loopsy.pid().expect("pid");
    signal(pid, Signal::KILL);
    wait_until("the killed daemon's lock to be released", || {
        !loopsy.is_running()
    });
    assert!(
        loopsy.path("loopsyd.sock").exists(),
        "a stale socket is left behind"
    );
    assert!(
        loopsy.path("daemon.pid").exists(),
        "a stale pid file is left behind"
    );

    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    assert_ne!(loopsy.pid(), Some(pid));
    assert_eq!(
        loopsy.get("/api/v1/health", None).json()["nodeId"],
        node_id,
        "node id persists"
    );
    assert!(loopsy.ok(&["status"]).contains("running"));
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let loopsy = Loopsy::started();
    let pid = loopsy.pid().expect("pid");
    signal(pid, Signal::TERM);
    wait_until("the daemon to exit after SIGTERM", || !loopsy.is_running());
    wait_until("the socket and pid file to be removed", || {
        !loopsy.path("loopsyd.sock").exists() && !loopsy.path("daemon.pid").exists()
    });
    let log = std::fs::read_to_string(loopsy.path("logs/daemon.log")).unwrap_or_default();
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn foreground_start_serves_until_interrupted() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let mut child = KillOnDrop(
        loopsy
            .command(&["start", "--foreground", "--port", &loopsy.port.to_string()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    wait_until("the foreground daemon to answer", || {
        std::net::TcpStream::connect(("127.0.0.1", loopsy.port)).is_ok()
            && loopsy.get("/api/v1/health", None).status == 200
    });
    signal(child.0.id(), Signal::INT);
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "SIGINT is a clean exit: {status}");
    assert!(!loopsy.path("loopsyd.sock").exists());
}
