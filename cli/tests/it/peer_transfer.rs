//! Files to and from a paired peer through the daemon (`transfer --peer`):
//! whole, checked, refused by the peer's own path policy, no leftovers.

use serde_json::{Value, json};

use crate::peers::{daemon, node_id, pair};

/// 256 MiB (sparse), far more than the sockets between the daemons buffer.
fn large_file(loopsy: &crate::harness::Loopsy) -> std::path::PathBuf {
    let path = loopsy.dir.path().join("big.bin");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(256 * 1024 * 1024))
        .expect("a sparse file");
    path
}

#[test]
fn files_go_to_and_come_from_a_peer_through_the_daemon_whole_and_checked() {
    let (kai, mira) = (daemon(), daemon());
    pair(&kai, &mira, "transfer", "transfer");
    let mira_id = node_id(&mira);
    // Bytes that are not text and not a multiple of any piece size.
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = kai.dir.path().join("payload.bin");
    std::fs::write(&src, &bytes).expect("write");
    let sent = kai.ok(&[
        "transfer",
        "push",
        src.to_str().expect("path"),
        "~/inbox/payload.bin",
        "--peer",
        &mira_id,
        "--json",
    ]);
    let sent: Value = serde_json::from_str(&sent).expect("JSON");
    assert_eq!(sent["size"], bytes.len());
    assert_eq!(
        std::fs::read(mira.dir.path().join("inbox/payload.bin")).expect("on Mira"),
        bytes
    );
    // And back, into a directory.
    let back = kai.dir.path().join("back");
    std::fs::create_dir(&back).expect("dir");
    kai.ok(&[
        "transfer",
        "pull",
        "~/inbox/payload.bin",
        back.to_str().expect("path"),
        "--peer",
        &mira_id[..8],
    ]);
    assert_eq!(
        std::fs::read(back.join("payload.bin")).expect("pulled"),
        bytes
    );
    let listed: Value = serde_json::from_str(
        &kai.ok(&["transfer", "list", "~/inbox", "--peer", &mira_id, "--json"]),
    )
    .expect("JSON");
    let names: Vec<&str> = listed["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["payload.bin"], "{listed}");
    // Mira's path policy decides: its data dir stays out of reach, and the
    // refusal says so; nothing half-written is left behind on either side.
    // A file far larger than the sockets' buffers: the refusal comes while
    // its bytes are still on their way, and must still be what the user reads.
    let big = large_file(&kai);
    let denied = kai.run(&[
        "transfer",
        "push",
        big.to_str().expect("path"),
        &format!("{}/x.bin", mira.data().display()),
        "--peer",
        &mira_id,
    ]);
    assert!(!denied.status.success());
    let said = crate::harness::stderr(&denied);
    assert!(
        said.contains("Path denied") && said.contains("(code 4001)"),
        "{said}"
    );
    let missing = kai.run(&[
        "transfer",
        "pull",
        "~/nope.bin",
        back.to_str().expect("path"),
        "--peer",
        &mira_id,
    ]);
    assert!(!missing.status.success());
    let leftovers: Vec<_> = std::fs::read_dir(&back)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the first pull's file: {leftovers:?}"
    );
}

#[test]
fn a_push_the_peer_refuses_ends_with_the_peers_reason() {
    let (kai, mira) = (daemon(), daemon());
    // Mira lets Kai run commands, not send files.
    pair(&kai, &mira, "transfer", "exec");
    let big = large_file(&kai);
    let refused = kai.run(&[
        "transfer",
        "push",
        big.to_str().expect("path"),
        "~/big.bin",
        "--peer",
        &node_id(&mira),
    ]);
    assert!(!refused.status.success());
    let said = crate::harness::stderr(&refused);
    assert!(
        said.contains("needs the transfer capability") && said.contains("(code 1002)"),
        "{said}"
    );
    assert!(!mira.dir.path().join("big.bin").exists());
    // The refusal comes back while the upload is still open (here after one
    // piece, with no end frame sent): a client stops sending there instead of
    // after the last byte of a large file.
    let mut socket = crate::unix_socket::connect(&kai);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "peers.transfer.push",
        "params": {"peer": node_id(&mira), "destPath": "~/early.bin"}});
    crate::unix_socket::send(&mut socket, 1, call.to_string().as_bytes());
    crate::unix_socket::send(&mut socket, 2, &[1u8; 65_536]);
    let answer = crate::unix_socket::receive(&mut socket);
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["error"]["code"], 1002, "{answer}");
    drop(socket);
    // Both daemons go on: the same link carries the next call.
    let out = kai.run(&["exec", "--peer", &node_id(&mira), "--", "echo", "still"]);
    assert_eq!(crate::harness::stdout(&out), "still\n");
}
