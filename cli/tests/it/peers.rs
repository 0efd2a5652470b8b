//! LAN peers on one machine: two and three real daemons (own data dirs and
//! ports) pair through the real CLI over their TLS ports, then run operations
//! on each other through their own daemons; and the attacks the issue names.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};

use crate::harness::{Loopsy, Socket, patience, rpc_with_key, stdout, wait_until};

/// A running `loopsy pair …` whose output is read line by line.
struct Pairing {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Pairing {
    fn start(loopsy: &Loopsy, args: &[&str]) -> Self {
        let mut command = loopsy.command(args);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loopsy pair");
        let stdin = child.stdin.take().expect("stdin");
        let (send, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                    let _ = send.send(String::from_utf8_lossy(&line).into_owned());
                }
            });
        }
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line containing `marker`, after waiting for it. Prompts end
    /// without a newline, so the prompt is matched on the line that follows.
    fn line_with(&mut self, marker: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(marker)) {
            return line.clone();
        }
        loop {
            let line = self
                .lines
                .recv_timeout(patience())
                .unwrap_or_else(|_| panic!("no line with {marker:?}; saw {:?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(marker) {
                return line;
            }
        }
    }

    /// The 6 digits after `label` on its line.
    fn code_after(&mut self, label: &str) -> String {
        let line = self.line_with(label);
        let digits: String = line
            .split_once(label)
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .take(6)
            .collect();
        assert_eq!(digits.len(), 6, "{line}");
        digits
    }

    fn answer(&mut self, text: &str) {
        writeln!(self.stdin, "{text}").expect("answer");
        self.stdin.flush().expect("flush");
    }

    fn finish(mut self) -> (bool, Vec<String>) {
        let status = self.child.wait().expect("wait");
        while let Ok(line) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.seen.push(line);
        }
        (status.success(), self.seen)
    }
}

/// A daemon whose peer port is on loopback, started.
pub fn daemon() -> Loopsy {
    Loopsy::started()
}

pub fn address(loopsy: &Loopsy) -> String {
    format!("127.0.0.1:{}", loopsy.peer_port)
}

/// Pairs `host` (shows the code) with `joiner` through the CLI, both owners
/// checking that the codes match; `grants` are what each lets the other do.
pub fn pair(host: &Loopsy, joiner: &Loopsy, host_grants: &str, joiner_grants: &str) {
    pair_at(host, joiner, &address(host), host_grants, joiner_grants);
}

/// As `pair`, the joiner reaching the host at `at`.
pub fn pair_at(host: &Loopsy, joiner: &Loopsy, at: &str, host_grants: &str, joiner_grants: &str) {
    pair_with(host, joiner, at, host_grants, joiner_grants, &["pair"]);
}

/// As `pair_at`, the joiner's command being `join` (`pair` or `peers add`).
fn pair_with(
    host: &Loopsy,
    joiner: &Loopsy,
    at: &str,
    host_grants: &str,
    joiner_grants: &str,
    join: &[&str],
) {
    let mut shown = Pairing::start(host, &["pair", "--grant", host_grants]);
    let code = shown.code_after("Invite code:");
    let tail = [at, "--code", &code, "--grant", joiner_grants];
    let mut typed = Pairing::start(joiner, &[join, &tail[..]].concat());
    let host_sas = shown.code_after("Check code:");
    let joiner_sas = typed.code_after("Check code:");
    assert_eq!(
        host_sas, joiner_sas,
        "an honest pairing shows one check code"
    );
    assert_ne!(host_sas, code, "the check code is not the invite code");
    typed.answer("yes");
    shown.answer("yes");
    let (joined, joiner_out) = typed.finish();
    let (hosted, host_out) = shown.finish();
    assert!(joined, "{joiner_out:?}");
    assert!(hosted, "{host_out:?}");
}

pub fn peers_of(loopsy: &Loopsy) -> Vec<Value> {
    let listed: Value =
        serde_json::from_str(&loopsy.ok(&["peers", "list", "--json"])).expect("JSON");
    listed["peers"].as_array().cloned().unwrap_or_default()
}

pub fn node_id(loopsy: &Loopsy) -> String {
    let status: Value = serde_json::from_str(&loopsy.ok(&["status", "--json"])).expect("JSON");
    status["nodeId"].as_str().expect("node id").to_owned()
}

/// The credential `loopsy` calls `peer` with, read from its database (what a
/// peer that turned hostile would hold).
pub fn credential_for(loopsy: &Loopsy, peer_node: &str) -> String {
    let db = rusqlite::Connection::open(loopsy.path("loopsy.db")).expect("db");
    db.query_row(
        "SELECT outbound_secret FROM peers WHERE node_id = ?1",
        [peer_node],
        |r| r.get(0),
    )
    .expect("a stored credential")
}

