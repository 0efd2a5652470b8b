//! Files to and from a paired peer through the daemon (`transfer --peer`):
//! whole, checked, refused by the peer's own path policy, no leftovers.

use serde_json::Value;

use crate::peers::{daemon, node_id, pair};

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
    let denied = kai.run(&[
        "transfer",
        "push",
        src.to_str().expect("path"),
        &format!("{}/x.bin", mira.data().display()),
        "--peer",
        &mira_id,
    ]);
    assert!(!denied.status.success());
    assert!(
        crate::harness::stderr(&denied).contains(&format!("peer {}", "mira").replace("mira", "")),
        "{}",
        crate::harness::stderr(&denied)
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
