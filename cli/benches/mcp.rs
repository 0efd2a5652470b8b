//! `just bench`, the MCP part: `loopsy mcp` driven over its stdio as an agent
//! drives it (one client, calls one after another), each figure beside the
//! same daemon operation asked straight on the Unix socket in the same run:
//! - `loopsy_context_get` here, against `context.get` on a socket connection;
//! - `loopsy_context_get` on a peer, against `peers.call` `context.get`;
//! - `loopsy_session_wait`: from typing a line that prints a marker to the
//!   tool's answer, against an attached socket client seeing the marker.
//!
//! Interleaved blocks (`support::interleaved`), medians and tails of 300+.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::pairing::{client, two_paired_daemons};
use support::*;

/// `loopsy mcp` as a child, spoken to in newline-delimited JSON-RPC.
struct Mcp {
    child: std::process::Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next: u64,
}

impl Mcp {
    fn start(data: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loopsy"))
            .arg("--data-dir")
            .arg(data)
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        let mut mcp = Self {
            child,
            input,
            output,
            next: 1,
        };
        mcp.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "loopsy-bench", "version": "1"}}),
        );
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        mcp
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.input, "{message}").unwrap();
        self.input.flush().unwrap();
    }

    /// Sends a request; its id.
    fn ask(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    fn answer(&mut self, id: u64) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.output.read_line(&mut line).unwrap() > 0,
                "loopsy mcp ended"
            );
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                return message["result"].clone();
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.ask(method, params);
        self.answer(id)
    }

    fn tool(&mut self, name: &str, arguments: Value) -> Value {
        let result = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        assert_ne!(result["isError"], true, "{name}: {result}");
        result["structuredContent"].clone()
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn line(label: &str, subject: &[Duration], baseline: &[Duration], baseline_name: &str) {
    let (s50, s99) = (percentile(subject, 0.50), percentile(subject, 0.99));
    let (b50, b99) = (percentile(baseline, 0.50), percentile(baseline, 0.99));
    let per_sec = |d: &[Duration]| d.len() as f64 / d.iter().sum::<Duration>().as_secs_f64();
    println!(
        "{label}: p50 {:.3} ms / p99 {:.3} ms ({:.0} calls/s) through loopsy mcp; {baseline_name} p50 {:.3} ms / p99 {:.3} ms ({:.0} calls/s); {:.2}x p50, {:.2}x p99 ({} rounds each)",
        ms(s50),
        ms(s99),
        per_sec(subject),
        ms(b50),
        ms(b99),
        per_sec(baseline),
        ms(s50) / ms(b50),
        ms(s99) / ms(b99),
        subject.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pair = two_paired_daemons(tmp.path());
    let (kai_data, mira_data, mira_node) =
        (&pair.kai_data, &pair.mira_data, pair.mira_node.clone());
    for data in [kai_data, mira_data] {
        client(data)
            .call(
                "context.set",
                Some(&json!({"key": "bench", "value": "v".repeat(100)})),
            )
            .unwrap();
    }
    println!(
        "MCP on loopback ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut mcp = Mcp::start(kai_data);
    let mut socket = client(kai_data);
    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let [subject, baseline] = interleaved(
        500,
        [
            &mut || {
                timed(&mut || {
                    assert_eq!(
                        mcp.tool("loopsy_context_get", json!({"key": "bench"}))["found"],
                        true
                    )
                })
            },
            &mut || {
                timed(&mut || {
                    socket
                        .call("context.get", Some(&json!({"key": "bench"})))
                        .unwrap();
                })
            },
        ],
    );
    line(
        "loopsy_context_get here",
        &subject,
        &baseline,
        "context.get on the socket",
    );
    let peer_get = json!({"key": "bench", "peer": mira_node});
    let through = json!({"peer": mira_node, "method": "context.get", "params": {"key": "bench"}});
    let [subject, baseline] = interleaved(
        500,
        [
            &mut || {
                timed(&mut || {
                    assert_eq!(
                        mcp.tool("loopsy_context_get", peer_get.clone())["found"],
                        true
                    )
                })
            },
            &mut || {
                timed(&mut || {
                    socket.call("peers.call", Some(&through)).unwrap();
                })
            },
        ],
    );
    line(
        "loopsy_context_get on a peer",
        &subject,
        &baseline,
        "peers.call context.get on the socket",
    );
    bench_wait(&mut mcp, kai_data);
}

/// A line typed into a shell prints `mark-N`: the time to `loopsy_session_wait`'s
/// answer, against an attached client's time to see it.
fn bench_wait(mcp: &mut Mcp, kai_data: &std::path::Path) {
    let (id, attached) = session_with_client(&kai_data.join("loopsyd.sock"));
    let mut typing = attached.try_clone().unwrap();
    let mut watching = BufReader::with_capacity(256 * 1024, attached);
    std::thread::sleep(Duration::from_millis(300));
    let mut control = client(kai_data);
    let n = std::cell::Cell::new(0u64);
    let mut seen = Vec::new();
    let [subject, baseline] = interleaved(
        300,
        [
            &mut || {
                n.set(n.get() + 1);
                let n = n.get();
                let end = control
                    .call(
                        "session.read",
                        Some(&json!({"id": id, "fromOffset": u64::MAX, "maxBytes": 1})),
                    )
                    .unwrap()["end"]
                    .as_u64()
                    .unwrap();
                let pending = mcp.ask("tools/call", json!({"name": "loopsy_session_wait", "arguments": {
                    "session_id": id, "pattern": format!("mark-{}\\b", n + 1), "from_offset": end, "timeout_seconds": 10}}));
                let t = Instant::now();
                // The marker is computed by the shell, so the typed line does not match it.
                let line = format!("echo mark-$(({n}+1))\r");
                control
                    .call("session.input", Some(&json!({"id": id, "data": line})))
                    .unwrap();
                let answer = mcp.answer(pending);
                let took = t.elapsed();
                assert_eq!(answer["structuredContent"]["matched"], true, "{answer}");
                took
            },
            &mut || {
                n.set(n.get() + 1);
                let n = n.get();
                // What the wait rounds printed is still queued for this client.
                watching
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_millis(20)))
                    .unwrap();
                while read_any_timeout(&mut watching).is_some() {}
                watching.get_ref().set_read_timeout(None).unwrap();
                seen.clear();
                let marker = format!("mark-{}", n + 1);
                let t = Instant::now();
                write_binary(&mut typing, format!("echo mark-$(({n}+1))\r").as_bytes());
                loop {
                    let (kind, payload) = read_any(&mut watching);
                    if kind == 2 {
                        seen.extend_from_slice(&payload);
                        // The typed line echoes `mark-$((…` first; the output is `mark-N`.
                        if String::from_utf8_lossy(&seen).contains(&format!("{marker}\r")) {
                            break;
                        }
                    }
                }
                t.elapsed()
            },
        ],
    );
    line(
        "loopsy_session_wait, output to answer",
        &subject,
        &baseline,
        "an attached client seeing it",
    );
}
