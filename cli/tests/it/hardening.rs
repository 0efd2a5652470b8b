//! No input disables the daemon: extreme numbers get a 400, a hostile relay's
//! answers are refused, random and extreme JSON to every operation over the
//! real transports leaves it serving, and a Router that dies anyway (through a
//! test-only hook of debug builds) ends the process for its service manager.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

const FUZZ_KEY: &str = "0f0f0f0f0f0f0f0f1e1e1e1e1e1e1e1e2d2d2d2d2d2d2d2d3c3c3c3c3c3c3c3c";

fn serving(loopsy: &Loopsy) -> bool {
    let mut socket = Socket::connect(loopsy);
    socket.request("status", json!({}))["result"]["nodeId"].is_string()
        && loopsy.get("/api/v1/health", None).status == 200
}

#[test]
fn a_huge_timeout_is_a_400_on_every_route_and_the_daemon_keeps_serving() {
    let loopsy = Loopsy::started_with(|text| with_peers(text, &[("peer", FUZZ_KEY)]));
    let bearer = format!("Bearer {FUZZ_KEY}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    for timeout in ["1e23", "1.7976931348623157e308", "-1", "0", "86400001"] {
        let body = format!(r#"{{"command":"true","timeout":{timeout}}}"#);
        for route in ["/api/v1/execute", "/api/v1/execute/stream"] {
            let answer = loopsy.http("POST", route, &auth, Some(body.as_bytes()));
            assert_eq!(answer.status, 400, "{route} {timeout}: {}", answer.body);
        }
        let rpc = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"exec.run","params":{{"command":"true","timeout":{timeout}}}}}"#
        );
        let answer = loopsy
            .http("POST", "/rpc", &auth, Some(rpc.as_bytes()))
            .json();
        assert_eq!(answer["error"]["data"]["httpStatus"], 400, "{answer}");
        let mut socket = Socket::connect(&loopsy);
        let params: Value =
            serde_json::from_str(&format!(r#"{{"command":"true","timeout":{timeout}}}"#))
                .unwrap_or_else(|_| json!({ "command": "true", "timeout": f64::MAX }));
        let answer = socket.request("exec.run", params);
        assert_eq!(answer["error"]["data"]["httpStatus"], 400, "{answer}");
    }
    assert!(serving(&loopsy));
    let ran = loopsy.http(
        "POST",
        "/api/v1/execute",
        &auth,
        Some(br#"{"command":"true","timeout":86400000}"#),
    );
    assert_eq!(ran.status, 200, "{}", ran.body);
    let refusals = || {
        let log = std::fs::read_to_string(loopsy.path("logs/audit.jsonl")).unwrap_or_default();
        let count = log.lines().filter(|l| l.contains("\"invalid\"")).count();
        (count, log)
    };
    let deadline = Instant::now() + patience();
    while refusals().0 < 20 && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    let (count, log) = refusals();
    assert!(count >= 20, "{count} refusals audited:\n{log}");
}

#[test]
fn a_router_that_dies_ends_the_process_for_its_supervisor() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let port = loopsy.port.to_string();
    let mut daemon = loopsy.command(&["start", "--foreground", "--port", &port]);
    daemon
        .env("LOOPSY_TEST_PANIC_ON", "identity")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut daemon = KillOnDrop(daemon.spawn().expect("start the daemon"));
    wait_until("the daemon to serve", || loopsy.is_running());
    let key = loopsy.key();
    // The request that kills the Router gets no answer; the process must end.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let _ = agent
        .get(loopsy.url("/api/v1/identity"))
        .header("Authorization", format!("Bearer {key}"))
        .call();
    let deadline = Instant::now() + patience();
    let status = loop {
        if let Some(status) = daemon.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon lived on without its Router"
        );
        sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(70), "exit status");
    let mut stderr = String::new();
    if let Some(mut pipe) = daemon.0.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("Router actor panicked"), "{stderr}");
    // What a service manager does next: a fresh start serves again.
    loopsy.ok(&["start", "--port", &port]);
    assert!(serving(&loopsy));
}

