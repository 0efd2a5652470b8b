//! LAN peers across real network stacks: two network namespaces joined by a
//! veth link, a daemon in each. mDNS crosses the link (multicast), each lists
//! the other, they pair by the announced address, and run commands on each
//! other. Needs root (CI is root) for named namespaces; otherwise skipped
//! with the reason printed.

use serde_json::Value;

use crate::harness::{stdout, wait_until};
use crate::netns::{Link, daemon_in};
use crate::peers::{fingerprint_of, node_id, pair_at, peers_of};

#[test]
fn daemons_in_two_network_namespaces_find_each_other_pair_and_run_commands() {
    let Some(link) = Link::make() else {
        return;
    };
    let kai = daemon_in(&link.names[0], "kai");
    let mira = daemon_in(&link.names[1], "mira");
    let (kai_id, mira_id) = (node_id(&kai), node_id(&mira));
    // Each hears the other over the veth: its address there, its ports and its
    // certificate's fingerprint, unpaired.
    let mut heard = Value::Null;
    wait_until("Mira hears Kai over mDNS", || {
        heard = peers_of(&mira)
            .into_iter()
            .find(|p| p["nodeId"] == kai_id.as_str())
            .unwrap_or(Value::Null);
        !heard.is_null()
    });
    assert_eq!(heard["paired"], false, "{heard}");
    assert_eq!(heard["hostname"], "kai");
    assert_eq!(heard["address"], link.addresses[0].as_str(), "{heard}");
    assert_eq!(heard["peerPort"], kai.peer_port);
    assert_eq!(heard["certFingerprint"], fingerprint_of(&kai).as_str());
    assert_eq!(heard["capabilities"][0], "execute");
    wait_until("Kai hears Mira", || {
        peers_of(&kai)
            .iter()
            .any(|p| p["nodeId"] == mira_id.as_str())
    });
    // Hearing is not contacting: nothing came to Kai from Mira's address (a
    // heard daemon gets no request, so no credential) before the pairing.
    let audit = std::fs::read_to_string(kai.path("logs/audit.jsonl")).unwrap_or_default();
    assert!(
        !audit.contains(&link.addresses[1]),
        "Kai was contacted before pairing:\n{audit}"
    );
    // Pairing by the announced address, across the link.
    let address = format!("{}:{}", link.addresses[0], kai.peer_port);
    pair_at(
        &kai,
        &mira,
        &address,
        "exec,transfer,sessions:shell",
        "exec",
    );
    let on_mira = peers_of(&mira);
    let paired: Vec<_> = on_mira.iter().filter(|p| p["paired"] == true).collect();
    assert_eq!(paired.len(), 1, "{on_mira:?}");
    assert_eq!(paired[0]["address"], link.addresses[0].as_str());
    // Mira's credential for Kai is good on Kai's TLS port only: sent to Kai's
    // plain-HTTP port from across the link (where anyone on the path could
    // read it), it is refused.
    let credential = crate::peers::credential_for(&mira, &kai_id);
    let plain = format!("{}:{}", link.addresses[0], kai.port);
    let out = mira.run(&[
        "transfer",
        "list",
        "~",
        "--address",
        &plain,
        "--key",
        &credential,
    ]);
    assert!(!out.status.success());
    assert!(
        crate::harness::stderr(&out).contains("only over the TLS port"),
        "{}",
        crate::harness::stderr(&out)
    );
    // Commands run on the other side of the link, each way.
    let out = mira.run(&[
        "exec", "--peer", "kai", "--", "ip", "-4", "-o", "addr", "show",
    ]);
    assert!(
        stdout(&out).contains(&link.addresses[0]),
        "ran in Kai's namespace: {}",
        stdout(&out)
    );
    let out = kai.run(&["exec", "--peer", "mira", "--", "echo", "across"]);
    assert_eq!(stdout(&out), "across\n");
    // A file across the link, through both daemons.
    let src = mira.dir.path().join("across.txt");
    std::fs::write(&src, "over the veth\n").expect("write");
    mira.ok(&[
        "transfer",
        "push",
        src.to_str().expect("path"),
        "~/got.txt",
        "--peer",
        "kai",
    ]);
    assert_eq!(
        std::fs::read_to_string(kai.dir.path().join("got.txt")).expect("on Kai"),
        "over the veth\n"
    );
    // A shell on Kai, driven from Mira's side of the link.
    let mut terminal =
        crate::terminal::Terminal::run(&mira, &["shell", "--peer", "kai", "--cmd", "sh"]);
    // The address the shell's own stack has is Kai's side of the veth.
    terminal.type_bytes(b"ip -4 -o addr show | grep -o '10[.]77[.][0-9]*[.][0-9]*/'\r");
    terminal.wait_for(&format!("{}/", link.addresses[0]));
    terminal.type_bytes(b"exit 3\r");
    assert_eq!(terminal.exit_code(), 3);
    wait_until("Kai sees Mira online", || {
        peers_of(&kai)
            .iter()
            .any(|p| p["nodeId"] == mira_id.as_str() && p["status"] == "online")
    });
    kai.ok(&["stop"]);
    mira.ok(&["stop"]);
}
