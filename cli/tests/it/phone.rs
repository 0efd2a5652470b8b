//! The phone path end to end: the real daemon, a real relay (`loopsy relay
//! serve`), and the Rust test phone, over real WebSockets on loopback.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use loopsy_transports::framing::Frame;
use serde_json::{Value, json};

use crate::harness::*;
use crate::test_phone::{PairingEnd, PairingUrl, TestPhone, pair};

pub struct Stack {
    pub loopsy: Loopsy,
    pub relay: KillOnDrop,
    relay_dir: tempfile::TempDir,
    pub relay_url: String,
    /// The relay's flags, kept for a restart.
    relay_args: Vec<String>,
}

/// A relay started with `extra` flags.
pub fn start_relay_with(extra: &[String]) -> (KillOnDrop, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, url) = relay_on(dir.path(), port, extra);
    (child, dir, url)
}

/// A relay on `port` keeping its database in `dir`, with `extra` flags.
pub fn relay_on(dir: &std::path::Path, port: u16, extra: &[String]) -> (KillOnDrop, String) {
    let child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["relay", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let health = format!("{url}/health");
    wait_until("the relay answers", || {
        ureq::get(&health).call().is_ok_and(|r| r.status() == 200)
    });
    (KillOnDrop(child), url)
}

/// A daemon registered at a relay reached through `via` (the relay itself, or a proxy to it).
pub fn stack_via(via: impl FnOnce(&str) -> String) -> Stack {
    stack_of(Loopsy::started(), via)
}

/// A stack around a daemon the caller prepared and started.
pub fn stack_of(loopsy: Loopsy, via: impl FnOnce(&str) -> String) -> Stack {
    stack_with_relay_flags(loopsy, &[], via)
}

/// The same, with the relay started with `relay_args`.
pub fn stack_with_relay_flags(
    loopsy: Loopsy,
    relay_args: &[String],
    via: impl FnOnce(&str) -> String,
) -> Stack {
    let (relay, dir, relay_url) = start_relay_with(relay_args);
    let reach = via(&relay_url);
    loopsy.ok(&["relay", "configure", &reach]);
    wait_until("the daemon's relay link is up", || {
        let out = loopsy.run(&["relay", "status", "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["connected"] == true)
    });
    Stack {
        loopsy,
        relay,
        relay_dir: dir,
        relay_url,
        relay_args: relay_args.to_vec(),
    }
}

impl Stack {
    pub fn kill_relay(&mut self) {
        let _ = self.relay.0.kill();
        let _ = self.relay.0.wait();
    }

    /// Starts the relay again on the same port and database.
    pub fn start_relay_again(&mut self) {
        let port: u16 = self.relay_url.rsplit(':').next().unwrap().parse().unwrap();
        self.relay = relay_on(self.relay_dir.path(), port, &self.relay_args).0;
    }

    pub fn restart_relay(&mut self) {
        self.kill_relay();
        self.start_relay_again();
    }
}

pub fn stack() -> Stack {
    stack_via(str::to_owned)
}

pub fn open_window(loopsy: &Loopsy) -> (PairingUrl, String) {
    let window: Value = serde_json::from_str(&loopsy.ok(&["mobile", "pair", "--json"])).unwrap();
    let url = window["url"].as_str().unwrap();
    (
        PairingUrl::parse(url),
        window["code"].as_str().unwrap().to_owned(),
    )
}

pub fn paired(loopsy: &Loopsy) -> Box<TestPhone> {
    let (url, code) = open_window(loopsy);
    match actix_rt::System::new().block_on(pair(&url, &[&code])) {
        PairingEnd::Paired(phone) => phone,
        PairingEnd::Refused(answers) => panic!("pairing refused: {answers:?}"),
    }
}

pub fn shell_params() -> Value {
    json!({ "command": "sh", "name": "secret-session-name", "env": { "PS1": "$ " } })
}

#[test]
fn a_phone_pairs_and_drives_a_shell_through_the_relay() {
    let stack = stack();
    let phone = paired(&stack.loopsy);
    assert_eq!(phone.paired["type"], "paired");
    let listed: Value =
        serde_json::from_str(&stack.loopsy.ok(&["phone", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["phoneId"], phone.phone_id.as_str());
    assert_eq!(listed[0]["label"], "test phone");

    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.expect("a paired phone connects");
        let started = connection.request("session.start", shell_params()).await;
        let id = started["result"]["id"]
            .as_str()
            .expect("a session id")
            .to_owned();
        connection
            .call(
                "session.attach",
                json!({ "id": id, "cols": 80, "rows": 24 }),
            )
            .await;
        connection
            .send_frame(Frame::Binary(Bytes::from_static(b"echo e2e-$((6*7))-ok\n")))
            .await;
        connection.read_until("e2e-42-ok").await;

        // Phones drive sessions; they do not run commands outside them.
        let refused = connection
            .request("exec.run", json!({ "command": "true" }))
            .await;
        assert_eq!(refused["error"]["data"]["httpStatus"], 403, "{refused}");
    });
}

#[test]
fn five_wrong_codes_close_the_pairing_for_good() {
    let stack = stack();
    let (url, code) = open_window(&stack.loopsy);
    let wrong = if code == "0000" { "1111" } else { "0000" };
    let end = actix_rt::System::new().block_on(pair(&url, &[wrong; 5]));
    let PairingEnd::Refused(answers) = end else {
        panic!("five wrong codes paired a phone")
    };
    assert_eq!(answers.len(), 5, "{answers:?}");
    assert_eq!(answers[0]["type"], "code-wrong");
    assert_eq!(answers[0]["attemptsLeft"], 4);
    assert_eq!(answers[4]["type"], "pairing-dead");
    // The right code is of no use now: the token died at the relay before the
    // pairing socket closed.
    let refused = actix_rt::System::new().block_on(async {
        let mut socket = crate::test_phone::socket(
            format!("{}/pair/connect/{}", url.relay, url.device_id),
            &url.token,
        )
        .await
        .expect("let in to be told");
        crate::test_phone::next(&mut socket).await
    });
    assert!(
        matches!(
            refused,
            crate::test_phone::Got::Closed(Some(
                loopsy_transports::relay_wire::close::PAIRING_REFUSED
            ))
        ),
        "a dead token was not closed at once as refused"
    );
    let listed: Value =
        serde_json::from_str(&stack.loopsy.ok(&["phone", "list", "--json"])).unwrap();
    assert_eq!(listed, json!([]));
    // Every attempt is in the audit log.
    wait_until("the wrong codes to be audited", || {
        let log =
            std::fs::read_to_string(stack.loopsy.path("logs/audit.jsonl")).unwrap_or_default();
        let count = |op: &str| {
            log.lines()
                .filter(|l| l.contains(&format!("\"op\":\"{op}\"")) && l.contains("\"denied\""))
                .count()
        };
        // Four wrong codes (403) and the fifth, which closed the window (410).
        count("phone.pair.code") == 5 && log.contains("\"status\":410")
    });
}

#[test]
fn pairing_attempts_beyond_rate_limits_pair_are_refused_and_audited() {
    let loopsy = Loopsy::started_with(|t| t.replace("  pair: 10", "  pair: 2"));
    let stack = stack_of(loopsy, str::to_owned);
    let (url, _code) = open_window(&stack.loopsy);
    let answered = actix_rt::System::new().block_on(async {
        let mut answered = Vec::new();
        for _ in 0..3 {
            answered.push(crate::test_phone::pairing_answered(&url).await);
        }
        answered
    });
    assert_eq!(answered, vec![true, true, false]);
    wait_until("the refusal to be audited", || {
        std::fs::read_to_string(stack.loopsy.path("logs/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("\"op\":\"phone.pair.open\"") && l.contains("rate-limited"))
    });
}

/// Reads and keeps output until the channel closes, or gives up after `patience`.
pub async fn drain(connection: &mut crate::test_phone::Connection, into: &mut Vec<u8>) {
    let _ = tokio::time::timeout(patience(), connection.output_until("\u{0}never", into)).await;
}

#[test]
fn a_frozen_relay_is_noticed_and_phones_resume_once_it_is_back() {
    let loopsy = Loopsy::started_with(|t| t.replace("pingIntervalSec: 25", "pingIntervalSec: 1"));
    let stack = stack_of(loopsy, str::to_owned);
    let relay_pid = stack.relay.0.id();
    let phone = paired(&stack.loopsy);
    let connected = || {
        let out = stack.loopsy.run(&["relay", "status", "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["connected"] == true)
    };
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.unwrap();
        let (id, from, snapshot_bytes, mut output) = numbered_run(&mut connection, 150).await;

        // The relay freezes: its kernel still acknowledges, so TCP sees nothing wrong.
        signal(relay_pid, rustix::process::Signal::STOP);
        wait_until("the daemon to notice the frozen relay", || !connected());
        let status = stack.loopsy.ok(&["relay", "status", "--json"]);
        assert!(status.contains("stopped answering"), "{status}");
        signal(relay_pid, rustix::process::Signal::CONT);
        drain(&mut connection, &mut output).await;
        wait_until("the daemon to reconnect", connected);

        let mut connection = reconnect(&phone).await;
        let resume_at = from + output.len() as u64 - snapshot_bytes;
        let (offset, replayed_snapshot) = connection.attach(&id, Some(resume_at)).await;
        assert_eq!(replayed_snapshot, 0, "the gap was still in the ring");
        assert_eq!(offset, resume_at);
        assert!(connection.output_until("ALL-DONE-2", &mut output).await);
        assert_numbered_lines(&output, 150);
    });
    let log = std::fs::read_to_string(stack.loopsy.path("logs/audit.jsonl")).unwrap_or_default();
    assert!(log.contains("\"op\":\"phone.pair.code\"") && log.contains("\"op\":\"phone.connect\""));
}

#[test]
fn a_revoked_phone_is_cut_at_once_and_cannot_come_back() {
    let stack = stack();
    let phone = paired(&stack.loopsy);
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.unwrap();
        let status = connection.request("status", json!({})).await;
        assert!(status.get("result").is_some(), "{status}");
        let revoked_at = Instant::now();
        stack.loopsy.ok(&["phone", "revoke", &phone.phone_id]);
        assert_eq!(
            connection.closed_with().await,
            Some(loopsy_transports::relay_wire::close::REVOKED),
            "a revoked phone is told so by its close code (docs/security.md)"
        );
        assert!(revoked_at.elapsed() < Duration::from_secs(1) + Duration::from_millis(500));
        assert!(
            phone.connect().await.is_err(),
            "a revoked phone connected again"
        );
    });
}

#[test]
fn loopsy_up_runs_everything_and_a_phone_pairs_with_what_it_prints() {
    use std::io::BufRead;
    let loopsy = Loopsy::new();
    let relay_port = free_port().to_string();
    let port = free_port().to_string();
    let mut up = loopsy.command(&["up", "--relay-port", &relay_port, "--port", &port]);
    up.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = KillOnDrop(up.spawn().unwrap());
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut next_line = || lines.next().expect("`loopsy up` ended early").unwrap();
    let (mut url, mut code) = (None, None);
    while code.is_none() {
        let line = next_line();
        if line.trim_start().starts_with("http://") && line.contains("/app/#") {
            url = Some(PairingUrl::parse(line.trim()));
        }
        if let Some(rest) = line.strip_prefix("Then type this code on the phone:") {
            code = Some(rest.trim().to_owned());
        }
    }
    let url = url.expect("a pairing URL");
    assert!(url.relay.ends_with(&format!(":{relay_port}")));
    let code = code.unwrap();
    let PairingEnd::Paired(phone) = actix_rt::System::new().block_on(pair(&url, &[&code])) else {
        panic!("the code `loopsy up` printed did not pair");
    };
    while !next_line().starts_with("Paired:") {}
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.unwrap();
        assert!(
            connection
                .request("session.list", json!({}))
                .await
                .get("result")
                .is_some()
        );
    });
    signal(child.0.id(), rustix::process::Signal::INT);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !loopsy.run(&["status"]).status.success(),
        "the daemon `up` started must stop with it"
    );
}

