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
    let (content_type, body) = multipart(dest, content);
    let auth = bearer(loopsy);
    loopsy.http(
        "POST",
        "/api/v1/transfer/push",
        &[("Authorization", &auth), ("Content-Type", &content_type)],
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

    let auth = bearer(&loopsy);
    let listed = loopsy.http(
        "POST",
        "/api/v1/transfer/list",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(json!({"path": "~/inbox/deep"}).to_string().as_bytes()),
    );
    let files = listed.json()["files"].clone();
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
fn interrupted_and_oversized_pushes_leave_nothing() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    loopsy.write_config(|text| text.replace("maxFileSize: 1073741824", "maxFileSize: 100000"));
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
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