/// A JSON-RPC call to `target`'s TLS port with `credential`, pinning its certificate.
fn call_over_tls(
    target: &Loopsy,
    credential: Option<&str>,
    method: &str,
    params: Value,
) -> Result<Value, (u16, String)> {
    let fp = fingerprint_of(target);
    let port = target.peer_port;
    let credential = credential.map(str::to_owned);
    let method = method.to_owned();
    actix_rt::System::new().block_on(async move {
        let client = loopsy_daemon::peers::client::PeerClient::new(
            "target",
            "127.0.0.1",
            port,
            loopsy_transports::peer_tls::Trust::Pinned(fp),
            credential,
        )
        .map_err(|e| (e.status, e.message))?;
        client
            .call(&method, params, patience())
            .await
            .map_err(|e| (e.status, e.message))
    })
}

pub fn fingerprint_of(loopsy: &Loopsy) -> String {
    let pem = std::fs::read(loopsy.path("peer-tls.pem")).expect("the daemon's certificate");
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .expect("a certificate")
        .expect("PEM");
    loopsy_transports::peer_tls::fingerprint(cert.as_ref())
}

#[test]
fn two_daemons_pair_run_commands_on_each_other_and_unpair_on_both_sides() {
    let (kai, mira) = (daemon(), daemon());
    pair(&kai, &mira, "exec,context", "exec");
    let (kai_id, mira_id) = (node_id(&kai), node_id(&mira));

    let on_kai = peers_of(&kai);
    assert_eq!(on_kai.len(), 1, "{on_kai:?}");
    assert_eq!(on_kai[0]["nodeId"], mira_id.as_str());
    assert_eq!(on_kai[0]["theyMay"], json!(["exec", "context"]));
    assert_eq!(on_kai[0]["weMay"], json!(["exec"]));
    assert_eq!(on_kai[0]["certFingerprint"], fingerprint_of(&mira).as_str());
    let on_mira = peers_of(&mira);
    assert_eq!(on_mira[0]["nodeId"], kai_id.as_str());
    assert_eq!(on_mira[0]["theyMay"], json!(["exec"]));
    wait_until("each sees the other online", || {
        peers_of(&kai)[0]["status"] == "online" && peers_of(&mira)[0]["status"] == "online"
    });
    let status: Value = serde_json::from_str(&kai.ok(&["status", "--json"])).expect("JSON");
    assert_eq!(
        status["peers"],
        json!({"total": 1, "online": 1, "offline": 0})
    );

    // Each runs a command on the other, named by node id prefix or hostname,
    // through its own daemon; the output and exit code come back.
    let out = kai.run(&[
        "exec",
        "--peer",
        &mira_id[..8],
        "--",
        "sh",
        "-c",
        "echo from-$((40+2)); exit 3",
    ]);
    assert_eq!(stdout(&out), "from-42\n");
    assert_eq!(out.status.code(), Some(3));
    let out = mira.run(&["exec", "--peer", &kai_id, "--", "echo", "back"]);
    assert_eq!(stdout(&out), "back\n");
    // Mira was granted exec and context here, Kai only exec there: Kai's
    // daemon refuses Mira nothing it granted, and Mira's refuses Kai context.
    let mut socket = Socket::connect(&kai);
    let refused = socket.request(
        "peers.call",
        json!({"peer": mira_id, "method": "context.set", "params": {"key": "k", "value": "v"}}),
    );
    assert_eq!(refused["error"]["data"]["httpStatus"], 403, "{refused}");
    let mut socket = Socket::connect(&mira);
    let allowed = socket.request(
        "peers.call",
        json!({"peer": kai_id, "method": "context.set", "params": {"key": "k", "value": "v"}}),
    );
    assert!(allowed["result"].is_object(), "{allowed}");

    // Pairing the same machine again would replace it (its pin, its scope):
    // refused until it is removed.
    let (mut kai_socket, _, again) = start_join(&kai, &mira);
    assert_eq!(again["state"], "ended", "{again}");
    assert!(
        again["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("paired already"),
        "{again}"
    );
    kai_socket.request("peers.pair.confirm", json!({"accept": false}));
    // Mira's credential works on Kai's TLS port, never on plain HTTP off loopback,
    // and stops at once when Kai removes Mira; Mira hears of it and forgets Kai.
    let mira_key = credential_for(&mira, &kai_id);
    assert!(call_over_tls(&kai, Some(&mira_key), "context.list", json!({})).is_ok());
    let removed = kai.ok(&["peers", "remove", &mira_id[..8]]);
    assert!(removed.contains("removed on both machines"), "{removed}");
    assert_eq!(
        call_over_tls(&kai, Some(&mira_key), "context.list", json!({})).map_err(|e| e.0),
        Err(403)
    );
    assert!(peers_of(&kai).is_empty());
    wait_until("Mira forgot Kai too", || peers_of(&mira).is_empty());
    let gone = mira.run(&["exec", "--peer", &kai_id, "--", "true"]);
    assert!(!gone.status.success());
}

#[test]
fn pairing_cannot_be_opened_from_the_network() {
    let kai = daemon();
    let key = kai.key();
    // Not with the owner's key over HTTP, not over the TLS port: only the socket.
    let over_http = rpc_with_key(&kai, &key, "peers.pair.open", json!({}));
    assert_eq!(over_http["error"]["data"]["httpStatus"], 403, "{over_http}");
    let over_tls = call_over_tls(&kai, Some(&key), "peers.pair.open", json!({}));
    assert_eq!(over_tls.map_err(|e| e.0), Err(403));
    // Nor the joining side: a LAN caller cannot make this daemon dial anywhere.
    let join = rpc_with_key(
        &kai,
        &key,
        "peers.join",
        json!({"address": "127.0.0.1:1", "code": "123456"}),
    );
    assert_eq!(join["error"]["data"]["httpStatus"], 403, "{join}");
    // The pairing steps are refused on plain HTTP (the joiner could not pin anything).
    let hello = rpc_with_key(&kai, "", "peer.pair.hello", json!({"message": "00"}));
    assert_eq!(hello["error"]["data"]["httpStatus"], 403, "{hello}");
}

#[test]
fn three_wrong_invite_codes_close_the_window_and_the_right_one_then_fails() {
    let (kai, mira) = (daemon(), daemon());
    let mut kai_socket = Socket::connect(&kai);
    let code = open_window(&mut kai_socket);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let mut mira_socket = Socket::connect(&mira);
    for attempt in 1..=3 {
        let join = mira_socket.request(
            "peers.join",
            json!({"address": address(&kai), "code": wrong}),
        );
        assert!(join["result"].is_object(), "{join}");
        let status = wait_for(&mut mira_socket, "peers.join.status", &["connecting"]);
        assert_eq!(status["state"], "ended", "{status}");
        let reason = status["reason"].as_str().unwrap_or_default();
        if attempt < 3 {
            assert!(reason.contains("wrong invite code"), "{reason}");
        } else {
            assert!(reason.contains("three wrong invite codes"), "{reason}");
        }
    }
    let closed = kai_socket.request("peers.pair.status", json!({}));
    assert_eq!(closed["result"]["state"], "ended", "{closed}");
    let join = mira_socket.request(
        "peers.join",
        json!({"address": address(&kai), "code": code}),
    );
    assert!(join["result"].is_object());
    let status = wait_for(&mut mira_socket, "peers.join.status", &["connecting"]);
    assert_eq!(
        status["state"], "ended",
        "the right code after the lockout: {status}"
    );
    assert!(peers_of(&kai).is_empty() && peers_of(&mira).is_empty());
    let audit = std::fs::read_to_string(kai.path("logs/audit.jsonl")).expect("audit");
    let denied = audit
        .lines()
        .filter(|l| l.contains("\"peer.pair.finish\"") && l.contains("\"denied\""))
        .count();
    assert_eq!(denied, 3, "each wrong code is audited:\n{audit}");
}

/// Opens a pairing window on `loopsy`'s daemon; its invite code.
pub fn open_window(socket: &mut Socket) -> String {
    let window = socket.request("peers.pair.open", json!({}));
    window["result"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no window: {window}"))
        .to_owned()
}

/// `host` opens a window and `joiner` joins it with the right code; both
/// sockets and the join's status once it is past connecting.
fn start_join(host: &Loopsy, joiner: &Loopsy) -> (Socket, Socket, Value) {
    let mut host_socket = Socket::connect(host);
    let code = open_window(&mut host_socket);
    let mut joiner_socket = Socket::connect(joiner);
    joiner_socket.request(
        "peers.join",
        json!({"address": address(host), "code": code}),
    );
    let status = wait_for(&mut joiner_socket, "peers.join.status", &["connecting"]);
    (host_socket, joiner_socket, status)
}

pub fn wait_for(socket: &mut Socket, method: &str, passing: &[&str]) -> Value {
    let mut last = Value::Null;
    wait_until(&format!("{method} leaves {passing:?}"), || {
        last = socket.request(method, json!({}))["result"].clone();
        !passing.contains(&last["state"].as_str().unwrap_or_default())
    });
    last
}

#[test]
fn a_confirm_from_one_side_stores_nothing() {
    let (kai, mira) = (daemon(), daemon());
    let (mut kai_socket, mut mira_socket, joined) = start_join(&kai, &mira);
    assert_eq!(joined["state"], "comparing", "{joined}");
    let hosted = wait_for(&mut kai_socket, "peers.pair.status", &["waiting"]);
    assert_eq!(hosted["sas"], joined["sas"]);
    // Mira's owner accepts; Kai's declines.
    let accepted = mira_socket.request("peers.join.confirm", json!({"accept": true}));
    assert!(accepted["result"].is_object(), "{accepted}");
    let declined = kai_socket.request("peers.pair.confirm", json!({"accept": false}));
    assert!(declined["result"].is_object(), "{declined}");
    let ended = wait_for(
        &mut mira_socket,
        "peers.join.status",
        &["waiting-for-peer", "comparing"],
    );
    assert_eq!(ended["state"], "ended", "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("declined")
    );
    assert!(peers_of(&kai).is_empty() && peers_of(&mira).is_empty());
}

#[test]
fn a_peer_presenting_another_certificate_is_refused() {
    let (kai, mira) = (daemon(), daemon());
    pair(&kai, &mira, "exec", "exec");
    let mira_id = node_id(&mira);
    assert_eq!(
        stdout(&kai.run(&["exec", "--peer", &mira_id, "--", "echo", "ok"])),
        "ok\n"
    );
    // Mira's certificate is replaced (as an impostor on its address would present
    // its own): Kai refuses the TLS handshake, so nothing, not even the
    // credential, reaches it.
    let runs = || {
        std::fs::read_to_string(mira.path("logs/audit.jsonl"))
            .unwrap_or_default()
            .matches("\"exec.run\"")
            .count()
    };
    let before = runs();
    mira.ok(&["stop"]);
    std::fs::remove_file(mira.path("peer-tls.pem")).expect("remove the certificate");
    mira.ok(&["start", "--port", &mira.port.to_string()]);
    let out = kai.run(&["exec", "--peer", &mira_id, "--", "echo", "ok"]);
    assert!(!out.status.success());
    let said = crate::harness::stderr(&out);
    assert!(said.contains("certificate"), "{said}");
    assert_eq!(runs(), before, "no request reached the impostor");
}

#[test]
fn three_daemons_each_reach_the_others_context_and_status_by_name() {
    let (kai, mira, zed) = (daemon(), daemon(), daemon());
    pair(&kai, &mira, "context", "context");
    // `peers add` is the joiner's other spelling.
    pair_with(
        &zed,
        &kai,
        &address(&zed),
        "context,exec",
        "context",
        &["peers", "add"],
    );
    let (mira_id, zed_id) = (node_id(&mira), node_id(&zed));
    // Kai writes into each peer's context through its own daemon; each peer
    // reads its own store, so the value really went there.
    kai.ok(&[
        "context",
        "set",
        "build:ios",
        "green",
        "--peer",
        &mira_id[..6],
    ]);
    kai.ok(&["context", "--peer", &zed_id, "set", "build:android", "red"]);
    assert_eq!(mira.ok(&["context", "get", "build:ios"]), "green\n");
    assert_eq!(zed.ok(&["context", "get", "build:android"]), "red\n");
    assert!(
        !kai.run(&["context", "get", "build:ios"]).status.success(),
        "not written locally"
    );
    assert_eq!(
        kai.ok(&["context", "get", "build:ios", "--peer", &mira_id]),
        "green\n"
    );
    let status: Value =
        serde_json::from_str(&kai.ok(&["status", "--json", "--peer", &zed_id])).expect("JSON");
    assert_eq!(status["nodeId"], zed_id.as_str());
    // Zed granted exec to Kai, Mira did not.
    assert_eq!(
        stdout(&kai.run(&["exec", "--peer", &zed_id, "--", "echo", "z"])),
        "z\n"
    );
    let refused = kai.run(&["exec", "--peer", &mira_id, "--", "echo", "m"]);
    assert!(!refused.status.success());
    assert!(
        crate::harness::stderr(&refused).contains("exec"),
        "{}",
        crate::harness::stderr(&refused)
    );
    // Removing one leaves the other paired.
    kai.ok(&["peers", "remove", &zed_id]);
    let left = peers_of(&kai);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["nodeId"], mira_id.as_str());
    assert_eq!(
        kai.ok(&["context", "get", "build:ios", "--peer", &mira_id]),
        "green\n"
    );
}

#[test]
fn manual_peers_from_the_config_are_listed_unpaired() {
    let kai = Loopsy::started_with(|text| {
        text.replace(
            "manualPeers: []",
            "manualPeers:\n    - address: 192.0.2.7\n      port: 19532\n      hostname: old-ts",
        )
    });
    let listed = peers_of(&kai);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "manual");
    assert_eq!(listed[0]["paired"], false);
    assert_eq!(listed[0]["hostname"], "old-ts");
    assert!(
        kai.ok(&["peers", "list"]).contains("old-ts"),
        "the table shows it too"
    );
}