/// Connects the phone again, retrying while the relay or the daemon come back.
pub async fn reconnect(phone: &TestPhone) -> crate::test_phone::Connection {
    let deadline = Instant::now() + patience();
    loop {
        match phone.connect().await {
            Ok(connection) => return connection,
            Err(_) if Instant::now() < deadline => {
                actix_rt::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the phone never got back in: {e}"),
        }
    }
}

/// Starts a shell, attaches, and has it print `line-1` … `line-<count>` (40 ms
/// apart, then `ALL-DONE-2`); returns the session id, the attach offset and
/// snapshot bytes, and the output up to `line-5`.
pub async fn numbered_run(
    connection: &mut crate::test_phone::Connection,
    count: usize,
) -> (String, u64, u64, Vec<u8>) {
    let started = connection.request("session.start", shell_params()).await;
    let id = started["result"]["id"].as_str().unwrap().to_owned();
    let (from, snapshot_bytes) = connection.attach(&id, None).await;
    // The shell's first prompt comes first (typed ahead, the prompt would be
    // printed in front of the first numbered line).
    let mut output = Vec::new();
    assert!(connection.output_until("$ ", &mut output).await);
    let script = format!(
        "for i in $(seq 1 {count}); do echo line-$i; sleep 0.04; done; echo ALL-DONE-$((1+1))\n"
    );
    connection
        .send_frame(Frame::Binary(Bytes::from(script)))
        .await;
    assert!(connection.output_until("line-5\r\n", &mut output).await);
    (id, from, snapshot_bytes, output)
}

/// `line-1` … `line-<count>`, each once and in order, in a session's output.
pub fn assert_numbered_lines(output: &[u8], count: usize) {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text
        .split("\r\n")
        .filter(|l| l.starts_with("line-"))
        .collect();
    let expected: Vec<String> = (1..=count).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        lines,
        expected,
        "every line once, in order; output began {:?}",
        text.chars().take(400).collect::<String>()
    );
}