/// A relay that answers a pairing token with an expiry far in the future.
fn hostile_relay() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let body = json!({
                "deviceId": "hostile-device",
                "deviceSecret": "ab".repeat(32),
                "token": "cd".repeat(32),
                "tokenId": "token-1",
                "expiresAt": u64::MAX,
            })
            .to_string();
            let status = if request.starts_with(b"POST") {
                "201 Created"
            } else {
                "404 Not Found"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn a_relays_absurd_expiry_is_refused_and_the_link_lives_on() {
    let loopsy = Loopsy::started();
    let relay = format!("http://127.0.0.1:{}", hostile_relay());
    loopsy.ok(&["relay", "configure", &relay]);
    for _ in 0..2 {
        let out = loopsy.run(&["mobile", "pair", "--json"]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("expiry"), "{}", stderr(&out));
    }
    let status = loopsy.ok(&["relay", "status", "--json"]);
    assert!(status.contains("hostile-device"), "{status}");
    assert!(serving(&loopsy));
    let out = loopsy.run(&["mobile", "pair", "--ttl", "99999999999"]);
    assert!(stderr(&out).contains("ttlSeconds"), "{}", stderr(&out));
}

/// A small deterministic generator (xorshift64*): the same seed, the same cases.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    fn value(&mut self, depth: u32) -> Value {
        let numbers = [
            json!(0),
            json!(-1),
            json!(1e23),
            json!(-1e308),
            json!(f64::MAX),
            json!(f64::MIN_POSITIVE),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(4_294_967_296u64),
            json!(65_536),
            json!(1.5),
        ];
        let strings = [
            json!(""),
            json!("a".repeat(20_000)),
            json!("\u{0}"),
            json!("../../../../etc/passwd"),
            json!("~"),
            json!("/"),
            json!("-rf"),
            json!("rm"),
            json!("∞ ≠ 💥"),
            json!("%s%n%x"),
            json!("9".repeat(400)),
        ];
        match self.next() % 7 {
            0 => self.pick(&numbers).clone(),
            1 => self.pick(&strings).clone(),
            2 => json!(self.next().is_multiple_of(2)),
            3 => Value::Null,
            4 if depth < 40 => json!([self.value(depth + 1), self.value(depth + 1)]),
            5 if depth < 40 => self.params(depth + 1),
            _ => self.pick(&numbers).clone(),
        }
    }

    /// An object of field names the operations know, with random values.
    fn params(&mut self, depth: u32) -> Value {
        const FIELDS: &[&str] = &[
            "command",
            "args",
            "cwd",
            "env",
            "timeout",
            "stream",
            "key",
            "value",
            "ttl",
            "prefix",
            "path",
            "sourcePath",
            "destPath",
            "id",
            "data",
            "cols",
            "rows",
            "signal",
            "fromOffset",
            "agent",
            "name",
            "initialInput",
            "customCommandId",
            "autoApprove",
            "label",
            "icon",
            "peer",
            "allow",
            "ttlSeconds",
            "tokenId",
            "phoneId",
            "jobId",
            "checksum",
        ];
        let mut object = serde_json::Map::new();
        for _ in 0..(self.next() % 6) {
            let field = *self.pick(FIELDS);
            object.insert(field.to_owned(), self.value(depth + 1));
        }
        Value::Object(object)
    }
}

/// Every operation a client may name, except those that stop the daemon or
/// reach outside loopback (`relay.configure` dials the URL it is given).
const METHODS: &[&str] = &[
    "health",
    "identity",
    "status",
    "key.show",
    "context.set",
    "context.get",
    "context.delete",
    "context.list",
    "exec.run",
    "exec.stream",
    "exec.jobs",
    "exec.cancel",
    "transfer.list",
    "transfer.pull",
    "transfer.push",
    "session.start",
    "session.list",
    "session.attach",
    "session.detach",
    "session.input",
    "session.resize",
    "session.signal",
    "session.stop",
    "session.remove",
    "session.agents",
    "commands.add",
    "commands.update",
    "commands.remove",
    "grants.autoApprove",
    "mobile.pair",
    "mobile.pairStatus",
    "phones.list",
    "phones.revoke",
    "relay.status",
    "no.such.method",
];