#[test]
fn a_relay_restart_mid_session_loses_no_output() {
    let mut stack = stack();
    let phone = paired(&stack.loopsy);
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.unwrap();
        let (id, from, snapshot_bytes, mut output) = numbered_run(&mut connection, 80).await;

        // The relay dies and comes back on the same port with the same database.
        stack.kill_relay();
        while connection.frame().await.is_some() {}
        // Whatever arrived before the cut counts; the rest comes from the ring.
        stack.start_relay_again();
        let mut connection = reconnect(&phone).await;
        let resume_at = from + output.len() as u64 - snapshot_bytes;
        let (offset, replayed_snapshot) = connection.attach(&id, Some(resume_at)).await;
        assert_eq!(replayed_snapshot, 0, "the gap was still in the ring");
        assert_eq!(offset, resume_at, "resumed exactly where the phone stopped");
        assert!(connection.output_until("ALL-DONE-2", &mut output).await);
        assert_numbered_lines(&output, 80);
    });
}

#[test]
fn a_phone_may_auto_approve_only_while_the_owner_grants_it() {
    let mut loopsy = Loopsy::new();
    loopsy.fake_program("codex", "sleep 30");
    loopsy.ok(&["init"]);
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    let stack = stack_of(loopsy, str::to_owned);
    let phone = paired(&stack.loopsy);
    let grant = format!("phone:{}", phone.phone_id);
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.expect("a paired phone connects");
        let try_codex = async |connection: &mut crate::test_phone::Connection| {
            let offer = connection.request("session.agents", json!({})).await;
            let started = connection
                .request(
                    "session.start",
                    json!({ "agent": "codex", "autoApprove": true }),
                )
                .await;
            (offer["result"]["autoApprove"].clone(), started)
        };
        let (offered, started) = try_codex(&mut connection).await;
        assert_eq!(offered, false);
        assert_eq!(started["error"]["data"]["loopsyCode"], 7006, "{started}");

        let granted = stack.loopsy.ok(&["auto-approve", "allow", &grant]);
        assert!(granted.contains("may now"), "{granted}");
        assert!(stack.loopsy.ok(&["auto-approve", "list"]).contains(&grant));
        // At once, on the same connection.
        let (offered, started) = try_codex(&mut connection).await;
        assert_eq!(offered, true);
        assert_eq!(started["result"]["alive"], true, "{started}");

        stack.loopsy.ok(&["auto-approve", "deny", &grant]);
        let (offered, started) = try_codex(&mut connection).await;
        assert_eq!(offered, false);
        assert_eq!(started["error"]["data"]["loopsyCode"], 7006, "{started}");
    });
    // Only a paired phone can be granted anything.
    let unknown = stack
        .loopsy
        .run(&["auto-approve", "allow", "phone:not-a-paired-phone"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("loopsy phone list"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    // A phone cannot grant itself: grants are the owner's.
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.expect("a paired phone connects");
        let answer = connection
            .request(
                "grants.autoApprove",
                json!({ "peer": grant, "allow": true }),
            )
            .await;
        assert!(answer.get("error").is_some(), "{answer}");
    });
    let listed: Value =
        serde_json::from_str(&stack.loopsy.ok(&["phone", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["autoApprove"], false);
}