#[test]
fn random_and_extreme_json_to_every_operation_leaves_the_daemon_serving() {
    let loopsy = Loopsy::started_with(|text| {
        with_capable_peers(
            text,
            &[(
                "fuzz",
                FUZZ_KEY,
                &["exec", "transfer", "context", "messages", "sessions:shell"],
            )],
        )
        .replace("maxConcurrent: 10", "maxConcurrent: 4")
    });
    let mut cases = Cases(0x5eed_1e55_c0ff_ee00);
    let bearer = format!("Bearer {FUZZ_KEY}");
    for round in 0..12 {
        for method in METHODS {
            let params = match cases.next() % 5 {
                0 => cases.value(0),
                _ => cases.params(0),
            };
            let call = json!({ "jsonrpc": "2.0", "id": round, "method": method, "params": params });
            // A connection per call: a call that starts a stream or an upload
            // may wait for more from its client, which is this test's to drop.
            let mut socket = Socket::connect(&loopsy);
            socket
                .stream
                .set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            socket.send(1, call.to_string().as_bytes());
            let mut header = [0u8; 5];
            let answered = socket.stream.read_exact(&mut header).is_ok();
            let streams = ["session.attach", "transfer.push", "exec.stream"].contains(method);
            assert!(answered || streams, "{method} {params}: no answer");
            let body = call.to_string();
            let http = loopsy.http(
                "POST",
                "/rpc",
                &[("Authorization", &bearer)],
                Some(body.as_bytes()),
            );
            assert!(
                http.status < 500 || http.status == 503,
                "{method} {params}: {}",
                http.status
            );
        }
        assert!(
            serving(&loopsy),
            "round {round}: the daemon stopped serving"
        );
        // Garbled and truncated bytes too.
        let mut raw = Socket::connect(&loopsy);
        let garbage: Vec<u8> = (0..64).map(|_| cases.next() as u8).collect();
        raw.send(1, &garbage);
        let _ = raw.stream.write_all(&[0, 0, 0]);
    }
    assert!(loopsy.pid().is_some() && loopsy.is_running());
}

/// JSON-RPC over HTTP cannot carry a stream: the Router refuses the streaming
/// form there before anything runs (it used to run, be killed, and be audited
/// `ok` while the client got a 400).
#[test]
fn a_stream_asked_over_json_rpc_is_refused_before_it_runs() {
    let loopsy = Loopsy::started();
    let key = loopsy.key();
    let marker = loopsy.dir.path().join("ran");
    let params = json!({ "command": "touch", "args": [marker.display().to_string()] });
    let answer = rpc_with_key(&loopsy, &key, "exec.stream", params.clone());
    assert_eq!(answer["error"]["data"]["httpStatus"], 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("/api/v1/execute/stream")
    );
    let pulled = rpc_with_key(
        &loopsy,
        &key,
        "transfer.pull",
        json!({ "sourcePath": "~/x" }),
    );
    assert_eq!(pulled["error"]["data"]["httpStatus"], 400, "{pulled}");
    // The same request on a carrier that takes streams runs.
    let ran = rpc_with_key(&loopsy, &key, "exec.run", params);
    assert_eq!(ran["result"]["exitCode"], 0, "{ran}");
    assert!(marker.exists());
    std::fs::remove_file(&marker).expect("remove");
    sleep(Duration::from_millis(200));
    assert!(!marker.exists(), "the refused stream ran after all");
    let log = std::fs::read_to_string(loopsy.path("logs/audit.jsonl")).unwrap_or_default();
    let stream_line = log
        .lines()
        .find(|l| l.contains("\"op\":\"exec.stream\""))
        .unwrap_or_default();
    assert!(stream_line.contains("\"invalid\""), "{stream_line}");
}
